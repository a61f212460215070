package mapping

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/oidc-bridge/oidc-bridge/identity"
)

// ghClaims is a sample GitHub Actions token (GitHub's documented claims) as
// identity normalises it, changed by edit.
func ghClaims(edit func(*identity.Claims)) *identity.Claims {
	c := &identity.Claims{
		Issuer:            "https://token.actions.githubusercontent.com",
		IssuerName:        "github",
		Kind:              identity.KindGitHub,
		Subject:           "repo:acme/web:environment:production",
		Audience:          "https://bridge.example.com",
		JTI:               "6f0c1a2e-8b7d-4c3e-9a1f-2d4e5f6a7b8c",
		Repository:        "acme/web",
		RepositoryID:      "1339936803",
		RepositoryOwner:   "acme",
		RepositoryOwnerID: "91234567",
		Ref:               "refs/heads/main",
		RefType:           "branch",
		SHA:               "4c1b2a3d5e6f708192a3b4c5d6e7f8091a2b3c4d",
		Environment:       "production",
		EventName:         "push",
		WorkflowRef:       "acme/web/.github/workflows/deploy.yml@refs/heads/main",
		Actor:             "octocat",
		RunID:             "12345678901",
		RunAttempt:        "1",
		JobID:             "31822455555",
		Raw: map[string]any{
			"repository_owner_id":   "91234567",
			"runner_environment":    "github-hosted",
			"repository_visibility": "private",
			"ref_protected":         "true",
			"base_ref":              "",
			"run_number":            json.Number("42"),
			"enterprise_managed":    true,
			"disabled_feature":      false,
			"float":                 json.Number("1.50"),
			"big":                   json.Number("9007199254740993"),
			"list":                  []any{"github-hosted"},
			"object":                map[string]any{"a": "b"},
			"null":                  nil,
			"nul":                   "a\x00b",
			"newline":               "a\nb",
		},
	}
	if edit != nil {
		edit(c)
	}
	return c
}

// glClaims is a sample GitLab CI id_token (GitLab's documented claims) as
// identity normalises it, changed by edit.
func glClaims(edit func(*identity.Claims)) *identity.Claims {
	c := &identity.Claims{
		Issuer:            "https://gitlab.com",
		IssuerName:        "gitlab",
		Kind:              identity.KindGitLab,
		Subject:           "project_path:platform/app:ref_type:branch:ref:main",
		Audience:          "https://bridge.example.com",
		JTI:               "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
		Repository:        "platform/app",
		RepositoryID:      "20",
		RepositoryOwner:   "platform",
		RepositoryOwnerID: "72",
		JobProjectPath:    "platform/app",
		Ref:               "refs/heads/main",
		RefType:           "branch",
		Environment:       "production",
		EventName:         "push",
		WorkflowRef:       "gitlab.com/platform/app//.gitlab-ci.yml@refs/heads/main",
		Actor:             "alice",
		RunID:             "1212",
		JobID:             "2468",
		Raw: map[string]any{
			"job_project_path":      "platform/app",
			"job_project_id":        "20",
			"ref_protected":         "true",
			"environment_protected": "true",
			"runner_id":             json.Number("1"),
			"runner_environment":    "gitlab-hosted",
		},
	}
	if edit != nil {
		edit(c)
	}
	return c
}

func ghMapping(edit func(*Mapping)) *Mapping {
	m := &Mapping{
		Name:    "web-prod-deploy",
		Issuer:  "github",
		Enabled: true,
		Conditions: Conditions{
			Repository: One("acme/web"),
			Ref:        One("refs/heads/main"),
		},
		Provider:           "aws",
		Target:             json.RawMessage(`{"role_arn":"arn:aws:iam::123456789012:role/deploy","region":"eu-west-1"}`),
		MaxDurationSeconds: 3600,
	}
	if edit != nil {
		edit(m)
	}
	return m
}

func glMapping(edit func(*Mapping)) *Mapping {
	return ghMapping(func(m *Mapping) {
		m.Issuer = "gitlab"
		m.Conditions.Repository = One("platform/app")
		if edit != nil {
			edit(m)
		}
	})
}

func TestAdmits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		mapping    *Mapping
		claims     *identity.Claims
		wantOK     bool
		wantReason string
	}{
		{"github baseline", ghMapping(nil), ghClaims(nil), true, ""},
		{"gitlab baseline", glMapping(nil), glClaims(nil), true, ""},
		{"nil claims", ghMapping(nil), nil, false, ReasonNoClaims},
		{"disabled", ghMapping(func(m *Mapping) { m.Enabled = false }), ghClaims(nil), false, ReasonDisabled},
		{"other issuer", ghMapping(nil), ghClaims(func(c *identity.Claims) { c.IssuerName = "github-enterprise" }), false, ReasonIssuer},
		{"issuer name missing", ghMapping(nil), ghClaims(func(c *identity.Claims) { c.IssuerName = "" }), false, ReasonIssuer},

		// repository
		{"repository case-insensitive", ghMapping(nil), ghClaims(func(c *identity.Claims) { c.Repository = "ACME/Web" }), true, ""},
		{"repository pattern case-insensitive", ghMapping(func(m *Mapping) { m.Conditions.Repository = One("ACME/WEB") }), ghClaims(nil), true, ""},
		{"repository other", ghMapping(nil), ghClaims(func(c *identity.Claims) { c.Repository = "acme/webx" }), false, ReasonRepository},
		{"repository cyrillic", ghMapping(nil), ghClaims(func(c *identity.Claims) { c.Repository = "\u0430cme/web" }), false, ReasonRepository},
		{"repository trailing space", ghMapping(nil), ghClaims(func(c *identity.Claims) { c.Repository = "acme/web " }), false, ReasonRepository},
		{"repository NUL", ghMapping(nil), ghClaims(func(c *identity.Claims) { c.Repository = "acme/web\x00" }), false, ReasonRepository},
		{"repository absent", ghMapping(nil), ghClaims(func(c *identity.Claims) { c.Repository = "" }), false, ReasonRepository},
		{"repository absent vs star", ghMapping(func(m *Mapping) { m.Conditions.Repository = One("*") }), ghClaims(func(c *identity.Claims) { c.Repository = "" }), false, ReasonRepository},
		{"repository absent vs dstar", ghMapping(func(m *Mapping) { m.Conditions.Repository = One("**") }), ghClaims(func(c *identity.Claims) { c.Repository = "" }), false, ReasonRepository},
		{"repository absent vs empty pattern", ghMapping(func(m *Mapping) { m.Conditions.Repository = One("") }), ghClaims(func(c *identity.Claims) { c.Repository = "" }), false, ReasonRepository},
		{"repository empty list", ghMapping(func(m *Mapping) { m.Conditions.Repository = Any() }), ghClaims(nil), false, ReasonRepository},
		{"repository list second", ghMapping(func(m *Mapping) { m.Conditions.Repository = Any("acme/api", "acme/web") }), ghClaims(nil), true, ""},
		{"repository star one level", ghMapping(func(m *Mapping) { m.Conditions.Repository = One("acme/*") }), ghClaims(func(c *identity.Claims) { c.Repository = "acme/x/y" }), false, ReasonRepository},
		{"repository dstar nested", ghMapping(func(m *Mapping) { m.Conditions.Repository = One("acme/**") }), ghClaims(func(c *identity.Claims) { c.Repository = "acme/x/y" }), true, ""},
		{"repository underscore literal", ghMapping(func(m *Mapping) { m.Conditions.Repository = One("acme_corp/web") }), ghClaims(func(c *identity.Claims) { c.Repository = "acmeXcorp/web" }), false, ReasonRepository},
		{"repository prefix wildcard is explicit", ghMapping(func(m *Mapping) { m.Conditions.Repository = One("acme/app*") }), ghClaims(func(c *identity.Claims) { c.Repository = "acme/app.evil" }), true, ""},
		{"repository exact refuses prefix", ghMapping(func(m *Mapping) { m.Conditions.Repository = One("acme/app") }), ghClaims(func(c *identity.Claims) { c.Repository = "acme/app.evil" }), false, ReasonRepository},

		// repository_id
		{"repository_id equal", ghMapping(func(m *Mapping) { m.Conditions.RepositoryID = One("1339936803") }), ghClaims(nil), true, ""},
		{"repository_id resurrected name", ghMapping(func(m *Mapping) { m.Conditions.RepositoryID = One("1339936803") }), ghClaims(func(c *identity.Claims) { c.RepositoryID = "999" }), false, ReasonRepositoryID},
		{"repository_id leading zero", ghMapping(func(m *Mapping) { m.Conditions.RepositoryID = One("123") }), ghClaims(func(c *identity.Claims) { c.RepositoryID = "0123" }), false, ReasonRepositoryID},
		{"repository_id leading zero in mapping", ghMapping(func(m *Mapping) { m.Conditions.RepositoryID = One("0123") }), ghClaims(func(c *identity.Claims) { c.RepositoryID = "123" }), false, ReasonRepositoryID},
		{"repository_id no patterns", ghMapping(func(m *Mapping) { m.Conditions.RepositoryID = One("13399*") }), ghClaims(nil), false, ReasonRepositoryID},
		{"repository_id no wildcard star", ghMapping(func(m *Mapping) { m.Conditions.RepositoryID = One("*") }), ghClaims(nil), false, ReasonRepositoryID},
		{"repository_id absent", ghMapping(func(m *Mapping) { m.Conditions.RepositoryID = One("1339936803") }), ghClaims(func(c *identity.Claims) { c.RepositoryID = "" }), false, ReasonRepositoryID},
		{"repository_id list", ghMapping(func(m *Mapping) { m.Conditions.RepositoryID = Any("1", "1339936803") }), ghClaims(nil), true, ""},
		{"repository_id alone", ghMapping(func(m *Mapping) {
			m.Conditions = Conditions{RepositoryID: One("1339936803")}
		}), ghClaims(nil), true, ""},

		// ref
		{"ref mainx", ghMapping(nil), ghClaims(func(c *identity.Claims) { c.Ref = "refs/heads/mainx" }), false, ReasonRef},
		{"ref tag main", ghMapping(nil), ghClaims(func(c *identity.Claims) { c.Ref = "refs/tags/main" }), false, ReasonRef},
		{"ref bare main", ghMapping(nil), ghClaims(func(c *identity.Claims) { c.Ref = "main" }), false, ReasonRef},
		{"ref dot dot", ghMapping(nil), ghClaims(func(c *identity.Claims) { c.Ref = "refs/heads/x/../main" }), false, ReasonRef},
		{"ref trailing slash", ghMapping(nil), ghClaims(func(c *identity.Claims) { c.Ref = "refs/heads/main/" }), false, ReasonRef},
		{"ref double slash", ghMapping(nil), ghClaims(func(c *identity.Claims) { c.Ref = "refs/heads//main" }), false, ReasonRef},
		{"ref NUL", ghMapping(nil), ghClaims(func(c *identity.Claims) { c.Ref = "refs/heads/main\x00" }), false, ReasonRef},
		{"ref newline", ghMapping(nil), ghClaims(func(c *identity.Claims) { c.Ref = "refs/heads/main\n" }), false, ReasonRef},
		{"ref suffix", ghMapping(nil), ghClaims(func(c *identity.Claims) { c.Ref = "refs/heads/x/refs/heads/main" }), false, ReasonRef},
		{"ref case-sensitive", ghMapping(nil), ghClaims(func(c *identity.Claims) { c.Ref = "refs/heads/Main" }), false, ReasonRef},
		{"ref pull", ghMapping(nil), ghClaims(func(c *identity.Claims) { c.Ref = "refs/pull/1/merge" }), false, ReasonRef},
		{"ref absent", ghMapping(nil), ghClaims(func(c *identity.Claims) { c.Ref = "" }), false, ReasonRef},
		{"ref tag pattern", ghMapping(func(m *Mapping) { m.Conditions.Ref = One("refs/tags/v*") }), ghClaims(func(c *identity.Claims) { c.Ref = "refs/tags/v1.2.3" }), true, ""},
		{"ref tag pattern branch", ghMapping(func(m *Mapping) { m.Conditions.Ref = One("refs/tags/v*") }), ghClaims(func(c *identity.Claims) { c.Ref = "refs/heads/v1" }), false, ReasonRef},
		{"ref star no slash", ghMapping(func(m *Mapping) { m.Conditions.Ref = One("refs/heads/release-*") }), ghClaims(func(c *identity.Claims) { c.Ref = "refs/heads/release-1/evil" }), false, ReasonRef},
		{"ref question not slash", ghMapping(func(m *Mapping) { m.Conditions.Ref = One("refs/heads/a?b") }), ghClaims(func(c *identity.Claims) { c.Ref = "refs/heads/a/b" }), false, ReasonRef},
		{"ref question", ghMapping(func(m *Mapping) { m.Conditions.Ref = One("refs/heads/a?b") }), ghClaims(func(c *identity.Claims) { c.Ref = "refs/heads/a-b" }), true, ""},
		{"gitlab tag main", glMapping(nil), glClaims(func(c *identity.Claims) { c.Ref = "refs/tags/main"; c.RefType = "tag" }), false, ReasonRef},

		// environment, event_name, workflow_ref
		{"environment equal", ghMapping(func(m *Mapping) { m.Conditions.Environment = One("production") }), ghClaims(nil), true, ""},
		{"github environment case-insensitive", ghMapping(func(m *Mapping) { m.Conditions.Environment = One("production") }), ghClaims(func(c *identity.Claims) { c.Environment = "Production" }), true, ""},
		{"github environment condition upper case", ghMapping(func(m *Mapping) { m.Conditions.Environment = One("PRODUCTION") }), ghClaims(nil), true, ""},
		{"github environment pattern case-insensitive", ghMapping(func(m *Mapping) { m.Conditions.Environment = One("prod*") }), ghClaims(func(c *identity.Claims) { c.Environment = "Production-EU" }), true, ""},
		{"github environment other name", ghMapping(func(m *Mapping) { m.Conditions.Environment = One("production") }), ghClaims(func(c *identity.Claims) { c.Environment = "Production2" }), false, ReasonEnvironment},
		{"github environment Kelvin sign never folds", ghMapping(func(m *Mapping) { m.Conditions.Environment = One("k8s") }), ghClaims(func(c *identity.Claims) { c.Environment = "\u212a8s" }), false, ReasonEnvironment},
		{"github environment long s never folds", ghMapping(func(m *Mapping) { m.Conditions.Environment = One("staging") }), ghClaims(func(c *identity.Claims) { c.Environment = "\u017ftaging" }), false, ReasonEnvironment},
		{"gitlab environment case-sensitive", glMapping(func(m *Mapping) { m.Conditions.Environment = One("production") }), glClaims(func(c *identity.Claims) { c.Environment = "Production" }), false, ReasonEnvironment},
		{"gitlab environment pattern case-sensitive", glMapping(func(m *Mapping) { m.Conditions.Environment = One("prod*") }), glClaims(func(c *identity.Claims) { c.Environment = "Production" }), false, ReasonEnvironment},
		{"gitlab environment equal", glMapping(func(m *Mapping) { m.Conditions.Environment = One("production") }), glClaims(nil), true, ""},
		{"generic environment case-sensitive", ghMapping(func(m *Mapping) { m.Conditions.Environment = One("production") }), ghClaims(func(c *identity.Claims) { c.Kind = identity.KindGeneric; c.Environment = "Production" }), false, ReasonEnvironment},
		{"unknown kind environment case-sensitive", ghMapping(func(m *Mapping) { m.Conditions.Environment = One("production") }), ghClaims(func(c *identity.Claims) { c.Kind = "teamcity"; c.Environment = "Production" }), false, ReasonEnvironment},
		{"environment absent", ghMapping(func(m *Mapping) { m.Conditions.Environment = One("*") }), ghClaims(func(c *identity.Claims) { c.Environment = "" }), false, ReasonEnvironment},
		{"environment spoofed on branch", ghMapping(func(m *Mapping) { m.Conditions.Environment = One("production") }), ghClaims(func(c *identity.Claims) { c.Ref = "refs/heads/feat/x" }), false, ReasonRef},
		{"environment NUL", ghMapping(func(m *Mapping) { m.Conditions.Environment = One("production") }), ghClaims(func(c *identity.Claims) { c.Environment = "production\x00" }), false, ReasonEnvironment},
		{"event_name list", ghMapping(func(m *Mapping) { m.Conditions.EventName = Any("push", "workflow_dispatch") }), ghClaims(nil), true, ""},
		{"event_name other", ghMapping(func(m *Mapping) { m.Conditions.EventName = Any("push", "workflow_dispatch") }), ghClaims(func(c *identity.Claims) { c.EventName = "pull_request" }), false, ReasonEventName},
		{"event_name case-sensitive", ghMapping(func(m *Mapping) { m.Conditions.EventName = One("push") }), ghClaims(func(c *identity.Claims) { c.EventName = "Push" }), false, ReasonEventName},
		{"workflow_ref equal", ghMapping(func(m *Mapping) {
			m.Conditions.WorkflowRef = One("acme/web/.github/workflows/deploy.yml@refs/heads/main")
		}), ghClaims(nil), true, ""},
		{"workflow_ref attacker repo", ghMapping(func(m *Mapping) {
			m.Conditions.WorkflowRef = One("acme/web/.github/workflows/deploy.yml@refs/heads/main")
		}), ghClaims(func(c *identity.Claims) { c.WorkflowRef = "attacker/x/.github/workflows/deploy.yml@refs/heads/main" }), false, ReasonWorkflowRef},
		{"workflow_ref evil branch", ghMapping(func(m *Mapping) {
			m.Conditions.WorkflowRef = One("acme/web/.github/workflows/deploy.yml@refs/heads/main")
		}), ghClaims(func(c *identity.Claims) { c.WorkflowRef = "acme/web/.github/workflows/deploy.yml@refs/heads/evil" }), false, ReasonWorkflowRef},
		{"workflow_ref absent", ghMapping(func(m *Mapping) { m.Conditions.WorkflowRef = One("**") }), ghClaims(func(c *identity.Claims) { c.WorkflowRef = "" }), false, ReasonWorkflowRef},
		{"workflow_ref case-sensitive", ghMapping(func(m *Mapping) {
			m.Conditions.WorkflowRef = One("acme/web/.github/workflows/deploy.yml@refs/heads/main")
		}), ghClaims(func(c *identity.Claims) { c.WorkflowRef = "ACME/web/.github/workflows/deploy.yml@refs/heads/main" }), false, ReasonWorkflowRef},
		{"workflow_ref sha pinned", ghMapping(func(m *Mapping) {
			m.Conditions.WorkflowRef = One("acme/deploy/.github/workflows/deploy.yml@4c1b2a3d5e6f708192a3b4c5d6e7f8091a2b3c4d")
		}), ghClaims(func(c *identity.Claims) {
			c.WorkflowRef = "acme/deploy/.github/workflows/deploy.yml@4c1b2a3d5e6f708192a3b4c5d6e7f8091a2b3c4d"
		}), true, ""},

		// claims
		{"claims string", ghMapping(func(m *Mapping) { m.Conditions.Claims = map[string]Values{"runner_environment": *One("github-hosted")} }), ghClaims(nil), true, ""},
		{"claims string other", ghMapping(func(m *Mapping) { m.Conditions.Claims = map[string]Values{"runner_environment": *One("self-hosted")} }), ghClaims(nil), false, ReasonClaims},
		{"claims case-sensitive", ghMapping(func(m *Mapping) { m.Conditions.Claims = map[string]Values{"runner_environment": *One("GitHub-Hosted")} }), ghClaims(nil), false, ReasonClaims},
		{"claims missing", ghMapping(func(m *Mapping) { m.Conditions.Claims = map[string]Values{"no_such_claim": *One("*")} }), ghClaims(nil), false, ReasonClaims},
		{"claims missing dstar", ghMapping(func(m *Mapping) { m.Conditions.Claims = map[string]Values{"no_such_claim": *One("**")} }), ghClaims(nil), false, ReasonClaims},
		{"claims nil raw", ghMapping(func(m *Mapping) { m.Conditions.Claims = map[string]Values{"runner_environment": *One("*")} }), ghClaims(func(c *identity.Claims) { c.Raw = nil }), false, ReasonClaims},
		{"claims empty string", ghMapping(func(m *Mapping) { m.Conditions.Claims = map[string]Values{"base_ref": *One("*")} }), ghClaims(nil), false, ReasonClaims},
		{"claims number", ghMapping(func(m *Mapping) { m.Conditions.Claims = map[string]Values{"run_number": *OneNumber("42")} }), ghClaims(nil), true, ""},
		{"claims number other", ghMapping(func(m *Mapping) { m.Conditions.Claims = map[string]Values{"run_number": *OneNumber("43")} }), ghClaims(nil), false, ReasonClaims},
		{"claims string never matches a number", ghMapping(func(m *Mapping) { m.Conditions.Claims = map[string]Values{"run_number": *One("42")} }), ghClaims(nil), false, ReasonClaims},
		{"claims string pattern never matches a number", ghMapping(func(m *Mapping) { m.Conditions.Claims = map[string]Values{"run_number": *One("4?")} }), ghClaims(nil), false, ReasonClaims},
		{"claims number never matches a string", ghMapping(func(m *Mapping) {
			m.Conditions.Claims = map[string]Values{"repository_owner_id": *OneNumber("91234567")}
		}), ghClaims(nil), false, ReasonClaims},
		{"claims number by value", ghMapping(func(m *Mapping) { m.Conditions.Claims = map[string]Values{"float": *OneNumber("1.5")} }), ghClaims(nil), true, ""},
		{"claims number as written", ghMapping(func(m *Mapping) { m.Conditions.Claims = map[string]Values{"float": *OneNumber("1.50")} }), ghClaims(nil), true, ""},
		{"claims number exponent", ghMapping(func(m *Mapping) { m.Conditions.Claims = map[string]Values{"float": *OneNumber("15e-1")} }), ghClaims(nil), true, ""},
		{"claims number close but not equal", ghMapping(func(m *Mapping) { m.Conditions.Claims = map[string]Values{"float": *OneNumber("1.5000000000000001")} }), ghClaims(nil), false, ReasonClaims},
		{"claims number beyond float64", ghMapping(func(m *Mapping) { m.Conditions.Claims = map[string]Values{"big": *OneNumber("9007199254740992")} }), ghClaims(nil), false, ReasonClaims},
		{"claims number beyond float64 exact", ghMapping(func(m *Mapping) { m.Conditions.Claims = map[string]Values{"big": *OneNumber("9007199254740993")} }), ghClaims(nil), true, ""},
		{"claims number list", ghMapping(func(m *Mapping) {
			m.Conditions.Claims = map[string]Values{"run_number": *AnyOf(TypeNumber, "41", "42.0")}
		}), ghClaims(nil), true, ""},
		{"claims bool true", ghMapping(func(m *Mapping) { m.Conditions.Claims = map[string]Values{"enterprise_managed": *OneBool(true)} }), ghClaims(nil), true, ""},
		{"claims bool false", ghMapping(func(m *Mapping) { m.Conditions.Claims = map[string]Values{"disabled_feature": *OneBool(false)} }), ghClaims(nil), true, ""},
		{"claims bool other", ghMapping(func(m *Mapping) { m.Conditions.Claims = map[string]Values{"enterprise_managed": *OneBool(false)} }), ghClaims(nil), false, ReasonClaims},
		{"claims bool list", ghMapping(func(m *Mapping) {
			m.Conditions.Claims = map[string]Values{"enterprise_managed": *AnyOf(TypeBoolean, "false", "true")}
		}), ghClaims(nil), true, ""},
		{"claims string true never matches a bool", ghMapping(func(m *Mapping) { m.Conditions.Claims = map[string]Values{"enterprise_managed": *One("true")} }), ghClaims(nil), false, ReasonClaims},
		{"claims string star never matches a bool", ghMapping(func(m *Mapping) { m.Conditions.Claims = map[string]Values{"enterprise_managed": *One("**")} }), ghClaims(nil), false, ReasonClaims},
		{"claims bool never matches a string true", ghMapping(func(m *Mapping) { m.Conditions.Claims = map[string]Values{"ref_protected": *OneBool(true)} }), ghClaims(nil), false, ReasonClaims},
		{"claims bool never matches a number", ghMapping(func(m *Mapping) { m.Conditions.Claims = map[string]Values{"run_number": *OneBool(true)} }), ghClaims(nil), false, ReasonClaims},
		{"claims number never matches a bool", ghMapping(func(m *Mapping) { m.Conditions.Claims = map[string]Values{"enterprise_managed": *OneNumber("1")} }), ghClaims(nil), false, ReasonClaims},
		{"claims string true", ghMapping(func(m *Mapping) { m.Conditions.Claims = map[string]Values{"ref_protected": *One("true")} }), ghClaims(nil), true, ""},
		{"claims invalid value never", ghMapping(func(m *Mapping) {
			m.Conditions.Claims = map[string]Values{"ref_protected": {Invalid: ": null is not a value"}}
		}), ghClaims(nil), false, ReasonClaims},
		{"claims list never", ghMapping(func(m *Mapping) { m.Conditions.Claims = map[string]Values{"list": *One("**")} }), ghClaims(nil), false, ReasonClaims},
		{"claims list element never", ghMapping(func(m *Mapping) { m.Conditions.Claims = map[string]Values{"list": *One("github-hosted")} }), ghClaims(nil), false, ReasonClaims},
		{"claims object never", ghMapping(func(m *Mapping) { m.Conditions.Claims = map[string]Values{"object": *One("**")} }), ghClaims(nil), false, ReasonClaims},
		{"claims null never", ghMapping(func(m *Mapping) { m.Conditions.Claims = map[string]Values{"null": *One("**")} }), ghClaims(nil), false, ReasonClaims},
		{"claims NUL value exact", ghMapping(func(m *Mapping) { m.Conditions.Claims = map[string]Values{"nul": *One("a")} }), ghClaims(nil), false, ReasonClaims},
		{"claims NUL value star", ghMapping(func(m *Mapping) { m.Conditions.Claims = map[string]Values{"nul": *One("a*")} }), ghClaims(nil), true, ""},
		{"claims newline value", ghMapping(func(m *Mapping) { m.Conditions.Claims = map[string]Values{"newline": *One("a")} }), ghClaims(nil), false, ReasonClaims},
		{"claims all must hold", ghMapping(func(m *Mapping) {
			m.Conditions.Claims = map[string]Values{"runner_environment": *One("github-hosted"), "repository_visibility": *One("public")}
		}), ghClaims(nil), false, ReasonClaims},
		{"claims owner id", ghMapping(func(m *Mapping) { m.Conditions.Claims = map[string]Values{"repository_owner_id": *One("91234567")} }), ghClaims(nil), true, ""},
		{"claims owner id resurrected", ghMapping(func(m *Mapping) { m.Conditions.Claims = map[string]Values{"repository_owner_id": *One("91234567")} }), ghClaims(func(c *identity.Claims) {
			c.Raw = map[string]any{"repository_owner_id": "1"}
		}), false, ReasonClaims},

		// breadth
		{"github unconstrained", ghMapping(func(m *Mapping) { m.Conditions = Conditions{Ref: One("refs/heads/main")} }), ghClaims(nil), false, ReasonUnconstrained},
		{"github no conditions", ghMapping(func(m *Mapping) { m.Conditions = Conditions{} }), ghClaims(nil), false, ReasonUnconstrained},
		{"gitlab unconstrained", glMapping(func(m *Mapping) {
			m.Conditions = Conditions{Claims: map[string]Values{"job_project_path": *One("platform/app")}}
		}), glClaims(nil), false, ReasonUnconstrained},
		{"generic no conditions", ghMapping(func(m *Mapping) { m.Issuer = "ci"; m.Conditions = Conditions{} }), ghClaims(func(c *identity.Claims) {
			c.IssuerName, c.Kind = "ci", identity.KindGeneric
		}), false, ReasonUnconstrained},
		{"generic claims only", ghMapping(func(m *Mapping) {
			m.Issuer = "ci"
			m.Conditions = Conditions{Claims: map[string]Values{"runner_environment": *One("github-hosted")}}
		}), ghClaims(func(c *identity.Claims) { c.IssuerName, c.Kind = "ci", identity.KindGeneric }), true, ""},
		{"generic ref only", ghMapping(func(m *Mapping) { m.Issuer = "ci"; m.Conditions = Conditions{Ref: One("refs/heads/main")} }), ghClaims(func(c *identity.Claims) {
			c.IssuerName, c.Kind = "ci", identity.KindGeneric
		}), true, ""},
		{"unknown kind treated strictly", ghMapping(func(m *Mapping) { m.Conditions = Conditions{Ref: One("refs/heads/main")} }), ghClaims(func(c *identity.Claims) {
			c.Kind = ""
		}), false, ReasonUnconstrained},
		{"unknown kind with repository", ghMapping(nil), ghClaims(func(c *identity.Claims) { c.Kind = "teamcity" }), true, ""},

		// GitLab fork merge-request pipelines
		{"gitlab fork refused", glMapping(nil), glClaims(func(c *identity.Claims) { c.Repository = "mallory/app" }), false, ReasonRepository},
		{"gitlab fork pipeline refused", glMapping(nil), glClaims(func(c *identity.Claims) { c.JobProjectPath = "mallory/app" }), false, ReasonForkPipeline},
		{"gitlab fork pipeline wildcard repo", glMapping(func(m *Mapping) { m.Conditions.Repository = One("platform/**") }), glClaims(func(c *identity.Claims) {
			c.JobProjectPath = "platform/app-fork"
		}), false, ReasonForkPipeline},
		{"gitlab fork pipeline opted in", glMapping(func(m *Mapping) {
			m.Conditions.Claims = map[string]Values{"job_project_path": *One("platform/app-fork")}
		}), glClaims(func(c *identity.Claims) {
			c.JobProjectPath = "platform/app-fork"
			c.Raw = map[string]any{"job_project_path": "platform/app-fork"}
		}), true, ""},
		{"gitlab fork pipeline opted in other project", glMapping(func(m *Mapping) {
			m.Conditions.Claims = map[string]Values{"job_project_path": *One("platform/app")}
		}), glClaims(func(c *identity.Claims) {
			c.JobProjectPath = "mallory/app"
			c.Raw = map[string]any{"job_project_path": "mallory/app"}
		}), false, ReasonClaims},
		{"gitlab job project path case only", glMapping(nil), glClaims(func(c *identity.Claims) { c.JobProjectPath = "Platform/App" }), true, ""},
		{"gitlab job project path missing", glMapping(nil), glClaims(func(c *identity.Claims) { c.JobProjectPath = "" }), false, ReasonForkPipeline},
		{"gitlab job project path kelvin", glMapping(func(m *Mapping) { m.Conditions.Repository = One("platform/k") }), glClaims(func(c *identity.Claims) {
			c.Repository, c.JobProjectPath = "platform/k", "platform/\u212a"
		}), false, ReasonForkPipeline},
		{"gitlab source project a fork", glMapping(nil), glClaims(func(c *identity.Claims) { c.SourceProjectPath = "mallory/app" }), false, ReasonForkPipeline},
		{"gitlab source project the job's", glMapping(nil), glClaims(func(c *identity.Claims) { c.SourceProjectPath = "Platform/App" }), true, ""},
		{"gitlab source project a fork opted in", glMapping(func(m *Mapping) {
			m.Conditions.Claims = map[string]Values{"job_project_path": *One("platform/app")}
		}), glClaims(func(c *identity.Claims) {
			c.SourceProjectPath = "mallory/app"
			c.Raw = map[string]any{"job_project_path": "platform/app"}
		}), true, ""},
		{"github ignores job project path", ghMapping(nil), ghClaims(func(c *identity.Claims) { c.JobProjectPath = "other/x" }), true, ""},

		// pull_request_target and workflow_run
		{"pull_request_target refused", ghMapping(nil), ghClaims(func(c *identity.Claims) { c.EventName = "pull_request_target" }), false, ReasonEventOptIn},
		{"workflow_run refused", ghMapping(nil), ghClaims(func(c *identity.Claims) { c.EventName = "workflow_run" }), false, ReasonEventOptIn},
		{"pull_request_target star is no opt-in", ghMapping(func(m *Mapping) { m.Conditions.EventName = One("*") }), ghClaims(func(c *identity.Claims) {
			c.EventName = "pull_request_target"
		}), false, ReasonEventOptIn},
		{"pull_request_target prefix is no opt-in", ghMapping(func(m *Mapping) { m.Conditions.EventName = One("pull_request*") }), ghClaims(func(c *identity.Claims) {
			c.EventName = "pull_request_target"
		}), false, ReasonEventOptIn},
		{"pull_request_target opted in", ghMapping(func(m *Mapping) { m.Conditions.EventName = Any("push", "pull_request_target") }), ghClaims(func(c *identity.Claims) {
			c.EventName = "pull_request_target"
		}), true, ""},
		{"workflow_run opted in", ghMapping(func(m *Mapping) { m.Conditions.EventName = One("workflow_run") }), ghClaims(func(c *identity.Claims) {
			c.EventName = "workflow_run"
		}), true, ""},
		{"workflow_run other opt-in", ghMapping(func(m *Mapping) { m.Conditions.EventName = Any("pull_request_target", "workflow_*") }), ghClaims(func(c *identity.Claims) {
			c.EventName = "workflow_run"
		}), false, ReasonEventOptIn},
		{"pull_request plain", ghMapping(nil), ghClaims(func(c *identity.Claims) { c.EventName = "pull_request" }), true, ""},
		{"gitlab event names unaffected", glMapping(nil), glClaims(func(c *identity.Claims) { c.EventName = "pull_request_target" }), true, ""},
		{"conditions reported before opt-in", ghMapping(nil), ghClaims(func(c *identity.Claims) {
			c.EventName, c.Ref = "pull_request_target", "refs/heads/dev"
		}), false, ReasonRef},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ok, reason := tt.mapping.Admits(tt.claims)
			if ok != tt.wantOK || reason != tt.wantReason {
				t.Errorf("Admits() = (%v, %q), want (%v, %q)", ok, reason, tt.wantOK, tt.wantReason)
			}
		})
	}
}

func TestSelect(t *testing.T) {
	t.Parallel()
	web := *ghMapping(func(m *Mapping) { m.Name = "web" })
	wild := *ghMapping(func(m *Mapping) { m.Name = "any"; m.Conditions.Repository = One("acme/*") })
	api := *ghMapping(func(m *Mapping) { m.Name = "api"; m.Conditions.Repository = One("acme/api") })
	off := *ghMapping(func(m *Mapping) { m.Name = "off"; m.Enabled = false })
	lab := *glMapping(func(m *Mapping) { m.Name = "lab"; m.Conditions.Repository = One("acme/web") })
	all := []Mapping{web, wild, api, off, lab}

	tests := []struct {
		name   string
		ms     []Mapping
		claims *identity.Claims
		want   []string
	}{
		{"two admit, in order", all, ghClaims(nil), []string{"web", "any"}},
		{"one admits", all, ghClaims(func(c *identity.Claims) { c.Repository = "acme/api" }), []string{"any", "api"}},
		{"none", all, ghClaims(func(c *identity.Claims) { c.Repository = "other/web" }), nil},
		{"empty list", nil, ghClaims(nil), nil},
		{"nil claims", all, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			for _, m := range Select(tt.ms, tt.claims) {
				got = append(got, m.Name)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Select() names (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("returns the mappings themselves", func(t *testing.T) {
		t.Parallel()
		got := Select(all, ghClaims(func(c *identity.Claims) { c.Repository = "acme/api" }))
		if diff := cmp.Diff([]Mapping{wild, api}, got); diff != "" {
			t.Errorf("Select() (-want +got):\n%s", diff)
		}
	})
}

// TestAdmitsAgreesWithValidation checks that a mapping too broad for
// validation is also refused at match time, for every kind.
func TestAdmitsAgreesWithValidation(t *testing.T) {
	t.Parallel()
	for _, kind := range []identity.Kind{identity.KindGitHub, identity.KindGitLab, identity.KindGeneric, "", "other"} {
		for _, cond := range []Conditions{
			{},
			{Ref: One("refs/heads/main")},
			{Environment: One("production")},
			{Claims: map[string]Values{"runner_environment": *One("github-hosted")}},
		} {
			m := ghMapping(func(m *Mapping) { m.Conditions = cond })
			c := ghClaims(func(c *identity.Claims) { c.Kind = kind })
			verr := ValidateMapping(m, kind)
			ok, _ := m.Admits(c)
			if verr != nil && ok {
				t.Errorf("kind %s, conditions %+v: validation refuses (%v) but Admits admits", kind, cond, verr)
			}
		}
	}
}

func BenchmarkAdmits(b *testing.B) {
	c := ghClaims(nil)
	cases := []struct {
		name string
		m    *Mapping
	}{
		{"literal", ghMapping(func(m *Mapping) {
			m.Conditions.RepositoryID = One("1339936803")
			m.Conditions.Environment = One("production")
			m.Conditions.EventName = Any("push", "workflow_dispatch")
			m.Conditions.WorkflowRef = One("acme/web/.github/workflows/deploy.yml@refs/heads/main")
			m.Conditions.Claims = map[string]Values{"runner_environment": *One("github-hosted")}
		})},
		{"wildcards", ghMapping(func(m *Mapping) {
			m.Conditions.Repository = One("acme/**")
			m.Conditions.Ref = Any("refs/heads/release-*", "refs/heads/ma?n")
			m.Conditions.WorkflowRef = One("acme/*/.github/workflows/*.yml@refs/heads/**")
		})},
		{"refused", ghMapping(func(m *Mapping) { m.Conditions.Repository = One("acme/api") })},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bc.m.Admits(c)
			}
		})
	}
	b.Run("select-100", func(b *testing.B) {
		ms := make([]Mapping, 100)
		for i := range ms {
			ms[i] = *ghMapping(func(m *Mapping) { m.Conditions.Repository = One(fmt.Sprintf("acme/repo-%d*", i)) })
		}
		b.ReportAllocs()
		for b.Loop() {
			Select(ms, c)
		}
	})
}
