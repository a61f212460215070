package provider

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
)

// testAppKey is a fresh RSA key as GitHub's .pem (PKCS#1) and as PKCS#8.
func testAppKey(t *testing.T) (pkcs1, pkcs8 string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p8, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}))
}

// TestGitHubKeyFingerprint: the fingerprint is the one GitHub documents
// for verifying an App's private key, computed by openssl:
// openssl rsa -in KEY -pubout -outform DER | openssl sha256 -binary | openssl base64.
func TestGitHubKeyFingerprint(t *testing.T) {
	t.Parallel()
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatal("openssl is needed to check the fingerprint independently (Debian's openssl package)")
	}
	pkcs1, pkcs8 := testAppKey(t)
	f := filepath.Join(t.TempDir(), "app.pem")
	if err := os.WriteFile(f, []byte(pkcs1), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/sh", "-c", `"$OPENSSL" rsa -in "$KEY" -pubout -outform DER 2>/dev/null | "$OPENSSL" sha256 -binary | "$OPENSSL" base64 -A`)
	cmd.Env = append(os.Environ(), "OPENSSL="+openssl, "KEY="+f)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl: %v", err)
	}
	want := "SHA256:" + strings.TrimSpace(string(out))
	for name, k := range map[string]string{"pkcs1": pkcs1, "pkcs8": pkcs8, "blanks around": "\n  " + pkcs1 + "\n\n"} {
		got, err := gitHubKeyFingerprint(k)
		if err != nil || got != want {
			t.Errorf("%s: %q, %v; want %q", name, got, err, want)
		}
	}
	pub := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2, 3}}))
	for name, k := range map[string]string{"not PEM": "hello", "public key": pub, "garbled": strings.Replace(pkcs1, "MII", "MIJ", 1)} {
		if _, err := gitHubKeyFingerprint(k); err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), "MII") {
			t.Errorf("%s: the error shows the key: %v", name, err)
		}
	}
}

// TestGitHubAppModelOf: what the bridge never returns (the key,
// retire_previous_key) comes from the prior state, the configured spelling
// of base_url is kept when it names the same URL, and the fingerprint is
// the signing key's, whatever the order of the keys.
func TestGitHubAppModelOf(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	app := api.GitHubApp{Name: "acme", AppID: 42, BaseURL: "https://ghe.example.com/api/v3/", Keys: []api.GitHubAppKey{
		{Fingerprint: "SHA256:old=", AddedAt: at}, {Fingerprint: "SHA256:new=", AddedAt: at, Signing: true}}}
	prior := gitHubAppModel{PrivateKey: types.StringValue("PEM"), RetirePreviousKey: types.BoolValue(true), BaseURL: types.StringValue("https://ghe.example.com/api/v3")}
	m := gitHubAppModelOf(app, &prior)
	if m.PrivateKey.ValueString() != "PEM" || !m.RetirePreviousKey.ValueBool() || m.BaseURL.ValueString() != "https://ghe.example.com/api/v3" ||
		m.PrivateKeyFingerprint.ValueString() != "SHA256:new=" || len(m.Keys.Elements()) != 2 || m.ID.ValueString() != "acme" {
		t.Errorf("model: %+v", m)
	}
	// An import: no prior key, retire false, the bridge's base URL.
	m = gitHubAppModelOf(app, &gitHubAppModel{})
	if !m.PrivateKey.IsNull() || m.RetirePreviousKey.ValueBool() || m.BaseURL.ValueString() != app.BaseURL {
		t.Errorf("import: %+v", m)
	}
	if m := gitHubAppModelOf(api.GitHubApp{Name: "x", AppID: 1}, &gitHubAppModel{}); !m.BaseURL.IsNull() || !m.PrivateKeyFingerprint.IsNull() {
		t.Errorf("github.com, no keys: %+v", m)
	}
	// What is sent: the key only when asked, never the read-only fields.
	plan := gitHubAppModel{Name: types.StringValue("acme"), AppID: types.Int64Value(42), BaseURL: types.StringNull(),
		PrivateKey: types.StringValue("PEM"), RetirePreviousKey: types.BoolValue(true)}
	if d := cmp.Diff(api.GitHubApp{Name: "acme", AppID: 42, RetirePreviousKey: true}, gitHubAppOf(&plan, false)); d != "" {
		t.Errorf("without the key (-want +got):\n%s", d)
	}
	if got := gitHubAppOf(&plan, true); got.PrivateKey != "PEM" {
		t.Errorf("with the key: %+v", got)
	}
	for _, bad := range []string{"http://ghe.example.com/api/v3/", "ghe.example.com", "https://u:p@ghe.example.com/", "https://ghe.example.com/?x=1"} {
		if checkGitHubBaseURL(bad) == nil {
			t.Errorf("base_url %q accepted", bad)
		}
	}
}

// TestGitHubMappingTarget: a github block becomes the github target's JSON
// and comes back from the API's answer as the same block.
func TestGitHubMappingTarget(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	perms := types.MapValueMust(types.StringType, map[string]attr.Value{"contents": types.StringValue("write"), "pull_requests": types.StringValue("write")})
	m := mappingModel{Name: types.StringValue("push"), Issuer: types.StringValue("github"), Enabled: types.BoolValue(true),
		Mode: types.StringValue("enforce"), MaxDurationSeconds: types.Int64Value(3600),
		GitHub: &githubModel{App: types.StringValue("acme"), Owner: types.StringValue("acme"), Repositories: listOf([]string{"web", "infra"}),
			AllRepositories: types.BoolValue(false), Permissions: perms}}
	out, diags := m.toMapping(ctx)
	if diags.HasError() || out.Provider != "github" {
		t.Fatalf("toMapping: %v %v", out.Provider, diags)
	}
	var target map[string]any
	if err := json.Unmarshal(out.Target, &target); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"app": "acme", "owner": "acme", "repositories": []any{"web", "infra"},
		"permissions": map[string]any{"contents": "write", "pull_requests": "write"}}
	if d := cmp.Diff(want, target); d != "" {
		t.Errorf("target (-want +got):\n%s", d)
	}
	back, diags := mappingModelOf(out)
	if diags.HasError() || back.GitHub == nil || !back.GitHub.Repositories.Equal(m.GitHub.Repositories) ||
		!back.GitHub.Permissions.Equal(perms) || back.GitHub.AllRepositories.ValueBool() {
		t.Errorf("mappingModelOf: %+v %v", back.GitHub, diags)
	}
	all := api.Mapping{Name: "all", Issuer: "github", Provider: "github", Target: json.RawMessage(`{"app":"acme","owner":"acme","all_repositories":true,"permissions":{"contents":"read"}}`)}
	back, diags = mappingModelOf(all)
	if diags.HasError() || !back.GitHub.AllRepositories.ValueBool() || !back.GitHub.Repositories.IsNull() {
		t.Errorf("all_repositories: %+v %v", back.GitHub, diags)
	}
}
