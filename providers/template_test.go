package providers_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/oidc-bridge/oidc-bridge/identity"
	"github.com/oidc-bridge/oidc-bridge/providers"
	"github.com/oidc-bridge/oidc-bridge/providers/aws"
	"github.com/oidc-bridge/oidc-bridge/providers/azure"
	"github.com/oidc-bridge/oidc-bridge/providers/gcp"
)

func awsTarget(arn string) json.RawMessage {
	b, _ := json.Marshal(map[string]string{"role_arn": arn, "region": "eu-west-1"})
	return b
}

// TestCheckTemplate: the write-time rules of a templated target.
func TestCheckTemplate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		spec    providers.Spec
		raw     string
		wantErr string // a substring of the error; "" for none
	}{
		{"aws role name", aws.Spec{}, string(awsTarget("arn:aws:iam::123456789012:role/ci-${repository_name}")), ""},
		{"aws role path and name", aws.Spec{}, string(awsTarget("arn:aws:iam::123456789012:role/${repository_owner}/${environment}-${repository_id}")), ""},
		{"aws no template", aws.Spec{}, string(awsTarget("arn:aws:iam::123456789012:role/deploy")), ""},
		{"aws unknown variable", aws.Spec{}, string(awsTarget("arn:aws:iam::123456789012:role/ci-${ref}")), "target.role_arn: unknown variable ${ref}"},
		{"aws unclosed", aws.Spec{}, string(awsTarget("arn:aws:iam::123456789012:role/ci-${repository_name")), "target.role_arn: a ${ without its closing }"},
		{"aws account", aws.Spec{}, string(awsTarget("arn:aws:iam::${repository_id}:role/ci")), `only after ":role/"`},
		{"aws partition", aws.Spec{}, string(awsTarget("arn:${environment}:iam::123456789012:role/ci")), `only after ":role/"`},
		{"aws too long with samples", aws.Spec{}, string(awsTarget("arn:aws:iam::123456789012:role/" + strings.Repeat("x", 60) + "${repository_name}")),
			"checked with the template's variables set to sample values: repository_name=sample-repo"},
		{"aws policy variables stay literal", aws.Spec{}, `{"role_arn": "arn:aws:iam::123456789012:role/ci", "region": "eu-west-1",
			"session_policy": "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"s3:*\",\"Resource\":\"arn:aws:s3:::b/${aws:PrincipalTag/repository}/*\"}]}"}`, ""},
		{"aws region is not templated", aws.Spec{}, `{"role_arn": "arn:aws:iam::123456789012:role/ci", "region": "${environment}"}`, "target.region"},
		{"gcp account id", gcp.Spec{}, `{"service_account": "ci-${repository_name}@proj-123.iam.gserviceaccount.com"}`, ""},
		{"gcp project", gcp.Spec{}, `{"service_account": "ci@${repository_name}.iam.gserviceaccount.com"}`, `only before "@"`},
		{"azure client id is not templated", azure.Spec{}, `{"tenant_id": "00000000-0000-0000-0000-000000000000", "client_id": "${repository_id}"}`, "target.client_id: must be a GUID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := providers.CheckTarget(tt.spec, json.RawMessage(tt.raw))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckTarget: %v", err)
				}
				return
			}
			var fe *providers.FieldError
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("CheckTarget: %v, want a *FieldError with %q", err, tt.wantErr)
			}
		})
	}
}

func githubClaims(repository, environment string) *identity.Claims {
	owner, _, _ := strings.Cut(repository, "/")
	return &identity.Claims{Kind: identity.KindGitHub, Repository: repository, RepositoryOwner: owner,
		RepositoryID: "4711", Environment: environment}
}

// TestResolveTarget: values checked against the field's characters before
// they are used, and refused (never escaped) when they do not fit.
func TestResolveTarget(t *testing.T) {
	t.Parallel()
	tmpl := awsTarget("arn:aws:iam::123456789012:role/ci/${repository_owner}/${repository_name}-${environment}")
	tests := []struct {
		name      string
		claims    *identity.Claims
		want      string // the resolved role_arn
		wantField string // the TemplateError's field and variable
	}{
		{"resolved", githubClaims("acme/web", "prod"), "arn:aws:iam::123456789012:role/ci/acme/web-prod", ""},
		{"dots and underscores", githubClaims("acme/web.site_2", "prod"), "arn:aws:iam::123456789012:role/ci/acme/web.site_2-prod", ""},
		{"absent environment", githubClaims("acme/web", ""), "", "target.role_arn ${environment}"},
		{"slash in environment", githubClaims("acme/web", "prod/../admin"), "", "target.role_arn ${environment}"},
		{"colon in environment", githubClaims("acme/web", "a:b"), "", "target.role_arn ${environment}"},
		{"comma", githubClaims("acme/web", "a,b"), "", "target.role_arn ${environment}"},
		{"space", githubClaims("acme/web", "a b"), "", "target.role_arn ${environment}"},
		{"unicode", githubClaims("acme/web", "prød"), "", "target.role_arn ${environment}"},
		{"too long for a role name", githubClaims("acme/"+strings.Repeat("w", 60), "prod"), "", "target ${}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := providers.ResolveTarget(aws.Spec{}, tmpl, tt.claims)
			if tt.wantField != "" {
				var te *providers.TemplateError
				if !errors.As(err, &te) || !errors.Is(err, providers.ErrTemplate) || te.Field+" ${"+te.Variable+"}" != tt.wantField {
					t.Fatalf("ResolveTarget: %v, want a TemplateError on %q", err, tt.wantField)
				}
				if strings.Contains(err.Error(), tt.claims.Environment) && tt.claims.Environment != "" {
					t.Errorf("the error %q quotes the claim's value", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ResolveTarget: %v", err)
			}
			var obj map[string]string
			if err := json.Unmarshal(got, &obj); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(map[string]string{"role_arn": tt.want, "region": "eu-west-1"}, obj); diff != "" {
				t.Errorf("resolved target (-want +got):\n%s", diff)
			}
		})
	}
	// A target without templates is returned as it is.
	plain := awsTarget("arn:aws:iam::123456789012:role/deploy")
	if got, err := providers.ResolveTarget(aws.Spec{}, plain, githubClaims("acme/web", "")); err != nil || string(got) != string(plain) {
		t.Errorf("plain target: %s, %v", got, err)
	}
}

// TestGCPTemplateCharset: a service account's id takes a-z, 0-9 and '-'
// only: an uppercase repository is refused, not lowered.
func TestGCPTemplateCharset(t *testing.T) {
	t.Parallel()
	raw := json.RawMessage(`{"service_account": "ci-${repository_name}@proj-123.iam.gserviceaccount.com"}`)
	got, err := providers.ResolveTarget(gcp.Spec{}, raw, githubClaims("acme/web", ""))
	if err != nil || !strings.Contains(string(got), `"ci-web@proj-123.iam.gserviceaccount.com"`) {
		t.Fatalf("resolved %s, %v", got, err)
	}
	for _, repo := range []string{"acme/Web", "acme/web.site", "acme/web@evil.iam.gserviceaccount.com"} {
		if _, err := providers.ResolveTarget(gcp.Spec{}, raw, githubClaims(repo, "")); !errors.Is(err, providers.ErrTemplate) {
			t.Errorf("%s: %v, want ErrTemplate", repo, err)
		}
	}
}

func TestTemplateVariables(t *testing.T) {
	t.Parallel()
	got := providers.TemplateVariables(aws.Spec{}, awsTarget("arn:aws:iam::123456789012:role/${environment}/ci-${repository_name}-${environment}"))
	if diff := cmp.Diff(map[string][]string{"target.role_arn": {"environment", "repository_name"}}, got); diff != "" {
		t.Error(diff)
	}
}
