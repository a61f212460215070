package identity

import "strings"

// KindBitbucket is Bitbucket Pipelines' step tokens
// ($BITBUCKET_STEP_OIDC_TOKEN in a step with `oidc: true`). Each workspace
// has its own issuer,
// https://api.bitbucket.org/2.0/workspaces/<workspace>/pipelines-config/identity/oidc.
// The claims are documented at
// https://support.atlassian.com/bitbucket-cloud/docs/integrate-pipelines-with-resource-servers-using-oidc/
// (UUIDs in braces). test/oidctest/claimsets/bitbucket-step.json is a token's claim set.
const KindBitbucket Kind = "bitbucket"

// Bitbucket's own claims.
const (
	claimBitbucketRepository  = "repositoryUuid"
	claimBitbucketEnvironment = "deploymentEnvironmentUuid"
)

type bitbucket struct{}

func (bitbucket) Kind() Kind { return KindBitbucket }

// Defaults: 6 hours of age and lifetime, the cap. The step's token is made
// when the step starts and serves the whole step (up to its max-time, two
// hours unless raised). The tokens carry no jti: the replay guard keys
// them on their SHA-256.
func (bitbucket) Defaults() Defaults {
	return Defaults{TokenAge: MaxTokenLimit, TokenLifetime: MaxTokenLimit, ReplayScope: ReplayScopeToken}
}

// Conditions: ref is refs/heads/<branchName>; environment is the
// deployment environment's UUID, in braces as the token carries it,
// compared exactly. The repository is known by its UUID only:
// claims.repositoryUuid.
func (bitbucket) Conditions() []Condition {
	return []Condition{
		{ConditionRef, []string{"branchName"}, Exact},
		{ConditionEnvironment, []string{claimBitbucketEnvironment}, Exact},
	}
}

// Breadth: any condition; the tenant pin (lint) asks for the repository.
func (bitbucket) Breadth() Breadth {
	return Breadth{Message: "at least one condition is required",
		Detail: "the mapping has no condition at all: it admits nothing"}
}

func (bitbucket) Guards(*Claims) []Guard { return nil }

// Lint: every repository of the workspace gets tokens from the workspace's
// issuer. A deployment environment's UUID belongs to one repository, so
// pinning it pins the repository too.
func (bitbucket) Lint() LintRules {
	return LintRules{
		TenantPin: []string{"claims." + claimBitbucketRepository, ConditionEnvironment},
		TenantPinMessage: "every repository of the Bitbucket workspace gets tokens from its issuer: without the repository pinned, " +
			"any repository of the workspace obtains this mapping; set claims.repositoryUuid (with its braces) or environment, literally",
		RefProtectedCaveat: "Bitbucket tokens carry no protection flag: branch restrictions are not visible to the bridge",
	}
}

func (bitbucket) Issuer() IssuerRules {
	return IssuerRules{Path: "/2.0/workspaces/{workspace}/pipelines-config/identity/oidc", Hosts: []string{"api.bitbucket.org"},
		AudienceHint: "the step's oidc.audiences list in bitbucket-pipelines.yml (the default audience is ari:cloud:bitbucket::workspace/<uuid>)"}
}

func (bitbucket) read(r *claimReader, c *Claims) {
	c.RepositoryID = r.required(claimBitbucketRepository)
	c.RepositoryOwnerID = r.required("workspaceUuid")
	branch := r.str("branchName")
	c.Environment = r.str(claimBitbucketEnvironment)
	c.RunID = r.str("pipelineUuid")
	c.JobID = r.str("stepUuid")
	for _, kv := range [][2]string{{claimBitbucketRepository, c.RepositoryID}, {"workspaceUuid", c.RepositoryOwnerID},
		{claimBitbucketEnvironment, c.Environment}, {"pipelineUuid", c.RunID}, {"stepUuid", c.JobID}} {
		r.check(kv[0], kv[1], bracedUUID)
	}
	if r.err == nil && branch != "" {
		c.Ref, c.RefType = "refs/heads/"+branch, "branch"
		r.check("branchName", c.Ref, validRef)
	}
}

// bracedUUID: {8-4-4-4-12 hex digits}, as Bitbucket writes its UUIDs.
func bracedUUID(s string) bool {
	if len(s) != 38 || s[0] != '{' || s[37] != '}' {
		return false
	}
	for i, part := range strings.Split(s[1:37], "-") {
		if len(part) != []int{8, 4, 4, 4, 12}[i%5] || strings.Trim(part, "0123456789abcdefABCDEF") != "" {
			return false
		}
		if i > 4 {
			return false
		}
	}
	return strings.Count(s, "-") == 4
}
