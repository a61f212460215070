package identity

import (
	"fmt"
	"strings"
)

// KindGitLab is GitLab CI's id_tokens, of GitLab.com or a self-managed
// instance (the issuer is the instance's URL). test/oidctest/claimsets/gitlab-ci.json is a
// token's claim set.
const KindGitLab Kind = "gitlab"

// claimJobProjectPath is the project a GitLab job runs in; project_path (what
// repository reads) is, in a fork's merge-request pipeline run in the parent
// project, the merge request's source: the fork. GitLab made project_* the
// source in its 18.2.2 security fix and added job_project_* for the project
// the job runs in (https://docs.gitlab.com/ci/secrets/id_token_authentication/,
// https://gitlab.com/gitlab-org/gitlab/-/issues/563038).
const claimJobProjectPath = "job_project_path"

// GuardForkPipeline is the reason of gitlab's guard: a token whose
// job_project_path differs from its project_path is admitted only by a
// mapping whose claims conditions name job_project_path.
const GuardForkPipeline = "fork_pipeline"

type gitlab struct{}

func (gitlab) Kind() Kind { return KindGitLab }

// Defaults: 6 hours of age and lifetime. GitLab's id_tokens live for the
// job's timeout (1 hour by default, up to 3 hours on GitLab.com's hosted
// runners, set per project and longer on self-managed instances) and are
// requested once, at the start of the job, so a token may be used at the
// job's end. GitLab always sends a jti.
func (gitlab) Defaults() Defaults {
	return Defaults{TokenAge: MaxTokenLimit, TokenLifetime: MaxTokenLimit, JTIRequired: true, ReplayScope: ReplayScopeToken}
}

// Conditions: environment compares byte-exactly. GitLab's environment
// names are case sensitive: "Production" and "production" are two
// environments, each with its own protection (gitlab-org/gitlab#2651
// proposes otherwise and is not done), so folding would admit an
// unprotected twin. ref reads ref_path, else ref and ref_type as a full ref.
func (gitlab) Conditions() []Condition {
	return []Condition{
		{ConditionRepository, []string{"project_path"}, Fold},
		{ConditionRepositoryID, []string{"project_id"}, Equal},
		{ConditionRef, []string{"ref_path", "ref"}, Exact},
		{ConditionEnvironment, []string{"environment"}, Exact},
		{ConditionEventName, []string{"pipeline_source"}, Exact},
		{ConditionWorkflowRef, []string{"ci_config_ref_uri"}, Exact},
	}
}

func (gitlab) Breadth() Breadth { return repositoryBreadth(string(KindGitLab)) }

// Guards: in a fork merge-request pipeline (job_project_path, the project
// the job runs in, differs ASCII case-insensitively from project_path) the
// job runs fork code with the parent project's pipeline: only a mapping
// whose admin decided which projects' jobs may use it (by naming
// claims.job_project_path) admits it. A token without job_project_path
// counts as differing, so it fails closed too.
func (gitlab) Guards(c *Claims) []Guard {
	var detail string
	switch {
	case !EqualFoldASCII(c.JobProjectPath, c.Repository):
		detail = fmt.Sprintf("job_project_path %s differs from project_path %q (a fork's merge-request pipeline) "+
			"and the mapping names no claims.job_project_path", QuoteValue(c.JobProjectPath), c.Repository)
	case c.SourceProjectPath != "" && !EqualFoldASCII(c.SourceProjectPath, c.JobProjectPath):
		// Should GitLab name the fork only in source_project_path (a
		// change proposed upstream), project_path and job_project_path
		// would agree on the parent: the source still tells a fork.
		detail = fmt.Sprintf("source_project_path %q differs from job_project_path %s (a fork's merge-request pipeline) "+
			"and the mapping names no claims.job_project_path", c.SourceProjectPath, QuoteValue(c.JobProjectPath))
	default:
		return nil
	}
	return []Guard{{Reason: GuardForkPipeline, Condition: "claims." + claimJobProjectPath, Detail: detail}}
}

func (gitlab) Lint() LintRules {
	return LintRules{
		ImmutableID: []string{ConditionRepositoryID},
		ImmutableIDMessage: "no project id pinned: if the project is deleted or renamed, whoever takes its path obtains this mapping; " +
			"set repository_id to the project_id",
		RefProtectedCaveat: "a wildcard protected-branch rule (release/*) lets any developer allowed to merge create a new matching branch, " +
			"which is then protected, from any commit",
		RiskyEvents: []string{"merge_request_event", "external_pull_request_event"},
	}
}

// Issuer: the instance's URL, GitLab.com's or a self-managed one.
func (gitlab) Issuer() IssuerRules {
	return IssuerRules{AudienceHint: "the job's id_tokens keyword, with aud set to the bridge's audience"}
}

func (gitlab) read(r *claimReader, c *Claims) {
	c.Repository = r.required("project_path")
	c.RepositoryID = r.required("project_id")
	c.RepositoryOwner = r.str("namespace_path")
	c.RepositoryOwnerID = r.str("namespace_id")
	c.JobProjectPath = r.str(claimJobProjectPath)
	c.SourceProjectPath = r.str("source_project_path")
	refPath := r.str("ref_path")
	ref := r.str("ref")
	c.RefType = r.str("ref_type")
	c.RunID = r.required("pipeline_id")
	c.JobID = r.required("job_id")
	c.SHA = r.str("sha")
	c.Environment = r.str("environment")
	c.EventName = r.str("pipeline_source")
	c.WorkflowRef = r.str("ci_config_ref_uri")
	c.Actor = r.str("user_login")
	if r.err == nil {
		switch {
		case refPath != "":
			c.Ref = refPath
		case ref == "":
			r.err = fail(ReasonMissingClaim, "token has neither ref_path nor ref")
		case c.RefType == "branch":
			c.Ref = "refs/heads/" + ref
		case c.RefType == "tag":
			c.Ref = "refs/tags/" + ref
		case c.RefType == "":
			r.err = fail(ReasonMissingClaim, "token has ref but no ref_type")
		default:
			r.err = fail(ReasonInvalidClaim, "ref_type %s is neither branch nor tag", quote(c.RefType))
		}
	}
	r.check("project_path", c.Repository, func(s string) bool { return validGitLabPath(s, 2) })
	r.check("namespace_path", c.RepositoryOwner, func(s string) bool { return validGitLabPath(s, 1) })
	r.check(claimJobProjectPath, c.JobProjectPath, func(s string) bool { return validGitLabPath(s, 2) })
	r.check("project_id", c.RepositoryID, isDigits)
	r.check("namespace_id", c.RepositoryOwnerID, isDigits)
	r.check("pipeline_id", c.RunID, isDigits)
	r.check("job_id", c.JobID, isDigits)
	r.check("ref", c.Ref, validRef)
}

// validGitLabPath: at least min segments of [A-Za-z0-9._-], joined by '/'.
func validGitLabPath(s string, min int) bool {
	segs := strings.Split(s, "/")
	if len(segs) < min {
		return false
	}
	for _, seg := range segs {
		if !validPathSegment(seg) {
			return false
		}
	}
	return true
}
