package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/oidc-bridge/oidc-bridge/test/logtest"
	"github.com/oidc-bridge/oidc-bridge/test/pgtest"
)

// binary is the oidc-bridge binary built for this test process.
var binary string

// clusterRoot is where the binary keeps the embedded clusters of data
// folders the postgres user cannot reach (built in with -ldflags -X).
var clusterRoot string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "oidc-bridge-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "oidc-bridge")
	// The embedded default's clusters for data folders the postgres user
	// cannot reach go here, not into /var/lib/oidc-bridge.
	clusterRoot = filepath.Join(dir, "clusters")
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	build := exec.Command("go", "build", "-o", binary, "-ldflags", "-X main.clusterRoot="+clusterRoot,
		"github.com/oidc-bridge/oidc-bridge/cmd/oidc-bridge")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build oidc-bridge:", err)
		os.Exit(1)
	}
	_, before := os.Stat(".oidc-bridge")
	code := pgtest.Main(m)
	os.RemoveAll(dir)
	// Every process a test starts runs in a temporary folder of its own, so
	// the binary's relative defaults (./.oidc-bridge: a database and a
	// key-encryption key) never land in the package's folder, where git
	// would see them.
	if _, after := os.Stat(".oidc-bridge"); before != nil && after == nil {
		fmt.Fprintln(os.Stderr, "e2e: a test left .oidc-bridge/ in the package folder: give its process a temporary folder")
		code = 1
	}
	os.Exit(code)
}

const adminToken = "e2e-admin-token-0123456789abcdefghijkl"

// baseEnv is the environment of every process: the machine's, without any
// BRIDGE_ variable that could leak in, plus extra.
func baseEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BRIDGE_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// server is a running `oidc-bridge serve`.
type server struct {
	t      *testing.T
	cmd    *exec.Cmd
	url    string
	logs   *logtest.Buffer
	done   chan struct{}
	exit   error
	stopMu sync.Once
}

// startServer runs `oidc-bridge serve args...` with env and waits until it
// listens. It is stopped (SIGTERM) at the end of the test if still running.
func startServer(t *testing.T, env []string, args ...string) *server {
	t.Helper()
	return startServerIn(t, t.TempDir(), env, args...)
}

// startServerIn is startServer run in the folder dir.
func startServerIn(t *testing.T, dir string, env []string, args ...string) *server {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"serve"}, args...)...)
	cmd.Dir = dir
	cmd.Env = baseEnv(append([]string{"BRIDGE_LISTEN_ADDR=127.0.0.1:0", "BRIDGE_LOG_LEVEL=debug"}, env...)...)
	logs := &logtest.Buffer{}
	pr, pw := io.Pipe()
	cmd.Stderr = io.MultiWriter(logs, pw)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, cmd: cmd, logs: logs, done: make(chan struct{})}
	go func() {
		s.exit = cmd.Wait()
		pw.Close()
		close(s.done)
	}()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var line struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
				addr <- line.Addr
			}
		}
		io.Copy(io.Discard, pr)
	}()
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	select {
	case a := <-addr:
		s.url = "http://" + a
	case <-s.done:
		t.Fatalf("oidc-bridge serve exited before listening: %v\n%s", s.exit, logs.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("oidc-bridge serve did not listen within 60s:\n%s", logs.String())
	}
	return s
}

// stop sends SIGTERM and waits for a clean exit.
func (s *server) stop() {
	s.stopMu.Do(func() {
		select {
		case <-s.done:
			return
		default:
		}
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(30 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
			s.t.Errorf("oidc-bridge serve did not stop within 30s of SIGTERM")
		}
	})
}

// stopClean stops the server and requires exit status 0.
func (s *server) stopClean() {
	s.t.Helper()
	s.stop()
	if s.exit != nil {
		s.t.Fatalf("oidc-bridge serve exited with %v\n%s", s.exit, s.logs.String())
	}
}

type reply struct {
	status int
	body   []byte
}

func (r reply) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
}

// call sends a request with the admin token (or token, if given).
func (s *server) call(method, path, body string, token ...string) reply {
	s.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.url+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	tok := adminToken
	if len(token) > 0 {
		tok = token[0]
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return reply{status: resp.StatusCode, body: b}
}

func (s *server) must(want int, method, path, body string, token ...string) reply {
	s.t.Helper()
	r := s.call(method, path, body, token...)
	if r.status != want {
		s.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.status, want, r.body)
	}
	return r
}

// callForm posts an application/x-www-form-urlencoded body.
func (s *server) callForm(path string, form url.Values) reply {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", s.url+path, strings.NewReader(form.Encode()))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return reply{status: resp.StatusCode, body: b}
}

// waitReady polls /readyz until it answers want.
func (s *server) waitReady(want int) {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := s.call("GET", "/readyz", "", "")
		if r.status == want {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("readyz answers %d (%s), want %d", r.status, r.body, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// cli runs an oidc-bridge tool command, in a temporary folder of its own,
// and returns its output and exit code.
func cli(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return cliIn(t, t.TempDir(), env, args...)
}

// cliIn is cli run in the folder dir.
func cliIn(t *testing.T, dir string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir = dir
	cmd.Env = baseEnv(env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return o.String(), e.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return o.String(), e.String(), 0
}

// reachableTempDir is a temporary folder that the postgres OS user can
// enter, for the embedded default when the tests run as root.
func reachableTempDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
