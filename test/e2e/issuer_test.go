package e2e

import (
	"context"
	"encoding/json"

	"net"
	"strings"
	"sync"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/providers"
	"github.com/oidc-bridge/oidc-bridge/signing"
	"github.com/oidc-bridge/oidc-bridge/test/oidctest"
	"github.com/oidc-bridge/oidc-bridge/test/pgtest"
)

// freeAddr returns a loopback address with a port free right now, for a
// bridge whose public URL must be known before it starts.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// issuerEnv is the environment of a bridge that signs: a key-encryption
// key, a fixed listen address and the public URL on it.
func issuerEnv(t *testing.T, dbURL string) (env []string, publicURL string) {
	t.Helper()
	kek, err := signing.GenerateKEK()
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	publicURL = "http://" + addr
	return []string{"BRIDGE_DATABASE_URL=" + dbURL, "BRIDGE_ADMIN_TOKEN=" + adminToken,
		"BRIDGE_ALLOW_INSECURE_ISSUERS=true", "BRIDGE_KEY_ENCRYPTION_KEY=" + kek,
		"BRIDGE_PUBLIC_URL=" + publicURL}, publicURL
}

type keyRow struct {
	KID   string `json:"KID"`
	Alg   string `json:"Alg"`
	State string `json:"State"`
}

func listKeys(t *testing.T, env []string) []keyRow {
	t.Helper()
	out, errOut, code := cli(t, env, "keys", "list", "--json")
	if code != 0 {
		t.Fatalf("keys list: exit %d: %s", code, errOut)
	}
	var keys []keyRow
	if err := json.Unmarshal([]byte(out), &keys); err != nil {
		t.Fatalf("keys list --json: %v\n%s", err, out)
	}
	return keys
}

// internalJWT exchanges a GitHub token of gh at s for mapping "internal"
// (a jwt mapping) and returns the bridge-signed token.
func internalJWT(t *testing.T, s *server, gh *oidctest.Issuer) string {
	t.Helper()
	r := exchange(s, gh.Mint(t, gh.GitHubClaims(nil)), `{"mapping": "internal"}`)
	if r.status != 200 {
		t.Fatalf("exchange: %d %s", r.status, r.body)
	}
	var resp api.ExchangeResponse
	r.json(t, &resp)
	var creds providers.JWTCredentials
	if err := json.Unmarshal(resp.Credentials, &creds); err != nil {
		t.Fatal(err)
	}
	return creds.Token
}

// TestBridgeAsIssuer: the binary signs internal JWTs that go-oidc verifies
// through the bridge's own discovery document, and rotation keeps old
// tokens verifying while leaving exactly one active key per algorithm.
func TestBridgeAsIssuer(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDatabase(t)
	env, publicURL := issuerEnv(t, dbURL)
	gh := oidctest.New(t)
	s := startServer(t, append(env, "BRIDGE_LISTEN_ADDR="+strings.TrimPrefix(publicURL, "http://")))
	s.must(201, "POST", "/v1/admin/issuers", issuerBody("github", gh.URL(), "github"))
	s.must(201, "POST", "/v1/admin/mappings", `{"name": "internal", "issuer": "github",
		"conditions": {"repository": "acme/web"}, "provider": "jwt", "max_duration_seconds": 900,
		"target": {"audience": "https://deploy.internal.example"}}`)

	mint := func() string { return internalJWT(t, s, gh) }
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, publicURL)
	if err != nil {
		t.Fatalf("discovery of the bridge: %v", err)
	}
	verify := func(token string) {
		t.Helper()
		if _, err := provider.Verifier(&oidc.Config{ClientID: "https://deploy.internal.example"}).Verify(ctx, token); err != nil {
			t.Fatalf("a bridge token does not verify: %v", err)
		}
	}
	before := mint()
	verify(before)

	// Too early: the next key has not been published for an hour.
	if _, errOut, code := cli(t, env, "keys", "rotate"); code != 1 || !strings.Contains(errOut, "--force") {
		t.Fatalf("keys rotate too early: exit %d: %s", code, errOut)
	}
	// Two operators (or replicas) forcing a rotation at once.
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range codes {
		wg.Go(func() { _, _, codes[i] = cli(t, env, "keys", "rotate", "--force") })
	}
	wg.Wait()
	if codes[0] != 0 || codes[1] != 0 {
		t.Fatalf("concurrent rotations: exit codes %v", codes)
	}
	active := map[string]int{}
	for _, k := range listKeys(t, env) {
		if k.State == "active" {
			active[k.Alg]++
		}
	}
	if active["RS256"] != 1 || active["ES256"] != 1 {
		t.Fatalf("active keys after concurrent rotations: %v", active)
	}
	// The token signed before the rotation still verifies (its key stays
	// published), against a fresh verifier reading the JWKS anew.
	provider, err = oidc.NewProvider(ctx, publicURL)
	if err != nil {
		t.Fatal(err)
	}
	verify(before)
	verify(mint())

	// No private key in plain text in the database.
	db := openDB(t, dbURL)
	var dump string
	if err := db.QueryRow(ctx, `SELECT string_agg(row_to_json(k)::text, ' ') FROM signing_keys k`).Scan(&dump); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"PRIVATE KEY", `"d":`, `"p":`, `"q":`} {
		if strings.Contains(dump, bad) {
			t.Fatalf("signing_keys holds %q", bad)
		}
	}
	s.stopClean()
	if strings.Contains(s.logs.String(), before) {
		t.Fatal("an issued token was logged")
	}
}

// TestSigningNeedsItsKey: once keys exist, the binary refuses to start
// without the key-encryption key, or with another one.
func TestSigningNeedsItsKey(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDatabase(t)
	env, _ := issuerEnv(t, dbURL)
	if out, errOut, code := cli(t, env, "keys", "list"); code != 0 || !strings.Contains(out, "active") {
		t.Fatalf("keys list: exit %d\n%s\n%s", code, out, errOut)
	}
	base := []string{"BRIDGE_DATABASE_URL=" + dbURL, "BRIDGE_LISTEN_ADDR=127.0.0.1:0"}
	if _, errOut, code := cli(t, base, "serve"); code != 1 || !strings.Contains(errOut, "no key-encryption key") {
		t.Fatalf("serve without the key: exit %d: %s", code, errOut)
	}
	other, _ := signing.GenerateKEK()
	if _, errOut, code := cli(t, append(base, "BRIDGE_KEY_ENCRYPTION_KEY="+other), "serve"); code != 1 || !strings.Contains(errOut, "key-encryption key") {
		t.Fatalf("serve with another key: exit %d: %s", code, errOut)
	}
}
