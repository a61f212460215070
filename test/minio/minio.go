package minio

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Region is the region of the servers Start runs (MinIO's default), which
// SigV4 signatures must name.
const Region = "us-east-1"

// BinaryEnv names the variable that holds the path of the MinIO binary
// (set by `make test`); without it Binary runs scripts/ensure-minio.sh.
const BinaryEnv = "OIDC_BRIDGE_MINIO"

var binary struct {
	once sync.Once
	path string
	err  error
}

// Binary returns the path of the MinIO binary: $OIDC_BRIDGE_MINIO, else the
// one scripts/ensure-minio.sh builds (once per process; minutes when the
// build cache is cold). It fails the test when neither works.
func Binary(t testing.TB) string {
	t.Helper()
	binary.once.Do(func() { binary.path, binary.err = findBinary() })
	if binary.err != nil {
		t.Fatalf("minio: %v", binary.err)
	}
	return binary.path
}

func findBinary() (string, error) {
	if p := os.Getenv(BinaryEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", BinaryEnv, p, err)
		}
		return p, nil
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot locate scripts/ensure-minio.sh")
	}
	script := filepath.Join(filepath.Dir(file), "..", "..", "scripts", "ensure-minio.sh")
	cmd := exec.Command("bash", script)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s (set %s to a MinIO binary, or run `make minio`): %v\n%s", script, BinaryEnv, err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}

// Config is what Start configures.
type Config struct {
	// Addr is the host:port to listen on; empty for a free port on
	// 127.0.0.1. Tests that must name MinIO's URL before it starts (in
	// another process's environment) pick one first.
	Addr string
	// OpenIDConfigURL is the discovery document of the issuer MinIO trusts
	// (MINIO_IDENTITY_OPENID_CONFIG_URL). It must answer when Start runs:
	// MinIO reads it at startup.
	OpenIDConfigURL string
	// ClientID is the audience MinIO requires in the tokens
	// (MINIO_IDENTITY_OPENID_CLIENT_ID).
	ClientID string
	// ClaimName is the claim whose value names the MinIO policy of the
	// credentials (MINIO_IDENTITY_OPENID_CLAIM_NAME).
	ClaimName string
}

// Server is a running MinIO server.
type Server struct {
	// URL is the S3 and STS endpoint, http://127.0.0.1:port.
	URL string
	// RootUser and RootPassword are the root credentials, generated for
	// this server.
	RootUser, RootPassword string

	t       testing.TB
	cmd     *exec.Cmd
	log     string
	started time.Time
	done    chan struct{}
	exit    error
}

// Start runs a MinIO server configured by cfg and waits until it is ready;
// it is stopped when the test ends. A port picked free can be taken by
// another process (an outgoing connection's ephemeral port) before MinIO
// binds it: MinIO then exits at once, and Start tries again on other ports
// (the API's only when cfg.Addr left it to Start), three times at most.
func Start(t testing.TB, cfg Config) *Server {
	t.Helper()
	bin := Binary(t)
	for attempt := 1; ; attempt++ {
		addr := cfg.Addr
		if addr == "" {
			addr = freeAddr(t)
		}
		s := launch(t, bin, addr, cfg)
		err := s.waitReady()
		if err == nil {
			return s
		}
		if attempt < 3 && errors.Is(err, errPortInUse) {
			t.Logf("minio: %v; again on other ports", err)
			continue
		}
		t.Fatal(err)
	}
}

// launch starts MinIO on addr with cfg, in a folder of its own.
func launch(t testing.TB, bin, addr string, cfg Config) *Server {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"data", "home", "certs", "tmp"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	s := &Server{
		URL:          "http://" + addr,
		RootUser:     "root-" + randomHex(t, 8),
		RootPassword: randomHex(t, 20),
		t:            t,
		log:          filepath.Join(dir, "minio.log"),
		done:         make(chan struct{}),
	}
	logFile, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	s.cmd = exec.Command(bin, "server", "--quiet", "--anonymous",
		"--address", addr, "--console-address", freeAddr(t),
		"--certs-dir", filepath.Join(dir, "certs"), filepath.Join(dir, "data"))
	s.cmd.Dir = dir
	// Only what MinIO needs: nothing of the machine's MINIO_ or AWS_
	// variables, and a HOME and TMPDIR of its own so that nothing (such as
	// ~/.minio) lands outside the test's folder.
	s.cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + filepath.Join(dir, "home"),
		"TMPDIR=" + filepath.Join(dir, "tmp"),
		"MINIO_ROOT_USER=" + s.RootUser,
		"MINIO_ROOT_PASSWORD=" + s.RootPassword,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CALLHOME_ENABLE=off",
		// The data folder is on the root disk; MinIO refuses that unless
		// told it runs in CI.
		"MINIO_CI_CD=on",
		"MINIO_IDENTITY_OPENID_CONFIG_URL=" + cfg.OpenIDConfigURL,
		"MINIO_IDENTITY_OPENID_CLIENT_ID=" + cfg.ClientID,
		"MINIO_IDENTITY_OPENID_CLAIM_NAME=" + cfg.ClaimName,
		// MinIO also accepts HS256 tokens whose kid is the client id,
		// keyed with the client secret: without one, with the empty key,
		// so that anyone could mint credentials with any policy. A random
		// secret nobody holds closes that (docs/clouds.md).
		"MINIO_IDENTITY_OPENID_CLIENT_SECRET=" + randomHex(t, 32),
	}
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	started := time.Now()
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("minio: start %s: %v", bin, err)
	}
	go func() {
		s.exit = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("minio log:\n%s", s.Log())
		}
	})
	s.started = started
	return s
}

// Log returns what the server has written so far.
func (s *Server) Log() string {
	b, err := os.ReadFile(s.log)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// errPortInUse is MinIO's exit when a port it was given is taken.
var errPortInUse = errors.New("minio: a port is already in use")

// waitReady waits until the server answers its readiness probe.
func (s *Server) waitReady() error {
	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case <-s.done:
			if strings.Contains(s.Log(), "already in use") {
				return fmt.Errorf("%w (%v)", errPortInUse, s.exit)
			}
			return fmt.Errorf("minio exited before it was ready: %v\n%s", s.exit, s.Log())
		default:
		}
		resp, err := http.Get(s.URL + "/minio/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				s.t.Logf("minio: ready at %s in %v", s.URL, time.Since(s.started).Round(time.Millisecond))
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("minio was not ready within 90s (last: %v)\n%s", err, s.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *Server) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
		s.t.Errorf("minio did not stop within 20s of SIGTERM")
	}
}

// AddPolicy creates (or replaces) the MinIO policy name with the IAM policy
// document doc, through MinIO's admin API signed with the root
// credentials. It retries while MinIO's IAM subsystem is still starting.
func (s *Server) AddPolicy(t testing.TB, name, doc string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		status, body, err := s.admin(http.MethodPut, "/minio/admin/v3/add-canned-policy", url.Values{"name": {name}}, []byte(doc))
		if err == nil && status == http.StatusOK {
			return
		}
		if time.Now().After(deadline) || (err == nil && status < 500) {
			t.Fatalf("minio: add policy %s: %d %s %v", name, status, body, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// admin sends one SigV4-signed request to MinIO's admin API.
func (s *Server) admin(method, path string, query url.Values, body []byte) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path+"?"+query.Encode(), bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", hash)
	creds := aws.Credentials{AccessKeyID: s.RootUser, SecretAccessKey: s.RootPassword}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hash, "s3", Region, time.Now()); err != nil {
		return 0, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// S3 returns an S3 client of the AWS SDK for this server (path-style
// addressing) with the given credentials.
func (s *Server) S3(c aws.Credentials) *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(s.URL),
		Region:       Region,
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken),
	})
}

// RootS3 is S3 with the root credentials, for the test's setup (buckets).
func (s *Server) RootS3() *s3.Client {
	return s.S3(aws.Credentials{AccessKeyID: s.RootUser, SecretAccessKey: s.RootPassword})
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
