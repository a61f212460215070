package identity

import (
	"strings"
	"time"
)

// KindBuildkite is Buildkite Pipelines' agent OIDC tokens, which a job
// requests with `buildkite-agent oidc request-token --audience <aud>`. One
// issuer, https://agent.buildkite.com, serves every Buildkite organization.
// The claims are documented at
// https://buildkite.com/docs/agent/v3/cli-oidc (the command and its
// options, --claim for the optional organization_id and pipeline_id) and
// https://buildkite.com/docs/pipelines/security/oidc (the token's claims).
// test/oidctest/claimsets/buildkite-agent.json is a token's claim set.
const KindBuildkite Kind = "buildkite"

type buildkite struct{}

func (buildkite) Kind() Kind { return KindBuildkite }

// Defaults: 15 minutes of age and lifetime. Buildkite's tokens live 5
// minutes unless the job asks for another --lifetime, and a job requests
// one per use; a longer --lifetime needs the issuer's own limits. Buildkite
// has sent a jti (a UUID) with every token since early 2025, so a token
// without one is not its own.
func (buildkite) Defaults() Defaults {
	return Defaults{TokenAge: 15 * time.Minute, TokenLifetime: 15 * time.Minute, JTIRequired: true, ReplayScope: ReplayScopeToken}
}

// Conditions: ref is refs/tags/<build_tag> for a tag build, else
// refs/heads/<build_branch>; event_name is build_source (webhook, ui, api,
// trigger_job, schedule). Buildkite tokens name no repository and no
// environment: the pipeline and organization are claims conditions
// (claims.pipeline_slug, claims.organization_id, ...).
func (buildkite) Conditions() []Condition {
	return []Condition{
		{ConditionRef, []string{"build_branch", "build_tag"}, Exact},
		{ConditionEventName, []string{"build_source"}, Exact},
	}
}

// Breadth: a mapping names the pipeline or the organization.
func (buildkite) Breadth() Breadth {
	return Breadth{
		AnyOf: []string{"claims.pipeline_slug", "claims.pipeline_id", "claims.organization_id", "claims.organization_slug"},
		Message: "a mapping of a buildkite issuer must constrain the pipeline or the organization: " +
			"set claims.pipeline_slug, claims.pipeline_id, claims.organization_id or claims.organization_slug",
		Detail: "the mapping constrains neither the pipeline nor the organization: it admits nothing",
	}
}

func (buildkite) Guards(*Claims) []Guard { return nil }

// Lint: every Buildkite organization's tokens come from the one issuer, so
// a mapping must pin the organization; slugs can be renamed and reused,
// the organization's UUID cannot.
func (buildkite) Lint() LintRules {
	return LintRules{
		TenantPin: []string{"claims.organization_id", "claims.organization_slug"},
		TenantPinMessage: "every Buildkite organization's tokens come from https://agent.buildkite.com: without the organization pinned, " +
			"another organization with a pipeline of the same slug obtains this mapping; set claims.organization_id " +
			"(requested with --claim organization_id) or claims.organization_slug, literally",
		ImmutableID: []string{"claims.organization_id", "claims.pipeline_id"},
		ImmutableIDMessage: "no immutable id pinned: if the organization or pipeline is renamed or deleted, whoever takes its slug obtains this mapping; " +
			"set claims.organization_id (request the token with --claim organization_id)",
		RefProtectedCaveat: "Buildkite tokens carry no protection flag: build_branch is the branch the build was created for, " +
			"and anyone who may create builds of the pipeline chooses it, with any commit",
		RiskyEvents: []string{"api", "ui"},
	}
}

func (buildkite) Issuer() IssuerRules {
	return IssuerRules{Hosts: []string{"agent.buildkite.com"}, Shared: true,
		AudienceHint: "buildkite-agent oidc request-token --audience <the bridge's audience>"}
}

func (buildkite) read(r *claimReader, c *Claims) {
	c.RepositoryOwner = r.required("organization_slug")
	c.RepositoryOwnerID = r.nullable("organization_id")
	pipeline := r.required("pipeline_slug")
	c.RepositoryID = r.nullable("pipeline_id")
	branch := r.nullable("build_branch")
	tag := r.nullable("build_tag")
	c.SHA = r.nullable("build_commit")
	c.EventName = r.nullable("build_source")
	c.JobID = r.required("job_id")
	r.nullable("step_key") // a string or null, like the claims above
	r.check("organization_slug", c.RepositoryOwner, validSlug)
	r.check("pipeline_slug", pipeline, validSlug)
	if r.err == nil {
		c.Repository = c.RepositoryOwner + "/" + pipeline
		switch {
		case tag != "":
			c.Ref, c.RefType = "refs/tags/"+tag, "tag"
		case branch != "":
			c.Ref, c.RefType = "refs/heads/"+branch, "branch"
		}
		// A branch that is no valid ref (a fork's "owner:branch") leaves
		// the ref empty: no ref condition admits it.
		if !validRef(c.Ref) {
			c.Ref, c.RefType = "", ""
		}
	}
}

// validSlug: Buildkite slugs are lower-case letters, digits and hyphens.
func validSlug(s string) bool {
	return s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == ""
}
