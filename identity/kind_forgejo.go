package identity

import (
	"strings"
	"time"
)

// KindForgejo is Forgejo Actions' ID tokens (Codeberg's, or any Forgejo
// instance's), which a job with `enable-openid-connect: true` requests the
// GitHub way: ACTIONS_ID_TOKEN_REQUEST_URL with &audience=, authorised by
// ACTIONS_ID_TOKEN_REQUEST_TOKEN. The issuer is the instance's URL and
// /api/actions. The tokens are documented at
// https://forgejo.org/docs/latest/user/actions/security-openid-connect/ and
// carry GitHub-shaped claims (repository, repository_owner, ref, ref_type,
// sha, event_name, actor, run_id, run_attempt, ...); repository_id,
// repository_owner_id and actor_id are sent since Forgejo added immutable
// identifiers (forgejo#12355). Gitea does not issue such tokens.
// test/oidctest/claimsets/forgejo-actions.json is a token's claim set.
const KindForgejo Kind = "forgejo"

type forgejo struct{}

func (forgejo) Kind() Kind { return KindForgejo }

// Defaults: 15 minutes of age, as for GitHub: a job requests a fresh token
// per use. The lifetime Forgejo gives its tokens is not documented: the
// cap, 6 hours. Forgejo documents no jti: a token without one is keyed on
// its SHA-256.
func (forgejo) Defaults() Defaults {
	return Defaults{TokenAge: 15 * time.Minute, TokenLifetime: MaxTokenLimit, ReplayScope: ReplayScopeToken}
}

// Conditions: GitHub's, where Forgejo's tokens carry them. Forgejo looks
// owners and repositories up case-insensitively, so repository folds
// ASCII case. Forgejo Actions has no deployment environments and sends no
// job_workflow_ref: environment and workflow_ref are refused.
func (forgejo) Conditions() []Condition {
	return []Condition{
		{ConditionRepository, []string{"repository"}, Fold},
		{ConditionRepositoryID, []string{"repository_id"}, Equal},
		{ConditionRef, []string{"ref"}, Exact},
		{ConditionEventName, []string{"event_name"}, Exact},
	}
}

func (forgejo) Breadth() Breadth { return repositoryBreadth(string(KindForgejo)) }

func (forgejo) Guards(*Claims) []Guard { return nil }

// Lint: one instance (Codeberg) serves every user and organisation, and a
// mapping must pin the owner. It always does, as a github mapping: its
// breadth requires repository, whose owner validation requires literally
// (acme/web, acme/*; */web is refused), or repository_id, unique on the
// instance. So there is no unpinned_tenant rule to add (no TenantPin).
func (forgejo) Lint() LintRules {
	return LintRules{
		ImmutableID: []string{ConditionRepositoryID, "claims.repository_owner_id"},
		ImmutableIDMessage: "no immutable id pinned: if the repository or its owner is deleted or renamed, whoever takes the name obtains this mapping; " +
			"set repository_id (or at least claims.repository_owner_id; Forgejo sends them since it added immutable identifiers)",
		RefProtectedCaveat: "Forgejo's branch protection rules may use globs, and who may push a matching new branch is not known to the bridge",
		RiskyEvents:        []string{"pull_request", "pull_request_target"},
	}
}

func (forgejo) Issuer() IssuerRules {
	return IssuerRules{PathSuffix: "/api/actions",
		AudienceHint: "ACTIONS_ID_TOKEN_REQUEST_URL with &audience=<the bridge's audience> (enable-openid-connect: true on the job)"}
}

func (forgejo) read(r *claimReader, c *Claims) {
	c.Repository = r.required("repository")
	c.RepositoryOwner = r.required("repository_owner")
	c.RepositoryID = r.str("repository_id")
	c.RepositoryOwnerID = r.str("repository_owner_id")
	c.Ref = r.required("ref")
	c.RefType = r.str("ref_type")
	c.SHA = r.str("sha")
	c.EventName = r.str("event_name")
	c.Actor = r.str("actor")
	c.RunID = r.str("run_id")
	c.RunAttempt = r.str("run_attempt")
	r.check("repository_owner", c.RepositoryOwner, validPathSegment)
	r.check("repository", c.Repository, func(s string) bool {
		owner, name, ok := strings.Cut(s, "/")
		return ok && validPathSegment(owner) && validPathSegment(name)
	})
	if r.err == nil {
		// The owner is part of the repository name; a token where they
		// disagree is not one Forgejo issued.
		if owner, _, _ := strings.Cut(c.Repository, "/"); !strings.EqualFold(owner, c.RepositoryOwner) {
			r.err = fail(ReasonInvalidClaim, "repository %s is not owned by repository_owner %s", quote(c.Repository), quote(c.RepositoryOwner))
		}
	}
	r.check("repository_id", c.RepositoryID, isDigits)
	r.check("repository_owner_id", c.RepositoryOwnerID, isDigits)
	r.check("run_id", c.RunID, isDigits)
	r.check("run_attempt", c.RunAttempt, isDigits)
	r.check("ref", c.Ref, validRef)
}
