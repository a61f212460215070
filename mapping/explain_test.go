package mapping

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/oidc-bridge/oidc-bridge/identity"
)

func TestExplain(t *testing.T) {
	t.Parallel()
	full := func(edit func(*Mapping)) *Mapping {
		return ghMapping(func(m *Mapping) {
			m.Conditions = Conditions{
				Repository:   One("acme/web"),
				RepositoryID: One("1339936803"),
				Ref:          One("refs/heads/main"),
				Environment:  One("production"),
				EventName:    Any("push", "workflow_dispatch"),
				WorkflowRef:  One("acme/web/.github/workflows/deploy.yml@refs/heads/main"),
				Claims: map[string]Values{
					"runner_environment":    *One("github-hosted"),
					"repository_visibility": *One("private"),
				},
			}
			if edit != nil {
				edit(m)
			}
		})
	}
	ok := func(cond, value string, patterns ...string) ConditionResult {
		r := ConditionResult{Condition: cond, Patterns: patterns, Value: value, Present: value != "", Matched: true}
		if strings.HasPrefix(cond, "claims.") {
			r.Type, r.ValueType = TypeString, TypeString
		}
		return r
	}
	fail := func(r ConditionResult) ConditionResult { r.Matched = false; return r }
	allOK := []ConditionResult{
		ok("repository", "acme/web", "acme/web"),
		ok("repository_id", "1339936803", "1339936803"),
		ok("ref", "refs/heads/main", "refs/heads/main"),
		ok("environment", "production", "production"),
		ok("event_name", "push", "push", "workflow_dispatch"),
		ok("workflow_ref", "acme/web/.github/workflows/deploy.yml@refs/heads/main", "acme/web/.github/workflows/deploy.yml@refs/heads/main"),
		ok("claims.repository_visibility", "private", "private"),
		ok("claims.runner_environment", "github-hosted", "github-hosted"),
	}
	with := func(i int, r ConditionResult) []ConditionResult {
		out := append([]ConditionResult(nil), allOK...)
		out[i] = r
		return out
	}

	tests := []struct {
		name    string
		mapping *Mapping
		claims  *identity.Claims
		want    Explanation
		detail  string // a text Detail must contain
	}{
		{name: "admitted", mapping: full(nil), claims: ghClaims(nil),
			want: Explanation{Mapping: "web-prod-deploy", Provider: "aws", Enabled: true, Mode: "enforce", Admitted: true, Conditions: allOK}},
		{name: "wrong repository", mapping: full(nil), claims: ghClaims(func(c *identity.Claims) { c.Repository = "acme/api" }),
			want: Explanation{Mapping: "web-prod-deploy", Provider: "aws", Enabled: true, Mode: "enforce", Reason: "repository",
				Conditions: with(0, fail(ok("repository", "acme/api", "acme/web")))},
			detail: `repository: "acme/api" matches none of acme/web`},
		{name: "repository_id pin mismatch", mapping: full(nil), claims: ghClaims(func(c *identity.Claims) { c.RepositoryID = "999" }),
			want: Explanation{Mapping: "web-prod-deploy", Provider: "aws", Enabled: true, Mode: "enforce", Reason: "repository_id",
				Conditions: with(1, fail(ok("repository_id", "999", "1339936803")))},
			detail: `"999"`},
		{name: "wrong ref", mapping: full(nil), claims: ghClaims(func(c *identity.Claims) { c.Ref = "refs/heads/feat/x" }),
			want: Explanation{Mapping: "web-prod-deploy", Provider: "aws", Enabled: true, Mode: "enforce", Reason: "ref",
				Conditions: with(2, fail(ok("ref", "refs/heads/feat/x", "refs/heads/main")))},
			detail: "refs/heads/feat/x"},
		{name: "missing environment", mapping: full(nil), claims: ghClaims(func(c *identity.Claims) { c.Environment = "" }),
			want: Explanation{Mapping: "web-prod-deploy", Provider: "aws", Enabled: true, Mode: "enforce", Reason: "environment",
				Conditions: with(3, fail(ok("environment", "", "production")))},
			detail: "environment: the token has no environment"},
		{name: "claims condition named, reason claims", mapping: full(nil), claims: ghClaims(func(c *identity.Claims) {
			c.Raw = map[string]any{"repository_visibility": "private", "runner_environment": "self-hosted"}
		}),
			want: Explanation{Mapping: "web-prod-deploy", Provider: "aws", Enabled: true, Mode: "enforce", Reason: "claims",
				Conditions: with(7, fail(ok("claims.runner_environment", "self-hosted", "github-hosted")))},
			detail: "claims.runner_environment"},
		{name: "disabled, conditions still shown", mapping: full(func(m *Mapping) { m.Enabled = false; m.Mode = ModeAudit }), claims: ghClaims(nil),
			want:   Explanation{Mapping: "web-prod-deploy", Provider: "aws", Mode: "audit", Reason: "disabled", Conditions: allOK},
			detail: "disabled"},
		{name: "every failure is shown, the first is the reason", mapping: full(nil), claims: ghClaims(func(c *identity.Claims) {
			c.Ref, c.EventName = "refs/heads/dev", "pull_request"
		}),
			want: Explanation{Mapping: "web-prod-deploy", Provider: "aws", Enabled: true, Mode: "enforce", Reason: "ref",
				Conditions: func() []ConditionResult {
					out := with(2, fail(ok("ref", "refs/heads/dev", "refs/heads/main")))
					out[4] = fail(ok("event_name", "pull_request", "push", "workflow_dispatch"))
					return out
				}()}},
		{name: "other issuer", mapping: ghMapping(nil), claims: ghClaims(func(c *identity.Claims) { c.IssuerName = "ghes" }),
			want: Explanation{Mapping: "web-prod-deploy", Provider: "aws", Enabled: true, Mode: "enforce", Reason: "issuer",
				Conditions: []ConditionResult{ok("repository", "acme/web", "acme/web"), ok("ref", "refs/heads/main", "refs/heads/main")}},
			detail: `"ghes"`},
		{name: "unconstrained", mapping: ghMapping(func(m *Mapping) { m.Conditions = Conditions{Ref: One("refs/heads/main")} }), claims: ghClaims(nil),
			want: Explanation{Mapping: "web-prod-deploy", Provider: "aws", Enabled: true, Mode: "enforce", Reason: "unconstrained",
				Conditions: []ConditionResult{ok("ref", "refs/heads/main", "refs/heads/main")}}},
		{name: "pull_request_target needs opt-in", mapping: ghMapping(nil), claims: ghClaims(func(c *identity.Claims) { c.EventName = "pull_request_target" }),
			want: Explanation{Mapping: "web-prod-deploy", Provider: "aws", Enabled: true, Mode: "enforce", Reason: "event_requires_opt_in",
				Conditions: []ConditionResult{ok("repository", "acme/web", "acme/web"), ok("ref", "refs/heads/main", "refs/heads/main")}},
			detail: "pull_request_target"},
		{name: "gitlab fork pipeline", mapping: glMapping(nil), claims: glClaims(func(c *identity.Claims) { c.JobProjectPath = "mallory/app" }),
			want: Explanation{Mapping: "web-prod-deploy", Provider: "aws", Enabled: true, Mode: "enforce", Reason: "fork_pipeline",
				Conditions: []ConditionResult{ok("repository", "platform/app", "platform/app"), ok("ref", "refs/heads/main", "refs/heads/main")}},
			detail: "mallory/app"},
		{name: "non-scalar claim shown as JSON", mapping: ghMapping(func(m *Mapping) {
			m.Conditions.Claims = map[string]Values{"list": *One("**"), "nothing": *Any()}
		}), claims: ghClaims(nil),
			want: Explanation{Mapping: "web-prod-deploy", Provider: "aws", Enabled: true, Mode: "enforce", Reason: "claims",
				Conditions: []ConditionResult{
					ok("repository", "acme/web", "acme/web"), ok("ref", "refs/heads/main", "refs/heads/main"),
					{Condition: "claims.list", Patterns: []string{"**"}, Type: "string", Value: `["github-hosted"]`, ValueType: "array", Present: true},
					{Condition: "claims.nothing", Patterns: []string{}, Type: "string"},
				}},
			detail: "claims.list"},
		{name: "typed claims show their types", mapping: ghMapping(func(m *Mapping) {
			m.Conditions.Claims = map[string]Values{
				"enterprise_managed": *One("true"), "float": *OneNumber("1.5"), "ref_protected": *OneBool(true), "run_number": *OneNumber("42"),
			}
		}), claims: ghClaims(nil),
			want: Explanation{Mapping: "web-prod-deploy", Provider: "aws", Enabled: true, Mode: "enforce", Reason: "claims",
				Conditions: []ConditionResult{
					ok("repository", "acme/web", "acme/web"), ok("ref", "refs/heads/main", "refs/heads/main"),
					{Condition: "claims.enterprise_managed", Patterns: []string{"true"}, Type: "string", Value: "true", ValueType: "boolean", Present: true},
					{Condition: "claims.float", Patterns: []string{"1.5"}, Type: "number", Value: "1.50", ValueType: "number", Present: true, Matched: true},
					{Condition: "claims.ref_protected", Patterns: []string{"true"}, Type: "boolean", Value: "true", ValueType: "string", Present: true},
					{Condition: "claims.run_number", Patterns: []string{"42"}, Type: "number", Value: "42", ValueType: "number", Present: true, Matched: true},
				}},
			detail: "the token's enterprise_managed is a boolean, the condition wants a string"},
		{name: "nil claims", mapping: ghMapping(nil), claims: nil,
			want: Explanation{Mapping: "web-prod-deploy", Provider: "aws", Enabled: true, Mode: "enforce", Reason: "no_claims",
				Conditions: []ConditionResult{
					{Condition: "repository", Patterns: []string{"acme/web"}},
					{Condition: "ref", Patterns: []string{"refs/heads/main"}},
				}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Explain(tt.mapping, tt.claims)
			if !strings.Contains(got.Detail, tt.detail) {
				t.Errorf("Detail %q does not contain %q", got.Detail, tt.detail)
			}
			if got.Reason != "" && got.Detail == "" {
				t.Error("a refusal without a detail")
			}
			got.Detail = ""
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Explain() (-want +got):\n%s", diff)
			}
			checkAgrees(t, tt.mapping, tt.claims)
		})
	}
}

// checkAgrees asserts that Explain says what Admits says, and that its
// conditions are consistent with it.
func checkAgrees(t *testing.T, m *Mapping, c *identity.Claims) {
	t.Helper()
	ok, reason := m.Admits(c)
	e := Explain(m, c)
	if e.Admitted != ok || e.Reason != reason {
		t.Fatalf("Explain() = (%v, %q), Admits() = (%v, %q)\nmapping %+v\nclaims %+v", e.Admitted, e.Reason, ok, reason, m.Conditions, c)
	}
	firstFailed := ""
	for _, r := range e.Conditions {
		if !r.Matched && firstFailed == "" {
			firstFailed = conditionReason(r.Condition)
		}
		if r.Matched && !r.Present {
			t.Fatalf("condition %s matched an absent claim", r.Condition)
		}
	}
	if ok && firstFailed != "" {
		t.Fatalf("admitted, but %s did not match", firstFailed)
	}
	switch reason {
	case ReasonRepository, ReasonRepositoryID, ReasonRef, ReasonEnvironment, ReasonEventName, ReasonWorkflowRef, ReasonClaims:
		if firstFailed != reason {
			t.Fatalf("reason %s, but the first failed condition is %q", reason, firstFailed)
		}
	case ReasonForkPipeline, ReasonEventOptIn:
		if firstFailed != "" {
			t.Fatalf("reason %s, but condition %s failed", reason, firstFailed)
		}
	}
	if n := countConditions(&m.Conditions); len(e.Conditions) != n {
		t.Fatalf("%d condition results for %d conditions", len(e.Conditions), n)
	}
}

func countConditions(c *Conditions) int {
	n := len(c.Claims)
	for _, v := range []*Values{c.Repository, c.RepositoryID, c.Ref, c.Environment, c.EventName, c.WorkflowRef} {
		if v != nil {
			n++
		}
	}
	return n
}

// Pools the randomized test draws mappings and claims from: values that
// match, values that almost match, absent values and the safety rules'
// triggers.
var (
	poolRepository = []*Values{nil, One("acme/web"), One("ACME/Web"), One("acme/*"), One("acme/**"), Any("acme/api", "acme/web"),
		One("platform/app"), One("*"), Any(), One("")}
	poolRepositoryID = []*Values{nil, One("1339936803"), One("20"), One("999"), One("0123"), Any("1", "20", "1339936803"), One("*")}
	poolRef          = []*Values{nil, One("refs/heads/main"), One("refs/heads/*"), One("refs/tags/v*"), One("refs/**"), Any("refs/heads/dev", "refs/heads/main")}
	poolEnvironment  = []*Values{nil, One("production"), One("*"), One("staging"), One("prod*")}
	poolEventName    = []*Values{nil, One("push"), Any("push", "workflow_dispatch"), One("*"), One("pull_request*"), Any("push", "pull_request_target"),
		One("workflow_run"), One("merge_request_event")}
	poolWorkflowRef = []*Values{nil, One("acme/web/.github/workflows/deploy.yml@refs/heads/main"), One("acme/web/**"), One("**"),
		One("gitlab.com/platform/app//.gitlab-ci.yml@refs/heads/main")}
	poolClaims = []map[string]Values{nil, {}, {"runner_environment": *One("github-hosted")}, {"runner_environment": *One("*-hosted")},
		{"enterprise_managed": *OneBool(true)}, {"enterprise_managed": *One("true")}, {"run_number": *OneNumber("42.0")},
		{"run_number": *One("42")}, {"ref_protected": *OneBool(true)},
		{"job_project_path": *One("platform/app")}, {"job_project_path": *One("platform/*")}, {"ref_protected": *One("true")},
		{"run_number": *One("4?")}, {"list": *One("**")}, {"missing": *One("*")},
		{"runner_environment": *One("github-hosted"), "repository_visibility": *One("public")}}

	poolClaimRepository = []string{"acme/web", "ACME/WEB", "acme/api", "acme/x/y", "platform/app", "mallory/app", ""}
	poolClaimRepoID     = []string{"1339936803", "20", "999", "0123", ""}
	poolClaimRef        = []string{"refs/heads/main", "refs/heads/dev", "refs/tags/v1", "refs/tags/main", "refs/heads/main/", ""}
	poolClaimEnv        = []string{"production", "Production", "staging", "prod-eu", ""}
	poolClaimEvent      = []string{"push", "pull_request", "pull_request_target", "workflow_run", "workflow_dispatch", "merge_request_event", ""}
	poolClaimWorkflow   = []string{"acme/web/.github/workflows/deploy.yml@refs/heads/main", "attacker/x/.github/workflows/deploy.yml@refs/heads/main",
		"gitlab.com/platform/app//.gitlab-ci.yml@refs/heads/main", ""}
	poolClaimJobProject = []string{"platform/app", "Platform/App", "mallory/app", "platform/app-fork", ""}
	poolRaw             = []map[string]any{nil, {}, {"runner_environment": "github-hosted", "repository_visibility": "private"},
		{"runner_environment": "self-hosted", "job_project_path": "platform/app", "ref_protected": "true"},
		{"run_number": json.Number("42"), "list": []any{"x"}, "null": nil, "ref_protected": true},
		{"job_project_path": "platform/app-fork", "runner_environment": "gitlab-hosted"}}
	poolKind   = []identity.Kind{identity.KindGitHub, identity.KindGitLab, identity.KindGeneric, "", "teamcity"}
	poolIssuer = []string{"github", "gitlab", "ci", ""}
)

func pick[T any](r *rand.Rand, pool []T) T { return pool[r.IntN(len(pool))] }

func randomCase(r *rand.Rand) (*Mapping, *identity.Claims) {
	if r.IntN(2) == 0 {
		return nearCase(r)
	}
	m := ghMapping(func(m *Mapping) {
		m.Issuer = pick(r, poolIssuer)
		m.Enabled = r.IntN(5) != 0
		m.Conditions = Conditions{
			Repository: pick(r, poolRepository), RepositoryID: pick(r, poolRepositoryID), Ref: pick(r, poolRef),
			Environment: pick(r, poolEnvironment), EventName: pick(r, poolEventName), WorkflowRef: pick(r, poolWorkflowRef),
			Claims: pick(r, poolClaims),
		}
	})
	if r.IntN(50) == 0 {
		return m, nil
	}
	c := ghClaims(func(c *identity.Claims) {
		c.IssuerName, c.Kind = pick(r, poolIssuer), pick(r, poolKind)
		c.Repository, c.RepositoryID, c.Ref = pick(r, poolClaimRepository), pick(r, poolClaimRepoID), pick(r, poolClaimRef)
		c.Environment, c.EventName, c.WorkflowRef = pick(r, poolClaimEnv), pick(r, poolClaimEvent), pick(r, poolClaimWorkflow)
		c.JobProjectPath, c.Raw = pick(r, poolClaimJobProject), pick(r, poolRaw)
	})
	return m, c
}

// nearCase starts from a github or gitlab mapping that admits its claims and
// changes one or two things, so that the later checks (the safety rules) are
// reached often.
func nearCase(r *rand.Rand) (*Mapping, *identity.Claims) {
	m, c := ghMapping(nil), ghClaims(nil)
	if r.IntN(2) == 0 {
		m, c = glMapping(nil), glClaims(nil)
	}
	for range 1 + r.IntN(2) {
		switch r.IntN(12) {
		case 0:
			m.Enabled = false
		case 1:
			m.Conditions.Repository = pick(r, poolRepository)
		case 2:
			m.Conditions.EventName = pick(r, poolEventName)
		case 3:
			m.Conditions.Claims = pick(r, poolClaims)
		case 4:
			m.Conditions.Ref = pick(r, poolRef)
		case 5:
			c.Repository = pick(r, poolClaimRepository)
		case 6, 7:
			c.EventName = pick(r, poolClaimEvent)
		case 8, 9:
			c.JobProjectPath = pick(r, poolClaimJobProject)
		case 10:
			c.Raw = pick(r, poolRaw)
		case 11:
			c.Kind = pick(r, poolKind)
		}
	}
	return m, c
}

// TestExplainAgreesWithAdmits draws many mappings and claims from pools
// that reach every reason, and checks Explain against Admits on each.
func TestExplainAgreesWithAdmits(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	reasons := map[string]int{}
	for range 50_000 {
		m, c := randomCase(r)
		checkAgrees(t, m, c)
		_, reason := m.Admits(c)
		reasons[reason]++
	}
	for _, want := range []string{"", ReasonNoClaims, ReasonDisabled, ReasonIssuer, ReasonUnconstrained, ReasonRepository, ReasonRepositoryID,
		ReasonRef, ReasonEnvironment, ReasonEventName, ReasonWorkflowRef, ReasonClaims, ReasonForkPipeline, ReasonEventOptIn} {
		if reasons[want] == 0 {
			t.Errorf("no case drew reason %q: widen the pools", want)
		}
	}
}

// FuzzExplainAgreesWithAdmits checks Explain against Admits on arbitrary
// patterns and claim values.
func FuzzExplainAgreesWithAdmits(f *testing.F) {
	f.Add(uint64(1), "acme/web", "refs/heads/main", "push", "acme/web", "refs/heads/main", "push", "github-hosted")
	f.Add(uint64(2), "acme/*", "refs/tags/*", "pull_request_target", "acme/x", "refs/tags/v1", "pull_request_target", "")
	f.Add(uint64(3), "", "**", "*", "", "refs/heads/x/../main", "workflow_run", "self-hosted")
	f.Fuzz(func(t *testing.T, seed uint64, repoP, refP, eventP, repo, ref, event, runner string) {
		r := rand.New(rand.NewPCG(seed, seed>>1))
		m, c := randomCase(r)
		if r.IntN(2) == 0 {
			m.Conditions.Repository = One(repoP)
		}
		if r.IntN(2) == 0 {
			m.Conditions.Ref = Any(refP, "refs/heads/main")
		}
		if r.IntN(2) == 0 {
			m.Conditions.EventName = One(eventP)
		}
		if r.IntN(2) == 0 {
			m.Conditions.Claims = map[string]Values{"runner_environment": *One(eventP)}
		}
		if c != nil {
			c.Repository, c.Ref, c.EventName = repo, ref, event
			c.Raw = map[string]any{"runner_environment": runner}
		}
		checkAgrees(t, m, c)
	})
}

// TestExplainEnvironmentPerKind: the explainer compares environment names as
// Admits does, by the issuer kind's rule.
func TestExplainEnvironmentPerKind(t *testing.T) {
	t.Parallel()
	upper := func(c *identity.Claims) { c.Environment = "Production" }
	for _, tt := range []struct {
		name  string
		m     *Mapping
		c     *identity.Claims
		match bool
	}{
		{"github folds case", ghMapping(func(m *Mapping) { m.Conditions.Environment = One("production") }), ghClaims(upper), true},
		{"gitlab keeps case", glMapping(func(m *Mapping) { m.Conditions.Environment = One("production") }), glClaims(upper), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := Explain(tt.m, tt.c)
			checkAgrees(t, tt.m, tt.c)
			var found bool
			for _, r := range e.Conditions {
				if r.Condition == ReasonEnvironment {
					found = true
					if r.Matched != tt.match || r.Value != "Production" {
						t.Errorf("environment result %+v, want matched %v", r, tt.match)
					}
				}
			}
			if !found || e.Admitted != tt.match {
				t.Errorf("Explain = %+v, want admitted %v", e, tt.match)
			}
		})
	}
}
