package identity

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Algorithms Verify accepts at all. Issuers narrow this further with
// id_token_signing_alg_values_supported. Symmetric algorithms and "none" are
// never accepted: a public key must never be usable as an HMAC secret.
var asymmetricAlgs = map[string]bool{
	"RS256": true, "RS384": true, "RS512": true,
	"PS256": true, "PS384": true, "PS512": true,
	"ES256": true, "ES384": true, "ES512": true,
}

// Header parameters that would let a token carry or point at its own key.
// Keys come only from the issuer's JWKS.
var embeddedKeyParams = []string{"jwk", "jku", "x5u", "x5c"}

var b64 = base64.RawURLEncoding.Strict()

// parsedToken is the result of the pre-verification parse: nothing in it is
// trusted yet.
type parsedToken struct {
	alg     string
	kid     string
	hasKID  bool
	payload []byte
	claims  jsonObject
	// signingInput is what the signature covers (header.payload as sent)
	// and signature the signature's bytes.
	signingInput string
	signature    []byte
}

// jsonObject is a JSON object's members, undecoded.
type jsonObject map[string]json.RawMessage

// parseToken checks the token's shape and header and decodes its payload,
// all before any key is looked up. It bounds its work by MaxTokenSize.
func parseToken(raw string) (*parsedToken, *Error) {
	if len(raw) > MaxTokenSize {
		return nil, fail(ReasonTokenTooLarge, "token is %d bytes, limit %d", len(raw), MaxTokenSize)
	}
	if strings.Count(raw, ".") != 2 {
		return nil, fail(ReasonMalformedToken, "token must have exactly three dot-separated parts")
	}
	h, rest, _ := strings.Cut(raw, ".")
	p, sig, _ := strings.Cut(rest, ".")
	if h == "" || p == "" {
		return nil, fail(ReasonMalformedToken, "token has an empty header or payload")
	}
	hb, err := b64.DecodeString(h)
	if err != nil {
		return nil, fail(ReasonMalformedToken, "header is not base64url: %v", err)
	}
	hdr, err := parseObject(hb)
	if err != nil {
		return nil, fail(ReasonMalformedToken, "header: %v", err)
	}
	t := &parsedToken{}
	if e := t.checkHeader(hdr); e != nil {
		return nil, e
	}
	// Checked after the header so that {"alg":"none"}.payload. reports the
	// algorithm, which is the actual problem.
	if sig == "" {
		return nil, fail(ReasonMalformedToken, "token has no signature")
	}
	if t.signature, err = b64.DecodeString(sig); err != nil {
		return nil, fail(ReasonMalformedToken, "signature is not base64url: %v", err)
	}
	t.signingInput = raw[:len(h)+1+len(p)]
	t.payload, err = b64.DecodeString(p)
	if err != nil {
		return nil, fail(ReasonMalformedToken, "payload is not base64url: %v", err)
	}
	t.claims, err = parseObject(t.payload)
	if err != nil {
		return nil, fail(ReasonMalformedToken, "payload: %v", err)
	}
	return t, nil
}

func (t *parsedToken) checkHeader(hdr jsonObject) *Error {
	rawAlg, ok := hdr["alg"]
	if !ok {
		return fail(ReasonUnsupportedAlg, "header has no alg")
	}
	var alg string
	if err := json.Unmarshal(rawAlg, &alg); err != nil {
		return fail(ReasonMalformedToken, "header alg is not a string")
	}
	if !asymmetricAlgs[alg] {
		return fail(ReasonUnsupportedAlg, "algorithm %s is not accepted", quote(alg))
	}
	t.alg = alg
	// crit must be refused whatever it names: go-jose understands b64
	// (RFC 7797), which would change what the signature covers.
	if _, ok := hdr["crit"]; ok {
		return fail(ReasonMalformedToken, "header has crit")
	}
	if _, ok := hdr["b64"]; ok {
		return fail(ReasonMalformedToken, "header has b64")
	}
	for _, name := range embeddedKeyParams {
		if _, ok := hdr[name]; ok {
			// Reported as bad_signature: the only key a signature may be
			// checked against is the issuer's, and this token asks for
			// another.
			return fail(ReasonBadSignature, "header carries its own key (%s); keys come only from the issuer's JWKS", name)
		}
	}
	// A JWS nonce (RFC 8555) means nothing here, but a reader of the
	// header may expect a string: refuse any other type, as go-jose, which
	// once read the header too, did.
	if rawNonce, ok := hdr["nonce"]; ok {
		var nonce *string
		if err := json.Unmarshal(rawNonce, &nonce); err != nil {
			return fail(ReasonMalformedToken, "header nonce is not a string")
		}
	}
	if rawKID, ok := hdr["kid"]; ok {
		var kid string
		if err := json.Unmarshal(rawKID, &kid); err != nil {
			return fail(ReasonMalformedToken, "header kid is not a string")
		}
		if len(kid) > maxKIDLen {
			return fail(ReasonUnknownKey, "kid is %d bytes, limit %d", len(kid), maxKIDLen)
		}
		if hasControl(kid) {
			return fail(ReasonUnknownKey, "kid %s contains control characters", quote(kid))
		}
		t.kid, t.hasKID = kid, true
	}
	return nil
}

// parseObject decodes a JSON object's top level, refusing duplicate member
// names, also those that differ only in case: encoding/json matches struct
// fields case-insensitively and takes the last duplicate, and other parsers
// differ, so such objects could mean different things to different readers.
func parseObject(b []byte) (jsonObject, error) {
	var obj jsonObject
	if err := json.Unmarshal(b, &obj); err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	if obj == nil { // null
		return nil, errors.New("not a JSON object")
	}
	// A member name decoded twice leaves fewer map entries than names.
	if n := countMembers(b); n != len(obj) {
		return nil, errors.New("duplicate member names")
	}
	var folded map[string]struct{}
	for name := range obj {
		if foldName(name) != name {
			folded = make(map[string]struct{}, len(obj))
			break
		}
	}
	if folded != nil {
		for name := range obj {
			f := foldName(name)
			if _, dup := folded[f]; dup {
				return nil, fmt.Errorf("member names that differ only in case (%s)", quote(name))
			}
			folded[f] = struct{}{}
		}
	}
	return obj, nil
}

// countMembers counts the member names of the top-level object of b, which
// must be valid JSON.
func countMembers(b []byte) int {
	depth, n := 0, 0
	inString, escaped, expectName := false, false, false
	for _, c := range b {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
			if depth == 1 && expectName {
				n++
				expectName = false
			}
		case '{', '[':
			depth++
			expectName = depth == 1
		case '}', ']':
			depth--
		case ',':
			expectName = depth == 1
		}
	}
	return n
}

// foldName maps names that encoding/json would match case-insensitively
// (including the Kelvin sign and the long s) to one spelling.
func foldName(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x80 || ('A' <= c && c <= 'Z') {
			return strings.ToLower(strings.ToUpper(s))
		}
	}
	return s
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return true
		}
	}
	return false
}
