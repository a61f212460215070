package pgcluster

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/oidc-bridge/oidc-bridge/test/logtest"
)

// tempDir returns a fresh folder, removed when the test ends, that the
// server's user can reach (the testing package's own folders are 0700). It
// is on /dev/shm when that is writable: initdb runs several times faster in
// memory than on a slow disk.
func tempDir(t *testing.T) string {
	t.Helper()
	base := "/dev/shm"
	if syscall.Access(base, 0o2|0o1) != nil {
		base = ""
	}
	dir, err := os.MkdirTemp(base, "pgcluster-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// start starts a cluster and stops it when the test ends.
func start(t *testing.T, opts Options) *Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return c
}

func connect(t *testing.T, url string) (*pgx.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn, nil
}

func mustExec(t *testing.T, url, sql string) {
	t.Helper()
	conn, err := connect(t, url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func TestFindBinaries(t *testing.T) {
	t.Parallel()
	dir, err := FindBinaries()
	if err != nil {
		t.Fatalf("FindBinaries: %v", err)
	}
	if want := "/usr/lib/postgresql/15/bin"; dir != want {
		t.Errorf("FindBinaries() = %q, want %q", dir, want)
	}
}

func TestFindBinariesHighestVersion(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	for v, names := range map[string][]string{
		"9.6": {"initdb", "pg_ctl", "postgres"},
		"15":  {"initdb", "pg_ctl", "postgres"},
		"16":  {"initdb", "pg_ctl"}, // incomplete: no server
	} {
		bin := filepath.Join(root, v, "bin")
		if err := os.MkdirAll(bin, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if err := os.WriteFile(filepath.Join(bin, n), []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, err := findBinaries(filepath.Join(root, "no-pg_config"), root)
	if err != nil {
		t.Fatalf("findBinaries: %v", err)
	}
	if want := filepath.Join(root, "15", "bin"); got != want {
		t.Errorf("findBinaries() = %q, want %q", got, want)
	}
}

func TestFindBinariesNone(t *testing.T) {
	t.Parallel()
	_, err := findBinaries("/nonexistent/pg_config", t.TempDir())
	if !errors.Is(err, ErrNoBinaries) {
		t.Fatalf("findBinaries() error = %v, want ErrNoBinaries", err)
	}
	for _, want := range []string{"apt-get install postgresql", "BRIDGE_DATABASE_URL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestStartConnectStop(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(tempDir(t), "cluster") // Start creates it
	c := start(t, Options{DataDir: dir, Unsafe: true})

	url := c.URL("postgres")
	if !strings.HasPrefix(url, "postgres://postgres@/postgres?") || !strings.Contains(url, "port=5432") ||
		!strings.Contains(url, "sslmode=disable") {
		t.Errorf("URL = %q, want a unix socket URL on port 5432", url)
	}
	conn, err := connect(t, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	var one int
	if err := conn.QueryRow(context.Background(), "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1 = %d, %v", one, err)
	}
	var listen string
	if err := conn.QueryRow(context.Background(), "SHOW listen_addresses").Scan(&listen); err != nil || listen != "" {
		t.Errorf("listen_addresses = %q, %v; want no TCP", listen, err)
	}
	conn.Close(context.Background())

	for _, name := range []string{dir, filepath.Join(dir, "pgdata"), filepath.Join(dir, "run")} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o700 {
			t.Errorf("%s has mode %v, want 0700", name, fi.Mode().Perm())
		}
	}

	if err := c.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := c.Stop(context.Background()); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if _, err := connect(t, url); err == nil {
		t.Fatal("connect after Stop succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, "pgdata", "postmaster.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("postmaster.pid after Stop: %v", err)
	}
}

func TestRestartKeepsData(t *testing.T) {
	t.Parallel()
	dir := tempDir(t)
	c := start(t, Options{DataDir: dir, Unsafe: true})
	mustExec(t, c.URL("postgres"), "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('run 1')")
	if err := c.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}

	c = start(t, Options{DataDir: dir, Unsafe: true})
	conn, err := connect(t, c.URL("postgres"))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	var v string
	if err := conn.QueryRow(context.Background(), "SELECT v FROM kept").Scan(&v); err != nil || v != "run 1" {
		t.Fatalf("SELECT v FROM kept = %q, %v; want the row of run 1", v, err)
	}
}

func TestStartReusesRunningServer(t *testing.T) {
	t.Parallel()
	dir := tempDir(t)
	first := start(t, Options{DataDir: dir, Unsafe: true})
	// Other options are ignored: the running server's address wins.
	second := start(t, Options{DataDir: dir, Port: 1})
	if first.URL("db") != second.URL("db") {
		t.Errorf("reusing Cluster URL = %q, want %q", second.URL("db"), first.URL("db"))
	}
	mustExec(t, second.URL("postgres"), "SELECT 1")

	if err := second.Stop(context.Background()); err != nil {
		t.Fatalf("Stop of the reusing Cluster: %v", err)
	}
	if _, err := connect(t, first.URL("postgres")); err != nil {
		t.Fatalf("server gone after the reusing Cluster stopped: %v", err)
	}
	if err := first.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, err := connect(t, first.URL("postgres")); err == nil {
		t.Fatal("server still up after the starting Cluster stopped")
	}
}

func TestTCPPort(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()

	c := start(t, Options{DataDir: tempDir(t), Port: port, Unsafe: true, Settings: map[string]string{"cluster_name": "it's a test"}})
	url := c.URL("postgres")
	if !strings.Contains(url, net.JoinHostPort("127.0.0.1", strconv.Itoa(port))) {
		t.Errorf("URL = %q, want TCP on port %d", url, port)
	}
	conn, err := connect(t, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	var fsync string
	if err := conn.QueryRow(context.Background(), "SELECT current_setting('fsync')").Scan(&fsync); err != nil || fsync != "off" {
		t.Errorf("fsync = %q, %v; want off with Unsafe", fsync, err)
	}
	var name string
	if err := conn.QueryRow(context.Background(), "SELECT current_setting('cluster_name')").Scan(&name); err != nil || name != "it's a test" {
		t.Errorf("cluster_name = %q, %v; want the value of Settings", name, err)
	}
}

func TestLongDataDirUsesTempSocketDir(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(tempDir(t), strings.Repeat("d", 60), strings.Repeat("e", 60))
	c := start(t, Options{DataDir: dir, Unsafe: true})
	if !strings.Contains(c.URL("x"), "oidc-bridge-pg-") {
		t.Errorf("URL = %q, want a socket folder under the temporary folder", c.URL("x"))
	}
	mustExec(t, c.URL("postgres"), "SELECT 1")
	if err := c.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.socketDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary socket folder %s left behind: %v", c.socketDir, err)
	}
}

func TestEnsureDatabase(t *testing.T) {
	t.Parallel()
	c := start(t, Options{DataDir: tempDir(t), Unsafe: true})
	ctx := context.Background()
	for range 2 {
		if err := c.EnsureDatabase(ctx, `odd "name"`); err != nil {
			t.Fatalf("EnsureDatabase: %v", err)
		}
	}
	mustExec(t, c.URL(`odd "name"`), "SELECT 1")
}

func TestUnreachableDataDir(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("only root runs the server as another user, whose access can be missing")
	}
	closed := filepath.Join(tempDir(t), "closed")
	if err := os.Mkdir(closed, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := Start(context.Background(), Options{DataDir: filepath.Join(closed, "cluster"), Unsafe: true})
	if !errors.Is(err, ErrDataDirUnreachable) {
		t.Fatalf("Start error = %v, want ErrDataDirUnreachable", err)
	}
	t.Log(err)
	for _, want := range []string{closed + " (", "BRIDGE_DATA_DIR", `"postgres"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestStartFailureShowsLog(t *testing.T) {
	t.Parallel()
	dir := tempDir(t)
	c := start(t, Options{DataDir: dir, Unsafe: true})
	if err := c.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A setting the server rejects makes it exit at start.
	conf := filepath.Join(dir, "pgdata", "postgresql.auto.conf")
	if err := os.WriteFile(conf, []byte("shared_buffers = 'lots'\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Start(context.Background(), Options{DataDir: dir, Unsafe: true})
	if err == nil {
		t.Fatal("Start succeeded with a broken configuration")
	}
	t.Log(err)
	if !strings.Contains(err.Error(), "shared_buffers") {
		t.Errorf("error does not show the log's complaint: %v", err)
	}
}

func TestStartWithoutDataDir(t *testing.T) {
	t.Parallel()
	if _, err := Start(context.Background(), Options{}); err == nil || !strings.HasPrefix(err.Error(), "pgcluster: ") {
		t.Errorf("Start without DataDir error = %v", err)
	}
}

func TestConcurrentStartsShareOneServer(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(tempDir(t), "cluster")
	clusters := make([]*Cluster, 2)
	errs := make([]error, 2)
	done := make(chan int)
	for i := range clusters {
		go func() {
			clusters[i], errs[i] = Start(context.Background(), Options{DataDir: dir, Unsafe: true})
			done <- i
		}()
	}
	<-done
	<-done
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Start %d: %v", i, err)
		}
		c := clusters[i]
		t.Cleanup(func() { _ = c.Stop(context.Background()) })
	}
	if clusters[0].started == clusters[1].started {
		t.Errorf("started = %v, %v; want exactly one Cluster to start the server", clusters[0].started, clusters[1].started)
	}
	mustExec(t, clusters[0].URL("postgres"), "SELECT 1")
}

// closedDataDir returns a data folder under a folder of mode 0700 (as the
// checkout of a root user under /root is), and a fallback root beside it
// that does not exist yet; both are removed when the test ends.
func closedDataDir(t *testing.T) (base, closed, dataDir, root string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("only root runs the server as another user, whose access can be missing")
	}
	base = tempDir(t)
	closed = filepath.Join(base, "parent")
	if err := os.Mkdir(closed, 0o700); err != nil {
		t.Fatal(err)
	}
	return base, closed, filepath.Join(closed, "data", "postgres"), filepath.Join(base, "fallback")
}

func TestUnreachableDataDirFallsBack(t *testing.T) {
	t.Parallel()
	_, closed, dataDir, root := closedDataDir(t)
	var logs logtest.Buffer
	opts := Options{DataDir: dataDir, FallbackRoot: root, Unsafe: true, Logger: slog.New(slog.NewJSONHandler(&logs, nil))}
	c := start(t, opts)

	want := fallbackDir(root, dataDir)
	if c.Dir() != want || filepath.Dir(want) != root || len(filepath.Base(want)) != 16 {
		t.Fatalf("cluster folder = %s, want %s", c.Dir(), want)
	}
	if !strings.Contains(logs.String(), `"cluster_dir":"`+want+`"`) || !strings.Contains(logs.String(), `"requested_dir":"`+dataDir+`"`) {
		t.Errorf("the log does not say where the cluster is:\n%s", logs.String())
	}
	if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the unreachable data folder was created anyway: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(want, originFile)); err != nil || string(b) != dataDir+"\n" {
		t.Errorf("%s = %q, %v; want the data folder", originFile, b, err)
	}
	acct, err := serverAccount()
	if err != nil {
		t.Fatal(err)
	}
	// The root may be entered by postgres; the cluster folder, its data
	// and its socket folder only by postgres (and root).
	for name, mode := range map[string]os.FileMode{root: 0o755, want: 0o700, filepath.Join(want, "pgdata"): 0o700, filepath.Join(want, "run"): 0o700} {
		fi, err := os.Lstat(name)
		if err != nil {
			t.Fatal(err)
		}
		uid := acct.uid
		if name == root {
			uid = 0
		}
		if st := fi.Sys().(*syscall.Stat_t); fi.Mode().Perm() != mode || !fi.IsDir() || int(st.Uid) != uid {
			t.Errorf("%s: mode %v uid %d, want a folder of mode %v and uid %d", name, fi.Mode(), st.Uid, mode, uid)
		}
	}
	if !strings.Contains(c.URL("x"), "host="+url.QueryEscape(filepath.Join(want, "run"))) {
		t.Errorf("URL = %s, want the socket in %s/run", c.URL("x"), want)
	}
	mustExec(t, c.URL("postgres"), "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('run 1')")
	if err := c.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}

	// A later start from the same data folder reuses that cluster, also
	// once the data folder has become reachable (no empty cluster in its
	// place).
	for i, mode := range []os.FileMode{0o700, 0o755} {
		if err := os.Chmod(closed, mode); err != nil {
			t.Fatal(err)
		}
		c := start(t, opts)
		if c.Dir() != want || !c.started {
			t.Fatalf("start %d: cluster folder = %s (started %v), want %s started again", i+2, c.Dir(), c.started, want)
		}
		conn, err := connect(t, c.URL("postgres"))
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		var v string
		if err := conn.QueryRow(context.Background(), "SELECT v FROM kept").Scan(&v); err != nil || v != "run 1" {
			t.Fatalf("start %d: SELECT v FROM kept = %q, %v; want the row of run 1", i+2, v, err)
		}
		conn.Close(context.Background())
		if err := c.Stop(context.Background()); err != nil {
			t.Fatalf("Stop: %v", err)
		}
	}
	if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a cluster was made in the data folder once it became reachable: %v", err)
	}

	// Another data folder gets another cluster folder.
	if other := fallbackDir(root, dataDir+"2"); other == want {
		t.Errorf("two data folders share the cluster folder %s", want)
	}
}

// An existing cluster in the data folder is never replaced by an empty one
// elsewhere: when it cannot be reached, Start fails as before.
func TestUnreachableExistingClusterIsNotReplaced(t *testing.T) {
	t.Parallel()
	_, closed, dataDir, root := closedDataDir(t)
	if err := os.Chmod(closed, 0o755); err != nil {
		t.Fatal(err)
	}
	c := start(t, Options{DataDir: dataDir, FallbackRoot: root, Unsafe: true})
	if c.Dir() != dataDir {
		t.Fatalf("reachable data folder: cluster folder = %s, want %s", c.Dir(), dataDir)
	}
	if err := c.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(closed, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := startMustFail(t, Options{DataDir: dataDir, FallbackRoot: root, Unsafe: true})
	if !errors.Is(err, ErrDataDirUnreachable) || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("Start error = %v, want ErrDataDirUnreachable naming the existing cluster", err)
	}
	if _, err := os.Stat(root); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a fallback cluster was prepared anyway: %v", err)
	}
}

// The fallback root must be root's alone: its cluster folders are taken
// over, which is safe only when no one else can have made them.
func TestFallbackRootWritableByOthersRefused(t *testing.T) {
	t.Parallel()
	_, _, dataDir, root := closedDataDir(t)
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(root, 0o777); err != nil {
		t.Fatal(err)
	}
	_, err := startMustFail(t, Options{DataDir: dataDir, FallbackRoot: root, Unsafe: true})
	if err == nil || !strings.Contains(err.Error(), "others may write") || !strings.Contains(err.Error(), dataDir) {
		t.Fatalf("Start error = %v, want a refusal of the fallback root", err)
	}
	if _, err := os.Stat(fallbackDir(root, dataDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cluster folder made in a root others may write to: %v", err)
	}
}

// startMustFail calls Start, stopping the server should it start after all.
func startMustFail(t *testing.T, opts Options) (*Cluster, error) {
	t.Helper()
	c, err := Start(context.Background(), opts)
	if err == nil {
		t.Cleanup(func() { _ = c.Stop(context.Background()) })
	}
	return c, err
}

// MustExist never makes a cluster: without one it fails with ErrNoCluster
// and creates nothing; an existing, stopped one it starts (and stops), a
// running one it reuses.
func TestMustExist(t *testing.T) {
	t.Parallel()
	base := tempDir(t)
	dataDir := filepath.Join(base, "data", "postgres")
	_, err := startMustFail(t, Options{DataDir: dataDir, MustExist: true, Unsafe: true})
	if !errors.Is(err, ErrNoCluster) || !strings.Contains(err.Error(), dataDir) {
		t.Fatalf("Start without a cluster: %v, want ErrNoCluster naming %s", err, dataDir)
	}
	if entries, err := os.ReadDir(base); err != nil || len(entries) != 0 {
		t.Fatalf("Start without a cluster left %v (%v) in %s", entries, err, base)
	}

	first := start(t, Options{DataDir: dataDir, Unsafe: true})
	mustExec(t, first.URL("postgres"), "CREATE TABLE kept (v text)")
	reuse := start(t, Options{DataDir: dataDir, MustExist: true})
	if reuse.started {
		t.Error("MustExist started a second server beside the running one")
	}
	if err := first.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	again := start(t, Options{DataDir: dataDir, MustExist: true, Unsafe: true})
	if !again.started {
		t.Error("MustExist did not start the stopped cluster")
	}
	mustExec(t, again.URL("postgres"), "SELECT FROM kept")
}

// MustExist finds a cluster kept in the fallback folder.
func TestMustExistFindsFallbackCluster(t *testing.T) {
	t.Parallel()
	_, _, dataDir, root := closedDataDir(t)
	first := start(t, Options{DataDir: dataDir, FallbackRoot: root, Unsafe: true})
	if err := first.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := start(t, Options{DataDir: dataDir, FallbackRoot: root, MustExist: true, Unsafe: true})
	if c.Dir() != fallbackDir(root, dataDir) {
		t.Errorf("cluster folder = %s, want the fallback %s", c.Dir(), fallbackDir(root, dataDir))
	}
	_, err := startMustFail(t, Options{DataDir: dataDir + "2", FallbackRoot: root, MustExist: true, Unsafe: true})
	if !errors.Is(err, ErrNoCluster) {
		t.Errorf("another data folder: %v, want ErrNoCluster", err)
	}
}
