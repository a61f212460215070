package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	neturl "net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/oidc-bridge/oidc-bridge/internal/database"
	"github.com/oidc-bridge/oidc-bridge/internal/pgcluster"
)

const (
	// dirPrefix names the temporary folder of each test process's cluster.
	dirPrefix = "oidc-bridge-pgtest-"
	// ownerFile holds the pid of the test process that owns a folder.
	ownerFile = "owner.pid"
	// templateName is the migrated database that NewDatabase copies.
	templateName = "pgtest_template"
	// setupTimeout bounds starting the cluster and migrating the template.
	setupTimeout = 2 * time.Minute
	// opTimeout bounds creating or dropping one database.
	opTimeout = 30 * time.Second
)

// The process-wide cluster: one per test binary, started on first use and
// stopped by Main. This is the package's only mutable global state.
var (
	mainCalled atomic.Bool
	setupOnce  sync.Once
	seq        atomic.Int64

	mu    sync.Mutex
	state *cluster // set by setup, cleared by shutdown
	// setupErr is why the cluster could not be set up.
	setupErr error
)

// cluster is the running throwaway cluster of this process.
type cluster struct {
	dir     string
	cluster *pgcluster.Cluster
	admin   *pgxpool.Pool // on database postgres
	// strategy is the CREATE DATABASE clause that copies fastest.
	strategy string
}

// Main runs the tests of m, then stops and removes the cluster, if one was
// started, whatever the tests' outcome. Call it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
func Main(m *testing.M) int {
	mainCalled.Store(true)
	defer shutdown()
	return m.Run()
}

// shutdown stops the cluster and removes its folder.
func shutdown() {
	mu.Lock()
	defer mu.Unlock()
	if state == nil {
		return
	}
	state.admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := state.cluster.Stop(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		return // keep the folder for a look
	}
	if err := os.RemoveAll(state.dir); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: remove %s: %v\n", state.dir, err)
	}
	state = nil
}

// get returns the process's cluster, setting it up on first use; it fails
// the test when that is impossible.
func get(t testing.TB) *cluster {
	t.Helper()
	if !mainCalled.Load() {
		t.Fatal("pgtest: the package's TestMain must call pgtest.Main, which stops the cluster: " +
			"func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }")
	}
	setupOnce.Do(func() {
		s, err := setup()
		mu.Lock()
		defer mu.Unlock()
		state, setupErr = s, err
	})
	mu.Lock()
	defer mu.Unlock()
	if setupErr != nil {
		t.Fatalf("pgtest: %v", setupErr)
	}
	if state == nil {
		t.Fatal("pgtest: cluster already shut down")
	}
	return state
}

// setup starts the cluster and migrates the template database.
func setup() (_ *cluster, err error) {
	removeStale()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()

	dir, err := os.MkdirTemp(baseDir(), dirPrefix)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(dir)
		}
	}()
	// The server may run as the OS user postgres, which must reach the
	// cluster folder inside.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, err
	}
	opts := pgcluster.Options{
		DataDir: filepath.Join(dir, "cluster"),
		Unsafe:  true,
		Settings: map[string]string{
			// Every test's pool may hold up to 16 connections.
			"max_connections": "300",
			// Databases live for seconds; spare the CPU.
			"autovacuum": "off",
		},
	}
	c, err := pgcluster.Start(ctx, opts)
	if err != nil {
		return nil, err
	}
	s := &cluster{dir: dir, cluster: c}
	defer func() {
		if err != nil {
			if s.admin != nil {
				s.admin.Close()
			}
			_ = c.Stop(context.WithoutCancel(ctx))
		}
	}()
	if s.admin, err = pgxpool.New(ctx, c.URL("postgres")); err != nil {
		return nil, err
	}

	var version int
	if err := s.admin.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		return nil, fmt.Errorf("server version: %w", err)
	}
	if version >= 150000 {
		// Copying the files of a small database is about five times faster
		// than PostgreSQL 15's default, WAL_LOG, which suits big ones.
		s.strategy = " STRATEGY FILE_COPY"
	}
	if _, err := s.admin.Exec(ctx, "CREATE DATABASE "+ident(templateName)); err != nil {
		return nil, fmt.Errorf("create template database: %w", err)
	}
	pool, err := database.Open(ctx, c.URL(templateName))
	if err != nil {
		return nil, err
	}
	_, err = database.Migrate(ctx, pool, nil)
	if err == nil {
		// The service's login (migrations/00007_roles.sql): a member of
		// the template's runtime group role, which every copy shares.
		_, err = pool.Exec(ctx, `DO $$ BEGIN
			CREATE ROLE `+RuntimeLogin+` LOGIN;
			EXECUTE format('GRANT %I TO `+RuntimeLogin+`', oidc_bridge_runtime_role());
		END $$`)
	}
	pool.Close()
	if err != nil {
		return nil, err
	}
	// Nobody may connect to the template: a connection would make
	// CREATE DATABASE ... TEMPLATE fail.
	if _, err := s.admin.Exec(ctx, "ALTER DATABASE "+ident(templateName)+" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"); err != nil {
		return nil, fmt.Errorf("seal template database: %w", err)
	}
	return s, nil
}

// NewDatabase creates a fresh database with the current schema, dropped when
// the test ends, and returns its URL.
func NewDatabase(t testing.TB) (url string) {
	t.Helper()
	return get(t).create(t, templateName)
}

// NewEmptyDatabase creates a fresh database without the schema (no
// migrations applied), dropped when the test ends, and returns its URL. Note
// that roles are global to the cluster, so roles made by migrations exist
// already.
func NewEmptyDatabase(t testing.TB) (url string) {
	t.Helper()
	return get(t).create(t, "template0")
}

// NewPool opens a pool on a fresh database with the current schema; the
// pool is closed and the database dropped when the test ends.
func NewPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	url := NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	pool, err := database.Open(ctx, url)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// RefusingPool returns a pool on an address where nothing listens: every
// connection is refused, as when the database is down. It is closed when
// the test ends.
func RefusingPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	addr := l.Addr().String()
	l.Close()
	pool, err := pgxpool.New(context.Background(), "postgres://nobody@"+addr+"/none?connect_timeout=2")
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// RuntimeLogin is the login role of the service in the test cluster: a
// member of the runtime group role (oidc_bridge_runtime_role()) of the
// template database, which the databases of NewDatabase and NewPool share.
// It owns nothing and has only the runtime role's privileges.
const RuntimeLogin = "oidc_bridge_test_runtime"

// RuntimeURL returns url (of NewDatabase) with the user RuntimeLogin instead
// of the superuser.
func RuntimeURL(t testing.TB, url string) string {
	t.Helper()
	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	u.User = neturl.User(RuntimeLogin)
	return u.String()
}

// NewRuntimePool opens two pools on one fresh database with the current
// schema: runtime connects as RuntimeLogin, with the service's privileges
// only, and owner as the superuser that owns the schema (for fixtures and
// checks). Both are closed and the database dropped when the test ends.
func NewRuntimePool(t testing.TB) (runtime, owner *pgxpool.Pool) {
	t.Helper()
	url := NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	owner, err := database.Open(ctx, url)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(owner.Close)
	runtime, err = database.Open(ctx, RuntimeURL(t, url))
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(runtime.Close)
	return runtime, owner
}

// create copies template into a new database named after the test.
func (s *cluster) create(t testing.TB, template string) string {
	t.Helper()
	name := databaseName(t.Name(), seq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if _, err := s.admin.Exec(ctx, "CREATE DATABASE "+ident(name)+" TEMPLATE "+ident(template)+s.strategy); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		if _, err := s.admin.Exec(ctx, "DROP DATABASE "+ident(name)+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return s.cluster.URL(name)
}

// databaseName makes a unique database name that shows the test's name.
func databaseName(test string, n int64) string {
	prefix := "t" + strconv.FormatInt(n, 10) + "_"
	var b strings.Builder
	for _, r := range strings.ToLower(test) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	name := prefix + b.String()
	const maxLen = 63 // NAMEDATALEN - 1
	if len(name) > maxLen {
		name = name[:maxLen]
	}
	return name
}

func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

// shmDir is Linux's memory file system, shared by all users.
const shmDir = "/dev/shm"

// baseDir returns the folder for the cluster's folder: /dev/shm when it is
// a memory file system, where initdb and every write run several times
// faster than on this machine's disk (the cluster is thrown away anyway),
// else the temporary folder.
func baseDir() string {
	var st syscall.Statfs_t
	const tmpfsMagic = 0x01021994
	if err := syscall.Statfs(shmDir, &st); err == nil && st.Type == tmpfsMagic && syscall.Access(shmDir, 0o2|0o1) == nil {
		return shmDir
	}
	return os.TempDir()
}

// removeStale stops and removes the clusters of earlier test processes that
// died without running Main's cleanup (a panic, a -timeout, a kill).
func removeStale() {
	var dirs []string
	for _, base := range []string{shmDir, os.TempDir()} {
		found, _ := filepath.Glob(filepath.Join(base, dirPrefix+"*"))
		dirs = append(dirs, found...)
	}
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue // being created, or not ours
		}
		owner, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || owner <= 0 || alive(owner) {
			continue
		}
		pgData := filepath.Join(dir, "cluster", "pgdata")
		if pid, ok := postmaster(pgData); ok {
			// A fast shutdown, unlike an immediate one, also removes the
			// server's shared memory segments from /dev/shm.
			_ = syscall.Kill(pid, syscall.SIGINT)
			for i := 0; i < 250 && alive(pid); i++ {
				if i == 150 {
					_ = syscall.Kill(pid, syscall.SIGQUIT)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		_ = os.RemoveAll(dir)
	}
}

// alive reports whether process pid exists and is not a zombie (an exited
// server whose parent, init, has not yet reaped it).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return true // no /proc: trust kill
	}
	// The state follows the parenthesised command name: "pid (comm) S ...".
	i := strings.LastIndexByte(string(stat), ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}

// postmaster returns the pid of the server running on pgData, checking that
// the pid is still that server's and not a reused one.
func postmaster(pgData string) (int, bool) {
	b, err := os.ReadFile(filepath.Join(pgData, "postmaster.pid"))
	if err != nil {
		return 0, false
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return 0, false
	}
	cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil || !strings.Contains(string(cmdline), pgData) {
		return 0, false
	}
	return pid, true
}
