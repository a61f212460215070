package mapping

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/oidc-bridge/oidc-bridge/identity"
)

// safeGitHub is a production deploy mapping that follows every rule.
func safeGitHub(edit func(*Mapping)) *Mapping {
	return ghMapping(func(m *Mapping) {
		m.Conditions = Conditions{
			Repository:   One("acme/web"),
			RepositoryID: One("1339936803"),
			Ref:          One("refs/heads/main"),
			Environment:  One("production"),
			EventName:    Any("push", "workflow_dispatch"),
			Claims:       map[string]Values{"runner_environment": *One("github-hosted")},
		}
		if edit != nil {
			edit(m)
		}
	})
}

// code/field pairs, the comparable part of a warning.
type finding struct{ Code, Field string }

func findings(ws []Warning) []finding {
	var out []finding
	for _, w := range ws {
		out = append(out, finding{w.Code, w.Field})
	}
	return out
}

func TestLint(t *testing.T) {
	t.Parallel()
	gh, gl, gen := identity.KindGitHub, identity.KindGitLab, identity.KindGeneric
	tests := []struct {
		name    string
		mapping *Mapping
		kind    identity.Kind
		want    []finding
	}{
		// clean mappings
		{"github production, every rule followed", safeGitHub(nil), gh, nil},
		{"github non-production with repository_id", ghMapping(func(m *Mapping) {
			m.Name = "web-ci"
			m.Conditions.RepositoryID = One("1")
		}), gh, nil},
		{"github owner id is an immutable pin", ghMapping(func(m *Mapping) {
			m.Name = "web-ci"
			m.Conditions.Claims = map[string]Values{"repository_owner_id": *One("91234567")}
		}), gh, nil},
		{"gitlab production, protected ref claim and pinned ref", glMapping(func(m *Mapping) {
			m.Conditions = Conditions{Repository: One("platform/app"), RepositoryID: One("20"), Environment: One("production"),
				Ref: One("refs/heads/main"), Claims: map[string]Values{"ref_protected": *One("true")}}
		}), gl, nil},
		{"gitlab production pinned ref", glMapping(func(m *Mapping) {
			m.Conditions.RepositoryID = One("20")
			m.Conditions.Environment = One("production")
		}), gl, nil},
		{"generic needs no id", ghMapping(func(m *Mapping) { m.Name = "ci"; m.Conditions = Conditions{Claims: map[string]Values{"x": *One("y")}} }), gen, nil},
		{"release branches pin", safeGitHub(func(m *Mapping) { m.Conditions.Ref = Any("refs/heads/main", "refs/heads/release-*") }), gh, nil},
		{"product is not prod", ghMapping(func(m *Mapping) {
			m.Name = "product-api"
			m.Conditions.RepositoryID = One("1")
			m.Target = json.RawMessage(`{"role_arn":"arn:aws:iam::123456789012:role/delivery-preprod","region":"eu-west-1"}`)
		}), gh, nil},

		// no_immutable_id
		{"github without ids", ghMapping(func(m *Mapping) { m.Name = "web-ci" }), gh, []finding{{LintNoImmutableID, "conditions.repository_id"}}},
		{"gitlab owner id is not enough", glMapping(func(m *Mapping) {
			m.Name = "app-ci"
			m.Conditions.Claims = map[string]Values{"repository_owner_id": *One("72")}
		}), gl, []finding{{LintNoImmutableID, "conditions.repository_id"}}},
		{"unknown kind gets the github rule", ghMapping(func(m *Mapping) { m.Name = "web-ci" }), "", []finding{{LintNoImmutableID, "conditions.repository_id"}}},
		{"unknown kind without github's production rules", safeGitHub(func(m *Mapping) {
			m.Conditions.EventName, m.Conditions.Claims = Any("pull_request_target"), nil
		}), "teamcity", []finding{{LintRiskyEvent, "conditions.event_name[0]"}}},
		{"github's production rules", safeGitHub(func(m *Mapping) { m.Conditions.EventName, m.Conditions.Claims = nil, nil }), gh,
			[]finding{{LintRiskyEvent, "conditions.event_name"}, {LintSelfHostedRunner, "conditions.claims.runner_environment"}}},

		// wildcard_repository
		{"wildcard repository", ghMapping(func(m *Mapping) {
			m.Name = "ci"
			m.Conditions.RepositoryID = nil
			m.Conditions.Repository = Any("acme/web", "acme/app*")
		}), gh, []finding{{LintNoImmutableID, "conditions.repository_id"}, {LintWildcardRepository, "conditions.repository[1]"}}},
		{"owner-wide repository", ghMapping(func(m *Mapping) {
			m.Name = "ci"
			m.Conditions.Repository = One("acme/**")
			m.Conditions.Claims = map[string]Values{"repository_owner_id": *One("91234567")}
		}), gh, []finding{{LintWildcardRepository, "conditions.repository"}}},

		// unprotected_production
		{"production without ref", safeGitHub(func(m *Mapping) { m.Conditions.Ref = nil }), gh,
			[]finding{{LintUnprotectedProduction, "conditions.ref"}}},
		{"production with any branch", safeGitHub(func(m *Mapping) { m.Conditions.Ref = One("refs/heads/*") }), gh,
			[]finding{{LintUnprotectedProduction, "conditions.ref"}}},
		{"production with a wildcard-only ref among pins", safeGitHub(func(m *Mapping) { m.Conditions.Ref = Any("refs/heads/main", "refs/heads/**") }), gh,
			[]finding{{LintUnprotectedProduction, "conditions.ref"}}},
		{"production with pull refs", safeGitHub(func(m *Mapping) { m.Conditions.Ref = One("refs/pull/1/merge") }), gh,
			[]finding{{LintUnprotectedProduction, "conditions.ref"}}},
		{"github ref_protected claim alone does not suffice", safeGitHub(func(m *Mapping) {
			m.Conditions.Ref = nil
			m.Conditions.Claims["ref_protected"] = *One("true")
		}), gh, []finding{{LintUnprotectedProduction, "conditions.ref"}}},
		{"gitlab ref_protected claim alone does not suffice", glMapping(func(m *Mapping) {
			m.Conditions = Conditions{Repository: One("platform/app"), RepositoryID: One("20"), Environment: One("production"),
				Claims: map[string]Values{"ref_protected": *One("true")}}
		}), gl, []finding{{LintUnprotectedProduction, "conditions.ref"}}},
		{"gitlab ref_protected claim with a wildcard ref does not suffice", glMapping(func(m *Mapping) {
			m.Conditions = Conditions{Repository: One("platform/app"), RepositoryID: One("20"), Environment: One("production"),
				Ref: One("refs/heads/*"), Claims: map[string]Values{"ref_protected": *One("true")}}
		}), gl, []finding{{LintUnprotectedProduction, "conditions.ref"}}},
		{"ref_protected with a wildcard does not count", safeGitHub(func(m *Mapping) {
			m.Conditions.Ref = nil
			m.Conditions.Claims["ref_protected"] = *One("*")
		}), gh, []finding{{LintUnprotectedProduction, "conditions.ref"}}},
		{"environment without ref, not production", ghMapping(func(m *Mapping) {
			m.Name = "web-staging"
			m.Conditions = Conditions{RepositoryID: One("1"), Environment: One("staging")}
		}), gh, []finding{{LintUnprotectedProduction, "conditions.ref"}}},
		{"gitlab production without protection", glMapping(func(m *Mapping) {
			m.Conditions = Conditions{Repository: One("platform/app"), RepositoryID: One("20"), Environment: One("production")}
		}), gl, []finding{{LintUnprotectedProduction, "conditions.ref"}}},
		{"gitlab deployment tier", glMapping(func(m *Mapping) {
			m.Name = "app"
			m.Conditions = Conditions{Repository: One("platform/app"), RepositoryID: One("20"),
				Claims: map[string]Values{"deployment_tier": *One("production")}}
		}), gl, []finding{{LintUnprotectedProduction, "conditions.ref"}}},
		{"production by name", ghMapping(func(m *Mapping) {
			m.Name = "deploy-prod"
			m.Conditions = Conditions{RepositoryID: One("1"), EventName: One("push"), Claims: map[string]Values{"runner_environment": *One("github-hosted")}}
		}), gh, []finding{{LintUnprotectedProduction, "conditions.ref"}}},
		{"production by camel-case role", ghMapping(func(m *Mapping) {
			m.Name = "deploy"
			m.Conditions = Conditions{RepositoryID: One("1"), EventName: One("push"), Claims: map[string]Values{"runner_environment": *One("github-hosted")}}
			m.Target = json.RawMessage(`{"role_arn":"arn:aws:iam::123456789012:role/DeployProd","region":"eu-west-1"}`)
		}), gh, []finding{{LintUnprotectedProduction, "conditions.ref"}}},
		{"production by live service account", ghMapping(func(m *Mapping) {
			m.Name = "deploy"
			m.Conditions = Conditions{RepositoryID: One("1"), EventName: One("push"), Claims: map[string]Values{"runner_environment": *One("github-hosted")}}
			m.Provider = "gcp"
			m.Target = json.RawMessage(`{"service_account":"deploy@live-project.iam.gserviceaccount.com"}`)
		}), gh, []finding{{LintUnprotectedProduction, "conditions.ref"}}},
		{"generic production without ref", ghMapping(func(m *Mapping) {
			m.Name = "prod"
			m.Conditions = Conditions{Claims: map[string]Values{"x": *One("y")}}
		}), gen, []finding{{LintUnprotectedProduction, "conditions.ref"}}},

		// ambiguous_ref and tag_ref
		{"branch or tag", ghMapping(func(m *Mapping) {
			m.Name = "ci"
			m.Conditions.RepositoryID = One("1")
			m.Conditions.Ref = One("refs/*/main")
		}), gh, []finding{{LintAmbiguousRef, "conditions.ref"}}},
		{"any ref", ghMapping(func(m *Mapping) {
			m.Name = "ci"
			m.Conditions.RepositoryID = One("1")
			m.Conditions.Ref = Any("refs/heads/main", "refs/**")
		}), gh, []finding{{LintAmbiguousRef, "conditions.ref[1]"}}},
		{"tag pattern", ghMapping(func(m *Mapping) {
			m.Name = "release"
			m.Conditions.RepositoryID = One("1")
			m.Conditions.Ref = One("refs/tags/v*")
		}), gh, []finding{{LintTagRef, "conditions.ref"}}},
		{"production tags", safeGitHub(func(m *Mapping) { m.Conditions.Ref = Any("refs/heads/main", "refs/tags/v*") }), gh,
			[]finding{{LintTagRef, "conditions.ref[1]"}}},

		// risky_event
		{"pull_request_target opted in", safeGitHub(func(m *Mapping) { m.Conditions.EventName = Any("push", "pull_request_target") }), gh,
			[]finding{{LintRiskyEvent, "conditions.event_name[1]"}}},
		{"workflow_run opted in", ghMapping(func(m *Mapping) {
			m.Name = "ci"
			m.Conditions.RepositoryID = One("1")
			m.Conditions.EventName = One("workflow_run")
		}), gh, []finding{{LintRiskyEvent, "conditions.event_name"}}},
		{"pull_request", ghMapping(func(m *Mapping) {
			m.Name = "ci"
			m.Conditions.RepositoryID = One("1")
			m.Conditions.EventName = Any("push", "pull_request")
		}), gh, []finding{{LintRiskyEvent, "conditions.event_name[1]"}}},
		{"star admits pull_request", ghMapping(func(m *Mapping) {
			m.Name = "ci"
			m.Conditions.RepositoryID = One("1")
			m.Conditions.EventName = One("*")
		}), gh, []finding{{LintRiskyEvent, "conditions.event_name"}}},
		{"pull_request_target by wildcard is no opt-in", ghMapping(func(m *Mapping) {
			m.Name = "ci"
			m.Conditions.RepositoryID = One("1")
			m.Conditions.EventName = One("pull_request_*")
		}), gh, nil},
		{"production without event_name", safeGitHub(func(m *Mapping) { m.Conditions.EventName = nil }), gh,
			[]finding{{LintRiskyEvent, "conditions.event_name"}}},
		{"gitlab production without event_name is fine", glMapping(func(m *Mapping) {
			m.Conditions.RepositoryID = One("20")
		}), gl, nil},
		{"gitlab merge requests", glMapping(func(m *Mapping) {
			m.Name = "app-ci"
			m.Conditions.RepositoryID = One("20")
			m.Conditions.EventName = Any("push", "merge_request_event")
		}), gl, []finding{{LintRiskyEvent, "conditions.event_name[1]"}}},

		// self_hosted_runner
		{"self-hosted allowed", ghMapping(func(m *Mapping) {
			m.Name = "ci"
			m.Conditions.RepositoryID = One("1")
			m.Conditions.Claims = map[string]Values{"runner_environment": *Any("github-hosted", "self-hosted")}
		}), gh, []finding{{LintSelfHostedRunner, "conditions.claims.runner_environment"}}},
		{"gitlab self-hosted by wildcard", glMapping(func(m *Mapping) {
			m.Name = "app-ci"
			m.Conditions.RepositoryID = One("20")
			m.Conditions.Claims = map[string]Values{"runner_environment": *One("*")}
		}), gl, []finding{{LintSelfHostedRunner, "conditions.claims.runner_environment"}}},
		{"production without runner pin", safeGitHub(func(m *Mapping) { delete(m.Conditions.Claims, "runner_environment") }), gh,
			[]finding{{LintSelfHostedRunner, "conditions.claims.runner_environment"}}},
		{"production self-hosted reported once", safeGitHub(func(m *Mapping) {
			m.Conditions.Claims["runner_environment"] = *One("self-hosted")
		}), gh, []finding{{LintSelfHostedRunner, "conditions.claims.runner_environment"}}},

		// everything at once, in the fixed order
		{"worst production mapping", ghMapping(func(m *Mapping) {
			m.Name = "prod"
			m.Conditions = Conditions{Repository: One("acme/*"), Ref: Any("refs/**", "refs/tags/*")}
		}), gh, []finding{
			{LintNoImmutableID, "conditions.repository_id"},
			{LintWildcardRepository, "conditions.repository"},
			{LintUnprotectedProduction, "conditions.ref"},
			{LintAmbiguousRef, "conditions.ref[0]"},
			{LintTagRef, "conditions.ref[1]"},
			{LintRiskyEvent, "conditions.event_name"},
			{LintSelfHostedRunner, "conditions.claims.runner_environment"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ws := Lint(tt.mapping, tt.kind)
			if diff := cmp.Diff(tt.want, findings(ws)); diff != "" {
				t.Errorf("Lint() (-want +got):\n%s", diff)
			}
			for _, w := range ws {
				if w.Message == "" {
					t.Errorf("warning %s without a message", w.Code)
				}
			}
			if again := Lint(tt.mapping, tt.kind); !cmp.Equal(ws, again) {
				t.Errorf("Lint() is not deterministic:\n%v\n%v", ws, again)
			}
		})
	}
	if Lint(nil, gh) != nil {
		t.Error("Lint(nil) found something")
	}
}

func TestProductionLooking(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		want bool
	}{
		{"prod", true}, {"web-prod", true}, {"web_production_deploy", true}, {"DeployProd", true}, {"prod2", true},
		{"live", true}, {"LIVE-site", true}, {"eu.prod.deploy", true},
		{"product", false}, {"preprod", false}, {"delivery", false}, {"staging", false}, {"oliver", false}, {"prodigy", false},
	} {
		m := ghMapping(func(m *Mapping) { m.Name = tt.name; m.Target = nil })
		if got := productionLooking(m); got != tt.want {
			t.Errorf("productionLooking(name %q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestLintRefProtectedMessage: a mapping relying on ref_protected alone is
// told why that is not enough, in its platform's terms.
func TestLintRefProtectedMessage(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		kind identity.Kind
		m    *Mapping
		want []string
	}{
		{identity.KindGitLab, glMapping(func(m *Mapping) {
			m.Conditions = Conditions{Repository: One("platform/app"), RepositoryID: One("20"), Environment: One("production"),
				Claims: map[string]Values{"ref_protected": *One("true")}}
		}), []string{"ref_protected", "alone", "wildcard protected-branch rule", "developer allowed to merge", "pin conditions.ref"}},
		{identity.KindGitHub, safeGitHub(func(m *Mapping) {
			m.Conditions.Ref = nil
			m.Conditions.Claims["ref_protected"] = *One("true")
		}), []string{"ref_protected", "alone", "wildcard branch protection rule or ruleset", "write access", "pin conditions.ref"}},
	} {
		t.Run(string(tt.kind), func(t *testing.T) {
			t.Parallel()
			var msg string
			for _, w := range Lint(tt.m, tt.kind) {
				if w.Code == LintUnprotectedProduction {
					msg = w.Message
				}
			}
			for _, want := range tt.want {
				if !strings.Contains(msg, want) {
					t.Errorf("unprotected_production message %q lacks %q", msg, want)
				}
			}
		})
	}
}

// StrictLintError names the first warning in full and every code, points
// at the first one's field and carries all of them; none, no error.
func TestStrictLintError(t *testing.T) {
	t.Parallel()
	if err := StrictLintError("mappings", nil); err != nil {
		t.Fatalf("no warnings: %v", err)
	}
	ws := []Warning{
		{Code: "no_immutable_id", Field: "conditions.repository_id", Message: "pin the id"},
		{Code: "self_hosted_runner", Field: "conditions.claims.runner_environment", Message: "require github-hosted"},
	}
	err := StrictLintError("mappings", ws)
	if err == nil || err.Field != "conditions.repository_id" || !errors.Is(err, ErrInvalid) {
		t.Fatalf("StrictLintError = %#v", err)
	}
	if diff := cmp.Diff(ws, err.Warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	ws[0].Code = "changed" // the error keeps its own copy
	if err.Warnings[0].Code != "no_immutable_id" {
		t.Error("the error shares the caller's slice")
	}
	for _, want := range []string{"lint no_immutable_id: pin the id", "2 in all: no_immutable_id, self_hosted_runner", "lint=strict refuses mappings"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err.Error(), want)
		}
	}
}
