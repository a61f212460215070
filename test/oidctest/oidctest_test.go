package oidctest_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/oidc-bridge/oidc-bridge/test/oidctest"
)

func getJSON(t *testing.T, c *http.Client, url string) (int, map[string]any) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

func jwks(t *testing.T, iss *oidctest.Issuer) jose.JSONWebKeySet {
	t.Helper()
	resp, err := iss.Client().Get(iss.JWKSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	return set
}

func verify(t *testing.T, iss *oidctest.Issuer, tok string, alg jose.SignatureAlgorithm) (map[string]any, error) {
	t.Helper()
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{alg})
	if err != nil {
		return nil, err
	}
	set := jwks(t, iss)
	keys := set.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		t.Fatalf("%d keys for kid %q", len(keys), jws.Signatures[0].Header.KeyID)
	}
	payload, err := jws.Verify(keys[0].Key)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(payload, &m)
}

func TestServesDiscoveryAndJWKS(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		opts   []oidctest.Option
		scheme string
		path   string
	}{
		{"plain", nil, "http://127.0.0.1:", ""},
		{"tls", []oidctest.Option{oidctest.WithTLS()}, "https://127.0.0.1:", ""},
		{"prefix", []oidctest.Option{oidctest.WithPathPrefix("/_services/token")}, "http://127.0.0.1:", "/_services/token"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			iss := oidctest.New(t, tt.opts...)
			if !strings.HasPrefix(iss.URL(), tt.scheme) || !strings.HasSuffix(iss.URL(), tt.path) {
				t.Errorf("URL() = %q", iss.URL())
			}
			status, doc := getJSON(t, iss.Client(), iss.URL()+oidctest.DiscoveryPath)
			if status != 200 || doc["issuer"] != iss.URL() || doc["jwks_uri"] != iss.JWKSURL() {
				t.Errorf("discovery %d %v", status, doc)
			}
			if diff := cmp.Diff([]any{"RS256"}, doc["id_token_signing_alg_values_supported"]); diff != "" {
				t.Errorf("algs (-want +got):\n%s", diff)
			}
			set := jwks(t, iss)
			if len(set.Keys) != 1 || set.Keys[0].KeyID != iss.KID() || set.Keys[0].Use != "sig" || set.Keys[0].Algorithm != "RS256" || !set.Keys[0].IsPublic() {
				t.Errorf("JWKS %+v", set.Keys)
			}
			if iss.DiscoveryRequests() != 1 || iss.JWKSRequests() != 1 {
				t.Errorf("counters %d %d", iss.DiscoveryRequests(), iss.JWKSRequests())
			}
			if status, _ := getJSON(t, iss.Client(), strings.TrimSuffix(iss.URL(), tt.path)+"/nope"); status != 404 {
				t.Errorf("unknown path: %d", status)
			}
		})
	}
}

func TestMintGitHub(t *testing.T) {
	t.Parallel()
	now := time.Unix(1795712400, 0)
	iss := oidctest.New(t, oidctest.WithClock(func() time.Time { return now }))
	claims := iss.GitHubClaims(map[string]any{"environment": nil, "ref": "refs/tags/v1"})
	got, err := verify(t, iss, iss.Mint(t, claims), jose.RS256)
	if err != nil {
		t.Fatal(err)
	}
	if got["iss"] != iss.URL() || got["aud"] != oidctest.DefaultAudience || got["ref"] != "refs/tags/v1" || got["repository"] != "acme/web" {
		t.Errorf("claims %v", got)
	}
	if _, ok := got["environment"]; ok {
		t.Error("nil override did not remove environment")
	}
	if got["iat"] != float64(now.Unix()) || got["nbf"] != float64(now.Unix()-300) || got["exp"] != float64(now.Unix()+300) {
		t.Errorf("times %v %v %v", got["iat"], got["nbf"], got["exp"])
	}
	if iss.GitHubClaims(nil)["jti"] == iss.GitHubClaims(nil)["jti"] {
		t.Error("jti repeats")
	}
	gl := iss.GitLabClaims(nil)
	if gl["project_path"] != "platform/app" || gl["exp"] != now.Unix()+3600 || gl["runner_id"] != 1 || gl["iss"] != iss.URL() {
		t.Errorf("GitLab claims %v", gl)
	}
	hdr := strings.Split(iss.Mint(t, claims), ".")[0]
	b, _ := base64.RawURLEncoding.DecodeString(hdr)
	var h map[string]any
	_ = json.Unmarshal(b, &h)
	if diff := cmp.Diff(map[string]any{"alg": "RS256", "kid": iss.KID(), "typ": "JWT"}, h); diff != "" {
		t.Errorf("header (-want +got):\n%s", diff)
	}
}

func TestMintOptions(t *testing.T) {
	t.Parallel()
	iss := oidctest.New(t, oidctest.WithSigningAlgs("RS256", "ES256", "PS256"))
	claims := iss.GitHubClaims(nil)

	if _, err := verify(t, iss, iss.Mint(t, claims, oidctest.WithUnpublishedKey()), jose.RS256); err == nil {
		t.Error("unpublished key verified")
	}
	ec := iss.AddKey("ES256", nil)
	if _, err := verify(t, iss, iss.Mint(t, claims, oidctest.WithKey(ec)), jose.ES256); err != nil {
		t.Errorf("ES256: %v", err)
	}
	ps := iss.AddKey("PS256", nil)
	if _, err := verify(t, iss, iss.Mint(t, claims, oidctest.WithKey(ps)), jose.PS256); err != nil {
		t.Errorf("PS256: %v", err)
	}
	if tok := iss.Mint(t, claims, oidctest.WithAlg("none")); !strings.HasSuffix(tok, ".") || strings.Count(tok, ".") != 2 {
		t.Errorf("alg none token %q", tok)
	}
	// HS256 defaults to the public JWK as the secret.
	tok := iss.Mint(t, claims, oidctest.WithAlg("HS256"))
	parts := strings.Split(tok, ".")
	var secret []byte
	for _, k := range iss.JWKS()["keys"].([]map[string]any) {
		if k["kid"] == iss.KID() {
			secret, _ = json.Marshal(k)
		}
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(parts[0] + "." + parts[1]))
	if base64.RawURLEncoding.EncodeToString(m.Sum(nil)) != parts[2] {
		t.Error("HS256 not keyed with the public JWK")
	}
	tok = iss.Mint(t, nil, oidctest.WithRawPayload([]byte(`{"a":1,"a":2}`)), oidctest.WithHeader("typ", nil), oidctest.WithHeader("x", "y"), oidctest.WithKid("k"))
	parts = strings.Split(tok, ".")
	if p, _ := base64.RawURLEncoding.DecodeString(parts[1]); string(p) != `{"a":1,"a":2}` {
		t.Errorf("raw payload %q", p)
	}
	if h, _ := base64.RawURLEncoding.DecodeString(parts[0]); string(h) != `{"alg":"RS256","kid":"k","x":"y"}` {
		t.Errorf("header %s", h)
	}
	if tok := iss.Mint(t, claims, oidctest.WithSignature("abc")); !strings.HasSuffix(tok, ".abc") {
		t.Errorf("WithSignature: %q", tok)
	}
	enc := iss.AddKey("RS256", map[string]any{"use": "enc", "alg": nil})
	for _, k := range iss.JWKS()["keys"].([]map[string]any) {
		if k["kid"] == enc {
			if _, ok := k["alg"]; ok || k["use"] != "enc" {
				t.Errorf("attrs not applied: %v", k)
			}
		}
	}
}

func TestRotate(t *testing.T) {
	t.Parallel()
	iss := oidctest.New(t)
	k1 := iss.KID()
	old := iss.Mint(t, iss.GitHubClaims(nil))
	k2 := iss.Rotate(true)
	if k2 == k1 || iss.KID() != k2 {
		t.Fatalf("Rotate: %q -> %q (current %q)", k1, k2, iss.KID())
	}
	if len(jwks(t, iss).Keys) != 2 {
		t.Error("old key not kept")
	}
	if _, err := verify(t, iss, old, jose.RS256); err != nil {
		t.Errorf("old token with kept key: %v", err)
	}
	iss.Rotate(false)
	set := jwks(t, iss)
	if len(set.Key(k2)) != 0 || len(set.Key(iss.KID())) != 1 || len(set.Key(k1)) != 1 {
		t.Errorf("after Rotate(false): %d keys", len(set.Keys))
	}
	// A rotated-out key can still sign, for tests of stale tokens.
	if tok := iss.Mint(t, iss.GitHubClaims(nil), oidctest.WithKey(k2)); tok == "" {
		t.Error("no token")
	}
}

func TestFailuresAndOverrides(t *testing.T) {
	t.Parallel()
	iss := oidctest.New(t)
	c := iss.Client()
	iss.FailDiscovery(http.StatusServiceUnavailable)
	iss.FailJWKS(http.StatusInternalServerError)
	if s, _ := getJSON(t, c, iss.URL()+oidctest.DiscoveryPath); s != 503 {
		t.Errorf("discovery status %d", s)
	}
	if s, _ := getJSON(t, c, iss.JWKSURL()); s != 500 {
		t.Errorf("jwks status %d", s)
	}
	iss.FailDiscovery(0)
	iss.SetDiscovery(func(doc map[string]any) { doc["jwks_uri"] = "http://169.254.169.254/"; delete(doc, "issuer") })
	if _, doc := getJSON(t, c, iss.URL()+oidctest.DiscoveryPath); doc["jwks_uri"] != "http://169.254.169.254/" || doc["issuer"] != nil {
		t.Errorf("modified discovery %v", doc)
	}
	iss.Handle(oidctest.DiscoveryPath, http.RedirectHandler("http://example.invalid/", http.StatusFound))
	c2 := *c
	c2.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if resp, err := c2.Get(iss.URL() + oidctest.DiscoveryPath); err != nil || resp.StatusCode != http.StatusFound {
		t.Errorf("override: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	iss.Handle(oidctest.DiscoveryPath, nil)
	if s, doc := getJSON(t, c, iss.URL()+oidctest.DiscoveryPath); s != 200 || doc["jwks_uri"] != "http://169.254.169.254/" {
		t.Errorf("after removing override: %d %v", s, doc)
	}
	if iss.DiscoveryRequests() != 4 || iss.JWKSRequests() != 1 {
		t.Errorf("counters %d %d", iss.DiscoveryRequests(), iss.JWKSRequests())
	}
}
