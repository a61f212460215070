package ststest

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const (
	sigAlgorithm = "AWS4-HMAC-SHA256"
	amzDateFmt   = "20060102T150405Z"
	// maxSkew is how far a request's X-Amz-Date may be from the fake's clock,
	// as in AWS.
	maxSkew = 15 * time.Minute
)

// authInfo is what the Authorization header said, once parsed.
type authInfo struct {
	accessKeyID   string
	date          string // yyyymmdd of the credential scope
	region        string
	service       string
	terminator    string
	signedHeaders []string
	signature     string
}

// parseAuthorization reads "AWS4-HMAC-SHA256 Credential=AKID/date/region/
// service/aws4_request, SignedHeaders=a;b, Signature=hex".
func parseAuthorization(h string) (authInfo, bool) {
	var a authInfo
	rest, ok := strings.CutPrefix(h, sigAlgorithm+" ")
	if !ok {
		return a, false
	}
	for part := range strings.SplitSeq(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return a, false
		}
		switch k {
		case "Credential":
			scope := strings.Split(v, "/")
			if len(scope) != 5 {
				return a, false
			}
			a.accessKeyID, a.date, a.region, a.service, a.terminator = scope[0], scope[1], scope[2], scope[3], scope[4]
		case "SignedHeaders":
			a.signedHeaders = strings.Split(v, ";")
		case "Signature":
			a.signature = v
		default:
			return a, false
		}
	}
	if a.accessKeyID == "" || len(a.signedHeaders) == 0 || a.signature == "" {
		return a, false
	}
	return a, true
}

const badSignature = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."

// verify checks r's SigV4 signature for sts (see verifySigV4).
func (h *Handler) verify(r *http.Request, body []byte) (authInfo, string, string) {
	return verifySigV4(r, body, h.keys, h.now(), "sts")
}

// verifySigV4 checks r's SigV4 signature for service by signing a copy of
// the request, made of exactly the headers the client says it signed, with
// the known secret. It returns the parsed header and, when the request must
// be refused, the AWS error code and message.
func verifySigV4(r *http.Request, body []byte, keys map[string]Key, now time.Time, service string) (authInfo, string, string) {
	hdr := r.Header.Get("Authorization")
	if hdr == "" {
		return authInfo{}, "MissingAuthenticationToken", "Request is missing Authentication Token"
	}
	a, ok := parseAuthorization(hdr)
	if !ok {
		return authInfo{}, "IncompleteSignature", "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters with algorithm " + sigAlgorithm + "."
	}
	key, known := keys[a.accessKeyID]
	if !known || r.Header.Get("X-Amz-Security-Token") != key.SessionToken {
		return a, "InvalidClientTokenId", "The security token included in the request is invalid."
	}
	if a.service != service || a.terminator != "aws4_request" || a.region == "" {
		return a, "SignatureDoesNotMatch", "Credential should be scoped to correct service: '" + service + "'."
	}
	signedAt, err := time.Parse(amzDateFmt, r.Header.Get("X-Amz-Date"))
	if err != nil {
		return a, "IncompleteSignature", "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
	}
	if a.date != signedAt.Format("20060102") {
		return a, "SignatureDoesNotMatch", "Credential should be scoped to a valid date matching X-Amz-Date."
	}
	if signedAt.Before(now.Add(-maxSkew)) || signedAt.After(now.Add(maxSkew)) {
		return a, "SignatureDoesNotMatch", "Signature expired: " + signedAt.Format(amzDateFmt) + " is now earlier or later than the allowed window."
	}
	if !slices.Contains(a.signedHeaders, "host") || !slices.Contains(a.signedHeaders, "x-amz-date") {
		return a, "SignatureDoesNotMatch", badSignature
	}
	sum := sha256.Sum256(body)
	payloadHash := hex.EncodeToString(sum[:])
	if ph := r.Header.Get("X-Amz-Content-Sha256"); ph != "" && ph != payloadHash {
		return a, "SignatureDoesNotMatch", badSignature
	}
	cp, err := http.NewRequestWithContext(context.Background(), r.Method, "http://"+r.Host+r.URL.RequestURI(), nil)
	if err != nil {
		return a, "SignatureDoesNotMatch", badSignature
	}
	cp.Host = r.Host
	for _, name := range a.signedHeaders {
		switch name {
		case "host":
		case "content-length":
			cp.ContentLength = int64(len(body))
		default:
			vals := r.Header.Values(name)
			if len(vals) == 0 {
				return a, "SignatureDoesNotMatch", badSignature
			}
			cp.Header[http.CanonicalHeaderKey(name)] = slices.Clone(vals)
		}
	}
	creds := aws.Credentials{AccessKeyID: key.AccessKeyID, SecretAccessKey: key.SecretAccessKey, SessionToken: key.SessionToken}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, cp, payloadHash, a.service, a.region, signedAt); err != nil {
		return a, "SignatureDoesNotMatch", badSignature
	}
	want, ok := parseAuthorization(cp.Header.Get("Authorization"))
	if !ok || !slices.Equal(want.signedHeaders, a.signedHeaders) || !hmac.Equal([]byte(want.signature), []byte(a.signature)) {
		return a, "SignatureDoesNotMatch", badSignature
	}
	return a, "", ""
}
