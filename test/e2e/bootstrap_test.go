package e2e

import (
	"strings"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/test/pgtest"
)

// TestServeRefusesStoredTokenAsBootstrap: a token made with `admin-token
// create` and then given to the server as BRIDGE_ADMIN_TOKEN (the README's
// old quick start exported it under that name, and a restart from the same
// shell picked it up) stops serve at start, active or revoked, with a
// message saying why; a bootstrap token of its own starts.
func TestServeRefusesStoredTokenAsBootstrap(t *testing.T) {
	t.Parallel()
	env := []string{"BRIDGE_DATABASE_URL=" + pgtest.NewDatabase(t)}
	if _, errOut, code := cli(t, env, "migrate"); code != 0 {
		t.Fatalf("migrate: %d %s", code, errOut)
	}
	out, errOut, code := cli(t, env, "admin-token", "create", "alice")
	if code != 0 {
		t.Fatalf("admin-token create: %d %s", code, errOut)
	}
	alice := strings.TrimSpace(out)

	for _, state := range []string{"active", "revoked"} {
		if state == "revoked" {
			if _, errOut, code := cli(t, env, "admin-token", "revoke", "alice"); code != 0 {
				t.Fatalf("admin-token revoke: %d %s", code, errOut)
			}
		}
		_, errOut, code := cli(t, append(env, "BRIDGE_ADMIN_TOKEN="+alice), "serve", "--no-migrate")
		if code != 1 {
			t.Fatalf("%s: serve with a stored token as bootstrap: exit %d, want 1\n%s", state, code, errOut)
		}
		for _, want := range []string{`BRIDGE_ADMIN_TOKEN is the admin token "alice"`, "refusing to start", "OIDC_BRIDGE_ADMIN_TOKEN"} {
			if !strings.Contains(errOut, want) {
				t.Errorf("%s: stderr does not say %q:\n%s", state, want, errOut)
			}
		}
		if state == "revoked" && !strings.Contains(errOut, "revoked") {
			t.Errorf("revoked: stderr does not say the token is revoked:\n%s", errOut)
		}
		if strings.Contains(errOut, alice) {
			t.Errorf("%s: stderr shows the token", state)
		}
	}

	// The revoked token's name may be reused; a name in use is refused in
	// the CLI's own words, without package prefixes.
	if _, errOut, code := cli(t, env, "admin-token", "create", "alice"); code != 0 {
		t.Fatalf("admin-token create alice again, the first revoked: %d %s", code, errOut)
	}
	_, errOut, code = cli(t, env, "admin-token", "create", "alice")
	if code != 1 || !strings.Contains(errOut, `oidc-bridge: an admin token named "alice" exists and is not revoked`) || strings.Contains(errOut, "admintoken:") {
		t.Errorf("a third alice: exit %d: %s", code, errOut)
	}
	_, errOut, code = cli(t, env, "admin-token", "revoke", "nobody")
	if code != 1 || !strings.Contains(errOut, `oidc-bridge: no admin token has the id or name "nobody"`) || strings.Contains(errOut, "admintoken:") {
		t.Errorf("revoke nobody: exit %d: %s", code, errOut)
	}

	// A bootstrap token of its own is served.
	s := startServer(t, append(env, "BRIDGE_ADMIN_TOKEN="+adminToken), "--no-migrate")
	s.must(200, "GET", "/v1/admin/issuers", "")
}
