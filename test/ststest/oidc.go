package ststest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Web identity verification: the fake plays STS with IAM OIDC providers
// registered in the account, one per trusted issuer URL with its allowed
// audiences (client ids).

// The messages of STS's web identity errors.
const (
	msgNotJWT       = "The ID Token provided is not a valid JWT. (You may see this error if you sent an Access Token)"
	msgNoKey        = "Couldn't retrieve verification key from your identity provider,  please reference AssumeRoleWithWebIdentity documentation for requirements"
	msgBadSignature = "The signature of the ID Token could not be verified."
	msgAudience     = "Incorrect token audience"
	msgUnreachable  = "Couldn't retrieve verification key from your identity provider,  please reference AssumeRoleWithWebIdentity documentation for requirements"
)

// oidcLeeway is the clock skew tolerated on nbf and iat.
const oidcLeeway = time.Minute

// oidcFetchTimeout bounds one fetch of a discovery document or JWKS.
const oidcFetchTimeout = 5 * time.Second

// oidcProvider is a trusted issuer and the keys last fetched from it.
type oidcProvider struct {
	audiences []string

	mu   sync.Mutex // serializes fetches; guards keys
	keys *jose.JSONWebKeySet
}

// WithOIDCHTTPClient makes the fake fetch issuers' discovery documents and
// JWKS with c (e.g. one trusting a test CA). The default is a plain client
// with a 5 s timeout.
func WithOIDCHTTPClient(c *http.Client) Option {
	return func(h *Handler) { h.oidcClient = c }
}

// TrustOIDCProvider registers an IAM OIDC provider for issuerURL (the exact
// iss of the tokens, http or https) that accepts tokens for any of audiences,
// as `aws iam create-open-id-connect-provider --url issuerURL --client-id-list
// audiences...` does. Registering an issuer again replaces its audiences and
// forgets its cached keys. Reset keeps the trusted issuers.
//
// The fake then verifies an AssumeRoleWithWebIdentity's token as STS does:
// it fetches issuerURL/.well-known/openid-configuration and the jwks_uri it
// names (caching the keys, refetched when a token names an unknown kid),
// checks the RS256 or ES256 signature, iss, aud, exp, nbf and iat, and reads
// session tags and the source identity from the claims
// https://aws.amazon.com/tags and https://aws.amazon.com/source_identity. It
// evaluates no trust policy: Refuse stands for one.
func (h *Handler) TrustOIDCProvider(issuerURL string, audiences ...string) {
	h.oidcMu.Lock()
	defer h.oidcMu.Unlock()
	h.oidc[issuerURL] = &oidcProvider{audiences: slices.Clone(audiences)}
}

// TrustPolicy is the web identity part of a role's trust policy as the
// bridge's documentation writes it: Federated the IAM OIDC provider of
// Issuer, and StringEquals on "<issuer host>:aud" = Audience and
// "<issuer host>:sub" = Subject. Every field is compared exactly.
type TrustPolicy struct {
	Issuer, Audience, Subject string
}

// TrustRole gives roleARN trust policy p for AssumeRoleWithWebIdentity:
// a verified token whose iss, aud and sub do not all equal p's is refused
// with AccessDenied, as IAM does. A role without a policy trusts every
// verified token (the fake's default; Refuse stands for a refusal). Reset
// keeps the policies.
func (h *Handler) TrustRole(roleARN string, p TrustPolicy) {
	h.oidcMu.Lock()
	defer h.oidcMu.Unlock()
	if h.roleTrust == nil {
		h.roleTrust = make(map[string]TrustPolicy)
	}
	h.roleTrust[roleARN] = p
}

// trusts reports whether roleARN's trust policy, if any, admits wi.
func (h *Handler) trusts(roleARN string, wi webIdentity) bool {
	h.oidcMu.Lock()
	p, ok := h.roleTrust[roleARN]
	h.oidcMu.Unlock()
	return !ok || (wi.issuer == p.Issuer && wi.audience == p.Audience && wi.subject == p.Subject)
}

// webIdentity is what the fake learned from a verified token.
type webIdentity struct {
	issuer, subject, audience string
	sourceIdentity            string
	tags                      map[string]string
	transitiveTagKeys         []string
}

// webIdentityError is an STS error answer to a web identity token.
type webIdentityError struct{ code, msg string }

func wiErr(code, format string, a ...any) *webIdentityError {
	return &webIdentityError{code: code, msg: fmt.Sprintf(format, a...)}
}

// verifyWebIdentity checks token and records what it claims in call, whether
// it verifies or not.
func (h *Handler) verifyWebIdentity(ctx context.Context, token string, call *Call) (webIdentity, *webIdentityError) {
	var wi webIdentity
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil || len(jws.Signatures) != 1 {
		return wi, wiErr("InvalidIdentityToken", msgNotJWT)
	}
	claims, err := decodeClaims(jws.UnsafePayloadWithoutVerification())
	if err != nil {
		return wi, wiErr("InvalidIdentityToken", msgNotJWT)
	}
	call.WebIdentityClaims = json.RawMessage(bytes.Clone(jws.UnsafePayloadWithoutVerification()))
	iss, _ := claims["iss"].(string)
	sub, _ := claims["sub"].(string)
	aud, audOK := audiences(claims["aud"])
	call.WebIdentityIssuer, call.WebIdentitySubject, call.WebIdentityAudience = iss, sub, aud

	h.oidcMu.Lock()
	p := h.oidc[iss]
	h.oidcMu.Unlock()
	if iss == "" || p == nil {
		return wi, wiErr("InvalidIdentityToken", "No OpenIDConnect provider found in your account for %s", iss)
	}
	kid := jws.Signatures[0].Header.KeyID
	keys, werr := h.oidcKeys(ctx, iss, p, kid)
	if werr != nil {
		return wi, werr
	}
	verified := false
	for _, k := range keys {
		if _, err := jws.Verify(k); err == nil {
			verified = true
			break
		}
	}
	if !verified {
		return wi, wiErr("InvalidIdentityToken", msgBadSignature)
	}

	if !audOK {
		return wi, wiErr("InvalidIdentityToken", msgAudience)
	}
	for _, a := range aud {
		if slices.Contains(p.audiences, a) {
			wi.audience = a
			break
		}
	}
	if wi.audience == "" {
		return wi, wiErr("InvalidIdentityToken", msgAudience)
	}
	now := h.now()
	exp, ok := numericDate(claims["exp"])
	if !ok {
		return wi, wiErr("InvalidIdentityToken", "The ID Token provided has no valid exp claim.")
	}
	if !now.Before(exp) {
		return wi, wiErr("ExpiredTokenException", "Token expired: current date/time %d must be before the expiration date/time %d", now.Unix(), exp.Unix())
	}
	for _, name := range []string{"nbf", "iat"} {
		v, present := claims[name]
		if !present {
			continue
		}
		t, ok := numericDate(v)
		if !ok {
			return wi, wiErr("InvalidIdentityToken", "The ID Token provided has no valid %s claim.", name)
		}
		if t.After(now.Add(oidcLeeway)) {
			return wi, wiErr("IDPRejectedClaim", "The %s claim of the ID Token is in the future: current date/time %d, %s %d", name, now.Unix(), name, t.Unix())
		}
	}
	if sub == "" {
		return wi, wiErr("InvalidIdentityToken", "The ID Token provided has no sub claim.")
	}
	wi.issuer, wi.subject = iss, sub

	if v, present := claims["https://aws.amazon.com/source_identity"]; present {
		si, ok := v.(string)
		if !ok || !sessionName.MatchString(si) {
			return wi, wiErr("InvalidIdentityToken", "The source identity claim must satisfy regular expression pattern: [\\w+=,.@-]* and length between 2 and 64")
		}
		wi.sourceIdentity = si
	}
	if v, present := claims["https://aws.amazon.com/tags"]; present {
		tags, transitive, msg := tagsClaim(v)
		if msg != "" {
			return wi, wiErr("InvalidIdentityToken", "%s", msg)
		}
		members := make([]map[string]string, 0, len(tags))
		for _, k := range slices.Sorted(maps.Keys(tags)) {
			members = append(members, map[string]string{"Key": k, "Value": tags[k]})
		}
		if code, msg := validateTags(members); code != "" {
			return wi, wiErr(code, "%s", msg)
		}
		for _, k := range transitive {
			if _, ok := tags[k]; !ok {
				return wi, wiErr("InvalidIdentityToken", "The transitive tag key %s is not a principal tag.", k)
			}
		}
		if code, msg := validateTransitive(transitive, members); code != "" {
			return wi, wiErr(code, "%s", msg)
		}
		if pp, tp := packedSize(call.Policy, members); pp+tp > packedLimit {
			return wi, wiErr("PackedPolicyTooLarge", "Packed size of session tags consumes %d%% of allotted space.", (pp+tp)*100/packedLimit)
		}
		wi.tags, wi.transitiveTagKeys = tags, transitive
	}
	call.SourceIdentity, call.Tags, call.TransitiveTagKeys = wi.sourceIdentity, wi.tags, wi.transitiveTagKeys
	return wi, nil
}

// decodeClaims reads a JWT payload as a JSON object, numbers as json.Number.
func decodeClaims(payload []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var claims map[string]any
	if err := dec.Decode(&claims); err != nil {
		return nil, err
	}
	if claims == nil || dec.More() {
		return nil, fmt.Errorf("ststest: payload is not one JSON object")
	}
	return claims, nil
}

// audiences reads aud, a string or an array of strings.
func audiences(v any) ([]string, bool) {
	switch a := v.(type) {
	case string:
		return []string{a}, true
	case []any:
		out := make([]string, 0, len(a))
		for _, e := range a {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, len(out) > 0
	}
	return nil, false
}

// numericDate reads a JWT NumericDate (seconds, possibly fractional).
func numericDate(v any) (time.Time, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, false
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || f < 0 || f > 253402300799 {
		return time.Time{}, false
	}
	return time.Unix(0, 0).Add(time.Duration(f * float64(time.Second))), true
}

// tagsClaim reads {"principal_tags": {"k": ["v"]}, "transitive_tag_keys":
// ["k"]}; each tag has exactly one value. It returns STS's message when the
// claim has another shape.
func tagsClaim(v any) (map[string]string, []string, string) {
	const shape = "The https://aws.amazon.com/tags claim must be an object with principal_tags (an object of single-valued string arrays) and optional transitive_tag_keys (an array of strings)."
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, nil, shape
	}
	tags := map[string]string{}
	var transitive []string
	for k, val := range obj {
		switch k {
		case "principal_tags":
			pt, ok := val.(map[string]any)
			if !ok {
				return nil, nil, shape
			}
			for key, vals := range pt {
				arr, ok := vals.([]any)
				if !ok || len(arr) != 1 {
					return nil, nil, shape
				}
				s, ok := arr[0].(string)
				if !ok {
					return nil, nil, shape
				}
				tags[key] = s
			}
		case "transitive_tag_keys":
			arr, ok := val.([]any)
			if !ok {
				return nil, nil, shape
			}
			for _, e := range arr {
				s, ok := e.(string)
				if !ok {
					return nil, nil, shape
				}
				transitive = append(transitive, s)
			}
		default:
			return nil, nil, shape
		}
	}
	return tags, transitive, ""
}

// oidcKeys returns the keys of p able to verify a token with kid (all keys
// when kid is empty), fetching them on first use and again when kid is
// unknown.
func (h *Handler) oidcKeys(ctx context.Context, iss string, p *oidcProvider, kid string) ([]jose.JSONWebKey, *webIdentityError) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pick := func() []jose.JSONWebKey {
		if p.keys == nil {
			return nil
		}
		if kid == "" {
			return p.keys.Keys
		}
		return p.keys.Key(kid)
	}
	if keys := pick(); len(keys) > 0 {
		return keys, nil
	}
	set, werr := h.fetchJWKS(ctx, iss)
	if werr != nil {
		return nil, werr
	}
	p.keys = set
	keys := pick()
	if len(keys) == 0 {
		return nil, wiErr("InvalidIdentityToken", msgNoKey)
	}
	return keys, nil
}

// fetchJWKS reads iss's discovery document, then its JWKS. Transport
// failures and 5xx answers are IDPCommunicationError (retried by clients);
// anything else wrong is InvalidIdentityToken.
func (h *Handler) fetchJWKS(ctx context.Context, iss string) (*jose.JSONWebKeySet, *webIdentityError) {
	var disc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if werr := h.getJSON(ctx, strings.TrimSuffix(iss, "/")+"/.well-known/openid-configuration", &disc); werr != nil {
		return nil, werr
	}
	if disc.Issuer != iss || disc.JWKSURI == "" {
		return nil, wiErr("InvalidIdentityToken", msgNoKey)
	}
	var set jose.JSONWebKeySet
	if werr := h.getJSON(ctx, disc.JWKSURI, &set); werr != nil {
		return nil, werr
	}
	return &set, nil
}

func (h *Handler) getJSON(ctx context.Context, url string, v any) *webIdentityError {
	ctx, cancel := context.WithTimeout(ctx, oidcFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return wiErr("InvalidIdentityToken", msgNoKey)
	}
	resp, err := h.oidcClient.Do(req)
	if err != nil {
		return wiErr("IDPCommunicationError", msgUnreachable)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode >= 500:
		return wiErr("IDPCommunicationError", msgUnreachable)
	case resp.StatusCode != http.StatusOK:
		return wiErr("InvalidIdentityToken", msgNoKey)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return wiErr("IDPCommunicationError", msgUnreachable)
	}
	if json.Unmarshal(b, v) != nil {
		return wiErr("InvalidIdentityToken", msgNoKey)
	}
	return nil
}
