package github

import (
	"fmt"
	"maps"
	"slices"

	"github.com/oidc-bridge/oidc-bridge/providers"
)

// Lint codes of github targets: stable, like mapping's.
const (
	// LintWritePullRequest: a write (or admin) permission for a mapping
	// that admits pull_request runs (no event_name condition, or one
	// matching pull_request): code nobody reviewed could push, merge or
	// change settings with it.
	LintWritePullRequest = "github_write_pull_request"
	// LintWriteUnpinned: a write (or admin) permission for a mapping with
	// no literal repository or repository_id condition: every repository
	// the other conditions admit (one created later included) may write.
	LintWriteUnpinned = "github_write_unpinned"
	// LintSensitivePermission: administration, members, or a secrets
	// permission, at any level: who may do what, or secrets.
	LintSensitivePermission = "github_sensitive_permission"
)

// LintTarget returns the github target's warnings, by permission name.
func (Spec) LintTarget(m providers.LintMapping) []providers.Finding {
	t, err := decodeTarget(m.Target)
	if err != nil {
		return nil
	}
	var out []providers.Finding
	var writes []string
	for _, name := range slices.Sorted(maps.Keys(t.Permissions)) {
		if rank[t.Permissions[name]] >= rank[levelWrite] {
			writes = append(writes, name)
		}
	}
	if len(writes) > 0 && m.AdmitsPullRequests {
		out = append(out, providers.Finding{Code: LintWritePullRequest, Field: "target.permissions." + writes[0],
			Message: fmt.Sprintf("write permissions (%v) for a mapping that admits pull_request runs: unreviewed code gets a token that writes; pin conditions.event_name to events of merged code", writes)})
	}
	if len(writes) > 0 && !m.RepositoryPinned {
		out = append(out, providers.Finding{Code: LintWriteUnpinned, Field: "target.permissions." + writes[0],
			Message: fmt.Sprintf("write permissions (%v) for a mapping without a literal repository or repository_id condition: every repository the conditions admit gets a token that writes", writes)})
	}
	for _, name := range slices.Sorted(maps.Keys(t.Permissions)) {
		if slices.Contains(sensitive, name) {
			out = append(out, providers.Finding{Code: LintSensitivePermission, Field: "target.permissions." + name,
				Message: fmt.Sprintf("permission %s (%s) changes who may do what or reaches secrets; grant it to a pipeline only if nothing narrower serves", name, t.Permissions[name])})
		}
	}
	return out
}
