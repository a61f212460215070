package mapping

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/identity"
)

func TestTargetModes(t *testing.T) {
	t.Parallel()
	const wip = "//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/ci-pool/providers/oidc-bridge"
	tests := []struct {
		name, provider, target, field string // field "" means valid
	}{
		{"aws default mode", "aws", `{"role_arn": "arn:aws:iam::123456789012:role/r", "region": "eu-west-1"}`, ""},
		{"aws assume_role", "aws", `{"role_arn": "arn:aws:iam::123456789012:role/r", "region": "eu-west-1", "mode": "assume_role", "external_id": "x-1"}`, ""},
		{"aws web_identity", "aws", `{"role_arn": "arn:aws:iam::123456789012:role/r", "region": "eu-west-1", "mode": "web_identity"}`, ""},
		{"aws web_identity with external id", "aws", `{"role_arn": "arn:aws:iam::123456789012:role/r", "region": "eu-west-1", "mode": "web_identity", "external_id": "x-1"}`, "target.external_id"},
		{"aws unknown mode", "aws", `{"role_arn": "arn:aws:iam::123456789012:role/r", "region": "eu-west-1", "mode": "keys"}`, "target.mode"},
		{"gcp default mode", "gcp", `{"service_account": "deploy@acme-prod.iam.gserviceaccount.com"}`, ""},
		{"gcp workload identity", "gcp", `{"service_account": "deploy@acme-prod.iam.gserviceaccount.com", "mode": "workload_identity", "workload_identity_provider": "` + wip + `"}`, ""},
		{"gcp workload identity without provider", "gcp", `{"service_account": "deploy@acme-prod.iam.gserviceaccount.com", "mode": "workload_identity"}`, "target.workload_identity_provider"},
		{"gcp workload identity with a project name", "gcp", `{"service_account": "deploy@acme-prod.iam.gserviceaccount.com", "mode": "workload_identity",
			"workload_identity_provider": "//iam.googleapis.com/projects/my-proj/locations/global/workloadIdentityPools/ci-pool/providers/oidc-bridge"}`, "target.workload_identity_provider"},
		{"gcp provider without the mode", "gcp", `{"service_account": "deploy@acme-prod.iam.gserviceaccount.com", "workload_identity_provider": "` + wip + `"}`, "target.workload_identity_provider"},
		{"gcp unknown mode", "gcp", `{"service_account": "deploy@acme-prod.iam.gserviceaccount.com", "mode": "keyfile"}`, "target.mode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := Mapping{Name: "m", Issuer: "gh", Enabled: true, Provider: tt.provider, Target: json.RawMessage(tt.target),
				Conditions: Conditions{Repository: One("acme/web")}, MaxDurationSeconds: 3600}
			err := ValidateMapping(&m, identity.KindGitHub)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("valid target refused: %v", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != tt.field {
				t.Fatalf("error %v, want one on %s", err, tt.field)
			}
		})
	}
}

func TestEvaluateReasons(t *testing.T) {
	t.Parallel()
	c := &identity.Claims{IssuerName: "gh", Kind: identity.KindGitHub, Repository: "acme/web", Ref: "refs/heads/main"}
	ms := []Mapping{
		{Name: "ok", Issuer: "gh", Enabled: true, Conditions: Conditions{Repository: One("acme/web")}},
		{Name: "ref", Issuer: "gh", Enabled: true, Conditions: Conditions{Repository: One("acme/web"), Ref: One("refs/tags/*")}},
		{Name: "off", Issuer: "gh", Conditions: Conditions{Repository: One("acme/web")}},
	}
	admitted, reasons := Evaluate(ms, c)
	if len(admitted) != 1 || admitted[0].Name != "ok" {
		t.Fatalf("admitted %v", admitted)
	}
	if want := []string{"", ReasonRef, ReasonDisabled}; !slices.Equal(reasons, want) {
		t.Fatalf("reasons %q, want %q", reasons, want)
	}
	if got := Select(ms, c); len(got) != 1 || got[0].Name != "ok" {
		t.Fatalf("Select %v", got)
	}
}
