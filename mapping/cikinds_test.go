package mapping

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/oidc-bridge/oidc-bridge/identity"
)

// ciMapping is a mapping of an issuer of one of the CI kinds that have
// only claims conditions for their tenant.
func ciMapping(conds Conditions) *Mapping {
	m := ghMapping(nil)
	m.Name, m.Issuer, m.Conditions = "deploy-ci", "ci", conds
	return m
}

func claimsOf(kv ...string) map[string]Values {
	m := map[string]Values{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = *One(kv[i+1])
	}
	return m
}

// TestForgejoOwnerPinned: a forgejo mapping cannot leave the owner open
// (every owner of the instance shares its issuer): a repository pattern
// must name it literally, and breadth requires repository or
// repository_id, so unpinned_tenant has nothing to add.
func TestForgejoOwnerPinned(t *testing.T) {
	t.Parallel()
	for _, cond := range []Conditions{
		{Repository: One("*/web"), Ref: One("refs/heads/main")},
		{Ref: One("refs/heads/main"), Claims: claimsOf("repository_owner", "acme")},
	} {
		err := ValidateMapping(ciMapping(cond), identity.KindForgejo)
		if err == nil || !strings.Contains(err.Error(), "conditions.repository") {
			t.Errorf("ValidateMapping(%+v) = %v, want a refusal on conditions.repository", cond, err)
		}
	}
}

// TestLintUnpinnedTenant: a mapping of a kind whose issuer serves several
// tenants warns unpinned_tenant unless it pins one of the kind's tenant
// conditions literally, and a generic one unless some condition is
// literal; github and gitlab never do.
func TestLintUnpinnedTenant(t *testing.T) {
	t.Parallel()
	const orgID = "0184990a-2a6f-4c1e-9c3d-3d7a3c4b5e6f"
	tests := []struct {
		name   string
		kind   identity.Kind
		cond   Conditions
		pinned bool
		field  string
	}{
		{"buildkite pipeline only", identity.KindBuildkite, Conditions{Claims: claimsOf("pipeline_slug", "deploy-web")}, false, "conditions.claims.organization_id"},
		{"buildkite organization id", identity.KindBuildkite, Conditions{Claims: claimsOf("pipeline_slug", "deploy-web", "organization_id", orgID)}, true, ""},
		{"buildkite organization slug", identity.KindBuildkite, Conditions{Claims: claimsOf("pipeline_slug", "deploy-web", "organization_slug", "acme-inc")}, true, ""},
		{"buildkite wildcard slug", identity.KindBuildkite, Conditions{Claims: claimsOf("pipeline_slug", "deploy-web", "organization_slug", "acme-*")}, false, "conditions.claims.organization_id"},
		{"circleci repository only", identity.KindCircleCI, Conditions{Repository: One("github.com/acme/web")}, false, "conditions.claims.oidc.circleci.com/project-id"},
		{"circleci project", identity.KindCircleCI, Conditions{Claims: claimsOf("oidc.circleci.com/project-id", "5b7e4f1a-6c2d-4e3f-9a8b-7c6d5e4f3a21")}, true, ""},
		{"bitbucket ref only", identity.KindBitbucket, Conditions{Ref: One("refs/heads/main")}, false, "conditions.claims.repositoryUuid"},
		{"bitbucket repository", identity.KindBitbucket, Conditions{Ref: One("refs/heads/main"), Claims: claimsOf("repositoryUuid", "{6c3f1a2b-4d5e-4f60-8a1b-2c3d4e5f6a7b}")}, true, ""},
		{"bitbucket environment pins its repository", identity.KindBitbucket, Conditions{Ref: One("refs/heads/main"), Environment: One("{8e9f0a1b-2c3d-4e5f-9a0b-1c2d3e4f5a6b}")}, true, ""},
		{"terraform workspace name only", identity.KindTerraformCloud, Conditions{Claims: claimsOf("terraform_workspace_name", "network-prod")}, false, "conditions.claims.terraform_organization_id"},
		{"terraform organization id", identity.KindTerraformCloud, Conditions{Claims: claimsOf("terraform_workspace_name", "network-prod", "terraform_organization_id", "org-GRNbCjYNpBB6NEH9")}, true, ""},
		{"kubernetes namespace only", identity.KindKubernetes, Conditions{Claims: claimsOf("/kubernetes.io/namespace", "payments")}, false, "conditions.claims./kubernetes.io/namespace"},
		{"kubernetes namespace and any service account", identity.KindKubernetes, Conditions{Claims: claimsOf("/kubernetes.io/namespace", "payments", "/kubernetes.io/serviceaccount/name", "*")}, false, "conditions.claims./kubernetes.io/namespace"},
		{"kubernetes namespace and service account", identity.KindKubernetes, Conditions{Claims: claimsOf("/kubernetes.io/namespace", "payments", "/kubernetes.io/serviceaccount/name", "deployer")}, true, ""},
		{"kubernetes namespace and service account by list", identity.KindKubernetes, Conditions{Claims: map[string]Values{"/kubernetes.io/namespace": *One("payments"), "/kubernetes.io/serviceaccount/name": {Patterns: []string{"deployer", "migrator"}, List: true}}}, true, ""},
		{"aws account", identity.KindAWS, Conditions{Claims: claimsOf("/https:~1~1sts.amazonaws.com~1/aws_account", "123456789012", "/https:~1~1sts.amazonaws.com~1/principal_tags/team", "payments")}, true, ""},
		{"aws organization", identity.KindAWS, Conditions{Claims: claimsOf("/https:~1~1sts.amazonaws.com~1/org_id", "o-a1b2c3d4e5")}, true, ""},
		{"aws any organization", identity.KindAWS, Conditions{Claims: claimsOf("/https:~1~1sts.amazonaws.com~1/org_id", "o-*", "/https:~1~1sts.amazonaws.com~1/principal_tags/team", "payments")}, false, "conditions.claims./https:~1~1sts.amazonaws.com~1/aws_account"},
		{"forgejo repository", identity.KindForgejo, Conditions{Repository: One("acme/web")}, true, ""},
		{"forgejo repository id", identity.KindForgejo, Conditions{RepositoryID: One("265358")}, true, ""},
		{"forgejo repositories of the owner", identity.KindForgejo, Conditions{Repository: One("acme/*")}, true, ""},
		{"azure_devops organization and project", identity.KindAzureDevOps, Conditions{WorkflowRef: One("sc://acme/payments/prod-arm"), Claims: claimsOf("org_id", "3f1e2d4c-5b6a-4789-9abc-def012345678", "prj_id", "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d")}, true, ""},
		{"azure_devops project only", identity.KindAzureDevOps, Conditions{Claims: claimsOf("prj_id", "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d")}, false, "conditions.claims.org_id"},
		{"azure_devops subject by name only", identity.KindAzureDevOps, Conditions{WorkflowRef: One("sc://acme/payments/prod-arm")}, false, "conditions.claims.org_id"},
		{"azure_devops any project", identity.KindAzureDevOps, Conditions{Claims: claimsOf("org_id", "3f1e2d4c-5b6a-4789-9abc-def012345678", "prj_id", "*")}, false, "conditions.claims.org_id"},
		{"jenkins job", identity.KindJenkins, Conditions{WorkflowRef: One("https://jenkins.example.com/job/payments/job/deploy-web/")}, true, ""},
		{"jenkins jobs of a folder", identity.KindJenkins, Conditions{WorkflowRef: One("https://jenkins.example.com/job/payments/job/*/")}, false, "conditions.workflow_ref"},
		{"github never", identity.KindGitHub, ghMapping(nil).Conditions, true, ""},
		{"gitlab never", identity.KindGitLab, glMapping(nil).Conditions, true, ""},
		{"generic literal claim", identity.KindGeneric, Conditions{Claims: claimsOf("x", "y")}, true, ""},
		{"generic literal ref, wildcard sub", identity.KindGeneric, Conditions{Ref: One("refs/heads/main"), Claims: claimsOf("project", "acme-*")}, true, ""},
		{"generic wildcards only", identity.KindGeneric, Conditions{Ref: One("refs/heads/*"), Claims: claimsOf("project", "acme-*")}, false, "conditions"},
		{"generic one literal among a list with a wildcard", identity.KindGeneric, Conditions{Claims: map[string]Values{"project": {Patterns: []string{"acme", "acme-*"}, List: true}}}, false, "conditions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := ciMapping(tt.cond)
			if err := ValidateMapping(m, tt.kind); err != nil {
				t.Fatalf("ValidateMapping: %v", err)
			}
			var got []finding
			for _, w := range Lint(m, tt.kind) {
				if w.Code == LintUnpinnedTenant {
					got = append(got, finding{w.Code, w.Field})
					if !strings.Contains(w.Message, "literally") {
						t.Errorf("message %q does not say how to pin", w.Message)
					}
				}
			}
			var want []finding
			if !tt.pinned {
				want = []finding{{LintUnpinnedTenant, tt.field}}
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("unpinned_tenant (-want +got):\n%s", d)
			}
		})
	}
}

// TestValidateCIKinds: a mapping may use only the first-class conditions
// its kind's tokens carry, must meet the kind's breadth rule, and issuer
// URLs of kinds with a fixed path form are refused in another form.
func TestValidateCIKinds(t *testing.T) {
	t.Parallel()
	mappings := []struct {
		name  string
		kind  identity.Kind
		cond  Conditions
		field string // "" valid
	}{
		{"buildkite environment", identity.KindBuildkite, Conditions{Environment: One("production"), Claims: claimsOf("pipeline_slug", "x")}, "conditions.environment"},
		{"buildkite repository", identity.KindBuildkite, Conditions{Repository: One("acme/web"), Claims: claimsOf("pipeline_slug", "x")}, "conditions.repository"},
		{"buildkite ref and pipeline", identity.KindBuildkite, Conditions{Ref: One("refs/heads/main"), EventName: One("webhook"), Claims: claimsOf("pipeline_slug", "x")}, ""},
		{"buildkite ref alone", identity.KindBuildkite, Conditions{Ref: One("refs/heads/main")}, "conditions.claims.pipeline_slug"},
		{"buildkite build_branch is the ref", identity.KindBuildkite, Conditions{Claims: claimsOf("pipeline_slug", "x", "build_branch", "main")}, "conditions.claims.build_branch"},
		{"circleci repository_id", identity.KindCircleCI, Conditions{RepositoryID: One("1")}, "conditions.repository_id"},
		{"circleci repository", identity.KindCircleCI, Conditions{Repository: One("github.com/acme/web"), Ref: One("refs/heads/main")}, ""},
		{"circleci ref alone", identity.KindCircleCI, Conditions{Ref: One("refs/heads/main")}, "conditions.claims.oidc.circleci.com/project-id"},
		{"bitbucket any condition", identity.KindBitbucket, Conditions{Ref: One("refs/heads/main")}, ""},
		{"bitbucket none", identity.KindBitbucket, Conditions{}, "conditions"},
		{"bitbucket workflow_ref", identity.KindBitbucket, Conditions{WorkflowRef: One("x")}, "conditions.workflow_ref"},
		{"terraform ref", identity.KindTerraformCloud, Conditions{Ref: One("refs/heads/main"), Claims: claimsOf("terraform_workspace_id", "ws-1")}, "conditions.ref"},
		{"terraform workspace", identity.KindTerraformCloud, Conditions{Claims: claimsOf("terraform_workspace_id", "ws-1", "terraform_run_phase", "apply")}, ""},
		{"terraform run phase alone", identity.KindTerraformCloud, Conditions{Claims: claimsOf("terraform_run_phase", "apply")}, "conditions.claims.terraform_workspace_id"},
	}
	for _, tt := range mappings {
		err := ValidateMapping(ciMapping(tt.cond), tt.kind)
		if got := fieldOf(err); got != tt.field {
			t.Errorf("%s: ValidateMapping = %v, want field %q", tt.name, err, tt.field)
		}
	}

	issuers := []struct {
		kind      identity.Kind
		url       string
		refused   bool
		hostLint  bool
		replayDef string
	}{
		{identity.KindCircleCI, "https://oidc.circleci.com/org/2c1d0f6e-8b1a-4b8e-9a6e-3f2d1c0b9a87", false, false, ReplayScopeToken},
		{identity.KindCircleCI, "https://oidc.circleci.com", true, false, ""},
		{identity.KindCircleCI, "https://oidc.circleci.com/org/x/y", true, false, ""},
		{identity.KindCircleCI, "http://127.0.0.1:8080/org/2c1d0f6e", false, true, ReplayScopeToken},
		{identity.KindBitbucket, "https://api.bitbucket.org/2.0/workspaces/acme/pipelines-config/identity/oidc", false, false, ReplayScopeToken},
		{identity.KindBitbucket, "https://api.bitbucket.org/2.0/workspaces/acme", true, false, ""},
		{identity.KindBuildkite, "https://agent.buildkite.com", false, false, ReplayScopeToken},
		{identity.KindBuildkite, "https://buildkite.example.com", false, true, ReplayScopeToken},
		{identity.KindTerraformCloud, "https://tfe.example.com", false, false, ReplayScopeTokenMapping},
		{identity.KindGitHub, "https://ghes.example.com/_services/token", false, false, ReplayScopeToken},
	}
	for _, tt := range issuers {
		is := validIssuer(func(is *Issuer) { is.Kind, is.URL = string(tt.kind), tt.url })
		err := ValidateIssuer(is)
		if (err != nil) != tt.refused || tt.refused && fieldOf(err) != "url" {
			t.Errorf("%s %s: ValidateIssuer = %v, refused want %v", tt.kind, tt.url, err, tt.refused)
		}
		if tt.refused {
			continue
		}
		if is.ReplayScope != tt.replayDef {
			t.Errorf("%s: replay_scope defaults to %q, want %q", tt.kind, is.ReplayScope, tt.replayDef)
		}
		var codes []string
		for _, w := range LintIssuer(is) {
			codes = append(codes, w.Code)
		}
		if got := slices.Contains(codes, "issuer_host"); got != tt.hostLint {
			t.Errorf("%s %s: issuer lint %v, issuer_host want %v", tt.kind, tt.url, codes, tt.hostLint)
		}
		if slices.Contains(codes, "replay_scope_token_mapping") {
			t.Errorf("%s: the kind's default replay scope draws %v", tt.kind, codes)
		}
	}
}

func fieldOf(err error) string {
	if err == nil {
		return ""
	}
	ve, ok := err.(*ValidationError)
	if !ok {
		return "?" + err.Error()
	}
	return ve.Field
}
