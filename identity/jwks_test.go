package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/oidc-bridge/oidc-bridge/test/oidctest"
)

// staticEnv is newEnv with the issuer registered with its current key set as
// a static jwks: nothing may be fetched.
func staticEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t, envOpt{})
	e.setIssuer(t, func(is *Issuer) { is.JWKS = jwksOf(t, e.iss) })
	return e
}

func (e *env) setIssuer(t *testing.T, edit func(*Issuer)) {
	t.Helper()
	is, err := e.src.IssuerByURL(context.Background(), e.iss.URL())
	if err != nil {
		t.Fatal(err)
	}
	edit(&is)
	e.src.add(is)
}

func jwksOf(t *testing.T, iss *oidctest.Issuer) []byte {
	t.Helper()
	b, err := json.Marshal(iss.JWKS())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestStaticJWKSVerifies: an issuer with a static set verifies its tokens
// without fetching discovery or a JWKS, refuses a token of a key outside the
// set, and a replaced set (an admin's rotation) takes effect at the next
// token, without a new Verifier.
func TestStaticJWKSVerifies(t *testing.T) {
	t.Parallel()
	e := staticEnv(t)
	ctx := context.Background()
	oldKID := e.iss.KID()
	oldTok := e.iss.Mint(t, e.iss.GitHubClaims(nil))
	if _, err := e.v.Verify(ctx, oldTok); err != nil {
		t.Fatalf("a token of the static set: %v", err)
	}
	checkErr(t, errOf(e.v.Verify(ctx, e.iss.Mint(t, e.iss.GitHubClaims(nil), oidctest.WithUnpublishedKey()))), ErrInvalidToken, ReasonBadSignature)

	// The issuer rotates; until the admin registers the new set, its
	// tokens are refused, and the old key's still pass.
	newKID := e.iss.Rotate(false)
	newTok := e.iss.Mint(t, e.iss.GitHubClaims(nil))
	checkErr(t, errOf(e.v.Verify(ctx, newTok)), ErrInvalidToken, ReasonUnknownKey)
	if _, err := e.v.Verify(ctx, e.iss.Mint(t, e.iss.GitHubClaims(nil), oidctest.WithKey(oldKID))); err != nil {
		t.Fatalf("the old key before the update: %v", err)
	}

	// The admin replaces the set: the new key verifies, the old one no more.
	e.setIssuer(t, func(is *Issuer) { is.JWKS = jwksOf(t, e.iss) })
	if _, err := e.v.Verify(ctx, e.iss.Mint(t, e.iss.GitHubClaims(nil))); err != nil {
		t.Fatalf("a token of the new key %s after the update: %v", newKID, err)
	}
	checkErr(t, errOf(e.v.Verify(ctx, e.iss.Mint(t, e.iss.GitHubClaims(nil), oidctest.WithKey(oldKID)))), ErrInvalidToken, ReasonUnknownKey)

	if d, j := e.iss.DiscoveryRequests(), e.iss.JWKSRequests(); d != 0 || j != 0 {
		t.Errorf("a static set fetched discovery %d and JWKS %d times", d, j)
	}

	// Back to discovery: the static keys are dropped, the served set used.
	e.setIssuer(t, func(is *Issuer) { is.JWKS = nil })
	if _, err := e.v.Verify(ctx, e.iss.Mint(t, e.iss.GitHubClaims(nil))); err != nil || e.iss.DiscoveryRequests() != 1 {
		t.Fatalf("after the static set was removed: %v (discovery requests %d)", err, e.iss.DiscoveryRequests())
	}
}

// TestJWKSURL: an issuer with a jwks_url fetches its keys there and never
// its discovery document; iss is still the issuer URL.
func TestJWKSURL(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpt{})
	e.iss.FailDiscovery(404)
	ctx := context.Background()
	checkErr(t, errOf(e.v.Verify(ctx, e.iss.Mint(t, e.iss.GitHubClaims(nil)))), ErrUntrustedIssuer, ReasonDiscoveryFailed)
	e.setIssuer(t, func(is *Issuer) { is.JWKSURL = e.iss.JWKSURL() })
	if _, err := e.v.Verify(ctx, e.iss.Mint(t, e.iss.GitHubClaims(nil))); err != nil {
		t.Fatalf("with a jwks_url: %v", err)
	}
	if e.iss.JWKSRequests() != 1 {
		t.Errorf("JWKS requests %d, want 1", e.iss.JWKSRequests())
	}
	// An insecure jwks_url is refused as an insecure issuer URL would be.
	e.setIssuer(t, func(is *Issuer) { is.JWKSURL = "http://keys.example.com/jwks" })
	checkErr(t, errOf(e.v.Verify(ctx, e.iss.Mint(t, e.iss.GitHubClaims(nil)))), ErrUnavailable, ReasonJWKSUnavailable)
}

func errOf(_ *Claims, err error) error { return err }

func TestParseStaticJWKS(t *testing.T) {
	t.Parallel()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	smallRSA, err := rsa.GenerateKey(rand.Reader, 1024) //nolint:gosec // a key too small, to be refused
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwk := func(k any, kid, alg string, extra map[string]any) map[string]any {
		b, err := json.Marshal(jose.JSONWebKey{Key: k, KeyID: kid, Algorithm: alg, Use: "sig"})
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		for n, v := range extra {
			if v == nil {
				delete(m, n)
			} else {
				m[n] = v
			}
		}
		return m
	}
	set := func(keys ...map[string]any) []byte {
		b, _ := json.Marshal(map[string]any{"keys": keys})
		return b
	}
	pubRSA := jwk(rsaKey.Public(), "r1", "RS256", nil)
	pubEC := jwk(ecKey.Public(), "e1", "ES256", nil)
	many := make([]map[string]any, MaxStaticJWKSKeys+1)
	for i := range many {
		many[i] = pubEC
	}
	tests := []struct {
		name      string
		in        []byte
		want      []KeyInfo
		wantField string
	}{
		{"rsa and ec", set(pubRSA, pubEC), []KeyInfo{{"r1", "RSA", "RS256"}, {"e1", "EC", "ES256"}}, ""},
		{"no alg, no kid", set(jwk(rsaKey.Public(), "", "", nil)), []KeyInfo{{"", "RSA", ""}}, ""},
		{"rsa private", set(pubRSA, jwk(rsaKey, "r2", "RS256", nil)), nil, "keys[1].d"},
		{"ec private", set(jwk(ecKey, "e2", "ES256", nil)), nil, "keys[0].d"},
		{"private member alone", set(jwk(rsaKey.Public(), "r3", "RS256", map[string]any{"p": "AQAB"})), nil, "keys[0].p"},
		{"symmetric", set(map[string]any{"kty": "oct", "k": "c2VjcmV0", "kid": "h"}), nil, "keys[0].k"},
		{"symmetric without k", set(map[string]any{"kty": "oct", "kid": "h"}), nil, "keys[0].kty"},
		{"okp", set(map[string]any{"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}), nil, "keys[0].kty"},
		{"small rsa", set(jwk(smallRSA.Public(), "s", "RS256", nil)), nil, "keys[0]"},
		{"use enc", set(jwk(rsaKey.Public(), "r", "RS256", map[string]any{"use": "enc"})), nil, "keys[0]"},
		{"alg of another type", set(jwk(ecKey.Public(), "e", "RS256", nil)), nil, "keys[0].alg"},
		{"alg hmac", set(jwk(rsaKey.Public(), "r", "HS256", nil)), nil, "keys[0]"},
		{"no keys", []byte(`{"keys": []}`), nil, "keys"},
		{"keys null", []byte(`{"keys": null}`), nil, "keys"},
		{"keys missing", []byte(`{}`), nil, "keys"},
		{"too many keys", set(many...), nil, "keys"},
		{"not an object", []byte(`[1]`), nil, ""},
		{"duplicate member", []byte(`{"keys": [], "keys": []}`), nil, ""},
		{"too large", []byte(`{"keys": [], "x": "` + strings.Repeat("a", MaxStaticJWKSSize) + `"}`), nil, ""},
	}
	for _, tt := range tests {
		got, err := ParseStaticJWKS(tt.in)
		if tt.want != nil {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			} else if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tt.name, diff)
			}
			continue
		}
		var je *JWKSError
		if !errors.As(err, &je) {
			t.Errorf("%s: error %v, want a *JWKSError", tt.name, err)
			continue
		}
		if je.Field != tt.wantField {
			t.Errorf("%s: field %q, want %q (%s)", tt.name, je.Field, tt.wantField, je.Message)
		}
		// A refusal never echoes key material.
		if strings.Contains(je.Error(), rsaKey.D.String()) {
			t.Errorf("%s: message carries the private key", tt.name)
		}
	}
}
