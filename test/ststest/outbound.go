package ststest

import (
	"encoding/xml"
	"net/http"
	"net/url"
	"strconv"
	"time"
	"unicode/utf8"
)

// actionOutbound is outbound identity federation's STS action: a signed-in
// caller asks for a JWT about itself, signed by its account's issuer
// (https://docs.aws.amazon.com/STS/latest/APIReference/API_GetWebIdentityToken.html).
const actionOutbound = "GetWebIdentityToken"

// OutboundRequest is what a verified GetWebIdentityToken asks for: the
// fake's minter turns it into a token.
type OutboundRequest struct {
	// AccessKeyID is the caller's key id; Region the signature's region.
	AccessKeyID string
	Region      string
	Audience    []string
	// SigningAlgorithm is RS256 or ES384.
	SigningAlgorithm string
	// Duration is DurationSeconds, 300 s when absent.
	Duration time.Duration
	// Tags are the request's tags, which AWS adds to the token as
	// request_tags.
	Tags map[string]string
}

// WithOutboundIdentity enables GetWebIdentityToken (the account's outbound
// identity federation): mint signs the token a valid request asks for.
// Without it the fake answers as AWS does for an account that has not
// enabled the feature.
func WithOutboundIdentity(mint func(OutboundRequest) (string, error)) Option {
	return func(h *Handler) { h.outbound = mint }
}

// The limits of GetWebIdentityToken (API_GetWebIdentityToken.html):
// Audience 1-10 members of 1-1000 characters, SigningAlgorithm RS256 or
// ES384, DurationSeconds 60-3600 (300 by default), up to 50 tags.
const (
	maxOutboundAudiences   = 10
	maxOutboundAudienceLen = 1000
	defaultOutboundSeconds = 300
)

// readOutbound validates a GetWebIdentityToken's parameters: the request,
// or an error code and message as STS's.
func readOutbound(p url.Values) (OutboundRequest, string, string) {
	var req OutboundRequest
	for _, m := range members(p, "Audience.member.") {
		req.Audience = append(req.Audience, m[""])
	}
	switch {
	case len(req.Audience) == 0:
		return req, "MissingParameter", "The request must contain the parameter Audience."
	case len(req.Audience) > maxOutboundAudiences:
		return req, "ValidationError", "1 validation error detected: Value at 'audience' failed to satisfy constraint: Member must have length less than or equal to 10"
	}
	for _, a := range req.Audience {
		if n := utf8.RuneCountInString(a); n < 1 || n > maxOutboundAudienceLen {
			return req, "ValidationError", "1 validation error detected: Value at 'audience' failed to satisfy constraint: Member must have length between 1 and 1000"
		}
	}
	req.SigningAlgorithm = p.Get("SigningAlgorithm")
	switch req.SigningAlgorithm {
	case "RS256", "ES384":
	case "":
		return req, "MissingParameter", "The request must contain the parameter SigningAlgorithm."
	default:
		return req, "ValidationError", "1 validation error detected: Value '" + req.SigningAlgorithm +
			"' at 'signingAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: [RS256, ES384]"
	}
	secs := defaultOutboundSeconds
	if s := p.Get("DurationSeconds"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 60 || n > 3600 {
			return req, "ValidationError", "1 validation error detected: Value '" + s +
				"' at 'durationSeconds' failed to satisfy constraint: Member must have value between 60 and 3600"
		}
		secs = n
	}
	req.Duration = time.Duration(secs) * time.Second
	tags := members(p, "Tags.member.")
	if len(tags) > 50 {
		return req, "ValidationError", "1 validation error detected: Value at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50"
	}
	for _, m := range tags {
		if req.Tags == nil {
			req.Tags = map[string]string{}
		}
		req.Tags[m["Key"]] = m["Value"]
	}
	return req, "", ""
}

// getWebIdentityToken answers a signed, valid GetWebIdentityToken.
func (h *Handler) getWebIdentityToken(w http.ResponseWriter, call *Call, auth authInfo, fail func(code, msg string)) {
	req, code, msg := readOutbound(call.Params)
	if code != "" {
		fail(code, msg)
		return
	}
	if h.outbound == nil {
		fail("OutboundWebIdentityFederationDisabledException",
			"The outbound web identity federation feature is not enabled for this account.")
		return
	}
	req.AccessKeyID, req.Region = auth.accessKeyID, auth.region
	tok, err := h.outbound(req)
	if err != nil {
		fail("InternalFailure", "An internal error has occurred. Please try again.")
		return
	}
	writeXML(w, http.StatusOK, getWebIdentityTokenResponse{
		Xmlns: xmlns,
		Result: webIdentityTokenResult{WebIdentityToken: tok,
			Expiration: h.now().Add(req.Duration).UTC().Format(time.RFC3339)},
		Metadata: responseMetadata{RequestID: call.RequestID},
	})
	call.Status = http.StatusOK
}

type getWebIdentityTokenResponse struct {
	XMLName  xml.Name               `xml:"GetWebIdentityTokenResponse"`
	Xmlns    string                 `xml:"xmlns,attr"`
	Result   webIdentityTokenResult `xml:"GetWebIdentityTokenResult"`
	Metadata responseMetadata       `xml:"ResponseMetadata"`
}

type webIdentityTokenResult struct {
	WebIdentityToken string `xml:"WebIdentityToken"`
	Expiration       string `xml:"Expiration"`
}
