package ciclient

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
)

// TestExportedVariables: for an answer of each provider with every field,
// `exchange --format env` and `--format dotenv` (what the GitLab templates
// run) set exactly the variables, in order, that
// actions/exported-variables.json lists, the list the GitHub Action's unit
// test checks its own exports against: one credential, one set of names,
// whichever CI runs the job.
func TestExportedVariables(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("..", "actions", "exported-variables.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]json.RawMessage
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	exp := time.Date(2026, 11, 26, 18, 0, 0, 0, time.UTC)
	answers := map[string]map[string]any{
		"aws": {"access_key_id": "ASIAEXAMPLE0000000", "secret_access_key": "s3cr3t+/=", "session_token": "IQoJb3JpZ2lu",
			"expiration": exp, "region": "eu-west-1"},
		"gcp": {"access_token": "ya29.x", "token_type": "Bearer", "expires_at": exp,
			"service_account": "deploy@acme-prod.iam.gserviceaccount.com"},
		"gcp_id_token": {"id_token": "eyJ0.y.z", "token_type": "Bearer", "expires_at": exp,
			"service_account": "deploy@acme-prod.iam.gserviceaccount.com", "audience": "https://hello-abc123-ew.a.run.app"},
		"azure": {"access_token": "eyJ0.x", "token_type": "Bearer", "expires_at": exp, "tenant_id": "t", "client_id": "c",
			"scope": "https://management.azure.com/.default"},
		"jwt": {"token": "a.b.c", "token_type": "Bearer", "expires_at": exp, "audience": "https://api.example.com"},
		// A GitHub Enterprise Server's: github.com's has no GH_HOST nor GH_ENTERPRISE_TOKEN.
		"github": {"token": "ghs_16C7e42F292c6912E7710c838347Ae178B4a", "token_type": "Bearer", "expires_at": exp,
			"repositories": []string{"acme/web"}, "permissions": map[string]string{"contents": "write"},
			"api_url": "https://ghe.example.com/api/v3/", "server_url": "https://ghe.example.com/"},
	}
	if len(want)-1 != len(answers) { // the fixture's _comment
		t.Fatalf("actions/exported-variables.json lists %d providers, the test knows %d", len(want)-1, len(answers))
	}
	for provider, creds := range answers {
		var names []string
		if err := json.Unmarshal(want[provider], &names); err != nil || len(names) == 0 {
			t.Fatalf("actions/exported-variables.json has no list for %s: %v", provider, err)
		}
		c, _ := json.Marshal(creds)
		resp := &api.ExchangeResponse{IssuanceID: "0193b9e2-0000-7000-8000-000000000000", Mapping: "m",
			Provider:  strings.TrimSuffix(provider, "_id_token"),
			ExpiresAt: exp, Credentials: c}
		for _, format := range []string{FormatEnv, FormatDotenv} {
			out, err := formatCredentials(format, resp)
			if err != nil {
				t.Fatalf("%s --format %s: %v", provider, format, err)
			}
			var got []string
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				name, _, _ := strings.Cut(strings.TrimPrefix(line, "export "), "=")
				got = append(got, name)
			}
			if !reflect.DeepEqual(got, names) {
				t.Errorf("%s --format %s sets %v; actions/exported-variables.json (and the Action) %v", provider, format, got, names)
			}
		}
	}
}
