package identity

import (
	"fmt"
	"strings"
	"time"
)

// KindGitHub is GitHub Actions: github.com (issuer
// https://token.actions.githubusercontent.com, or that URL and
// /<enterprise-slug>), GHE.com data residency, and GitHub Enterprise Server
// at its own URL. test/oidctest/claimsets/github-actions.json is a token's claim set.
//
// Repository custom properties: an organization or enterprise admin may add
// custom properties to the token, and each repository with a value for one
// then carries it as the claim repo_property_<name>
// (https://docs.github.com/en/actions/concepts/security/openid-connect#using-repository-custom-properties-as-oidc-claims).
// No condition reads them: they are plain claims conditions
// (claims.repo_property_team), typed as the token carries them, so read
// passes them through in Raw untouched.
const KindGitHub Kind = "github"

// Events whose runs carry the base branch's context (ref refs/heads/main)
// but may execute code from a fork (attack catalogue 34).
const (
	eventPullRequestTarget = "pull_request_target"
	eventWorkflowRun       = "workflow_run"
)

// GuardEventOptIn is the reason of github's guard: a token of a
// pull_request_target or workflow_run run is admitted only by a mapping
// whose event_name condition lists that event literally.
const GuardEventOptIn = "event_requires_opt_in"

type github struct{}

func (github) Kind() Kind { return KindGitHub }

// Defaults: 15 minutes of age and lifetime. GitHub Actions' ID tokens live
// 5 minutes (exp = iat + 300) and the Action and the CLI request a fresh one
// per exchange; 15 minutes leaves room for a slower GitHub Enterprise Server
// clock or a later change of lifetime without admitting tokens that live
// for hours. GitHub always sends a jti.
func (github) Defaults() Defaults {
	return Defaults{TokenAge: 15 * time.Minute, TokenLifetime: 15 * time.Minute, JTIRequired: true, ReplayScope: ReplayScopeToken}
}

// Conditions: environment compares ASCII case-insensitively. GitHub's
// environment names are not case sensitive: "Production" and "production"
// are one environment, with one set of protection rules, and the token
// carries the name as the workflow spelled it. Only ASCII letters fold:
// Unicode folding would let a name with the Kelvin sign or a long s pass
// for "k" or "s", which GitHub may well keep apart, and condition patterns
// are ASCII anyway.
func (github) Conditions() []Condition {
	return []Condition{
		{ConditionRepository, []string{"repository"}, Fold},
		{ConditionRepositoryID, []string{"repository_id"}, Equal},
		{ConditionRef, []string{"ref"}, Exact},
		{ConditionEnvironment, []string{"environment"}, Fold},
		{ConditionEventName, []string{"event_name"}, Exact},
		{ConditionWorkflowRef, []string{"job_workflow_ref"}, Exact},
	}
}

func (github) Breadth() Breadth { return repositoryBreadth(string(KindGitHub)) }

// Guards: pull_request_target and workflow_run runs need a mapping that
// opts in by naming the event.
func (github) Guards(c *Claims) []Guard {
	if c.EventName != eventPullRequestTarget && c.EventName != eventWorkflowRun {
		return nil
	}
	return []Guard{{Reason: GuardEventOptIn, Condition: ConditionEventName, Literal: c.EventName,
		Detail: fmt.Sprintf("event_name %q may run fork code with the base branch's context: "+
			"conditions.event_name must list it literally", c.EventName)}}
}

func (github) Lint() LintRules {
	return LintRules{
		ImmutableID: []string{ConditionRepositoryID, "claims.repository_owner_id"},
		ImmutableIDMessage: "no immutable id pinned: if the repository or its owner is deleted or renamed, whoever re-registers the name obtains this mapping; " +
			"set repository_id (or at least claims.repository_owner_id)",
		RefProtectedCaveat: "a wildcard branch protection rule or ruleset (release/*) lets anyone with write access create a new matching branch, " +
			"which is then protected, from any commit, unless creating such branches is restricted",
		RiskyEventsListed: []string{eventPullRequestTarget, eventWorkflowRun},
		RiskyEvents:       []string{"pull_request"},
		ProductionEvents: "the mapping looks like production but admits any event, pull_request included; " +
			"list the events, e.g. push, workflow_dispatch, release",
		HostedRunner:        "github-hosted",
		HostedRunnerMessage: `the mapping looks like production but does not require GitHub-hosted runners; set claims.runner_environment "github-hosted"`,
	}
}

// Issuer: github.com's issuer, an enterprise's under it, GHE.com's and
// GitHub Enterprise Server's at their own hosts: any URL.
func (github) Issuer() IssuerRules {
	return IssuerRules{AudienceHint: "core.getIDToken(audience) in an Action, or ACTIONS_ID_TOKEN_REQUEST_URL with &audience=; the oidc-bridge Action and CLI do it"}
}

func (github) read(r *claimReader, c *Claims) {
	c.Repository = r.required("repository")
	c.RepositoryID = r.required("repository_id")
	c.RepositoryOwner = r.required("repository_owner")
	c.RepositoryOwnerID = r.required("repository_owner_id")
	c.Ref = r.required("ref")
	c.RunID = r.required("run_id")
	c.RefType = r.str("ref_type")
	c.SHA = r.str("sha")
	c.Environment = r.str("environment")
	c.EventName = r.str("event_name")
	c.WorkflowRef = r.str("job_workflow_ref")
	c.Actor = r.str("actor")
	c.RunAttempt = r.str("run_attempt")
	c.JobID = r.str("check_run_id")

	r.check("repository", c.Repository, validGitHubRepository)
	r.check("repository_owner", c.RepositoryOwner, validGitHubOwner)
	if r.err == nil {
		// The owner is part of the repository name; a token where they
		// disagree is not one GitHub issued.
		owner, _, _ := strings.Cut(c.Repository, "/")
		if !strings.EqualFold(owner, c.RepositoryOwner) {
			r.err = fail(ReasonInvalidClaim, "repository %s is not owned by repository_owner %s", quote(c.Repository), quote(c.RepositoryOwner))
		}
	}
	r.check("repository_id", c.RepositoryID, isDigits)
	r.check("repository_owner_id", c.RepositoryOwnerID, isDigits)
	r.check("run_id", c.RunID, isDigits)
	r.check("run_attempt", c.RunAttempt, isDigits)
	r.check("check_run_id", c.JobID, isDigits)
	r.check("ref", c.Ref, validRef)
}

// validGitHubOwner: GitHub user and organisation names are ASCII letters,
// digits and hyphens.
func validGitHubOwner(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isAlnum(c) || c == '-') {
			return false
		}
	}
	return true
}

// validGitHubRepository: owner/name, the name of ASCII letters, digits, '.',
// '_' and '-', and not "." or "..".
func validGitHubRepository(s string) bool {
	owner, name, ok := strings.Cut(s, "/")
	return ok && validGitHubOwner(owner) && validPathSegment(name)
}
