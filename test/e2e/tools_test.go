package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/test/pgtest"
)

// mustBeEmpty fails unless dir is an empty folder.
func mustBeEmpty(t *testing.T, dir, after string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("after %s, %s holds %v (%v); want nothing", after, dir, names, err)
	}
}

// TestToolCommandsNeverCreateACluster: with the embedded default, a tool
// command run where no cluster exists (another folder than the service's)
// says so, naming the data folder, and creates nothing: no second, empty
// cluster whose tokens the running service would refuse.
func TestToolCommandsNeverCreateACluster(t *testing.T) {
	t.Parallel()
	cwd := reachableTempDir(t)
	dataDir := filepath.Join(cwd, ".oidc-bridge")
	// The fallback folder a root process would use for that data folder.
	sum := sha256.Sum256([]byte(filepath.Join(dataDir, "postgres")))
	fallback := filepath.Join(clusterRoot, hex.EncodeToString(sum[:])[:16])
	for _, args := range [][]string{
		{"admin-token", "list"},
		{"admin-token", "create", "ops"},
		{"admin-token", "revoke", "ops"},
		{"keys", "list"},
		{"keys", "rotate", "--force"},
		{"psql", "--auditor", "--", "-c", "SELECT 1"},
		{"psql"},
	} {
		// The default BRIDGE_DATA_DIR, ./.oidc-bridge, in a folder with none.
		out, errOut, code := cliIn(t, cwd, nil, args...)
		if code != 1 || out != "" || !strings.Contains(errOut, "no embedded database in "+dataDir+": start the service first") ||
			!strings.Contains(errOut, "BRIDGE_DATA_DIR") || !strings.Contains(errOut, "BRIDGE_DATABASE_URL") {
			t.Errorf("%v in a folder without a cluster: exit %d\n%s\n%s\nwant exit 1 and the refusal naming %s", args, code, out, errOut, dataDir)
		}
		mustBeEmpty(t, cwd, strings.Join(args, " "))
		if _, err := os.Stat(fallback); !os.IsNotExist(err) {
			t.Errorf("after %v, the fallback cluster folder %s exists: %v", args, fallback, err)
		}
	}
	// And with BRIDGE_DATA_DIR naming a folder that does not exist.
	missing := filepath.Join(cwd, "elsewhere", "data")
	if _, errOut, code := cli(t, []string{"BRIDGE_DATA_DIR=" + missing}, "admin-token", "list"); code != 1 ||
		!strings.Contains(errOut, "no embedded database in "+missing+":") {
		t.Errorf("admin-token list with BRIDGE_DATA_DIR=%s: exit %d, %s", missing, code, errOut)
	}
	mustBeEmpty(t, cwd, "admin-token list with BRIDGE_DATA_DIR")
}

// TestToolCommandsReachTheServiceCluster: a tool command uses the cluster
// of the service, running (and left running) or stopped (started for the
// command, and stopped again), says which, and `psql --auditor` reads the
// audit views as the auditor role and nothing else.
func TestToolCommandsReachTheServiceCluster(t *testing.T) {
	t.Parallel()
	dir := reachableTempDir(t)
	env := []string{"BRIDGE_DATA_DIR=" + dir}
	pidFile := filepath.Join(dir, "postgres", "pgdata", "postmaster.pid")
	mustRun := func(args ...string) (string, string) {
		t.Helper()
		out, errOut, code := cli(t, env, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s\n%s", args, code, out, errOut)
		}
		return out, errOut
	}

	s := startServer(t, env)
	s.waitReady(200)
	token, errOut := mustRun("admin-token", "create", "ops")
	if !strings.Contains(errOut, "using the embedded database in "+filepath.Join(dir, "postgres")) {
		t.Errorf("admin-token create does not say which database it used:\n%s", errOut)
	}
	s.must(200, "GET", "/v1/admin/issuers", "", strings.TrimSpace(token))
	if out, _ := mustRun("admin-token", "list"); !strings.Contains(out, "ops") {
		t.Errorf("admin-token list while serve runs:\n%s", out)
	}

	// The auditor reads audit, as the auditor role, and nothing else, not
	// even after RESET ROLE.
	if out, _ := mustRun("psql", "--auditor", "--", "-Atc", "SELECT count(*) FROM audit.issuances"); out != "0\n" {
		t.Errorf("psql --auditor: count of audit.issuances = %q, want 0", out)
	}
	if out, _ := mustRun("psql", "--auditor", "--", "-Atc", "SELECT current_user, session_user"); out != "oidc_bridge_auditor_oidc_bridge|oidc_bridge_auditor_login\n" {
		t.Errorf("psql --auditor runs as %q, want the auditor role on the auditor login", out)
	}
	if out, _ := mustRun("psql", "--auditor", "--", "-Atc", "SELECT actor FROM audit.admin_changes"); !strings.Contains(out, "cli:") {
		t.Errorf("psql --auditor: audit.admin_changes has no row of admin-token create: %q", out)
	}
	// The examples of docs/audit.md.
	for _, q := range []string{
		"SELECT requested_at, outcome, error_code, ref, actor, credential_id FROM audit.issuances WHERE mapping = 'web-prod-deploy' AND requested_at >= now() - interval '1 day'",
		"SELECT changed_at, actor, action, kind, name FROM audit.admin_changes WHERE name = 'web-prod-deploy'",
	} {
		mustRun("psql", "--auditor", "--", "-c", q)
	}
	for _, q := range []string{"SELECT count(*) FROM issuers", "RESET ROLE; SELECT count(*) FROM issuers",
		"SET ROLE postgres", "SELECT count(*) FROM admin_tokens"} {
		out, errOut, code := cli(t, env, "psql", "--auditor", "--", "-Atc", q)
		if code == 0 || strings.ContainsAny(out, "0123456789") || !strings.Contains(errOut, "permission denied") {
			t.Errorf("psql --auditor -c %q: exit %d, %q, %s; want permission denied", q, code, out, errOut)
		}
	}
	// Without --auditor: the schema's owner, for administrators.
	if out, _ := mustRun("psql", "--", "-Atc", "SELECT count(*) FROM admin_tokens"); out != "1\n" {
		t.Errorf("psql: count of admin_tokens = %q, want 1", out)
	}
	s.stopClean()
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Fatalf("the cluster runs after serve stopped: %v", err)
	}

	// Stopped: a tool command starts it for its duration, and stops it.
	if out, _ := mustRun("admin-token", "list"); !strings.Contains(out, "ops") {
		t.Errorf("admin-token list on the stopped cluster:\n%s", out)
	}
	if out, _ := mustRun("psql", "--auditor", "--", "-Atc", "SELECT count(*) FROM audit.issuances"); out != "0\n" {
		t.Errorf("psql --auditor on the stopped cluster: %q", out)
	}
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Errorf("the cluster runs after the tool commands ended: %v", err)
	}
}

// TestPsqlAuditorOnDatabaseURL: with BRIDGE_DATABASE_URL, psql --auditor
// logs in as that URL's user and becomes the auditor role, which only a
// member may.
func TestPsqlAuditorOnDatabaseURL(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	// The superuser may become any role: the session is the auditor's.
	out, errOut, code := cli(t, []string{"BRIDGE_DATABASE_URL=" + url}, "psql", "--auditor", "--", "-Atc",
		"SELECT current_user = oidc_bridge_auditor_role(), (SELECT count(*) FROM audit.issuances)")
	if code != 0 || out != "t|0\n" {
		t.Fatalf("psql --auditor: exit %d, %q\n%s", code, out, errOut)
	}
	if _, errOut, code := cli(t, []string{"BRIDGE_DATABASE_URL=" + url}, "psql", "--auditor", "--", "-c", "SELECT count(*) FROM issuers"); code == 0 ||
		!strings.Contains(errOut, "permission denied for table issuers") {
		t.Errorf("psql --auditor reading issuers: exit %d, %s", code, errOut)
	}
	// The runtime login is no member of the auditor role.
	if _, errOut, code := cli(t, []string{"BRIDGE_DATABASE_URL=" + pgtest.RuntimeURL(t, url)}, "psql", "--auditor", "--", "-c", "SELECT 1"); code == 0 ||
		!strings.Contains(errOut, "permission denied to set role") {
		t.Errorf("psql --auditor as a login outside the auditor role: exit %d, %s", code, errOut)
	}
}
