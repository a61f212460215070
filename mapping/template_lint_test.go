package mapping

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/identity"
)

// TestLintTemplateNameCollision: ${repository_name} is the repository's
// last segment, so a repository pattern that admits several owners or
// groups lets same-named repositories share a target (acme/team-a/web and
// acme/team-b/web): unconstrained_template on the field; a pattern with
// the owner or group written literally, or ${repository_id}, does not.
func TestLintTemplateNameCollision(t *testing.T) {
	t.Parallel()
	const nameARN = `{"role_arn":"arn:aws:iam::123456789012:role/ci-${repository_name}","region":"eu-west-1"}`
	const idARN = `{"role_arn":"arn:aws:iam::123456789012:role/ci-${repository_id}","region":"eu-west-1"}`
	tests := []struct {
		name, target string
		kind         identity.Kind
		repos        []string
		warn         bool
	}{
		{"one owner", nameARN, identity.KindGitHub, []string{"acme/*"}, false},
		{"listed repositories", nameARN, identity.KindGitHub, []string{"acme/web", "acme/api"}, false},
		{"one gitlab group", nameARN, identity.KindGitLab, []string{"acme/team-a/*"}, false},
		{"any depth", nameARN, identity.KindGitLab, []string{"acme/**"}, true},
		{"any group", nameARN, identity.KindGitLab, []string{"acme/*/*"}, true},
		{"any owner", nameARN, identity.KindGitHub, []string{"*/web"}, true},
		{"one of several patterns", nameARN, identity.KindGitHub, []string{"acme/*", "*/tools"}, true},
		{"the id instead", idARN, identity.KindGitLab, []string{"acme/**"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := ghMapping(func(m *Mapping) {
				m.Target = json.RawMessage(tt.target)
				m.Conditions.Repository = &Values{Patterns: tt.repos, List: len(tt.repos) > 1}
			})
			var got []Warning
			for _, w := range Lint(m, tt.kind) {
				if w.Code == LintUnconstrainedTemplate && strings.Contains(w.Message, "last segment") {
					got = append(got, w)
				}
			}
			if (len(got) > 0) != tt.warn {
				t.Errorf("repository %v: name-collision warnings %+v, want %v", tt.repos, got, tt.warn)
			}
			if len(got) > 0 && got[0].Field != "target.role_arn" {
				t.Errorf("field %q, want target.role_arn", got[0].Field)
			}
		})
	}
}
