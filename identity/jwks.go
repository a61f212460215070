package identity

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Issuers without reachable discovery (private Kubernetes API servers,
// air-gapped instances) carry their keys in the registry: a static JWK Set
// (Issuer.JWKS), or a JWKS URL (Issuer.JWKSURL) that replaces the discovery
// document's jwks_uri. The issuer URL stays the iss its tokens must carry.
// Rotation of a static set is an admin update of the issuer: Verify notices
// the new set at its next lookup of the issuer and drops the old keys.

// Bounds of a static JWK Set.
const (
	MaxStaticJWKSSize = 64 << 10
	MaxStaticJWKSKeys = 32
)

// Key source names, as the explainer shows them.
const (
	KeySourceDiscovery = "discovery"
	KeySourceJWKSURL   = "jwks_url"
	KeySourceJWKS      = "jwks"
)

// KeySource says where the issuer's keys come from: KeySourceJWKS,
// KeySourceJWKSURL or KeySourceDiscovery.
func (is Issuer) KeySource() string {
	switch {
	case len(is.JWKS) > 0:
		return KeySourceJWKS
	case is.JWKSURL != "":
		return KeySourceJWKSURL
	}
	return KeySourceDiscovery
}

// KeyInfo is what may be shown of a key of a static set: its kid, kty and
// alg, never its material.
type KeyInfo struct {
	KID string `json:"kid"`
	KTY string `json:"kty"`
	Alg string `json:"alg,omitempty"`
}

// JWKSError says which member of a static JWK Set is refused and why.
// Field is relative to the set: "keys", "keys[2]", "keys[2].d" or "" for the
// set as a whole.
type JWKSError struct {
	Field   string
	Message string
}

func (e *JWKSError) Error() string {
	if e.Field == "" {
		return "identity: jwks: " + e.Message
	}
	return "identity: jwks: " + e.Field + ": " + e.Message
}

// privateMembers are the JWK members of private or symmetric key material
// (RFC 7518 §6.2.2, §6.3.2, §6.4): a set that carries one is refused whole,
// since it was not meant to be published.
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// ParseStaticJWKS checks a static JWK Set as an admin registers it: one JSON
// object of at most MaxStaticJWKSSize bytes whose "keys" holds 1 to
// MaxStaticJWKSKeys public signature keys, each RSA of 2048 bits or more or
// EC on P-256, P-384 or P-521, with no private or symmetric member, a use
// (if any) of sig, key_ops (if any) with verify, an alg (if any) that fits
// the key. Unlike a fetched JWKS, whose unusable keys are skipped (RFC 7517
// §5), every key of a static set must be usable: an admin's mistake is
// refused, not ignored. It returns what may be shown of each key; errors are
// *JWKSError.
func ParseStaticJWKS(b []byte) ([]KeyInfo, error) {
	_, info, err := parseStaticJWKS(b)
	if err != nil {
		return nil, err
	}
	return info, nil
}

func parseStaticJWKS(b []byte) (map[string][]jose.JSONWebKey, []KeyInfo, *JWKSError) {
	if len(b) > MaxStaticJWKSSize {
		return nil, nil, &JWKSError{Message: fmt.Sprintf("is %d bytes, at most %d", len(b), MaxStaticJWKSSize)}
	}
	obj, err := parseObject(b)
	if err != nil {
		return nil, nil, &JWKSError{Message: "must be a JWK Set, a JSON object with keys: " + err.Error()}
	}
	rawKeys, ok := obj["keys"]
	var list []json.RawMessage
	if !ok || json.Unmarshal(rawKeys, &list) != nil || bytes.HasPrefix(bytes.TrimSpace(rawKeys), []byte("null")) {
		return nil, nil, &JWKSError{Field: "keys", Message: "must be a list of JWKs"}
	}
	if len(list) == 0 || len(list) > MaxStaticJWKSKeys {
		return nil, nil, &JWKSError{Field: "keys", Message: fmt.Sprintf("must hold 1 to %d keys", MaxStaticJWKSKeys)}
	}
	keys := make(map[string][]jose.JSONWebKey)
	info := make([]KeyInfo, 0, len(list))
	for i, raw := range list {
		field := fmt.Sprintf("keys[%d]", i)
		members, err := parseObject(raw)
		if err != nil {
			return nil, nil, &JWKSError{Field: field, Message: "must be a JSON object: " + err.Error()}
		}
		for _, m := range privateMembers {
			if _, ok := members[m]; ok {
				return nil, nil, &JWKSError{Field: field + "." + m, Message: "is private or symmetric key material: register public keys only"}
			}
		}
		var head struct {
			KTY    string   `json:"kty"`
			KeyOps []string `json:"key_ops"`
		}
		_ = json.Unmarshal(raw, &head)
		if head.KTY != "RSA" && head.KTY != "EC" {
			return nil, nil, &JWKSError{Field: field + ".kty", Message: "must be RSA or EC (public signature keys)"}
		}
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			return nil, nil, &JWKSError{Field: field, Message: "is not a valid JWK: " + err.Error()}
		}
		if !k.IsPublic() || !keyUsable(k, head.KeyOps) {
			return nil, nil, &JWKSError{Field: field, Message: "is not a usable signature key: RSA of 2048 bits or more or EC on P-256, P-384 or P-521; use sig; key_ops with verify; an RS*, PS* or ES* alg"}
		}
		if k.Algorithm != "" && !keyFits(k.Algorithm, k) {
			return nil, nil, &JWKSError{Field: field + ".alg", Message: fmt.Sprintf("%s does not fit a %s key", quote(k.Algorithm), head.KTY)}
		}
		keys[k.KeyID] = append(keys[k.KeyID], k)
		info = append(info, KeyInfo{KID: k.KeyID, KTY: head.KTY, Alg: k.Algorithm})
	}
	return keys, info, nil
}

// allAlgs lists every algorithm Verify accepts, for issuers without a
// discovery document to name theirs: each key still verifies only the
// algorithms that fit it (keyFits).
func allAlgs() []string {
	out := make([]string, 0, len(asymmetricAlgs))
	for a := range asymmetricAlgs {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// useSource makes s cache the keys of is's key source (discovery, a
// jwks_url, a static set), dropping everything cached from another source:
// a replaced static set, a new jwks_url, or a switch to or from discovery
// takes effect at once. It runs on every verification, so it compares
// (the set's bytes, the URL) rather than hashing or building a name.
func (s *issuerState) useSource(is Issuer) {
	kind, set, url := is.KeySource(), []byte(nil), ""
	switch kind {
	case KeySourceJWKS:
		set = is.JWKS
	case KeySourceJWKSURL:
		url = is.JWKSURL
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.source == kind && s.sourceURL == url && bytes.Equal(s.sourceSet, set) {
		return
	}
	s.source, s.sourceURL, s.sourceSet = kind, url, bytes.Clone(set)
	s.gen++
	s.disc, s.discErr, s.discErrAt = nil, nil, time.Time{}
	s.keys, s.keysFetched, s.lastAttempt, s.jwksErr, s.fetching = nil, time.Time{}, time.Time{}, nil, false
	s.static = false
}

// keySource returns what Verify checks a token of issuer is against: the
// discovery document, or for an issuer with a static set or a jwks_url, one
// made from them.
func (v *Verifier) keySource(ctx context.Context, s *issuerState, is Issuer) (*discovery, *Error) {
	s.useSource(is)
	switch is.KeySource() {
	case KeySourceJWKS:
		s.mu.Lock()
		defer s.mu.Unlock()
		if !s.static {
			keys, _, err := parseStaticJWKS(is.JWKS)
			if err != nil {
				// Validated when written: only a row written around the
				// admin API gets here.
				return nil, &Error{Reason: ReasonJWKSUnavailable, Err: err}
			}
			s.keys, s.static = keys, true
		}
		return &discovery{algs: allAlgs()}, nil
	case KeySourceJWKSURL:
		u, err := parseIssuerURL(is.JWKSURL, v.cfg.AllowInsecureIssuers)
		if err != nil {
			return nil, &Error{Reason: ReasonJWKSUnavailable, Err: fmt.Errorf("identity: jwks_url of %s: %w", quote(is.Name), err)}
		}
		return &discovery{jwksURI: u.String(), algs: allAlgs()}, nil
	}
	return v.discovery(ctx, s)
}
