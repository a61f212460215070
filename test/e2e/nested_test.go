package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/test/oidctest"
	"github.com/oidc-bridge/oidc-bridge/test/pgtest"
)

// k8sClaims is a Kubernetes service account token's payload (its nested
// kubernetes.io claim) with the namespace ns.
func k8sClaims(iss *oidctest.Issuer, ns string) map[string]any {
	c := iss.GitHubClaims(nil)
	out := map[string]any{}
	for _, k := range []string{"iss", "aud", "iat", "nbf", "exp", "jti"} {
		out[k] = c[k]
	}
	out["sub"] = "system:serviceaccount:" + ns + ":deployer"
	out["kubernetes.io"] = map[string]any{
		"namespace":      ns,
		"serviceaccount": map[string]any{"name": "deployer", "uid": "c2f5e9a0-1b2c-4d3e-8f90-123456789abc"},
		"pod":            map[string]any{"name": "deployer-7d9f", "uid": "0b1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f"},
	}
	return out
}

// TestNestedClaimsExchange: a mapping whose claims conditions are JSON
// Pointers into a really signed token's nested claims admits the token with
// the nested values it names and refuses one whose nested namespace
// differs; the explainer shows the pointer and the value it read.
func TestNestedClaimsExchange(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDatabase(t)
	env, publicURL := issuerEnv(t, dbURL)
	k8s := oidctest.New(t, oidctest.WithPathPrefix("/k8s"))
	s := startServer(t, append(env, "BRIDGE_LISTEN_ADDR="+strings.TrimPrefix(publicURL, "http://")))
	s.must(201, "POST", "/v1/admin/issuers", issuerBody("cluster", k8s.URL(), "generic"))
	s.must(201, "POST", "/v1/admin/mappings", `{"name": "payments-deploy", "issuer": "cluster",
		"conditions": {"claims": {"/kubernetes.io/namespace": "payments", "/kubernetes.io/serviceaccount/name": "deployer"}},
		"provider": "jwt", "max_duration_seconds": 900, "target": {"audience": "https://deploy.internal.example"}}`)

	r := exchange(s, k8s.Mint(t, k8sClaims(k8s, "payments")), "")
	if r.status != 200 {
		t.Fatalf("exchange of a payments token: %d %s", r.status, r.body)
	}
	var resp api.ExchangeResponse
	r.json(t, &resp)
	if resp.Mapping != "payments-deploy" {
		t.Errorf("mapping %q", resp.Mapping)
	}

	other := k8s.Mint(t, k8sClaims(k8s, "billing"))
	r = exchange(s, other, "")
	if r.status != 403 || !strings.Contains(string(r.body), api.CodeNoMatchingMapping) {
		t.Fatalf("exchange of a billing token: %d %s, want 403 %s", r.status, r.body, api.CodeNoMatchingMapping)
	}

	r = s.must(200, "POST", "/v1/admin/explain", `{"token": "`+other+`"}`)
	var ex api.ExplainResponse
	r.json(t, &ex)
	if len(ex.Mappings) != 1 {
		t.Fatalf("explain: %s", r.body)
	}
	var found bool
	for _, c := range ex.Mappings[0].Conditions {
		if c.Condition == "claims./kubernetes.io/namespace" {
			found = true
			if c.Value != "billing" || c.Matched || !c.Present {
				t.Errorf("explained namespace condition: %+v", c)
			}
		}
	}
	if !found || ex.Mappings[0].Admitted {
		t.Errorf("explain: %s", r.body)
	}
}

// TestStaticJWKSExchange: an issuer with no discovery at all (its URL
// answers nothing) registered with a static key set: its really signed
// token is exchanged; the admin rotates the set by updating the issuer,
// after which the old key's token is refused and the new key's passes.
func TestStaticJWKSExchange(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDatabase(t)
	env, publicURL := issuerEnv(t, dbURL)
	keys := oidctest.New(t) // signs; its own URL is never registered
	issuerURL := "http://" + freeAddr(t) + "/k8s"
	s := startServer(t, append(env, "BRIDGE_LISTEN_ADDR="+strings.TrimPrefix(publicURL, "http://")))
	register := func(method, path string) {
		t.Helper()
		set, err := json.Marshal(keys.JWKS())
		if err != nil {
			t.Fatal(err)
		}
		s.must(map[string]int{"POST": 201, "PUT": 200}[method], method, path, fmt.Sprintf(
			`{"name": "cluster", "url": %q, "audiences": [%q], "kind": "generic", "jwks": %s}`, issuerURL, oidctest.DefaultAudience, set))
	}
	register("POST", "/v1/admin/issuers")
	s.must(201, "POST", "/v1/admin/mappings", `{"name": "payments-deploy", "issuer": "cluster",
		"conditions": {"claims": {"/kubernetes.io/namespace": "payments"}},
		"provider": "jwt", "max_duration_seconds": 900, "target": {"audience": "https://deploy.internal.example"}}`)
	mint := func(opts ...oidctest.MintOption) string {
		c := k8sClaims(keys, "payments")
		c["iss"] = issuerURL
		return keys.Mint(t, c, opts...)
	}

	oldKID := keys.KID()
	if r := exchange(s, mint(), ""); r.status != 200 {
		t.Fatalf("exchange with the static set: %d %s", r.status, r.body)
	}
	newKID := keys.Rotate(false)
	register("PUT", "/v1/admin/issuers/cluster")
	if r := exchange(s, mint(oidctest.WithKey(oldKID)), ""); r.status != 401 || !strings.Contains(string(r.body), api.CodeInvalidToken) {
		t.Fatalf("the old key's token after rotation: %d %s, want 401 %s", r.status, r.body, api.CodeInvalidToken)
	}
	if r := exchange(s, mint(oidctest.WithKey(newKID)), ""); r.status != 200 {
		t.Fatalf("the new key's token after rotation: %d %s", r.status, r.body)
	}
	if d, j := keys.DiscoveryRequests(), keys.JWKSRequests(); d != 0 || j != 0 {
		t.Errorf("discovery %d and JWKS %d requests, want none", d, j)
	}
}
