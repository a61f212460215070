package identity

// NormalizeClaims reads a bare claims object (a token's decoded payload) into
// Claims exactly as Verify reads a verified token of issuer iss: the same
// duplicate-member refusal, the same required claims for the issuer's kind
// (iss, sub and jti included), the same value checks and the same
// normalisation (GitLab's ref and ref_type become a full ref, ...). iss must
// be the issuer's URL, byte-exact.
//
// It is for explaining policy only (what the mappings would say about such a
// token), NEVER for admission: it checks no signature, no exp, nbf or iat and
// no audience, so anyone can write claims that pass it. Nothing that issues
// credentials may call it. The returned Claims carry no times and no
// Audience.
//
// Errors are *Error, matching ErrInvalidToken (a claim is missing or
// malformed, the object is not one JSON object) or ErrUntrustedIssuer (iss has
// an unknown kind).
func NormalizeClaims(iss Issuer, raw []byte) (*Claims, error) {
	c, e := normalizeClaims(iss, raw)
	if e != nil {
		return nil, e
	}
	return c, nil
}

func normalizeClaims(iss Issuer, raw []byte) (*Claims, *Error) {
	if !iss.Kind.Valid() {
		return nil, fail(ReasonUntrustedIssuer, "issuer %s has unknown kind %s", quote(iss.Name), quote(string(iss.Kind)))
	}
	if len(raw) > MaxTokenSize {
		return nil, fail(ReasonTokenTooLarge, "claims are %d bytes, limit %d", len(raw), MaxTokenSize)
	}
	obj, err := parseObject(raw)
	if err != nil {
		return nil, fail(ReasonMalformedToken, "claims: %v", err)
	}
	c, e := normalize(iss.Kind, obj, raw)
	if e != nil {
		return nil, e
	}
	if c.Issuer != iss.URL {
		return nil, fail(ReasonInvalidClaim, "iss %s is not the URL of issuer %s (%s)", quote(c.Issuer), quote(iss.Name), quote(iss.URL))
	}
	c.IssuerName = iss.Name
	return c, nil
}
