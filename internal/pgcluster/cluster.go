package pgcluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Options configures [Start].
type Options struct {
	// DataDir is the cluster folder; it is created when missing. The
	// PostgreSQL data directory (PGDATA) is DataDir/pgdata and the server log
	// is DataDir/postgres.log. When this process is root the folder is given
	// to the OS user postgres, and every folder above it must be traversable
	// by that user, unless FallbackRoot is set.
	DataDir string
	// FallbackRoot, when set, is where a root process keeps the cluster
	// whose DataDir the OS user postgres cannot reach (a folder above it is
	// not traversable, such as /root, mode 0700): the cluster folder is then
	// FallbackRoot/<first 16 hex digits of the SHA-256 of DataDir's absolute
	// path>, owned by postgres with mode 0700, so each DataDir keeps its own
	// cluster and later starts reuse it. FallbackRoot itself must belong to
	// root and be writable by no one else; it is created (mode 0755) when
	// missing. A cluster that already exists in DataDir is always used in
	// place (an unreachable one is an error, as without FallbackRoot), and
	// one that already exists in the fallback folder is used even once
	// DataDir has become reachable. Empty: no fallback, an unreachable
	// DataDir is an error wrapping [ErrDataDirUnreachable]. Ignored when
	// this process is not root.
	FallbackRoot string
	// BinDir holds initdb, pg_ctl and postgres; empty means [FindBinaries].
	BinDir string
	// SocketDir is the folder of the unix socket; empty means DataDir/run,
	// or, when a socket there would have too long a path, a folder under
	// os.TempDir() named after a hash of DataDir.
	SocketDir string
	// Port is the TCP port to listen on at 127.0.0.1. 0 means no TCP at all,
	// only the unix socket (whose file is then named after port 5432).
	// Authentication is "trust": with a port, every local user can connect
	// as the superuser.
	Port int
	// Unsafe turns durability off (fsync=off, synchronous_commit=off,
	// full_page_writes=off, initdb --no-sync) for speed. A crash of the
	// machine can then corrupt or lose the whole cluster. For throwaway test
	// clusters only; never set it for a cluster that holds data worth
	// keeping.
	Unsafe bool
	// Settings are more server settings (postgres -c name=value), applied
	// when this Start starts the server; a reused server keeps its own.
	Settings map[string]string
	// Logger receives the cluster's life events; nil discards them.
	Logger *slog.Logger
	// MustExist uses only a cluster that already exists, in DataDir or in
	// its folder under FallbackRoot: it is started when stopped, but none
	// is initialised and no folder is created for one. Without a cluster,
	// Start returns an error wrapping [ErrNoCluster]. For commands that
	// must find the cluster a service uses rather than make another.
	MustExist bool
}

// ErrNoCluster means that [Options.MustExist] was set and no cluster exists
// for the data folder.
var ErrNoCluster = errors.New("pgcluster: no cluster")

// Cluster is a running PostgreSQL server on a cluster folder.
type Cluster struct {
	binDir    string
	dataDir   string
	pgData    string
	socketDir string // empty when connecting over TCP
	// tempSocketDir is set when socketDir is a folder under os.TempDir()
	// that Stop removes.
	tempSocketDir bool
	host          string // TCP host when socketDir is empty
	port          int
	acct          account
	logger        *slog.Logger
	// started is set when this Cluster started the server, which makes
	// Stop stop it.
	started bool

	mu      sync.Mutex
	stopped bool
}

const (
	// socketPort names the socket file when there is no TCP port.
	socketPort = 5432
	// maxSocketPath stays below the 108 bytes of sun_path, with room.
	maxSocketPath = 100
	// startTimeout bounds pg_ctl start and stop.
	startTimeout = 60 * time.Second
)

// Start starts the cluster in opts.DataDir, initialising it on first use,
// or reuses the server that already runs there. Only a Cluster that started
// its server stops it in [Cluster.Stop].
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.DataDir == "" {
		return nil, errors.New("pgcluster: no data folder given")
	}
	if opts.Port < 0 || opts.Port > 65535 {
		return nil, fmt.Errorf("pgcluster: port %d out of range", opts.Port)
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	binDir := opts.BinDir
	if binDir == "" {
		var err error
		if binDir, err = FindBinaries(); err != nil {
			return nil, err
		}
	} else if !hasServerBinaries(binDir) {
		return nil, fmt.Errorf("%w in %s", ErrNoBinaries, binDir)
	}
	acct, err := serverAccount()
	if err != nil {
		return nil, err
	}
	requested, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("pgcluster: data folder: %w", err)
	}
	if opts.MustExist && !existsFor(acct, requested, opts.FallbackRoot) {
		return nil, fmt.Errorf("%w in %s", ErrNoCluster, requested)
	}
	if err := os.MkdirAll(filepath.Dir(requested), 0o755); err != nil {
		return nil, fmt.Errorf("pgcluster: create data folder: %w", err)
	}
	dataDir, fallback, err := acct.chooseDataDir(requested, opts.FallbackRoot)
	if err != nil {
		return nil, err
	}
	if fallback {
		logger.InfoContext(ctx, "pgcluster: the cluster is kept outside the data folder, in a folder the PostgreSQL user can reach",
			"os_user", acct.name, "requested_dir", requested, "cluster_dir", dataDir)
		c, err := startIn(ctx, opts, binDir, acct, dataDir, logger)
		if err != nil {
			return nil, fmt.Errorf("%w (cluster folder %s, used for %s because the %s user could not reach that)", err, dataDir, requested, acct.name)
		}
		// For whoever cleans up the fallback root: which data folder this is.
		if err := os.WriteFile(filepath.Join(dataDir, originFile), []byte(requested+"\n"), 0o644); err != nil {
			c.logger.WarnContext(ctx, "pgcluster: cannot note the data folder in the cluster folder", "error", err)
		}
		return c, nil
	}
	return startIn(ctx, opts, binDir, acct, dataDir, logger)
}

// startIn starts or reuses the cluster in dataDir, the folder [Start] chose.
func startIn(ctx context.Context, opts Options, binDir string, acct account, dataDir string, logger *slog.Logger) (*Cluster, error) {
	if opts.MustExist && !hasCluster(dataDir) {
		return nil, fmt.Errorf("%w in %s", ErrNoCluster, dataDir)
	}
	if err := acct.ownDir(dataDir, true); err != nil {
		return nil, err
	}
	if err := acct.checkReachable(dataDir); err != nil {
		return nil, err
	}

	c := &Cluster{
		binDir:  binDir,
		dataDir: dataDir,
		pgData:  filepath.Join(dataDir, "pgdata"),
		acct:    acct,
		logger:  logger.With("data_dir", dataDir),
	}

	// Serialise Start between processes on the same folder, so that two
	// commands starting at once neither both run initdb nor both pg_ctl start.
	unlock, err := lockFile(ctx, filepath.Join(dataDir, "pgcluster.lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()

	if err := c.initdb(ctx, opts.Unsafe); err != nil {
		return nil, err
	}
	if running, err := c.reuse(ctx); err != nil || running {
		return c, err
	}
	if err := c.start(ctx, opts); err != nil {
		return nil, err
	}
	return c, nil
}

// initdb creates the data directory unless it already holds a cluster.
func (c *Cluster) initdb(ctx context.Context, unsafe bool) error {
	if _, err := os.Stat(filepath.Join(c.pgData, "PG_VERSION")); err == nil {
		return nil
	}
	args := []string{"-D", c.pgData, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-instructions"}
	if unsafe {
		args = append(args, "--no-sync")
	}
	began := time.Now()
	if out, err := c.command(ctx, "initdb", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("pgcluster: initdb %s: %w\n%s", c.pgData, err, tail(out, 20))
	}
	c.logger.InfoContext(ctx, "pgcluster: initialised cluster", "duration", time.Since(began).Round(time.Millisecond))
	return nil
}

// reuse adopts a server that already runs on the data directory. It waits
// for one that is starting up, and reports false when there is none or it
// is shutting down.
func (c *Cluster) reuse(ctx context.Context) (bool, error) {
	deadline := time.Now().Add(startTimeout)
	for {
		if !c.running(ctx) {
			return false, nil
		}
		pid, err := readPIDFile(c.pgData)
		if errors.Is(err, os.ErrNotExist) {
			continue // it has just stopped
		}
		if err != nil {
			return false, err
		}
		if pid.status == "ready" {
			if err := c.adopt(pid); err != nil {
				return false, err
			}
			c.logger.InfoContext(ctx, "pgcluster: reusing running server", "pid", pid.pid, "url", c.URL("postgres"))
			return true, nil
		}
		if time.Now().After(deadline) {
			return false, fmt.Errorf("pgcluster: server in %s is %q, not ready, after %v", c.pgData, pid.status, startTimeout)
		}
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("pgcluster: wait for running server: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// adopt takes the address of a running server from its postmaster.pid.
func (c *Cluster) adopt(pid pidFile) error {
	c.port = pid.port
	switch {
	case pid.socketDir != "":
		c.socketDir = pid.socketDir
	case pid.listen != "":
		c.host = pid.listen
		if ip := net.ParseIP(pid.listen); pid.listen == "*" || (ip != nil && ip.IsUnspecified()) {
			c.host = "127.0.0.1"
		}
	default:
		return fmt.Errorf("pgcluster: running server in %s has neither a unix socket nor a TCP address", c.pgData)
	}
	return nil
}

// start starts the server with pg_ctl and waits until it accepts
// connections.
func (c *Cluster) start(ctx context.Context, opts Options) error {
	socketDir, err := c.chooseSocketDir(opts.SocketDir)
	if err != nil {
		return err
	}
	port, listen := opts.Port, "127.0.0.1"
	if port == 0 {
		port, listen = socketPort, ""
	}
	serverOpts := []string{
		"-c", "listen_addresses=" + listen,
		"-k", socketDir,
		"-p", strconv.Itoa(port),
		"-c", "unix_socket_permissions=0700",
	}
	if opts.Unsafe {
		serverOpts = append(serverOpts, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	for _, name := range slices.Sorted(maps.Keys(opts.Settings)) {
		serverOpts = append(serverOpts, "-c", name+"="+opts.Settings[name])
	}
	quoted := make([]string, len(serverOpts))
	for i, o := range serverOpts {
		// pg_ctl hands -o to a shell.
		quoted[i] = shellQuote(o)
	}
	logFile := filepath.Join(c.dataDir, "postgres.log")
	began := time.Now()
	out, err := c.command(ctx, "pg_ctl", "start", "-w", "-t", strconv.Itoa(int(startTimeout/time.Second)),
		"-D", c.pgData, "-l", logFile, "-o", strings.Join(quoted, " ")).CombinedOutput()
	if err != nil {
		logTail := readTail(logFile, 20)
		if c.running(context.WithoutCancel(ctx)) {
			// pg_ctl gave up (or was cancelled) after the server came up:
			// do not leave it behind.
			_ = c.command(context.WithoutCancel(ctx), "pg_ctl", "stop", "-m", "immediate", "-w", "-D", c.pgData).Run()
		}
		if c.tempSocketDir {
			// Nothing listens there: leave nothing behind in the shared
			// temporary folder (only succeeds when empty, as it is now).
			_ = os.Remove(socketDir)
		}
		return fmt.Errorf("pgcluster: start server in %s: %w\n%s\npostgres.log:\n%s", c.pgData, err, tail(out, 10), logTail)
	}
	c.started = true
	if listen == "" {
		c.socketDir, c.port = socketDir, socketPort
	} else {
		c.host, c.port = listen, port
	}
	c.logger.InfoContext(ctx, "pgcluster: started server", "duration", time.Since(began).Round(time.Millisecond), "url", c.URL("postgres"))
	return nil
}

// chooseSocketDir returns the socket folder, owned by the server's user.
func (c *Cluster) chooseSocketDir(dir string) (string, error) {
	const socketFile = ".s.PGSQL.65535" // the longest name a port gives
	if dir == "" {
		dir = filepath.Join(c.dataDir, "run")
		if len(dir)+1+len(socketFile) > maxSocketPath {
			sum := sha256.Sum256([]byte(c.dataDir))
			dir = filepath.Join(os.TempDir(), "oidc-bridge-pg-"+hex.EncodeToString(sum[:8]))
			if err := c.acct.checkReachable(dir); err != nil {
				return "", err
			}
			// Not taken over when someone else owns it: anyone may create
			// folders in a shared temporary folder.
			c.tempSocketDir = true
			return dir, c.acct.ownDir(dir, false)
		}
		return dir, c.acct.ownDir(dir, true)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("pgcluster: socket folder: %w", err)
	}
	if len(dir)+1+len(socketFile) > maxSocketPath {
		return "", fmt.Errorf("pgcluster: socket folder %s: path too long for a unix socket (at most %d bytes)", dir, maxSocketPath-1-len(socketFile))
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", fmt.Errorf("pgcluster: create socket folder: %w", err)
	}
	if err := c.acct.checkReachable(dir); err != nil {
		return "", err
	}
	return dir, c.acct.ownDir(dir, false)
}

// running reports whether a server runs on the data directory.
func (c *Cluster) running(ctx context.Context) bool {
	// Exit status 0: running; 3: not running; 4: no data directory.
	return c.command(ctx, "pg_ctl", "status", "-D", c.pgData).Run() == nil
}

// Dir returns the cluster folder in use: Options.DataDir, or its folder
// under Options.FallbackRoot.
func (c *Cluster) Dir() string { return c.dataDir }

// URL returns a pgx connection URL for database as the superuser postgres.
func (c *Cluster) URL(database string) string {
	u := url.URL{
		Scheme: "postgres",
		User:   url.User("postgres"),
		Path:   "/" + database,
	}
	q := url.Values{}
	if c.socketDir != "" {
		q.Set("host", c.socketDir)
		q.Set("port", strconv.Itoa(c.port))
	} else {
		u.Host = net.JoinHostPort(c.host, strconv.Itoa(c.port))
	}
	q.Set("sslmode", "disable")
	u.RawQuery = q.Encode()
	return u.String()
}

// EnsureDatabase creates the database name unless it exists.
func (c *Cluster) EnsureDatabase(ctx context.Context, name string) error {
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return fmt.Errorf("pgcluster: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("pgcluster: look up database %q: %w", name, err)
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" {
		// duplicate_database: someone else created it meanwhile.
		return nil
	}
	if err != nil {
		return fmt.Errorf("pgcluster: create database %q: %w", name, err)
	}
	c.logger.InfoContext(ctx, "pgcluster: created database", "database", name)
	return nil
}

// Stop stops the server with a fast shutdown if this Cluster started it; a
// server that was already running when Start was called is left running.
// Stop may be called more than once.
func (c *Cluster) Stop(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped || !c.started {
		c.stopped = true
		return nil
	}
	out, err := c.command(ctx, "pg_ctl", "stop", "-m", "fast", "-w", "-t", strconv.Itoa(int(startTimeout/time.Second)),
		"-D", c.pgData).CombinedOutput()
	if err != nil && c.running(context.WithoutCancel(ctx)) {
		return fmt.Errorf("pgcluster: stop server in %s: %w\n%s", c.pgData, err, tail(out, 10))
	}
	c.stopped = true
	if c.tempSocketDir {
		// Only succeeds when empty, which it is once the server is down.
		_ = os.Remove(c.socketDir)
	}
	c.logger.InfoContext(ctx, "pgcluster: stopped server")
	return nil
}

// command prepares a PostgreSQL program to run as the server's user.
func (c *Cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(c.binDir, name), args...)
	// The server's user must be able to enter the working folder.
	cmd.Dir = c.dataDir
	cmd.Env = serverEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Keep the server out of the terminal's process group: a Ctrl-C
		// meant for oidc-bridge must not shut the database down under it
		// while it drains; Stop does that.
		Setpgid:    true,
		Credential: c.acct.cred,
	}
	return cmd
}

// serverEnv is this process's environment without the PG* and locale
// variables that would change what the programs do.
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "PG") || strings.HasPrefix(name, "LC_") || name == "LANG" || name == "LANGUAGE" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C")
}

// pidFile is what postmaster.pid says about a running server.
type pidFile struct {
	pid       int
	port      int
	socketDir string
	listen    string
	status    string
}

// readPIDFile parses postmaster.pid (see PostgreSQL's pidfile.h).
func readPIDFile(pgData string) (pidFile, error) {
	b, err := os.ReadFile(filepath.Join(pgData, "postmaster.pid"))
	if err != nil {
		return pidFile{}, fmt.Errorf("pgcluster: read server pid file: %w", err)
	}
	lines := strings.Split(string(b), "\n")
	line := func(n int) string {
		if n <= len(lines) {
			return strings.TrimSpace(lines[n-1])
		}
		return ""
	}
	var p pidFile
	p.pid, _ = strconv.Atoi(line(1))
	if p.port, err = strconv.Atoi(line(4)); err != nil {
		return pidFile{}, fmt.Errorf("pgcluster: server pid file has port %q: %w", line(4), err)
	}
	p.socketDir, p.listen, p.status = line(5), line(6), line(8)
	return p, nil
}

// lockFile takes an exclusive lock on path, waiting for ctx. The returned
// function releases it.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("pgcluster: open lock file: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("pgcluster: lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("pgcluster: wait for lock %s: %w", path, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}

// tail returns the last n lines of b.
func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// readTail returns the last n lines of the file at path, reading at most
// its last 64 KiB.
func readTail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	defer f.Close()
	const window = 64 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > window {
		_, _ = f.Seek(-window, io.SeekEnd)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	return tail(b, n)
}
