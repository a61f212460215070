package identity

import "time"

// KindCircleCI is CircleCI's OIDC tokens ($CIRCLE_OIDC_TOKEN_V2, or
// `circleci run oidc get --claims '{"aud": ...}'` for another audience).
// Each organization has its own issuer,
// https://oidc.circleci.com/org/<organization id>. The claims are
// documented at https://circleci.com/docs/openid-connect-tokens/.
// test/oidctest/claimsets/circleci-job.json is a token's claim set.
const KindCircleCI Kind = "circleci"

// CircleCI's own claims.
const (
	claimCircleProjectID = "oidc.circleci.com/project-id"
	claimCircleVCSOrigin = "oidc.circleci.com/vcs-origin"
	claimCircleVCSRef    = "oidc.circleci.com/vcs-ref"
)

type circleci struct{}

func (circleci) Kind() Kind { return KindCircleCI }

// Defaults: 75 minutes of age and lifetime. CircleCI's tokens are made
// when the job starts and live one hour (exp = iat + 3600); the quarter
// hour is room for a later change. The documented claims have no jti: a
// token without one is keyed on its SHA-256.
func (circleci) Defaults() Defaults {
	return Defaults{TokenAge: 75 * time.Minute, TokenLifetime: 75 * time.Minute, ReplayScope: ReplayScopeToken}
}

// Conditions: repository is vcs-origin (host/owner/name, such as
// github.com/acme/web), ref is vcs-ref (a full ref; absent for pipelines
// of custom webhooks). CircleCI has no environments and no event name.
func (circleci) Conditions() []Condition {
	return []Condition{
		{ConditionRepository, []string{claimCircleVCSOrigin}, Fold},
		{ConditionRef, []string{claimCircleVCSRef}, Exact},
	}
}

func (circleci) Breadth() Breadth {
	return Breadth{
		AnyOf: []string{"claims." + claimCircleProjectID, ConditionRepository},
		Message: "a mapping of a circleci issuer must constrain the project: " +
			"set claims." + claimCircleProjectID + " or repository (host/owner/name)",
		Detail: "the mapping constrains neither the project nor the repository: it admits nothing",
	}
}

func (circleci) Guards(*Claims) []Guard { return nil }

// Lint: the issuer is the organization's, shared by all its projects; a
// project is pinned by its id (another project may build the same
// repository).
func (circleci) Lint() LintRules {
	return LintRules{
		TenantPin: []string{"claims." + claimCircleProjectID},
		TenantPinMessage: "every project of the CircleCI organization gets tokens from its issuer: without the project id pinned, " +
			"another project of the organization (building this repository or another) obtains this mapping; set claims." + claimCircleProjectID + ", literally",
		RefProtectedCaveat: "CircleCI tokens carry no protection flag",
	}
}

func (circleci) Issuer() IssuerRules {
	return IssuerRules{Path: "/org/{organization-id}", Hosts: []string{"oidc.circleci.com"},
		AudienceHint: `circleci run oidc get --claims '{"aud": "<the bridge's audience>"}' (the default tokens' audience is the organization id)`}
}

func (circleci) read(r *claimReader, c *Claims) {
	c.RepositoryID = r.required(claimCircleProjectID)
	c.Repository = r.str(claimCircleVCSOrigin)
	c.Ref = r.str(claimCircleVCSRef)
	c.RunID = r.str("oidc.circleci.com/pipeline-id")
	c.JobID = r.str("oidc.circleci.com/job-id")
	c.RepositoryOwnerID = r.str("oidc.circleci.com/org-id")
	r.check(claimCircleVCSOrigin, c.Repository, func(s string) bool { return validGitLabPath(s, 3) })
	r.check(claimCircleVCSRef, c.Ref, validRef)
	if r.err == nil && c.Ref != "" {
		c.RefType = refType(c.Ref)
	}
}

// refType is branch or tag for a full ref under refs/heads/ or refs/tags/.
func refType(ref string) string {
	switch {
	case len(ref) > len("refs/heads/") && ref[:len("refs/heads/")] == "refs/heads/":
		return "branch"
	case len(ref) > len("refs/tags/") && ref[:len("refs/tags/")] == "refs/tags/":
		return "tag"
	}
	return ""
}
