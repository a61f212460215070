package bridge_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/test/oidctest"
)

// TestDuplicateAndCaseVariantKeys: every JSON body the service reads
// refuses a key given twice (at any depth) and a key whose case differs
// from its field's, with 400 invalid_request naming the key; nothing is
// issued, created or changed. encoding/json alone keeps the last duplicate
// and matches names case-insensitively.
func TestDuplicateAndCaseVariantKeys(t *testing.T) {
	x := newExchangeEnv(t)
	issuer := fmt.Sprintf(`"url": %q, "audiences": [%q], "kind": "github"`, x.gh.URL(), oidctest.DefaultAudience)
	mappingBody := func(conditions, extra string) string {
		return fmt.Sprintf(`{"name": "dup", "issuer": "github", "conditions": {%s},
			"provider": "aws", "target": {"role_arn": "arn:aws:iam::123456789012:role/dup", "region": "eu-west-1"}%s}`, conditions, extra)
	}
	jwtMapping := func(target string) string {
		return fmt.Sprintf(`{"name": "dup", "issuer": "github", "conditions": {"repository": "acme/web"}, "provider": "jwt", "target": %s}`, target)
	}
	for _, tt := range []struct {
		name, method, path, body, field string
	}{
		// POST /v1/exchange
		{"exchange duplicate", "POST", "/v1/exchange", `{"mapping": "tags", "mapping": "web"}`, "mapping"},
		{"exchange case variant", "POST", "/v1/exchange", `{"MAPPING": "web"}`, "MAPPING"},
		{"exchange case variant duration", "POST", "/v1/exchange", `{"Duration_Seconds": 900}`, "Duration_Seconds"},
		// issuers
		{"issuer duplicate", "POST", "/v1/admin/issuers", `{"name": "dup", ` + issuer + `, "enabled": true, "enabled": false}`, "enabled"},
		{"issuer case variant", "POST", "/v1/admin/issuers", `{"Name": "dup", ` + issuer + `}`, "Name"},
		{"issuer update duplicate", "PUT", "/v1/admin/issuers/github", `{` + issuer + `, "kind": "generic"}`, "kind"},
		// mappings, nested objects included
		{"mapping duplicate", "POST", "/v1/admin/mappings", mappingBody(`"repository": "acme/web"`, `, "provider": "jwt"`), "provider"},
		{"mapping case variant", "POST", "/v1/admin/mappings", mappingBody(`"repository": "acme/web"`, `, "Max_Duration_Seconds": 900`), "Max_Duration_Seconds"},
		{"conditions duplicate", "POST", "/v1/admin/mappings", mappingBody(`"repository": "acme/web", "repository": "acme/*"`, ""), "conditions.repository"},
		{"conditions case variant", "POST", "/v1/admin/mappings", mappingBody(`"Repository": "acme/web"`, ""), "conditions.Repository"},
		{"claims duplicate", "POST", "/v1/admin/mappings", mappingBody(`"repository": "acme/web", "claims": {"actor": "a", "actor": "b"}`, ""), "conditions.claims.actor"},
		{"quota duplicate", "POST", "/v1/admin/mappings", mappingBody(`"repository": "acme/web"`, `, "quota": {"per_hour": 1, "per_hour": 1000}`), "quota.per_hour"},
		{"quota case variant", "POST", "/v1/admin/mappings", mappingBody(`"repository": "acme/web"`, `, "quota": {"Per_Hour": 1}`), "quota.Per_Hour"},
		{"target duplicate", "POST", "/v1/admin/mappings", `{"name": "dup", "issuer": "github", "conditions": {"repository": "acme/web"}, "provider": "aws",
			"target": {"role_arn": "arn:aws:iam::123456789012:role/dup", "role_arn": "arn:aws:iam::222222222222:role/admin", "region": "eu-west-1"}}`, "target.role_arn"},
		{"jwt target claims duplicate", "POST", "/v1/admin/mappings", jwtMapping(`{"audience": "https://app.example.com", "claims": {"team": "a", "team": "b"}}`), "target.claims.team"},
		{"mapping update duplicate", "PUT", "/v1/admin/mappings/web", mappingBody(`"repository": "acme/web"`, `, "enabled": true, "enabled": false`), "enabled"},
		// explain
		{"explain duplicate", "POST", "/v1/admin/explain", fmt.Sprintf(`{"token": %q, "mapping": "tags", "mapping": "web"}`, x.token(nil)), "mapping"},
		{"explain case variant", "POST", "/v1/admin/explain", fmt.Sprintf(`{"Token": %q}`, x.token(nil)), "Token"},
		{"explain nested claims duplicate", "POST", "/v1/admin/explain", `{"issuer": "github", "claims": {"x": {"a": 1, "a": 2}}}`, "claims.x.a"},
		// revoke
		{"revoke duplicate", "POST", "/v1/admin/issuances/revoke", `{"repository": "acme/web", "reason": "leak", "repository": "acme/other"}`, "repository"},
		{"revoke case variant", "POST", "/v1/admin/issuances/revoke", `{"Run_ID": "1", "reason": "leak"}`, "Run_ID"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			x := &exchangeEnv{env: x.env.in(t), gh: x.gh}
			hdr := []string{}
			if tt.path == "/v1/exchange" {
				hdr = append(hdr, "Authorization", "Bearer "+x.token(nil))
			}
			before := x.rows()
			e := x.wantError(x.do(tt.method, tt.path, tt.body, hdr...), 400, api.CodeInvalidRequest, tt.field)
			if !strings.Contains(e.Message, "duplicate key") && !strings.Contains(e.Message, "unknown field") {
				t.Errorf("message %q", e.Message)
			}
			if after := x.rows(); tt.path != "/v1/exchange" && len(after) != len(before) {
				t.Errorf("ledger changed: %v", after[len(before):])
			}
		})
	}
	if n := sts.CallCount(); n != 0 {
		t.Errorf("STS called %d times", n)
	}
	// Nothing was created or changed.
	x.wantError(x.do("GET", "/v1/admin/issuers/dup", ""), 404, api.CodeNotFound, "")
	x.wantError(x.do("GET", "/v1/admin/mappings/dup", ""), 404, api.CodeNotFound, "")
	if b := string(x.must(200, "GET", "/v1/admin/issuers/github", "")); !strings.Contains(b, `"kind":"github"`) {
		t.Errorf("issuer changed: %s", b)
	}
	if b := string(x.must(200, "GET", "/v1/admin/mappings/web", "")); !strings.Contains(b, `"enabled":true`) {
		t.Errorf("mapping changed: %s", b)
	}
	// Claim names are case-sensitive: "Foo" and "foo" are two claims, and
	// so are two keys of a jwt target's claims.
	x.must(201, "POST", "/v1/admin/mappings", mappingBody(`"repository": "acme/web", "claims": {"Foo": "x", "foo": "y"}`, ""))
	b := string(x.must(200, "GET", "/v1/admin/mappings/dup", ""))
	if !strings.Contains(b, `"Foo":"x"`) || !strings.Contains(b, `"foo":"y"`) {
		t.Errorf("claims read back %s", b)
	}
	x.must(201, "POST", "/v1/admin/mappings", strings.Replace(jwtMapping(`{"audience": "https://app.example.com", "claims": {"Team": "a", "team": "b"}}`), `"dup"`, `"dup-jwt"`, 1))
	// The exact spelling still works.
	if r := x.exchange(x.token(nil), `{"mapping": "web"}`); r.status != 200 {
		t.Fatalf("exchange: %d %s", r.status, r.body)
	}
}
