package github_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/providers"
	"github.com/oidc-bridge/oidc-bridge/providers/github"
)

func TestCheckTarget(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, target, field string
	}{
		{"ok", `{"app": "a", "owner": "acme", "repositories": ["web", "infra.x"], "permissions": {"contents": "write"}}`, ""},
		{"ok all", `{"app": "a", "owner": "acme-corp", "all_repositories": true, "permissions": {"issues": "read"}}`, ""},
		{"ok emu", `{"app": "a", "owner": "alice_acme", "all_repositories": true, "permissions": {"issues": "read"}}`, ""},
		{"no app", `{"owner": "acme", "all_repositories": true, "permissions": {"issues": "read"}}`, "target.app"},
		{"bad owner", `{"app": "a", "owner": "-acme", "all_repositories": true, "permissions": {"issues": "read"}}`, "target.owner"},
		{"double hyphen", `{"app": "a", "owner": "ac--me", "all_repositories": true, "permissions": {"issues": "read"}}`, "target.owner"},
		{"both", `{"app": "a", "owner": "acme", "repositories": ["web"], "all_repositories": true, "permissions": {"issues": "read"}}`, "target.repositories"},
		{"neither", `{"app": "a", "owner": "acme", "permissions": {"issues": "read"}}`, "target.repositories"},
		{"slash", `{"app": "a", "owner": "acme", "repositories": ["acme/web"], "permissions": {"issues": "read"}}`, "target.repositories[0]"},
		{"wildcard", `{"app": "a", "owner": "acme", "repositories": ["web*"], "permissions": {"issues": "read"}}`, "target.repositories[0]"},
		{"dot", `{"app": "a", "owner": "acme", "repositories": [".."], "permissions": {"issues": "read"}}`, "target.repositories[0]"},
		{"dup", `{"app": "a", "owner": "acme", "repositories": ["web", "WEB"], "permissions": {"issues": "read"}}`, "target.repositories[1]"},
		{"no permissions", `{"app": "a", "owner": "acme", "all_repositories": true}`, "target.permissions"},
		{"unknown permission", `{"app": "a", "owner": "acme", "all_repositories": true, "permissions": {"everything": "write"}}`, "target.permissions.everything"},
		{"bad level", `{"app": "a", "owner": "acme", "all_repositories": true, "permissions": {"contents": "admin"}}`, "target.permissions.contents"},
		{"read-only workflows", `{"app": "a", "owner": "acme", "all_repositories": true, "permissions": {"workflows": "read"}}`, "target.permissions.workflows"},
		{"unknown key", `{"app": "a", "owner": "acme", "all_repositories": true, "permissions": {"contents": "read"}, "org": "x"}`, "target"},
	} {
		err := github.Spec{}.CheckTarget(json.RawMessage(tc.target))
		var fe *providers.FieldError
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.field != "" && (err == nil || !asField(err, &fe) || fe.Field != tc.field):
			t.Errorf("%s: %v, want a refusal of %s", tc.name, err, tc.field)
		}
	}
	if lo, hi := (github.Spec{}).DurationBounds(); lo != 60 || hi != 3600 {
		t.Errorf("bounds %d..%d, want 60..3600 (GitHub's tokens live an hour)", lo, hi)
	}
}

func asField(err error, fe **providers.FieldError) bool {
	e, ok := err.(*providers.FieldError)
	*fe = e
	return ok
}

func TestLintTarget(t *testing.T) {
	t.Parallel()
	codes := func(target string, pr, pinned bool) string {
		var out []string
		for _, f := range (github.Spec{}).LintTarget(providers.LintMapping{Target: json.RawMessage(target), AdmitsPullRequests: pr, RepositoryPinned: pinned}) {
			out = append(out, f.Code)
		}
		return strings.Join(out, ",")
	}
	write := `{"app": "a", "owner": "acme", "repositories": ["web"], "permissions": {"contents": "write"}}`
	read := `{"app": "a", "owner": "acme", "repositories": ["web"], "permissions": {"contents": "read"}}`
	admin := `{"app": "a", "owner": "acme", "repositories": ["web"], "permissions": {"administration": "read", "secrets": "read"}}`
	for _, tc := range []struct {
		target     string
		pr, pinned bool
		want       string
	}{
		{write, false, true, ""},
		{write, true, true, github.LintWritePullRequest},
		{write, false, false, github.LintWriteUnpinned},
		{read, true, false, ""},
		{admin, false, true, github.LintSensitivePermission + "," + github.LintSensitivePermission},
	} {
		if got := codes(tc.target, tc.pr, tc.pinned); got != tc.want {
			t.Errorf("%s pr=%v pinned=%v: %q, want %q", tc.target, tc.pr, tc.pinned, got, tc.want)
		}
	}
}
