package moto

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// PythonEnv names the interpreter that runs moto's server; the Makefile's
// test target sets it from scripts/ensure-moto.sh.
const PythonEnv = "OIDC_BRIDGE_MOTO_PYTHON"

// Account is the account moto's resources belong to unless a request says
// otherwise.
const Account = "123456789012"

// Server is a running moto server.
type Server struct {
	// URL is http://127.0.0.1:PORT, every service's endpoint.
	URL string
	// LogFile holds the server's output (its access log), in the test's
	// temporary folder.
	LogFile string

	recording string
}

type options struct {
	env []string
}

// Option configures Start.
type Option func(*options)

// WithEnv adds environment variables (NAME=value) to the server's, such as
// INITIAL_NO_AUTH_ACTION_COUNT=N (IAM enforced after the first N requests)
// or MOTO_ variables.
func WithEnv(kv ...string) Option {
	return func(o *options) { o.env = append(o.env, kv...) }
}

var (
	pythonOnce sync.Once
	python     string
	pythonErr  error
)

// Python returns the interpreter that runs moto: $OIDC_BRIDGE_MOTO_PYTHON,
// else what scripts/ensure-moto.sh prints (asked once per process). It
// fails the test when there is none.
func Python(t testing.TB) string {
	t.Helper()
	pythonOnce.Do(func() {
		if p := os.Getenv(PythonEnv); p != "" {
			python = p
			return
		}
		python, pythonErr = RunScript("ensure-moto.sh")
	})
	if pythonErr != nil {
		t.Fatalf("moto: no Python that runs moto's server (set %s or make scripts/ensure-moto.sh work): %v", PythonEnv, pythonErr)
	}
	return python
}

// RunScript runs scripts/NAME args... of this repository and returns what
// it printed on stdout, trimmed; on failure the error carries its stderr.
func RunScript(name string, args ...string) (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{filepath.Join(root, "scripts", name)}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("scripts/%s: %w\n%s", name, err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}

// repoRoot is the folder of go.mod above the working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("moto: no go.mod above the working directory")
		}
		dir = parent
	}
}

var runningOn = regexp.MustCompile(`Running on (http://127\.0\.0\.1:[0-9]+)`)

// Start runs moto's server on 127.0.0.1 and a port the system chooses, in a
// temporary folder, and returns once it listens. It is stopped (SIGTERM,
// then SIGKILL) when the test ends; its output is in LogFile and is
// printed when the test failed.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	py := Python(t)
	dir := t.TempDir()
	s := &Server{LogFile: filepath.Join(dir, "moto.log"), recording: filepath.Join(dir, "recording.jsonl")}
	logf, err := os.Create(s.LogFile)
	if err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(py, "-m", "moto.server", "-H", "127.0.0.1", "-p", "0")
	cmd.Dir = dir
	env := []string{"MOTO_RECORDER_FILEPATH=" + s.recording, "PYTHONUNBUFFERED=1"}
	for _, kv := range os.Environ() {
		// The machine's AWS and moto settings stay out, so that every
		// test's server behaves the same.
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "MOTO_") && !strings.HasPrefix(kv, "INITIAL_NO_AUTH_ACTION_COUNT=") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, o.env...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	start := time.Now()
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("moto: start %s -m moto.server: %v", py, err)
	}
	done := make(chan struct{})
	var exitErr error
	go func() {
		exitErr = cmd.Wait()
		pw.Close()
		close(done)
	}()
	found := make(chan string, 1)
	go func() {
		defer logf.Close()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, line)
			if m := runningOn.FindStringSubmatch(line); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(logf, pr)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			if b, err := os.ReadFile(s.LogFile); err == nil {
				t.Logf("moto log:\n%s", b)
			}
		}
	})
	select {
	case s.URL = <-found:
	case <-done:
		b, _ := os.ReadFile(s.LogFile)
		t.Fatalf("moto: the server exited before listening: %v\n%s", exitErr, b)
	case <-time.After(60 * time.Second):
		b, _ := os.ReadFile(s.LogFile)
		t.Fatalf("moto: the server did not listen within 60s\n%s", b)
	}
	// Werkzeug prints the address once its socket listens; one request
	// proves that it answers.
	if _, err := s.api(http.MethodGet, "/moto-api/config", ""); err != nil {
		t.Fatalf("moto: the server does not answer: %v", err)
	}
	t.Logf("moto %s started in %v", s.URL, time.Since(start).Round(time.Millisecond))
	return s
}

// api sends a request to moto's own API (/moto-api/...), which moto never
// counts or authorises as an AWS request.
func (s *Server) api(method, path, body string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s %s: status %d: %.200s", method, path, resp.StatusCode, b)
	}
	return b, nil
}

// EnforceIAM switches moto's IAM enforcement on from the next request:
// requests must then be signed with an access key moto knows (an IAM
// user's, or credentials it issued) and are allowed by the caller's IAM
// policies only.
func (s *Server) EnforceIAM(t testing.TB) {
	t.Helper()
	if _, err := s.api(http.MethodPost, "/moto-api/reset-auth", "0"); err != nil {
		t.Fatalf("moto: enforce IAM: %v", err)
	}
}

// AssumedRole is what moto kept of a session it issued with AssumeRole or
// AssumeRoleWithWebIdentity (its STS model; moto 5.2 keeps neither the
// session tags nor the source identity).
type AssumedRole struct {
	AccessKeyID string `json:"access_key_id"`
	ARN         string `json:"arn"`
	RoleARN     string `json:"role_arn"`
	SessionName string `json:"session_name"`
	ExternalID  string `json:"external_id"`
	// Policy is the session policy sent with the request.
	Policy string `json:"policy"`
}

// AssumedRoles lists the sessions moto issued, from /moto-api/data.json.
func (s *Server) AssumedRoles(t testing.TB) []AssumedRole {
	t.Helper()
	b, err := s.api(http.MethodGet, "/moto-api/data.json", "")
	if err != nil {
		t.Fatalf("moto: model data: %v", err)
	}
	var data struct {
		STS struct {
			AssumedRole []AssumedRole `json:"AssumedRole"`
		} `json:"sts"`
	}
	if err := json.Unmarshal(b, &data); err != nil {
		t.Fatalf("moto: model data: %v", err)
	}
	return data.STS.AssumedRole
}

// Request is a request moto recorded (Record).
type Request struct {
	Method string
	URL    string
	// Form is the request's form-encoded body (STS's and IAM's Query
	// protocol), nil for other bodies.
	Form url.Values
}

// Record records the requests moto receives while f runs (moto's request
// recorder, /moto-api/recorder/) and returns them. The recording (headers
// with signatures and session tokens included) stays in the test's
// temporary folder; only methods, URLs and form bodies are returned.
func (s *Server) Record(t testing.TB, f func()) []Request {
	t.Helper()
	for _, p := range []string{"/moto-api/recorder/reset-recording", "/moto-api/recorder/start-recording"} {
		if _, err := s.api(http.MethodPost, p, ""); err != nil {
			t.Fatalf("moto: %v", err)
		}
	}
	f()
	if _, err := s.api(http.MethodPost, "/moto-api/recorder/stop-recording", ""); err != nil {
		t.Fatalf("moto: %v", err)
	}
	b, err := os.ReadFile(s.recording)
	if err != nil {
		t.Fatalf("moto: recording: %v", err)
	}
	var out []Request
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		var e struct {
			Method      string            `json:"method"`
			URL         string            `json:"url"`
			Headers     map[string]string `json:"headers"`
			Body        string            `json:"body"`
			BodyEncoded bool              `json:"body_encoded"`
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("moto: recording: %v", err)
		}
		r := Request{Method: e.Method, URL: e.URL}
		body := e.Body
		if e.BodyEncoded {
			raw, err := base64.StdEncoding.DecodeString(body)
			if err != nil {
				t.Fatalf("moto: recording: %v", err)
			}
			body = string(raw)
		}
		if strings.HasPrefix(headerValue(e.Headers, "Content-Type"), "application/x-www-form-urlencoded") {
			if r.Form, err = url.ParseQuery(body); err != nil {
				t.Fatalf("moto: recording: %v", err)
			}
		}
		out = append(out, r)
	}
	return out
}

func headerValue(h map[string]string, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}
