package mapping

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/identity"
	"github.com/oidc-bridge/oidc-bridge/providers/gcp"
)

// gcpMapping is a valid gcp mapping with target and max_duration_seconds.
func gcpMapping(target string, maxDuration int) *Mapping {
	return &Mapping{Name: "web-deploy", Issuer: "gh", Enabled: true, Provider: "gcp",
		Target: json.RawMessage(target), Conditions: Conditions{Repository: One("acme/web")},
		MaxDurationSeconds: maxDuration, Mode: ModeEnforce}
}

const testWIP = "//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/ci-pool/providers/oidc-bridge"

// TestGCPLimits is one case per Google limit a gcp mapping decides; each
// limit's source is at its constant in gcp.go.
func TestGCPLimits(t *testing.T) {
	t.Parallel()
	sa := `"service_account":"deploy@acme-prod.iam.gserviceaccount.com"`
	tests := []struct {
		name        string
		target      string
		maxDuration int
		field       string // "" means valid
	}{
		// lifetime: 3600 s, 43200 s with the org policy
		{"lifetime 3600", `{` + sa + `}`, 3600, ""},
		{"lifetime 3601 without extension", `{` + sa + `}`, 3601, "max_duration_seconds"},
		{"lifetime 43200 without extension", `{` + sa + `}`, 43200, "max_duration_seconds"},
		{"lifetime extension false", `{` + sa + `,"allow_lifetime_extension":false}`, 7200, "max_duration_seconds"},
		{"lifetime 43200 with extension", `{` + sa + `,"allow_lifetime_extension":true}`, 43200, ""},
		{"lifetime 43201 with extension", `{` + sa + `,"allow_lifetime_extension":true}`, 43201, "max_duration_seconds"},
		{"lifetime extension short token", `{` + sa + `,"allow_lifetime_extension":true}`, 600, ""},
		{"lifetime extension not a boolean", `{` + sa + `,"allow_lifetime_extension":"true"}`, 3600, "target.allow_lifetime_extension"},
		{"lifetime extension workload identity", `{` + sa + `,"mode":"workload_identity","workload_identity_provider":"` + testWIP + `","allow_lifetime_extension":true}`, 43200, ""},

		// service account forms
		{"user-managed", `{"service_account":"deploy@acme-prod.iam.gserviceaccount.com"}`, 3600, ""},
		{"account id 6", `{"service_account":"deploy@acme-prod.iam.gserviceaccount.com"}`, 3600, ""},
		{"account id 5", `{"service_account":"short@acme-prod.iam.gserviceaccount.com"}`, 3600, "target.service_account"},
		{"account id 30", `{"service_account":"` + strings.Repeat("a", 30) + `@acme-prod.iam.gserviceaccount.com"}`, 3600, ""},
		{"account id 31", `{"service_account":"` + strings.Repeat("a", 31) + `@acme-prod.iam.gserviceaccount.com"}`, 3600, "target.service_account"},
		{"account id digit first", `{"service_account":"1deploy@acme-prod.iam.gserviceaccount.com"}`, 3600, "target.service_account"},
		{"account id trailing hyphen", `{"service_account":"deploy-@acme-prod.iam.gserviceaccount.com"}`, 3600, "target.service_account"},
		{"account id underscore", `{"service_account":"de_ploy@acme-prod.iam.gserviceaccount.com"}`, 3600, "target.service_account"},
		{"project id 5", `{"service_account":"deploy@acme5.iam.gserviceaccount.com"}`, 3600, "target.service_account"},
		{"project id 30", `{"service_account":"deploy@` + strings.Repeat("p", 30) + `.iam.gserviceaccount.com"}`, 3600, ""},
		{"project id 31", `{"service_account":"deploy@` + strings.Repeat("p", 31) + `.iam.gserviceaccount.com"}`, 3600, "target.service_account"},
		{"project id digit first", `{"service_account":"deploy@1acme-prod.iam.gserviceaccount.com"}`, 3600, "target.service_account"},
		{"project id trailing hyphen", `{"service_account":"deploy@acme-prod-.iam.gserviceaccount.com"}`, 3600, "target.service_account"},
		{"domain-scoped project", `{"service_account":"deploy@my-project.example.com.iam.gserviceaccount.com"}`, 3600, ""},
		{"domain-scoped one label", `{"service_account":"deploy@my-project.example.iam.gserviceaccount.com"}`, 3600, "target.service_account"},
		{"domain-scoped empty label", `{"service_account":"deploy@my-project..com.iam.gserviceaccount.com"}`, 3600, "target.service_account"},
		{"domain-scoped colon", `{"service_account":"deploy@example.com:my-project.iam.gserviceaccount.com"}`, 3600, "target.service_account"},
		{"compute default", `{"service_account":"123456789012-compute@developer.gserviceaccount.com"}`, 3600, ""},
		{"compute default project id", `{"service_account":"acme-prod-compute@developer.gserviceaccount.com"}`, 3600, "target.service_account"},
		{"compute default other name", `{"service_account":"123456789012-gke@developer.gserviceaccount.com"}`, 3600, "target.service_account"},
		{"compute default leading zero", `{"service_account":"0123456789012-compute@developer.gserviceaccount.com"}`, 3600, "target.service_account"},
		{"appspot default", `{"service_account":"acme-prod@appspot.gserviceaccount.com"}`, 3600, ""},
		{"appspot project number", `{"service_account":"123456789012@appspot.gserviceaccount.com"}`, 3600, "target.service_account"},
		{"gmail", `{"service_account":"deploy@gmail.com"}`, 3600, "target.service_account"},
		{"unique id", `{"service_account":"108234567890123456789"}`, 3600, ""},
		{"unique id 20 digits", `{"service_account":"10823456789012345678"}`, 3600, "target.service_account"},
		{"unique id 22 digits", `{"service_account":"1082345678901234567890"}`, 3600, "target.service_account"},

		// delegates
		{"delegates in every form", `{` + sa + `,"delegates":["hop-account@acme-prod.iam.gserviceaccount.com","123456789012-compute@developer.gserviceaccount.com","acme-prod@appspot.gserviceaccount.com","108234567890123456789"]}`, 3600, ""},
		{"delegate malformed", `{` + sa + `,"delegates":["hop@acme-prod.iam.gserviceaccount.com"]}`, 3600, "target.delegates[0]"},
		{"delegate duplicate", `{` + sa + `,"delegates":["108234567890123456789","hop-account@acme-prod.iam.gserviceaccount.com","108234567890123456789"]}`, 3600, "target.delegates[2]"},
		{"delegate is the target", `{` + sa + `,"delegates":["hop-account@acme-prod.iam.gserviceaccount.com","deploy@acme-prod.iam.gserviceaccount.com"]}`, 3600, "target.delegates[1]"},
		{"delegates 16", `{` + sa + `,"delegates":` + delegates(16) + `}`, 3600, ""},
		{"delegates 17", `{` + sa + `,"delegates":` + delegates(17) + `}`, 3600, "target.delegates"},

		// workload identity: the audience the mapping decides
		{"provider project number 19 digits", `{` + sa + `,"mode":"workload_identity","workload_identity_provider":"//iam.googleapis.com/projects/1234567890123456789/locations/global/workloadIdentityPools/` + strings.Repeat("p", 32) + `/providers/` + strings.Repeat("q", 32) + `"}`, 3600, ""},
		{"provider project number 20 digits", `{` + sa + `,"mode":"workload_identity","workload_identity_provider":"//iam.googleapis.com/projects/12345678901234567890/locations/global/workloadIdentityPools/ci-pool/providers/bridge"}`, 3600, "target.workload_identity_provider"},
		{"provider project number leading zero", `{` + sa + `,"mode":"workload_identity","workload_identity_provider":"//iam.googleapis.com/projects/0123/locations/global/workloadIdentityPools/ci-pool/providers/bridge"}`, 3600, "target.workload_identity_provider"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wantField(t, ValidateMapping(gcpMapping(tt.target, tt.maxDuration), identity.KindGitHub), tt.field)
		})
	}
}

func delegates(n int) string {
	ds := make([]string, n)
	for i := range ds {
		ds[i] = `"hop-` + strings.Repeat("x", 2) + string(rune('a'+i)) + `-account@acme-prod.iam.gserviceaccount.com"`
	}
	return "[" + strings.Join(ds, ",") + "]"
}

// TestGCPLifetimeMessage: the refusal names the field, the flag and the org
// policy constraint, so that an admin knows what to do.
func TestGCPLifetimeMessage(t *testing.T) {
	t.Parallel()
	err := ValidateMapping(gcpMapping(`{"service_account":"deploy@acme-prod.iam.gserviceaccount.com"}`, 7200), identity.KindGitHub)
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Field != "max_duration_seconds" {
		t.Fatalf("error %v, want one on max_duration_seconds", err)
	}
	for _, want := range []string{"3600", gcp.LifetimeConstraint, "allow_lifetime_extension"} {
		if !strings.Contains(ve.Message, want) {
			t.Errorf("message %q does not mention %q", ve.Message, want)
		}
	}
}

// TestAzureLimits covers what an azure mapping decides that Entra refuses.
func TestAzureLimits(t *testing.T) {
	t.Parallel()
	ids := `"tenant_id":"` + guid + `","client_id":"` + guid2 + `"`
	tests := []struct {
		name, target string
		maxDuration  int
		field        string
	}{
		{"default scope", `{` + ids + `}`, 3600, ""},
		{"graph default", `{` + ids + `,"scope":"https://graph.microsoft.com/.default"}`, 3600, ""},
		{"delegated scope", `{` + ids + `,"scope":"https://graph.microsoft.com/User.Read"}`, 3600, "target.scope"},
		{"two scopes", `{` + ids + `,"scope":"https://graph.microsoft.com/.default https://management.azure.com/.default"}`, 3600, "target.scope"},
		{"openid only", `{` + ids + `,"scope":"openid"}`, 3600, "target.scope"},
		// The assertion lives at most 5 minutes whatever max_duration says:
		// every duration in azure's bounds is accepted.
		{"a day", `{` + ids + `}`, 86400, ""},
		{"a minute", `{` + ids + `}`, 60, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := gcpMapping(tt.target, tt.maxDuration)
			m.Provider = "azure"
			wantField(t, ValidateMapping(m, identity.KindGitHub), tt.field)
		})
	}
}
