package e2e

import (
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
