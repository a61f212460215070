package bridge_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
)

// withoutTimes is an admin object's JSON, keys sorted at every depth (a
// stored target is jsonb, which orders its keys), without the store's
// created_at and updated_at, which a dry run cannot have.
func withoutTimes(t *testing.T, b []byte) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	delete(m, "created_at")
	delete(m, "updated_at")
	out, _ := json.Marshal(m)
	return string(out)
}

// warningCodes lists the codes of an admin object's warnings.
func warningCodes(t testing.TB, b []byte) []string {
	t.Helper()
	var m api.Mapping
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, w := range m.Warnings {
		out = append(out, w.Code)
	}
	return out
}

// TestDryRun: ?dry_run=true on the POST of an issuer or a mapping answers
// 200 with what the write would store (warnings included) or the write's
// own refusal, and writes nothing; a mapping whose issuer is not registered
// is judged by the generic kind's rules, one whose issuer is by its kind's.
func TestDryRun(t *testing.T) {
	e := newEnv(t)
	empty := e.snapshot()
	risky := `{"name": "risky", "issuer": "github", "conditions": {"repository": "acme/*", "event_name": "pull_request_target"},
		"provider": "aws", "target": {"role_arn": "arn:aws:iam::123456789012:role/prod-deploy", "region": "eu-west-1"}}`
	codes := func(b []byte) []string { return warningCodes(t, b) }

	// No issuer yet: the generic kind's rules.
	generic := codes(e.must(200, "POST", "/v1/admin/mappings?dry_run=true", risky))
	if slices.Contains(generic, "no_immutable_id") {
		t.Errorf("dry run under the generic kind warns %v, which is github's no_immutable_id", generic)
	}
	e.wantError(e.do("POST", "/v1/admin/issuers?dry_run=maybe", githubIssuer), 400, "invalid_request", "dry_run")
	e.wantError(e.do("POST", "/v1/admin/issuers?dry_run=true", `{"name": "bad", "url": "https://issuer.example.com?x=1",
		"audiences": ["a"], "kind": "generic"}`), 400, "invalid_request", "url")
	dryIssuer := e.must(200, "POST", "/v1/admin/issuers?dry_run=true", githubIssuer)
	if e.snapshot() != empty {
		t.Fatal("a dry run wrote")
	}
	if got, want := withoutTimes(t, e.must(201, "POST", "/v1/admin/issuers", githubIssuer)), withoutTimes(t, dryIssuer); got != want {
		t.Errorf("dry run answered\n%s\nthe write stored\n%s", want, got)
	}

	// The issuer registered: its kind's rules, and exactly what the write
	// then stores.
	before := e.snapshot()
	dry := e.must(200, "POST", "/v1/admin/mappings?dry_run=true", risky)
	if !slices.Contains(codes(dry), "no_immutable_id") {
		t.Errorf("dry run under the github kind warns %v, want no_immutable_id", codes(dry))
	}
	strict := e.do("POST", "/v1/admin/mappings?dry_run=true&lint=strict", risky)
	e.wantError(strict, 400, "invalid_request", "")
	bad := `{"name": "bad", "issuer": "github", "conditions": {"repository": "acme/web"},
		"provider": "aws", "target": {"role_arn": "arn:aws:iam::1234:role/x", "region": "eu-west-1"}}`
	dryBad := e.do("POST", "/v1/admin/mappings?dry_run=true", bad)
	e.wantError(dryBad, 400, "invalid_request", "target.role_arn")
	if e.snapshot() != before {
		t.Fatal("a dry run wrote")
	}
	if got := e.do("POST", "/v1/admin/mappings", bad); string(got.body) != string(dryBad.body) {
		t.Errorf("dry run refused with\n%s\nthe write with\n%s", dryBad.body, got.body)
	}
	if got := e.do("POST", "/v1/admin/mappings?lint=strict", risky); string(got.body) != string(strict.body) {
		t.Errorf("strict dry run refused with\n%s\nthe strict write with\n%s", strict.body, got.body)
	}
	if got, want := withoutTimes(t, e.must(201, "POST", "/v1/admin/mappings", risky)), withoutTimes(t, dry); got != want {
		t.Errorf("dry run answered\n%s\nthe write stored\n%s", want, got)
	}
}
