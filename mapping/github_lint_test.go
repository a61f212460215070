package mapping

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/identity"
)

// The github provider's own lint rules reach mapping.Lint: a write token
// for pull_request runs, and for an unpinned repository.
func TestLintAddsProviderFindings(t *testing.T) {
	t.Parallel()
	target := json.RawMessage(`{"app": "a", "owner": "acme", "repositories": ["web"], "permissions": {"contents": "write"}}`)
	codes := func(m Mapping) []string {
		var out []string
		for _, w := range Lint(&m, identity.KindGitHub) {
			out = append(out, w.Code)
		}
		return out
	}
	open := Mapping{Name: "gh", Provider: "github", Target: target}
	if c := codes(open); !slices.Contains(c, "github_write_pull_request") || !slices.Contains(c, "github_write_unpinned") {
		t.Errorf("unpinned, every event: %v", c)
	}
	pinned := Mapping{Name: "gh", Provider: "github", Target: target, Conditions: Conditions{
		Repository: &Values{Patterns: []string{"acme/web"}}, EventName: &Values{Patterns: []string{"push"}}}}
	if c := codes(pinned); slices.Contains(c, "github_write_pull_request") || slices.Contains(c, "github_write_unpinned") {
		t.Errorf("pinned, push only: %v", c)
	}
}
