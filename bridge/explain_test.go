package bridge_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/oidc-bridge/oidc-bridge/bridge"
	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/identity"
	"github.com/oidc-bridge/oidc-bridge/internal/admintoken"
	"github.com/oidc-bridge/oidc-bridge/test/logtest"
	"github.com/oidc-bridge/oidc-bridge/test/oidctest"
)

// newExplainEnv is the exchange env ("web": acme/web on main; "tags":
// acme/web tags) with mappings that each refuse the default GitHub token for
// one reason, and a log the test can read.
func newExplainEnv(t *testing.T) (*exchangeEnv, *logtest.Buffer) {
	t.Helper()
	logs := &logtest.Buffer{}
	x := newExchangeEnv(t, func(o *bridge.Options) {
		o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	x.mapping("deploy", `"repository": "acme/web", "repository_id": "1339936803", "ref": "refs/heads/main", "environment": "production"`, "")
	x.mapping("pinned", `"repository": "acme/web", "repository_id": "42"`, "")
	x.mapping("off", `"repository": "acme/web"`, `"enabled": false`)
	x.mapping("shadow", `"repository": "acme/web"`, `"mode": "audit"`)
	return x, logs
}

func (x *exchangeEnv) explain(body string) response {
	x.t.Helper()
	return x.do("POST", "/v1/admin/explain", body)
}

func (x *exchangeEnv) mustExplain(body string) api.ExplainResponse {
	x.t.Helper()
	r := x.explain(body)
	if r.status != 200 {
		x.t.Fatalf("explain: %d %s", r.status, r.body)
	}
	var res api.ExplainResponse
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&res); err != nil {
		x.t.Fatalf("explain answer %s: %v", r.body, err)
	}
	return res
}

func tokenBody(token string, extra string) string {
	if extra != "" {
		extra = ", " + extra
	}
	return fmt.Sprintf(`{"token": %q%s}`, token, extra)
}

func explanation(t *testing.T, res api.ExplainResponse, name string) api.Explanation {
	t.Helper()
	for _, e := range res.Mappings {
		if e.Mapping == name {
			return e
		}
	}
	t.Fatalf("no explanation of mapping %q in %+v", name, res.Mappings)
	return api.Explanation{}
}

func condition(t *testing.T, e api.Explanation, name string) api.ConditionResult {
	t.Helper()
	for _, r := range e.Conditions {
		if r.Condition == name {
			return r
		}
	}
	t.Fatalf("mapping %s has no condition %s: %+v", e.Mapping, name, e.Conditions)
	return api.ConditionResult{}
}

// TestExplainNamesFailingCondition is the acceptance test: for each
// refusal the explainer names the condition and the value seen.
func TestExplainNamesFailingCondition(t *testing.T) {
	x, _ := newExplainEnv(t)
	before := len(x.rows())
	tests := []struct {
		name      string
		over      map[string]any
		mapping   string
		reason    string
		condition string // the failed condition, "" for a safety rule
		value     string
		present   bool
	}{
		{"wrong repository", map[string]any{"repository": "acme/api"}, "web", "repository", "repository", "acme/api", true},
		{"wrong ref", map[string]any{"ref": "refs/heads/feat/x"}, "web", "ref", "ref", "refs/heads/feat/x", true},
		{"missing environment", map[string]any{"environment": nil}, "deploy", "environment", "environment", "", false},
		{"repository_id pin mismatch", nil, "pinned", "repository_id", "repository_id", "1339936803", true},
		{"disabled mapping", nil, "off", "disabled", "", "", false},
		{"pull_request_target", map[string]any{"event_name": "pull_request_target"}, "web", "event_requires_opt_in", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := &exchangeEnv{env: x.env.in(t), gh: x.gh}
			res := x.mustExplain(tokenBody(x.token(tt.over), ""))
			if !res.Verified || res.Issuer != "github" {
				t.Errorf("verified %v, issuer %q", res.Verified, res.Issuer)
			}
			e := explanation(t, res, tt.mapping)
			if e.Admitted || e.Reason != tt.reason || e.Detail == "" {
				t.Fatalf("mapping %s: admitted %v, reason %q (want %q), detail %q", tt.mapping, e.Admitted, e.Reason, tt.reason, e.Detail)
			}
			if tt.condition == "" {
				for _, r := range e.Conditions {
					if !r.Matched {
						t.Errorf("condition %s failed, but the refusal is %s", r.Condition, e.Reason)
					}
				}
				return
			}
			r := condition(t, e, tt.condition)
			if r.Matched || r.Value != tt.value || r.Present != tt.present {
				t.Errorf("condition %+v, want unmatched with value %q (present %v)", r, tt.value, tt.present)
			}
			if tt.value != "" && !strings.Contains(e.Detail, tt.value) {
				t.Errorf("detail %q does not show the value %q", e.Detail, tt.value)
			}
		})
	}
	if rows := x.rows(); len(rows) != before {
		t.Errorf("explain wrote ledger rows: %v", rows[before:])
	}
	if n := sts.CallCount(); n != 0 {
		t.Errorf("explain called STS %d times", n)
	}
}

func TestExplainDecision(t *testing.T) {
	x, logs := newExplainEnv(t)
	token := x.token(nil)
	before := len(x.rows())

	res := x.mustExplain(tokenBody(token, ""))
	var names []string
	for _, e := range res.Mappings {
		names = append(names, e.Mapping)
	}
	// Every mapping of the issuer, by name: disabled and audit-mode ones too.
	if diff := cmp.Diff([]string{"deploy", "off", "pinned", "shadow", "tags", "web"}, names); diff != "" {
		t.Errorf("mappings (-want +got):\n%s", diff)
	}
	want := api.ExplainDecision{Outcome: "ambiguous_mapping", Candidates: []string{"deploy", "web"}}
	if diff := cmp.Diff(want, res.Decision, ignoreMessage); diff != "" {
		t.Errorf("decision (-want +got):\n%s", diff)
	}
	if e := explanation(t, res, "shadow"); !e.Admitted || e.Mode != "audit" {
		t.Errorf("audit-mode mapping: %+v", e)
	}
	if res.Claims.Repository != "acme/web" || res.Claims.RepositoryID != "1339936803" || res.Claims.Ref != "refs/heads/main" ||
		res.Claims.Actor != "octocat" || res.Claims.RunID != "12345678901" || res.Claims.ExpiresAt.IsZero() {
		t.Errorf("claims summary %+v", res.Claims)
	}

	for _, tt := range []struct {
		name  string
		extra string
		over  map[string]any
		want  api.ExplainDecision
		only  string // the one mapping explained, if any
	}{
		{"named", `"mapping": "web"`, nil, api.ExplainDecision{Outcome: "would_issue", Mapping: "web"}, "web"},
		{"named, refuses", `"mapping": "tags"`, nil, api.ExplainDecision{Outcome: "no_matching_mapping"}, "tags"},
		{"named, disabled", `"mapping": "off"`, nil, api.ExplainDecision{Outcome: "no_matching_mapping"}, "off"},
		{"named, audit mode", `"mapping": "shadow"`, nil, api.ExplainDecision{Outcome: "no_matching_mapping"}, "shadow"},
		{"named, other provider", `"mapping": "web", "provider": "gcp"`, nil, api.ExplainDecision{Outcome: "no_matching_mapping"}, "web"},
		{"single match", "", map[string]any{"environment": nil}, api.ExplainDecision{Outcome: "would_issue", Mapping: "web"}, ""},
		{"no match", "", map[string]any{"repository": "acme/api"}, api.ExplainDecision{Outcome: "no_matching_mapping"}, ""},
		{"provider filter", `"provider": "gcp"`, nil, api.ExplainDecision{Outcome: "no_matching_mapping"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			x := &exchangeEnv{env: x.env.in(t), gh: x.gh}
			res := x.mustExplain(tokenBody(x.token(tt.over), tt.extra))
			if diff := cmp.Diff(tt.want, res.Decision, ignoreMessage); diff != "" {
				t.Errorf("decision (-want +got):\n%s", diff)
			}
			if res.Decision.Message == "" {
				t.Error("decision without a message")
			}
			if tt.only != "" && (len(res.Mappings) != 1 || res.Mappings[0].Mapping != tt.only) {
				t.Errorf("mappings %+v, want only %s", res.Mappings, tt.only)
			}
		})
	}
	// The same token can be explained again and still exchanged: explaining
	// neither records nor spends it.
	x.mustExplain(tokenBody(token, ""))
	if rows := x.rows(); len(rows) != before {
		t.Errorf("explain wrote ledger rows: %v", rows[before:])
	}
	if r := x.exchange(token, `{"mapping": "web"}`); r.status != 200 {
		t.Errorf("exchange after explain: %d %s", r.status, r.body)
	}
	if strings.Contains(logs.String(), token) {
		t.Error("the token was logged")
	}
}

var ignoreMessage = cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Message" }, cmp.Ignore())

func TestExplainBareClaims(t *testing.T) {
	x, _ := newExplainEnv(t)
	before := len(x.rows())
	claimsJSON := func(over map[string]any) string {
		b, err := json.Marshal(x.gh.GitHubClaims(over))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	// Claims need no signature and no valid times: an expired token's
	// payload explains as well as a fresh one.
	old := time.Now().Add(-24 * time.Hour).Unix()
	res := x.mustExplain(fmt.Sprintf(`{"issuer": "github", "claims": %s}`,
		claimsJSON(map[string]any{"ref": "refs/heads/dev", "iat": old, "nbf": old, "exp": old + 300})))
	if res.Verified || res.Issuer != "github" {
		t.Errorf("verified %v, issuer %q", res.Verified, res.Issuer)
	}
	// The issuer's policy: its replay scope and its kind's token limits.
	if want := (api.ExplainIssuerPolicy{Kind: "github", AudienceHint: ghAudienceHint, ReplayScope: "token", MaxTokenAgeSeconds: 900, MaxTokenLifetimeSeconds: 900, KeySource: "discovery"}); !reflect.DeepEqual(res.IssuerPolicy, want) {
		t.Errorf("issuer_policy %+v, want %+v", res.IssuerPolicy, want)
	}
	if r := condition(t, explanation(t, res, "web"), "ref"); r.Matched || r.Value != "refs/heads/dev" {
		t.Errorf("web's ref: %+v", r)
	}
	if res.Decision.Outcome != "no_matching_mapping" {
		t.Errorf("decision %+v", res.Decision)
	}

	// Normalised as a token's claims are: required claims, checked values.
	for _, tt := range []struct {
		name  string
		body  string
		field string
		in    string
	}{
		{"missing jti", fmt.Sprintf(`{"issuer": "github", "claims": %s}`, claimsJSON(map[string]any{"jti": nil})), "claims", "missing_claim"},
		{"ref path trick", fmt.Sprintf(`{"issuer": "github", "claims": %s}`, claimsJSON(map[string]any{"ref": "refs/heads/x/../main"})), "claims", "invalid_claim"},
		{"other issuer's iss", fmt.Sprintf(`{"issuer": "github", "claims": %s}`, claimsJSON(map[string]any{"iss": "https://gitlab.com"})), "claims", "iss"},
		{"duplicate claim", `{"issuer": "github", "claims": {"ref": "refs/heads/main", "ref": "refs/heads/dev"}}`, "claims.ref", "duplicate"},
		{"claims not an object", `{"issuer": "github", "claims": ["x"]}`, "claims", ""},
		{"unknown issuer", fmt.Sprintf(`{"issuer": "nope", "claims": %s}`, claimsJSON(nil)), "issuer", "nope"},
		{"no issuer", fmt.Sprintf(`{"claims": %s}`, claimsJSON(nil)), "issuer", ""},
		{"token and claims", fmt.Sprintf(`{"token": %q, "issuer": "github", "claims": %s}`, x.token(nil), claimsJSON(nil)), "claims", ""},
		{"issuer with a token", fmt.Sprintf(`{"token": %q, "issuer": "github"}`, x.token(nil)), "issuer", ""},
		{"neither", `{"mapping": "web"}`, "token", ""},
		{"null claims", `{"issuer": "github", "claims": null}`, "token", ""},
		{"unknown field", `{"token": "x", "role_arn": "arn:aws:iam::1:role/admin"}`, "role_arn", ""},
		{"bad mapping name", fmt.Sprintf(`{"token": %q, "mapping": "Web Prod"}`, x.token(nil)), "mapping", ""},
		{"unknown mapping", fmt.Sprintf(`{"token": %q, "mapping": "nope"}`, x.token(nil)), "mapping", "nope"},
		{"bad provider", fmt.Sprintf(`{"token": %q, "provider": "oracle"}`, x.token(nil)), "provider", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			x := &exchangeEnv{env: x.env.in(t), gh: x.gh}
			got := x.wantError(x.explain(tt.body), 400, "invalid_request", tt.field)
			if !strings.Contains(got.Message, tt.in) {
				t.Errorf("message %q does not mention %q", got.Message, tt.in)
			}
		})
	}

	t.Run("disabled issuer", func(t *testing.T) {
		x := &exchangeEnv{env: x.env.in(t), gh: x.gh}
		x.must(201, "POST", "/v1/admin/issuers", fmt.Sprintf(`{"name": "gh-off", "url": "https://ghes.example.com/_services/token",
			"audiences": [%q], "kind": "github", "enabled": false}`, oidctest.DefaultAudience))
		x.wantError(x.explain(fmt.Sprintf(`{"issuer": "gh-off", "claims": %s}`, claimsJSON(map[string]any{"iss": "https://ghes.example.com/_services/token"}))),
			400, "invalid_request", "issuer")
	})
	if rows := x.rows(); len(rows) != before {
		t.Errorf("explain wrote ledger rows: %v", rows[before:])
	}
}

// TestExplainTokenErrors: a token is verified as the exchange verifies it,
// and refused with the exchange's codes; nothing is recorded.
func TestExplainTokenErrors(t *testing.T) {
	x, _ := newExplainEnv(t)
	other := oidctest.New(t)
	before := len(x.rows())
	now := time.Now().Unix()
	for _, tt := range []struct {
		name  string
		token string
		code  string
	}{
		{"garbage", "not.a.jwt", "invalid_token"},
		{"expired", x.token(map[string]any{"iat": now - 600, "nbf": now - 600, "exp": now - 120}), "invalid_token"},
		{"wrong audience", x.token(map[string]any{"aud": "sts.amazonaws.com"}), "invalid_token"},
		{"badly signed", x.token(nil, oidctest.WithUnpublishedKey()), "invalid_token"},
		{"alg none", x.token(nil, oidctest.WithAlg("none")), "invalid_token"},
		{"unregistered issuer", other.Mint(t, other.GitHubClaims(nil)), "untrusted_issuer"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			x := &exchangeEnv{env: x.env.in(t), gh: x.gh}
			x.wantError(x.explain(tokenBody(tt.token, "")), 401, tt.code, "")
		})
	}
	if rows := x.rows(); len(rows) != before {
		t.Errorf("explain wrote ledger rows: %v", rows[before:])
	}
}

func TestExplainNeedsAdmin(t *testing.T) {
	x, _ := newExplainEnv(t)
	// The pipeline token is no admin token.
	tok := x.token(nil)
	r := x.do("POST", "/v1/admin/explain", tokenBody(tok, ""), "Authorization", "Bearer "+tok)
	x.wantError(r, 401, "unauthorized", "")

	// Explaining changes nothing: the read scope suffices.
	reader, _, err := x.tokens.Create(context.Background(), testActor, "reader", []string{admintoken.ScopeRead}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := x.do("POST", "/v1/admin/explain", tokenBody(tok, ""), "Authorization", "Bearer "+reader); r.status != 200 {
		t.Errorf("read-only admin token: %d %s", r.status, r.body)
	}
}

// ghAudienceHint is what the explainer says of how a github job asks for the
// bridge's audience: the kind's own hint.
var ghAudienceHint = identity.PlatformOf(identity.KindGitHub).Issuer().AudienceHint

// The explainer shows the issuer's kind, how its jobs ask for the bridge's
// audience, and its own replay scope and token limits.
func TestExplainIssuerPolicy(t *testing.T) {
	x, _ := newExplainEnv(t)
	x.must(200, "PUT", "/v1/admin/issuers/github", fmt.Sprintf(`{"url": %q, "audiences": [%q], "kind": "github",
		"replay_scope": "token_mapping", "max_token_lifetime_seconds": 3600}`, x.gh.URL(), oidctest.DefaultAudience))
	res := x.mustExplain(tokenBody(x.token(nil), ""))
	if want := (api.ExplainIssuerPolicy{Kind: "github", AudienceHint: ghAudienceHint, ReplayScope: "token_mapping", MaxTokenAgeSeconds: 900, MaxTokenLifetimeSeconds: 3600, KeySource: "discovery"}); !reflect.DeepEqual(res.IssuerPolicy, want) {
		t.Errorf("issuer_policy %+v, want %+v", res.IssuerPolicy, want)
	}

	// A static set: the explainer shows its keys' kid, kty and alg, and
	// nothing of their material.
	set, err := json.Marshal(x.gh.JWKS())
	if err != nil {
		t.Fatal(err)
	}
	x.must(200, "PUT", "/v1/admin/issuers/github", fmt.Sprintf(`{"url": %q, "audiences": [%q], "kind": "github", "jwks": %s}`,
		x.gh.URL(), oidctest.DefaultAudience, set))
	r := x.must(200, "POST", "/v1/admin/explain", tokenBody(x.token(nil), ""))
	res = decode[api.ExplainResponse](t, r)
	want := api.ExplainIssuerPolicy{Kind: "github", AudienceHint: ghAudienceHint, ReplayScope: "token", MaxTokenAgeSeconds: 900, MaxTokenLifetimeSeconds: 900, KeySource: "jwks",
		Keys: []api.ExplainKey{{KID: x.gh.KID(), KTY: "RSA", Alg: "RS256"}}}
	if !reflect.DeepEqual(res.IssuerPolicy, want) {
		t.Errorf("issuer_policy %+v, want %+v", res.IssuerPolicy, want)
	}
	n := x.gh.JWKS()["keys"].([]map[string]any)[0]["n"].(string)
	if strings.Contains(string(r), n[:40]) {
		t.Error("the explainer shows key material")
	}
}
