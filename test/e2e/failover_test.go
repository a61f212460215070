package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/oidc-bridge/oidc-bridge/internal/pgcluster"
	"github.com/oidc-bridge/oidc-bridge/test/faulttest"
	"github.com/oidc-bridge/oidc-bridge/test/oidctest"
	"github.com/oidc-bridge/oidc-bridge/test/ststest"
)

// pgProgram prepares a PostgreSQL program of the machine's binaries to run
// as the OS user postgres when this process is root (the server refuses
// root), in folder dir.
func pgProgram(t *testing.T, dir, name string, args ...string) *exec.Cmd {
	t.Helper()
	bin, err := pgcluster.FindBinaries()
	if err != nil {
		t.Fatalf("PostgreSQL binaries (run scripts/ensure-postgres.sh): %v", err)
	}
	cmd := exec.Command(filepath.Join(bin, name), args...)
	cmd.Dir = dir
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatal(err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	return cmd
}

func runPG(t *testing.T, dir, name string, args ...string) {
	t.Helper()
	if out, err := pgProgram(t, dir, name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// TestFailover: the ledger's PostgreSQL has a streaming standby, built with
// pg_basebackup -R from the machine's binaries and made synchronous
// (synchronous_standby_names = '*': a commit returns once the standby has
// flushed it, so an acknowledged issuance cannot be missing after a
// failover). Two replicas reach the pair through one multi-host URL with
// target_session_attrs=read-write. Under a stream of exchanges the primary
// dies (pg_ctl stop -m immediate); readiness answers 503 until the standby
// is promoted (pg_ctl promote); then the same bridge processes, not
// restarted, issue again on the new primary, and every 200 any client got,
// before or after, has its issued row there.
func TestFailover(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	began := time.Now()
	dir := reachableTempDir(t)
	primary, p1 := tcpCluster(t, filepath.Join(dir, "primary"), nil)
	standbyDir := filepath.Join(dir, "standby")
	if err := os.Mkdir(standbyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	runPG(t, standbyDir, "pg_basebackup", "-h", "127.0.0.1", "-p", strconv.Itoa(p1), "-U", "postgres",
		"-D", filepath.Join(standbyDir, "pgdata"), "-R", "-X", "stream", "--checkpoint=fast")
	p2 := 0
	for p2 == 0 || p2 == p1 {
		p2 = faulttest.FreePort(t)
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	standby, err := pgcluster.Start(sctx, pgcluster.Options{DataDir: standbyDir, Port: p2})
	if err != nil {
		t.Fatalf("start standby: %v", err)
	}
	t.Cleanup(func() { _ = standby.Stop(context.Background()) })
	pdb := openDB(t, primary.URL("bridge"))
	if _, err := pdb.Exec(ctx, `ALTER SYSTEM SET synchronous_standby_names = '*'`); err != nil {
		t.Fatal(err)
	}
	if _, err := pdb.Exec(ctx, `SELECT pg_reload_conf()`); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var state string
		_ = pdb.QueryRow(ctx, `SELECT coalesce(max(sync_state), '') FROM pg_stat_replication`).Scan(&state)
		if state == "sync" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the standby did not become synchronous: %q", state)
		}
	}

	dbURL := fmt.Sprintf("postgres://postgres@127.0.0.1:%d,127.0.0.1:%d/bridge?sslmode=disable&target_session_attrs=read-write", p1, p2)
	x := &exchangeEnv{dbURL: dbURL, gh: oidctest.New(t), gl: oidctest.New(t, oidctest.WithPathPrefix("/gitlab")), sts: ststest.New(t)}
	x.env = append([]string{"BRIDGE_DATABASE_URL=" + dbURL, "BRIDGE_ADMIN_TOKEN=" + adminToken,
		"BRIDGE_ALLOW_INSECURE_ISSUERS=true", "BRIDGE_RATE_LIMIT=0", "BRIDGE_LOG_LEVEL=info"}, awsEnv(x.sts)...)
	if out, errOut, code := cli(t, x.env, "migrate"); code != 0 {
		t.Fatalf("migrate: exit %d\n%s%s", code, out, errOut)
	}
	servers := []*server{startServer(t, x.env), startServer(t, x.env)}
	x.register(servers[0], "")
	for _, s := range servers {
		s.waitReady(200)
	}
	// A replica whose URL names the standby alone (no
	// target_session_attrs) connects and reads, but can write no ledger
	// row: it must not report ready.
	standbyOnly := startServer(t, append(slices.Clone(x.env),
		fmt.Sprintf("BRIDGE_DATABASE_URL=postgres://postgres@127.0.0.1:%d/bridge?sslmode=disable", p2)))
	standbyOnly.waitReady(503)
	if r := standbyOnly.call("GET", "/readyz", "", ""); !strings.Contains(string(r.body), "read-only") {
		t.Errorf("readyz on a standby: %d %s, want the read-only reason", r.status, r.body)
	}
	standbyOnly.stop()

	var (
		mu      sync.Mutex
		answers []answer
		stop    atomic.Bool
		wg      sync.WaitGroup
	)
	for w := range 4 {
		wg.Go(func() {
			for n := 0; !stop.Load(); n++ {
				a := tryExchange(servers[(w+n)%len(servers)].url, x.gh.Mint(t, x.gh.GitHubClaims(nil)))
				mu.Lock()
				answers = append(answers, a)
				mu.Unlock()
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	finish := func() {
		if stop.CompareAndSwap(false, true) {
			wg.Wait()
		}
	}
	t.Cleanup(finish)
	ok := func(since time.Time) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, a := range answers {
			if a.err == nil && a.status == 200 && a.at.After(since) {
				n++
			}
		}
		return n
	}
	time.Sleep(3 * time.Second)
	if ok(time.Time{}) == 0 {
		t.Fatal("no exchange succeeded before the failover")
	}

	// The primary dies.
	killed := time.Now()
	runPG(t, filepath.Join(dir, "primary"), "pg_ctl", "stop", "-m", "immediate", "-w", "-D", filepath.Join(dir, "primary", "pgdata"))
	for i, s := range servers {
		deadline := time.Now().Add(30 * time.Second)
		for s.call("GET", "/readyz", "", "").status != 503 {
			if time.Now().After(deadline) {
				t.Fatalf("replica %d: readyz not 503 within 30 s of the primary's death", i)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	notReady := time.Since(killed)
	time.Sleep(2 * time.Second)
	for i, s := range servers {
		if r := s.call("GET", "/readyz", "", ""); r.status != 503 {
			t.Errorf("replica %d: readyz %d before the promotion (only a standby is up), want 503", i, r.status)
		}
	}

	// The standby is promoted; the bridges, not restarted, find it.
	promoted := time.Now()
	runPG(t, standbyDir, "pg_ctl", "promote", "-w", "-D", filepath.Join(standbyDir, "pgdata"))
	for i, s := range servers {
		s.waitReady(200)
		t.Logf("replica %d ready %v after the promotion began", i, time.Since(promoted).Round(time.Millisecond))
	}
	deadline := time.Now().Add(30 * time.Second)
	for ok(promoted) < 10 {
		if time.Now().After(deadline) {
			t.Fatalf("no exchanges succeed within 30 s of the promotion")
		}
		time.Sleep(50 * time.Millisecond)
	}
	recovered := time.Since(promoted)
	finish()

	newPrimary := openDB(t, standby.URL("bridge"))
	mu.Lock()
	all := append([]answer(nil), answers...)
	mu.Unlock()
	n := requireIssuedRows(t, newPrimary, all)
	counts := map[string]int{}
	for _, a := range all {
		if a.err != nil {
			counts["transport error"]++
		} else {
			counts[fmt.Sprintf("%d %s", a.status, a.code())]++
		}
	}
	t.Logf("answers %v; %d answers 200, each with its issued row on the new primary; ledger there: %v", counts, n, countOutcomes(t, newPrimary))
	t.Logf("readyz 503 on both replicas %v after the primary died; issuing again %v after the promotion began (the standby was promoted %v after the death)",
		notReady.Round(time.Millisecond), recovered.Round(time.Millisecond), promoted.Sub(killed).Round(time.Millisecond))
	for _, s := range servers {
		s.stopClean()
	}
	t.Logf("TestFailover ran %v", time.Since(began).Round(time.Second))
}
