package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/test/oidctest"
	"github.com/oidc-bridge/oidc-bridge/test/pgtest"
)

func issuerBody(name, url, kind string) string {
	return fmt.Sprintf(`{"name": %q, "url": %q, "audiences": ["https://bridge.example.com"], "kind": %q}`, name, url, kind)
}

func mappingBody(name, issuer, repo string) string {
	return fmt.Sprintf(`{"name": %q, "issuer": %q,
		"conditions": {"repository": %q, "ref": "refs/heads/main", "event_name": ["push", "workflow_dispatch"]},
		"provider": "aws", "target": {"role_arn": "arn:aws:iam::123456789012:role/deploy", "region": "eu-west-1"},
		"quota": {"per_hour": 10}}`, name, issuer, repo)
}

// TestServeAdminAPI runs the binary on a database URL and manages issuers
// and mappings over HTTP, as a platform admin would.
func TestServeAdminAPI(t *testing.T) {
	t.Parallel()
	gh := oidctest.New(t)
	gl := oidctest.New(t, oidctest.WithPathPrefix("/gitlab"))
	url := pgtest.NewEmptyDatabase(t)
	s := startServer(t, []string{
		// One role for both (serve migrates at start).
		"BRIDGE_DATABASE_URL=" + url,
		"BRIDGE_MIGRATION_DATABASE_URL=" + url,
		"BRIDGE_ADMIN_TOKEN=" + adminToken,
		"BRIDGE_ALLOW_INSECURE_ISSUERS=true",
	})
	s.waitReady(200)
	s.must(200, "GET", "/healthz", "", "")

	// Without a token, or with a wrong one: 401, and nothing changes.
	s.must(401, "GET", "/v1/admin/issuers", "", "")
	s.must(401, "POST", "/v1/admin/issuers", issuerBody("github", gh.URL(), "github"), "wrong-token-wrong-token-wrong-token-x")

	s.must(201, "POST", "/v1/admin/issuers", issuerBody("github", gh.URL(), "github"))
	s.must(201, "POST", "/v1/admin/issuers", issuerBody("gitlab", gl.URL(), "gitlab"))
	s.must(409, "POST", "/v1/admin/issuers", issuerBody("github", gh.URL(), "github"))
	r := s.must(400, "POST", "/v1/admin/issuers", issuerBody("remote", "http://ci.example.com", "generic"))
	var e api.Error
	r.json(t, &e)
	if e.Error != api.CodeInvalidRequest || e.Field != "url" {
		t.Fatalf("http issuer off loopback: %+v", e)
	}

	s.must(201, "POST", "/v1/admin/mappings", mappingBody("web-deploy", "github", "acme/web"))
	s.must(201, "POST", "/v1/admin/mappings", mappingBody("app-deploy", "gitlab", "platform/app"))
	var list api.MappingList
	s.must(200, "GET", "/v1/admin/mappings?issuer=github", "").json(t, &list)
	if len(list.Mappings) != 1 || list.Mappings[0].Name != "web-deploy" || list.Mappings[0].Quota.PerHour != 10 {
		t.Fatalf("mappings of github: %+v", list)
	}
	s.must(200, "PUT", "/v1/admin/mappings/web-deploy", mappingBody("web-deploy", "github", "acme/*"))
	var m api.Mapping
	s.must(200, "GET", "/v1/admin/mappings/web-deploy", "").json(t, &m)
	if got := m.Conditions.Repository.Patterns; len(got) != 1 || got[0] != "acme/*" {
		t.Fatalf("updated repository condition: %v", got)
	}
	s.must(200, "GET", "/v1/admin/mappings/web-deploy/usage", "")
	s.must(409, "DELETE", "/v1/admin/issuers/github", "")
	s.must(204, "DELETE", "/v1/admin/mappings/web-deploy", "")
	s.must(204, "DELETE", "/v1/admin/issuers/github", "")
	s.must(404, "GET", "/v1/admin/issuers/github", "")

	metrics := string(s.must(200, "GET", "/metrics", "", "").body)
	if !strings.Contains(metrics, `oidc_bridge_http_requests_total{code="201",method="POST",route="/v1/admin/issuers"} 2`) {
		t.Errorf("metrics lack the admin requests:\n%s", metrics)
	}
	// The catalog cache is loaded and in use, and it reloaded after the
	// writes above.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(metrics, "\noidc_bridge_catalog_cache_fresh 1\n"); {
		if time.Now().After(deadline) {
			t.Fatalf("catalog cache not in use:\n%s", metrics)
		}
		time.Sleep(50 * time.Millisecond)
		metrics = string(s.must(200, "GET", "/metrics", "", "").body)
	}
	if !regexp.MustCompile(`\noidc_bridge_catalog_reloads_total\{result="ok"\} ([2-9]|\d\d+)\n`).MatchString(metrics) {
		t.Errorf("catalog cache did not reload after changes:\n%s", metrics)
	}
	for _, m := range []string{`oidc_bridge_catalog_heartbeats_ignored_total{reason="forged"} 0`,
		`oidc_bridge_catalog_notifications_coalesced_total `} {
		if !strings.Contains(metrics, "\n"+m) {
			t.Errorf("metrics lack %s:\n%s", m, metrics)
		}
	}
	s.stopClean()
	logs := s.logs.String()
	if strings.Contains(logs, adminToken) {
		t.Error("the admin token appears in the log")
	}
	if !strings.Contains(logs, `"msg":"shutting down"`) {
		t.Error("no shutdown in the log")
	}
}

// TestEmbeddedDefault: with no database URL the binary creates a private
// cluster, tool commands reach it while serve runs, SIGTERM stops it, and a
// second run finds its data again.
func TestEmbeddedDefault(t *testing.T) {
	t.Parallel()
	dir := reachableTempDir(t)
	gh := oidctest.New(t)
	env := []string{"BRIDGE_DATA_DIR=" + dir, "BRIDGE_ALLOW_INSECURE_ISSUERS=true"}

	s := startServer(t, env)
	s.waitReady(200)
	// No bootstrap token: only tokens made with admin-token create work.
	s.must(401, "GET", "/v1/admin/issuers", "")
	out, errOut, code := cli(t, env, "admin-token", "create", "ops")
	if code != 0 {
		t.Fatalf("admin-token create: exit %d: %s", code, errOut)
	}
	token := strings.TrimSpace(out)
	if !strings.HasPrefix(token, "obat_") || strings.Contains(token, "\n") {
		t.Fatalf("admin-token create printed %q", out)
	}
	s.must(201, "POST", "/v1/admin/issuers", issuerBody("github", gh.URL(), "github"), token)
	s.stopClean()
	pid := filepath.Join(dir, "postgres", "pgdata", "postmaster.pid")
	if _, err := os.Stat(pid); !os.IsNotExist(err) {
		t.Fatalf("the embedded cluster still runs after serve stopped (%s: %v)", pid, err)
	}

	// The second run reuses the data: the issuer and the token are there.
	s2 := startServer(t, env)
	s2.waitReady(200)
	if !strings.Contains(string(s2.must(200, "GET", "/v1/admin/issuers/github", "", token).body), gh.URL()) {
		t.Fatal("issuer lost across restarts")
	}
	if strings.Contains(s2.logs.String(), "initdb") && strings.Contains(s2.logs.String(), `"msg":"initdb`) {
		t.Error("second run initialised the cluster again")
	}
	// The service connects as its runtime login, not as the superuser
	// that migrated (migrations/00007_roles.sql).
	pidFile, err := os.ReadFile(filepath.Join(dir, "postgres", "pgdata", "postmaster.pid"))
	if lines := strings.Split(string(pidFile), "\n"); err != nil || len(lines) < 5 {
		t.Fatalf("postmaster.pid: %v", err)
	} else {
		db := openDB(t, "postgres://postgres@/oidc_bridge?sslmode=disable&port="+lines[3]+"&host="+lines[4])
		var users []string
		if err := db.QueryRow(t.Context(), `SELECT array_agg(DISTINCT usename::text) FROM pg_stat_activity
			WHERE datname = 'oidc_bridge' AND pid <> pg_backend_pid()`).Scan(&users); err != nil {
			t.Fatal(err)
		}
		var super, member bool
		if err := db.QueryRow(t.Context(), `SELECT rolsuper OR rolcreaterole, pg_has_role('oidc_bridge_service', oidc_bridge_runtime_role(), 'USAGE')
			FROM pg_roles WHERE rolname = 'oidc_bridge_service'`).Scan(&super, &member); err != nil {
			t.Fatal(err)
		}
		if strings.Join(users, ",") != "oidc_bridge_service" || super || !member {
			t.Errorf("the service's sessions are %v's (SUPERUSER or CREATEROLE %v, runtime role %v); want only oidc_bridge_service's, a runtime member",
				users, super, member)
		}
		db.Close()
	}
	out, errOut, code = cli(t, env, "admin-token", "list")
	if code != 0 || !strings.Contains(out, "ops") || strings.Contains(out, token) {
		t.Fatalf("admin-token list: exit %d\n%s\n%s", code, out, errOut)
	}
	if _, errOut, code = cli(t, env, "admin-token", "revoke", "ops"); code != 0 {
		t.Fatalf("admin-token revoke: exit %d: %s", code, errOut)
	}
	s2.must(401, "GET", "/v1/admin/issuers", "", token)
	s2.stopClean()
	if strings.Contains(s.logs.String()+s2.logs.String(), token) {
		t.Error("an admin token appears in the log")
	}
}

// TestEmbeddedDefaultUnreachableDataDir: run as root from a checkout the
// postgres OS user cannot reach (under a 0700 folder, as /root is), the
// embedded default keeps its cluster in a folder of its own, says where, and
// finds it again; the key-encryption key stays in BRIDGE_DATA_DIR.
func TestEmbeddedDefaultUnreachableDataDir(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("only root runs the cluster as another user, whose access can be missing")
	}
	closed := filepath.Join(reachableTempDir(t), "home")
	if err := os.Mkdir(closed, 0o700); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(closed, "checkout", ".oidc-bridge")
	sum := sha256.Sum256([]byte(filepath.Join(dir, "postgres")))
	clusterDir := filepath.Join(clusterRoot, hex.EncodeToString(sum[:])[:16])
	// Registered first, so it runs after the servers have stopped.
	t.Cleanup(func() { _ = os.RemoveAll(clusterDir) })
	env := []string{"BRIDGE_DATA_DIR=" + dir}

	s := startServer(t, env)
	s.waitReady(200)
	if !strings.Contains(s.logs.String(), `"cluster_dir":"`+clusterDir+`"`) {
		t.Errorf("the log does not say the cluster is in %s", clusterDir)
	}
	out, errOut, code := cli(t, env, "admin-token", "create", "ops")
	if code != 0 {
		t.Fatalf("admin-token create: exit %d: %s", code, errOut)
	}
	token := strings.TrimSpace(out)
	s.must(200, "GET", "/v1/admin/issuers", "", token)
	s.stopClean()

	if _, err := os.Stat(filepath.Join(dir, "postgres")); !os.IsNotExist(err) {
		t.Errorf("a cluster folder was made in the unreachable data folder: %v", err)
	}
	if _, err := os.Stat(filepath.Join(clusterDir, "pgdata", "PG_VERSION")); err != nil {
		t.Errorf("no cluster in %s: %v", clusterDir, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "key-encryption-key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key-encryption key in BRIDGE_DATA_DIR: %v, %v; want mode 0600", fi, err)
	}
	entries, err := os.ReadDir(clusterDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), "key") {
			t.Errorf("%s in the cluster folder %s", e.Name(), clusterDir)
		}
	}

	// A second run from the same checkout finds the same cluster.
	s2 := startServer(t, env)
	s2.waitReady(200)
	s2.must(200, "GET", "/v1/admin/issuers", "", token)
	s2.stopClean()

	// A tool command that cannot start the cluster says where it is.
	conf := filepath.Join(clusterDir, "pgdata", "postgresql.auto.conf")
	if err := os.WriteFile(conf, []byte("shared_buffers = 'lots'\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code = cli(t, env, "admin-token", "list"); code == 0 || !strings.Contains(errOut, "cluster folder "+clusterDir) {
		t.Errorf("admin-token list on a broken cluster: exit %d, %s; want an error naming %s", code, errOut, clusterDir)
	}
}

// TestMigrateAndReadiness: serve without BRIDGE_MIGRATION_DATABASE_URL, or
// with --no-migrate, on an empty database does not migrate and is not
// ready until `oidc-bridge migrate` has run.
func TestMigrateAndReadiness(t *testing.T) {
	t.Parallel()
	env := []string{"BRIDGE_DATABASE_URL=" + pgtest.NewEmptyDatabase(t), "BRIDGE_ADMIN_TOKEN=" + adminToken}
	s := startServer(t, env)
	noMigrate := startServer(t, append([]string{"BRIDGE_MIGRATION_DATABASE_URL=" + strings.TrimPrefix(env[0], "BRIDGE_DATABASE_URL=")}, env...),
		"--no-migrate")
	for _, s := range []*server{s, noMigrate} {
		r := s.call("GET", "/readyz", "", "")
		if r.status != 503 || !strings.Contains(string(r.body), "migrate") {
			t.Fatalf("readyz before migrate: %d %s", r.status, r.body)
		}
		s.must(200, "GET", "/healthz", "", "")
	}
	noMigrate.stopClean()
	out, errOut, code := cli(t, env, "migrate")
	if code != 0 || !regexp.MustCompile(`^applied [1-9][0-9]* migration\(s\); schema version [1-9]`).MatchString(out) {
		t.Fatalf("migrate: exit %d\n%s\n%s", code, out, errOut)
	}
	s.waitReady(200)
	out, _, code = cli(t, env, "migrate")
	if code != 0 || !strings.Contains(out, "applied 0 migration") {
		t.Fatalf("second migrate: exit %d: %s", code, out)
	}
	// A newer release's migration Job moves the schema ahead of this binary
	// during a rollout: migrations only add, so it stays ready.
	if _, err := openDB(t, strings.TrimPrefix(env[0], "BRIDGE_DATABASE_URL=")).Exec(t.Context(),
		`INSERT INTO goose_db_version (version_id, is_applied) VALUES (9999, true)`); err != nil {
		t.Fatal(err)
	}
	s.waitReady(200)
	s.stopClean()
}

// TestReplicas: several replicas started at once on one fresh database all
// migrate safely, and a mapping changed through one holds on the others at
// once.
func TestReplicas(t *testing.T) {
	t.Parallel()
	gh := oidctest.New(t)
	url := pgtest.NewEmptyDatabase(t)
	env := []string{"BRIDGE_DATABASE_URL=" + url, "BRIDGE_MIGRATION_DATABASE_URL=" + url, "BRIDGE_ADMIN_TOKEN=" + adminToken,
		"BRIDGE_ALLOW_INSECURE_ISSUERS=true"}
	servers := make([]*server, 3)
	var wg sync.WaitGroup
	for i := range servers {
		wg.Go(func() { servers[i] = startServer(t, env) })
	}
	wg.Wait()
	for _, s := range servers {
		if s == nil {
			t.FailNow()
		}
		s.waitReady(200)
	}
	a, b := servers[0], servers[1]
	a.must(201, "POST", "/v1/admin/issuers", issuerBody("github", gh.URL(), "github"))
	a.must(201, "POST", "/v1/admin/mappings", mappingBody("web", "github", "acme/web"))
	var m api.Mapping
	b.must(200, "GET", "/v1/admin/mappings/web", "").json(t, &m)
	if !m.Enabled {
		t.Fatal("another replica does not see the new mapping")
	}
	b.must(200, "PUT", "/v1/admin/mappings/web", `{"name": "web", "issuer": "github", "enabled": false,
		"conditions": {"repository": "acme/web"},
		"provider": "aws", "target": {"role_arn": "arn:aws:iam::123456789012:role/deploy", "region": "eu-west-1"}}`)
	servers[2].must(200, "GET", "/v1/admin/mappings/web", "").json(t, &m)
	if m.Enabled {
		t.Fatal("a replica still sees the mapping enabled")
	}
	for _, s := range servers {
		s.stopClean()
	}
}

// TestCommandLine: configuration mistakes stop the binary with a message
// naming the variable; unfinished commands say so.
func TestCommandLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		env      []string
		args     []string
		code     int
		contains string
	}{
		{"short admin token", []string{"BRIDGE_ADMIN_TOKEN=short", "BRIDGE_DATABASE_URL=postgres://x@127.0.0.1:1/x"}, []string{"serve"}, 1, "BRIDGE_ADMIN_TOKEN"},
		{"bad log level", []string{"BRIDGE_LOG_LEVEL=loud", "BRIDGE_DATABASE_URL=postgres://x@127.0.0.1:1/x"}, []string{"serve"}, 1, "BRIDGE_LOG_LEVEL"},
		{"bad listen address", []string{"BRIDGE_LISTEN_ADDR=8080", "BRIDGE_DATABASE_URL=postgres://x@127.0.0.1:1/x"}, []string{"serve"}, 1, "BRIDGE_LISTEN_ADDR"},
		{"bad insecure flag", []string{"BRIDGE_ALLOW_INSECURE_ISSUERS=maybe", "BRIDGE_DATABASE_URL=postgres://x@127.0.0.1:1/x"}, []string{"serve"}, 1, "BRIDGE_ALLOW_INSECURE_ISSUERS"},
		{"bad database URL", []string{"BRIDGE_DATABASE_URL=mysql://u:hunter2@h/db"}, []string{"serve"}, 1, "BRIDGE_DATABASE_URL"},
		{"unreachable database", []string{"BRIDGE_DATABASE_URL=postgres://u:hunter2@127.0.0.1:1/db"}, []string{"migrate"}, 1, "database"},
		{"exchange without a bridge", nil, []string{"exchange"}, 2, "--bridge-url"},
		{"exchange over plain http off loopback", []string{"OIDC_BRIDGE_URL=http://bridge.example.com", "JOB_TOKEN=x"},
			[]string{"exchange", "--token-env", "JOB_TOKEN", "--no-cache"}, 2, "only on a loopback address"},
		{"explain over plain http off loopback", []string{"OIDC_BRIDGE_URL=http://bridge.example.com", "OIDC_BRIDGE_ADMIN_TOKEN=x", "JOB_TOKEN=x"},
			[]string{"explain", "--token-env", "JOB_TOKEN"}, 2, "only on a loopback address"},
		{"keys without a key-encryption key", []string{"BRIDGE_DATABASE_URL=" + pgtest.NewDatabase(t)}, []string{"keys", "list"}, 1, "BRIDGE_KEY_ENCRYPTION_KEY"},
		{"bad key-encryption key", []string{"BRIDGE_DATABASE_URL=" + pgtest.NewDatabase(t), "BRIDGE_KEY_ENCRYPTION_KEY=short"}, []string{"keys", "list"}, 1, "BRIDGE_KEY_ENCRYPTION_KEY"},
		{"unknown flag", nil, []string{"serve", "--frobnicate"}, 2, "frobnicate"},
		{"bad bootstrap label", []string{"BRIDGE_ADMIN_TOKEN=" + strings.Repeat("x", 40), "BRIDGE_ADMIN_TOKEN_LABEL=ops team", "BRIDGE_DATABASE_URL=postgres://x@127.0.0.1:1/x"}, []string{"serve"}, 1, "BRIDGE_ADMIN_TOKEN_LABEL"},
		{"admin-token create without name", []string{"BRIDGE_DATABASE_URL=postgres://x@127.0.0.1:1/x"}, []string{"admin-token", "create"}, 2, "usage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, errOut, code := cli(t, tt.env, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.contains) {
				t.Fatalf("exit %d (want %d), stderr %q (want it to mention %q)", code, tt.code, errOut, tt.contains)
			}
			if strings.Contains(errOut, "hunter2") {
				t.Fatalf("the database password leaked: %s", errOut)
			}
		})
	}
}

// TestMetricsListener: with BRIDGE_METRICS_ADDR the metrics are served on
// that listener only; the service's port answers 404 for /metrics. A
// metrics address on the service's own port is refused at start.
func TestMetricsListener(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	env := []string{"BRIDGE_DATABASE_URL=" + pgtest.NewDatabase(t), "BRIDGE_ADMIN_TOKEN=" + adminToken, "BRIDGE_METRICS_ADDR=" + addr}
	s := startServer(t, env)
	s.waitReady(200)
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "oidc_bridge_build_info") {
		t.Errorf("metrics on %s: %d\n%.300s", addr, resp.StatusCode, body)
	}
	if r := s.call("GET", "/metrics", "", ""); r.status != 404 {
		t.Errorf("GET /metrics on the service: %d, want 404", r.status)
	}
	resp, err = http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("GET /healthz on the metrics listener: %d, want 404", resp.StatusCode)
	}
	s.stopClean()

	_, errOut, code := cli(t, append(env[:2:2], "BRIDGE_LISTEN_ADDR=127.0.0.1:18080", "BRIDGE_METRICS_ADDR=0.0.0.0:18080"), "serve")
	if code == 0 || !strings.Contains(errOut, "BRIDGE_METRICS_ADDR") {
		t.Errorf("serve with metrics on the service's port: exit %d: %s", code, errOut)
	}
}

// TestPprof: profiles are served only on BRIDGE_PPROF_ADDR's own loopback
// listener, never on the service's; serve refuses a non-loopback address.
func TestPprof(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	env := []string{"BRIDGE_DATABASE_URL=" + pgtest.NewDatabase(t), "BRIDGE_ADMIN_TOKEN=" + adminToken, "BRIDGE_PPROF_ADDR=" + addr}
	s := startServer(t, env)
	s.waitReady(200)
	resp, err := http.Get("http://" + addr + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("pprof on %s: %d", addr, resp.StatusCode)
	}
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/cmdline"} {
		if r := s.call("GET", path, "", ""); r.status != 404 {
			t.Errorf("GET %s on the service: %d, want 404", path, r.status)
		}
	}
	s.stopClean()

	_, errOut, code := cli(t, append(env[:2:2], "BRIDGE_PPROF_ADDR=0.0.0.0:6060"), "serve")
	if code == 0 || !strings.Contains(errOut, "BRIDGE_PPROF_ADDR") {
		t.Errorf("serve with pprof on 0.0.0.0: exit %d: %s", code, errOut)
	}
}
