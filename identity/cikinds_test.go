package identity

import (
	"encoding/json"
	"testing"
)

// TestCIKindReaders: how the buildkite, circleci, bitbucket,
// terraform_cloud, kubernetes, aws, forgejo, azure_devops and jenkins kinds read what their platforms send beyond the
// fixtures' ordinary run.
func TestCIKindReaders(t *testing.T) {
	t.Parallel()
	const url = "https://ci.example.test"
	tests := []struct {
		name    string
		kind    Kind
		file    string
		edit    map[string]any // nil value: delete the claim
		reason  string
		ref     string
		env     string
		repo    string
		replays string // ReplayKey prefix
	}{
		{"buildkite push", KindBuildkite, "buildkite-agent.json", nil, "", "refs/heads/main", "", "acme-inc/deploy-web", "jti:"},
		{"buildkite tag build", KindBuildkite, "buildkite-agent.json", map[string]any{"build_tag": "v1.4.0", "build_branch": "v1.4.0"}, "", "refs/tags/v1.4.0", "", "acme-inc/deploy-web", "jti:"},
		{"buildkite fork branch is no ref", KindBuildkite, "buildkite-agent.json", map[string]any{"build_branch": "mallory:main"}, "", "", "", "acme-inc/deploy-web", "jti:"},
		{"buildkite null step key and ids", KindBuildkite, "buildkite-agent.json", map[string]any{"step_key": json.RawMessage("null"), "organization_id": json.RawMessage("null")}, "", "refs/heads/main", "", "acme-inc/deploy-web", "jti:"},
		{"buildkite without organization", KindBuildkite, "buildkite-agent.json", map[string]any{"organization_slug": nil}, ReasonMissingClaim, "", "", "", ""},
		{"buildkite slug with a slash", KindBuildkite, "buildkite-agent.json", map[string]any{"pipeline_slug": "a/b"}, ReasonInvalidClaim, "", "", "", ""},
		{"buildkite branch not a string", KindBuildkite, "buildkite-agent.json", map[string]any{"build_branch": 7}, ReasonInvalidClaim, "", "", "", ""},
		{"circleci push", KindCircleCI, "circleci-job.json", nil, "", "refs/heads/main", "", "github.com/acme/web", "sha256:"},
		{"circleci custom webhook has no ref", KindCircleCI, "circleci-job.json", map[string]any{"oidc.circleci.com/vcs-ref": nil, "oidc.circleci.com/vcs-origin": nil}, "", "", "", "", "sha256:"},
		{"circleci without project", KindCircleCI, "circleci-job.json", map[string]any{"oidc.circleci.com/project-id": nil}, ReasonMissingClaim, "", "", "", ""},
		{"circleci bare branch", KindCircleCI, "circleci-job.json", map[string]any{"oidc.circleci.com/vcs-ref": "main"}, ReasonInvalidClaim, "", "", "", ""},
		{"bitbucket deployment", KindBitbucket, "bitbucket-step.json", nil, "", "refs/heads/main", "{8e9f0a1b-2c3d-4e5f-9a0b-1c2d3e4f5a6b}", "", "sha256:"},
		{"bitbucket tag pipeline", KindBitbucket, "bitbucket-step.json", map[string]any{"branchName": nil, "deploymentEnvironmentUuid": nil}, "", "", "", "", "sha256:"},
		{"bitbucket unbraced uuid", KindBitbucket, "bitbucket-step.json", map[string]any{"repositoryUuid": "6c3f1a2b-4d5e-4f60-8a1b-2c3d4e5f6a7b"}, ReasonInvalidClaim, "", "", "", ""},
		{"bitbucket without repository", KindBitbucket, "bitbucket-step.json", map[string]any{"repositoryUuid": nil}, ReasonMissingClaim, "", "", "", ""},
		{"kubernetes pod", KindKubernetes, "kubernetes-pod.json", nil, "", "", "", "", "jti:"},
		{"kubernetes before 1.29: no jti, not bound to a pod", KindKubernetes, "kubernetes-pod.json", map[string]any{"jti": nil, "kubernetes.io": map[string]any{"namespace": "payments", "serviceaccount": map[string]any{"name": "deployer", "uid": "c2f5e9a0-1b2c-4d3e-8f90-123456789abc"}}}, "", "", "", "", "sha256:"},
		{"kubernetes sub names another service account", KindKubernetes, "kubernetes-pod.json", map[string]any{"sub": "system:serviceaccount:payments:admin"}, ReasonInvalidClaim, "", "", "", ""},
		{"kubernetes sub of another namespace", KindKubernetes, "kubernetes-pod.json", map[string]any{"sub": "system:serviceaccount:kube-system:deployer"}, ReasonInvalidClaim, "", "", "", ""},
		{"kubernetes without the kubernetes.io claim", KindKubernetes, "kubernetes-pod.json", map[string]any{"kubernetes.io": nil}, ReasonMissingClaim, "", "", "", ""},
		{"kubernetes.io not an object", KindKubernetes, "kubernetes-pod.json", map[string]any{"kubernetes.io": "payments"}, ReasonInvalidClaim, "", "", "", ""},
		{"kubernetes namespace not a string", KindKubernetes, "kubernetes-pod.json", map[string]any{"kubernetes.io": map[string]any{"namespace": 7, "serviceaccount": map[string]any{"name": "deployer", "uid": "u"}}}, ReasonInvalidClaim, "", "", "", ""},
		{"kubernetes namespace with a colon", KindKubernetes, "kubernetes-pod.json", map[string]any{"sub": "system:serviceaccount:a:b:deployer", "kubernetes.io": map[string]any{"namespace": "a:b", "serviceaccount": map[string]any{"name": "deployer", "uid": "u"}}}, ReasonInvalidClaim, "", "", "", ""},
		{"aws lambda role", KindAWS, "aws-outbound.json", nil, "", "", "", "", "jti:"},
		{"aws outside an organization", KindAWS, "aws-outbound.json", map[string]any{"https://sts.amazonaws.com/": map[string]any{"aws_account": "123456789012", "source_region": "eu-west-1"}}, "", "", "", "", "jti:"},
		{"aws sub of another account", KindAWS, "aws-outbound.json", map[string]any{"sub": "arn:aws:iam::210987654321:role/payments/DeployFunctionRole"}, ReasonInvalidClaim, "", "", "", ""},
		{"aws sub not an ARN", KindAWS, "aws-outbound.json", map[string]any{"sub": "123456789012"}, ReasonInvalidClaim, "", "", "", ""},
		{"aws account not 12 digits", KindAWS, "aws-outbound.json", map[string]any{"sub": "arn:aws:iam::1234:role/x", "https://sts.amazonaws.com/": map[string]any{"aws_account": "1234"}}, ReasonInvalidClaim, "", "", "", ""},
		{"aws account a number", KindAWS, "aws-outbound.json", map[string]any{"https://sts.amazonaws.com/": map[string]any{"aws_account": 123456789012}}, ReasonInvalidClaim, "", "", "", ""},
		{"aws without its claims", KindAWS, "aws-outbound.json", map[string]any{"https://sts.amazonaws.com/": nil}, ReasonMissingClaim, "", "", "", ""},
		{"aws without jti", KindAWS, "aws-outbound.json", map[string]any{"jti": nil}, ReasonMissingClaim, "", "", "", ""},
		{"forgejo push", KindForgejo, "forgejo-actions.json", nil, "", "refs/heads/main", "", "acme/web", "sha256:"},
		{"forgejo before immutable ids", KindForgejo, "forgejo-actions.json", map[string]any{"repository_id": nil, "repository_owner_id": nil, "actor_id": nil}, "", "refs/heads/main", "", "acme/web", "sha256:"},
		{"forgejo owner disagrees", KindForgejo, "forgejo-actions.json", map[string]any{"repository_owner": "mallory"}, ReasonInvalidClaim, "", "", "", ""},
		{"forgejo repository without owner", KindForgejo, "forgejo-actions.json", map[string]any{"repository": "web"}, ReasonInvalidClaim, "", "", "", ""},
		{"forgejo bare ref", KindForgejo, "forgejo-actions.json", map[string]any{"ref": "main"}, ReasonInvalidClaim, "", "", "", ""},
		{"forgejo id not decimal", KindForgejo, "forgejo-actions.json", map[string]any{"repository_id": "0x40"}, ReasonInvalidClaim, "", "", "", ""},
		{"forgejo without ref", KindForgejo, "forgejo-actions.json", map[string]any{"ref": nil}, ReasonMissingClaim, "", "", "", ""},
		{"azure_devops pipeline", KindAzureDevOps, "azure_devops-pipeline.json", nil, "", "refs/heads/main", "", "acme/payments", "jti:"},
		{"azure_devops service connection", KindAzureDevOps, "azure_devops-pipeline.json", map[string]any{"sub": "sc://acme/payments/Prod ARM connection", "jti": nil, "rpo_ref": nil, "rpo_uri": nil, "rpo_ver": nil, "rpo_id": nil, "def_id": nil, "run_id": nil}, "", "", "", "acme/payments", "sha256:"},
		{"azure_devops subject of another form", KindAzureDevOps, "azure_devops-pipeline.json", map[string]any{"sub": "repo:acme/payments:ref:refs/heads/main"}, ReasonInvalidClaim, "", "", "", ""},
		{"azure_devops subject too deep", KindAzureDevOps, "azure_devops-pipeline.json", map[string]any{"sub": "p://acme/payments/deploy/web"}, ReasonInvalidClaim, "", "", "", ""},
		{"azure_devops subject wildcard", KindAzureDevOps, "azure_devops-pipeline.json", map[string]any{"sub": "sc://acme/payments/*"}, ReasonInvalidClaim, "", "", "", ""},
		{"azure_devops project not a guid", KindAzureDevOps, "azure_devops-pipeline.json", map[string]any{"prj_id": "payments"}, ReasonInvalidClaim, "", "", "", ""},
		{"azure_devops bare ref", KindAzureDevOps, "azure_devops-pipeline.json", map[string]any{"rpo_ref": "main"}, ReasonInvalidClaim, "", "", "", ""},
		{"azure_devops definition a number", KindAzureDevOps, "azure_devops-pipeline.json", map[string]any{"def_id": 42}, ReasonInvalidClaim, "", "", "", ""},
		{"jenkins build", KindJenkins, "jenkins-build.json", nil, "", "", "", "payments/deploy-web", "sha256:"},
		{"jenkins multibranch job behind a context path", KindJenkins, "jenkins-build.json", map[string]any{"sub": "https://ci.example.com/jenkins/job/payments/job/web/job/feature%252Fx/"}, "", "", "", "payments/web/feature%252Fx", "sha256:"},
		{"jenkins without build number", KindJenkins, "jenkins-build.json", map[string]any{"build_number": nil}, "", "", "", "payments/deploy-web", "sha256:"},
		{"jenkins sub of a customised template", KindJenkins, "jenkins-build.json", map[string]any{"sub": "jenkins:main:1412"}, ReasonInvalidClaim, "", "", "", ""},
		{"jenkins sub without trailing slash", KindJenkins, "jenkins-build.json", map[string]any{"sub": "https://jenkins.example.com/job/payments/job/deploy-web"}, ReasonInvalidClaim, "", "", "", ""},
		{"jenkins sub with a wildcard", KindJenkins, "jenkins-build.json", map[string]any{"sub": "https://jenkins.example.com/job/payments/job/*/"}, ReasonInvalidClaim, "", "", "", ""},
		{"jenkins sub not a job", KindJenkins, "jenkins-build.json", map[string]any{"sub": "https://jenkins.example.com/"}, ReasonInvalidClaim, "", "", "", ""},
		{"jenkins sub with a query", KindJenkins, "jenkins-build.json", map[string]any{"sub": "https://jenkins.example.com/job/payments/job/deploy-web/?x=1"}, ReasonInvalidClaim, "", "", "", ""},
		{"jenkins build number a string", KindJenkins, "jenkins-build.json", map[string]any{"build_number": "1412"}, ReasonInvalidClaim, "", "", "", ""},
		{"jenkins build number negative", KindJenkins, "jenkins-build.json", map[string]any{"build_number": -1}, ReasonInvalidClaim, "", "", "", ""},
		{"terraform apply", KindTerraformCloud, "terraform_cloud-run.json", nil, "", "", "", "acme/network-prod", "jti:"},
		{"terraform without jti", KindTerraformCloud, "terraform_cloud-run.json", map[string]any{"jti": nil}, "", "", "", "acme/network-prod", "sha256:"},
		{"terraform without organization", KindTerraformCloud, "terraform_cloud-run.json", map[string]any{"terraform_organization_id": nil}, ReasonMissingClaim, "", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := sample(t, tt.file, url)
			for k, v := range tt.edit {
				if v == nil {
					delete(m, k)
				} else {
					m[k] = v
				}
			}
			raw, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			c, err := NormalizeClaims(Issuer{Name: "ci", URL: url, Kind: tt.kind}, raw)
			if tt.reason != "" {
				if Reason(err) != tt.reason {
					t.Fatalf("NormalizeClaims = %v, want %s", err, tt.reason)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c.TokenSHA256 = "ab"
			if c.Ref != tt.ref || c.Environment != tt.env || c.Repository != tt.repo || c.ReplayKey()[:len(tt.replays)] != tt.replays {
				t.Errorf("ref %q environment %q repository %q replay key %q; want %q %q %q %s...", c.Ref, c.Environment, c.Repository, c.ReplayKey(), tt.ref, tt.env, tt.repo, tt.replays)
			}
		})
	}
}

// TestCheckIssuerURL: the fixed path forms of circleci and bitbucket
// issuers, forgejo's /api/actions ending, and the hosts that draw no issuer_host warning.
func TestCheckIssuerURL(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		kind    Kind
		url     string
		ok      bool
		unusual bool
	}{
		{KindCircleCI, "https://oidc.circleci.com/org/2c1d0f6e-8b1a-4b8e-9a6e-3f2d1c0b9a87", true, false},
		{KindCircleCI, "https://oidc.circleci.com/org/", false, false},
		{KindCircleCI, "https://oidc.circleci.com/organization/x", false, false},
		{KindCircleCI, "http://oidc.circleci.com/org/x", true, true},
		{KindBitbucket, "https://api.bitbucket.org/2.0/workspaces/acme/pipelines-config/identity/oidc", true, false},
		{KindBitbucket, "https://api.bitbucket.org/2.0/workspaces/acme/pipelines-config/identity/oidc/", false, false},
		{KindBitbucket, "https://bitbucket.example.com/2.0/workspaces/acme/pipelines-config/identity/oidc", true, true},
		{KindBuildkite, "https://agent.buildkite.com", true, false},
		{KindBuildkite, "https://agent.buildkite.com.evil.example", true, true},
		{KindTerraformCloud, "https://tfe.internal.example/", true, false},
		{KindAWS, "https://3f9c2a1e-7b4d-4e8a-9c6f-1d2e3f4a5b6c.tokens.sts.global.api.aws", true, false},
		{KindAWS, "https://tokens.sts.global.api.aws", true, true},
		{KindAWS, "https://a.b.tokens.sts.global.api.aws", true, true},
		{KindAWS, "https://x.tokens.sts.global.api.aws.evil.example", true, true},
		{KindAWS, "http://x.tokens.sts.global.api.aws", true, true},
		{KindAzureDevOps, "https://vstoken.dev.azure.com/3f1e2d4c-5b6a-4789-9abc-def012345678", true, false},
		{KindAzureDevOps, "https://login.microsoftonline.com/0d2a7c1e-9b3f-4e5a-8c6d-7e8f9a0b1c2d/v2.0", true, false},
		{KindAzureDevOps, "https://vstoken.dev.azure.com.evil.example/x", true, true},
		{KindGitHub, "https://anything.example/x", true, false},
		{KindForgejo, "https://codeberg.org/api/actions", true, false},
		{KindForgejo, "https://git.example.com/forgejo/api/actions", true, false},
		{KindForgejo, "https://codeberg.org", false, false},
		{KindForgejo, "https://codeberg.org/api/actions/", false, false},
		{KindForgejo, "https://codeberg.org/api/actions/x", false, false},
	} {
		if got := CheckIssuerURL(tt.kind, tt.url); (got == "") != tt.ok {
			t.Errorf("CheckIssuerURL(%s, %s) = %q, want ok %v", tt.kind, tt.url, got, tt.ok)
		}
		if got := IssuerHostUnusual(tt.kind, tt.url); got != tt.unusual {
			t.Errorf("IssuerHostUnusual(%s, %s) = %v, want %v", tt.kind, tt.url, got, tt.unusual)
		}
	}
}

// TestAzureDevOpsIssuerOrganization: with Azure DevOps' own issuer
// (https://vstoken.dev.azure.com/<organization id>), a token's org_id must
// be the organization the issuer names; the Entra issuer names a tenant,
// not an organization, and is not compared.
func TestAzureDevOpsIssuerOrganization(t *testing.T) {
	t.Parallel()
	const org = "3f1e2d4c-5b6a-4789-9abc-def012345678"
	for _, tt := range []struct {
		iss, orgID string
		ok         bool
	}{
		{"https://vstoken.dev.azure.com/" + org, org, true},
		{"https://vstoken.dev.azure.com/" + org, "3f1e2d4c-0000-4789-9abc-def012345678", false},
		{"https://login.microsoftonline.com/0d2a7c1e-9b3f-4e5a-8c6d-7e8f9a0b1c2d/v2.0", "3f1e2d4c-0000-4789-9abc-def012345678", true},
	} {
		m := sample(t, "azure_devops-pipeline.json", tt.iss)
		m["org_id"] = tt.orgID
		raw, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		_, err = NormalizeClaims(Issuer{Name: "ado", URL: tt.iss, Kind: KindAzureDevOps}, raw)
		if (err == nil) != tt.ok || err != nil && Reason(err) != ReasonInvalidClaim {
			t.Errorf("iss %s org_id %s: %v, want ok %v", tt.iss, tt.orgID, err, tt.ok)
		}
	}
}
