package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/test/oidctest"
	"github.com/oidc-bridge/oidc-bridge/test/pgtest"
)

// TestExplainCLI: `oidc-bridge explain`, with a read-only admin token made
// by `admin-token create --scope read`, names the failing condition and
// the value seen, through the real binary.
func TestExplainCLI(t *testing.T) {
	t.Parallel()
	gh := oidctest.New(t)
	env := []string{"BRIDGE_DATABASE_URL=" + pgtest.NewDatabase(t), "BRIDGE_ADMIN_TOKEN=" + adminToken,
		"BRIDGE_ALLOW_INSECURE_ISSUERS=true"}
	s := startServer(t, env)
	s.must(201, "POST", "/v1/admin/issuers", issuerBody("github", gh.URL(), "github"))
	s.must(201, "POST", "/v1/admin/mappings", `{"name": "web-prod", "issuer": "github",
		"conditions": {"repository": "acme/web", "repository_id": "1339936803", "ref": "refs/heads/main", "environment": "production"},
		"provider": "aws", "target": {"role_arn": "arn:aws:iam::123456789012:role/deploy", "region": "eu-west-1"}}`)

	out, errOut, code := cli(t, env, "admin-token", "create", "auditor", "--scope", "read", "--expires-in", "1h")
	if code != 0 {
		t.Fatalf("admin-token create: %d %s", code, errOut)
	}
	readToken := strings.TrimSpace(out)
	// A read token may explain but not change anything.
	s.must(403, "DELETE", "/v1/admin/mappings/web-prod", "", readToken)

	tokenFile := filepath.Join(t.TempDir(), "job.jwt")
	if err := os.WriteFile(tokenFile, []byte(gh.Mint(t, gh.GitHubClaims(map[string]any{"ref": "refs/heads/feature/x"}))), 0o600); err != nil {
		t.Fatal(err)
	}
	clientEnv := []string{"OIDC_BRIDGE_URL=" + s.url, "OIDC_BRIDGE_ADMIN_TOKEN=" + readToken}
	out, errOut, code = cli(t, clientEnv, "explain", "--token-file", tokenFile)
	if code != 0 || !strings.Contains(out, "web-prod") || !strings.Contains(out, "refs/heads/feature/x") {
		t.Fatalf("explain: exit %d\n%s\n%s", code, out, errOut)
	}
	out, _, code = cli(t, clientEnv, "explain", "--token-file", tokenFile, "--json")
	var resp struct {
		Decision struct {
			Outcome string `json:"outcome"`
		} `json:"decision"`
		Mappings []struct {
			Mapping    string `json:"mapping"`
			Admitted   bool   `json:"admitted"`
			Reason     string `json:"reason"`
			Conditions []struct {
				Condition string `json:"condition"`
				Value     string `json:"value"`
				Matched   bool   `json:"matched"`
			} `json:"conditions"`
		} `json:"mappings"`
	}
	if err := json.Unmarshal([]byte(out), &resp); code != 0 || err != nil {
		t.Fatalf("explain --json: exit %d, %v\n%s", code, err, out)
	}
	if resp.Decision.Outcome != "no_matching_mapping" || len(resp.Mappings) != 1 || resp.Mappings[0].Admitted ||
		resp.Mappings[0].Reason != "ref" {
		t.Fatalf("explanation %+v", resp)
	}
	// Explaining recorded nothing and spent nothing: the ledger is empty.
	var n int
	if err := openDB(t, strings.TrimPrefix(env[0], "BRIDGE_DATABASE_URL=")).QueryRow(t.Context(),
		`SELECT count(*) FROM audit.issuances`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("ledger rows after explain: %d %v", n, err)
	}
	// The admin change history has the catalog writes, by actor (the
	// admin token made for the test is there too, under its own kind).
	var actors string
	if err := openDB(t, strings.TrimPrefix(env[0], "BRIDGE_DATABASE_URL=")).QueryRow(t.Context(),
		`SELECT string_agg(actor || ':' || action || ':' || kind, ',' ORDER BY id) FROM audit.admin_changes
		WHERE kind IN ('issuer', 'mapping')`).Scan(&actors); err != nil {
		t.Fatal(err)
	}
	if actors != "bootstrap:create:issuer,bootstrap:create:mapping" {
		t.Fatalf("admin changes %q", actors)
	}
	s.stopClean()
}
