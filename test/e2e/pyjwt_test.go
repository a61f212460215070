package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oidc-bridge/oidc-bridge/test/logtest"
	"github.com/oidc-bridge/oidc-bridge/test/oidctest"
	"github.com/oidc-bridge/oidc-bridge/test/pgtest"
)

// pyjwtPython is the Python interpreter that imports PyJWT:
// $OIDC_BRIDGE_PYJWT_PYTHON (set by `make test`), else the one
// scripts/ensure-pyjwt.sh makes sure of (installing Debian's python3-jwt
// when missing). It fails the test when neither works.
var pyjwtPython = sync.OnceValues(func() (string, error) {
	if p := os.Getenv("OIDC_BRIDGE_PYJWT_PYTHON"); p != "" {
		return p, nil
	}
	script, err := filepath.Abs(filepath.Join("..", "..", "scripts", "ensure-pyjwt.sh"))
	if err != nil {
		return "", err
	}
	var stderr bytes.Buffer
	cmd := exec.Command("bash", script)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s (set OIDC_BRIDGE_PYJWT_PYTHON, or run `make pyjwt`): %v\n%s", script, err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
})

// pyjwtVerifier is testdata/pyjwt_verify.py running: a relying party
// written with PyJWT that knows only the bridge's issuer URL. Tokens go to
// it on stdin, never in argv.
type pyjwtVerifier struct {
	t   *testing.T
	in  io.WriteCloser
	out *bufio.Scanner
	err *logtest.Buffer
}

// pyjwtResult is one answer of the verifier.
type pyjwtResult struct {
	OK      bool           `json:"ok"`
	KID     string         `json:"kid"`
	Alg     string         `json:"alg"`
	Claims  map[string]any `json:"claims"`
	Error   string         `json:"error"`
	Message string         `json:"message"`
}

func startPyJWT(t *testing.T, issuer string) *pyjwtVerifier {
	t.Helper()
	python, err := pyjwtPython()
	if err != nil {
		t.Fatalf("pyjwt: %v", err)
	}
	script, err := filepath.Abs(filepath.Join("testdata", "pyjwt_verify.py"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, python, script, issuer)
	cmd.Dir = t.TempDir()
	// The system's Python with nothing of the machine's Python setup (a
	// pyenv, user site packages, proxies).
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + cmd.Dir, "PYTHONNOUSERSITE=1", "PYTHONDONTWRITEBYTECODE=1"}
	v := &pyjwtVerifier{t: t, err: &logtest.Buffer{}}
	cmd.Stderr = v.err
	if v.in, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("pyjwt: %v", err)
	}
	t.Cleanup(func() {
		v.in.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cancel()
			<-done
		}
		cancel()
	})
	v.out = bufio.NewScanner(stdout)
	v.out.Buffer(make([]byte, 1<<20), 1<<20)
	var ready struct {
		Ready      bool     `json:"ready"`
		Algorithms []string `json:"algorithms"`
		Published  []string `json:"published"`
		Usable     []string `json:"usable"`
	}
	v.read(&ready)
	if !ready.Ready {
		t.Fatalf("pyjwt did not start: %s", v.err.String())
	}
	// Every published key (RS256 and ES256, active and next) is one
	// PyJWT can read: PyJWKSet drops the others silently.
	slices.Sort(ready.Published)
	slices.Sort(ready.Usable)
	if len(ready.Published) < 4 || !slices.Equal(ready.Published, ready.Usable) {
		t.Fatalf("PyJWT can use the keys %v of the published %v", ready.Usable, ready.Published)
	}
	return v
}

func (v *pyjwtVerifier) read(into any) {
	v.t.Helper()
	line := make(chan bool, 1)
	go func() { line <- v.out.Scan() }()
	select {
	case ok := <-line:
		if !ok {
			v.t.Fatalf("pyjwt stopped: %v\n%s", v.out.Err(), v.err.String())
		}
	case <-time.After(30 * time.Second):
		v.t.Fatalf("pyjwt did not answer within 30 s\n%s", v.err.String())
	}
	if err := json.Unmarshal(v.out.Bytes(), into); err != nil {
		v.t.Fatalf("pyjwt answered %q: %v", v.out.Bytes(), err)
	}
}

// verify asks PyJWT to verify token for audience.
func (v *pyjwtVerifier) verify(token, audience string) pyjwtResult {
	v.t.Helper()
	req, err := json.Marshal(map[string]string{"token": token, "audience": audience})
	if err != nil {
		v.t.Fatal(err)
	}
	if _, err := v.in.Write(append(req, '\n')); err != nil {
		v.t.Fatalf("pyjwt: %v\n%s", err, v.err.String())
	}
	var r pyjwtResult
	v.read(&r)
	return r
}

// TestPyJWTVerifiesBridgeTokens: PyJWT, a relying party written by others,
// verifies a jwt mapping's token from a real exchange using only the
// bridge's discovery document (jwks_uri through PyJWKClient, the algorithms
// of id_token_signing_alg_values_supported), its audience and its issuer,
// and requires iss, sub, aud, exp and iat. It refuses the token for another
// audience. After two `keys rotate --force` the bridge signs with a key
// created after PyJWKClient cached the JWKS: the same verifier fetches the
// set again on the unknown kid and accepts both the new token and the one
// signed before the rotations.
func TestPyJWTVerifiesBridgeTokens(t *testing.T) {
	t.Parallel()
	if _, err := pyjwtPython(); err != nil {
		t.Fatalf("pyjwt: %v", err)
	}
	dbURL := pgtest.NewDatabase(t)
	env, publicURL := issuerEnv(t, dbURL)
	gh := oidctest.New(t)
	s := startServer(t, append(env, "BRIDGE_LISTEN_ADDR="+strings.TrimPrefix(publicURL, "http://")))
	s.must(201, "POST", "/v1/admin/issuers", issuerBody("github", gh.URL(), "github"))
	const audience = "https://deploy.internal.example"
	s.must(201, "POST", "/v1/admin/mappings", fmt.Sprintf(`{"name": "internal", "issuer": "github",
		"conditions": {"repository": "acme/web"}, "provider": "jwt", "max_duration_seconds": 900,
		"target": {"audience": %q}}`, audience))
	mint := func() string { return internalJWT(t, s, gh) }
	started := time.Now()
	v := startPyJWT(t, publicURL)
	pyStart := time.Since(started)
	accept := func(token, wantKID string) {
		t.Helper()
		r := v.verify(token, audience)
		if !r.OK {
			t.Fatalf("PyJWT refused a bridge token: %s: %s", r.Error, r.Message)
		}
		if r.KID != wantKID || r.Alg != "RS256" || r.Claims["iss"] != publicURL || r.Claims["aud"] != audience ||
			r.Claims["sub"] != "oidc-bridge:jwt:mapping:internal" || r.Claims["repository"] != "acme/web" {
			t.Fatalf("PyJWT verified kid %q alg %q claims %v; want kid %q", r.KID, r.Alg, r.Claims, wantKID)
		}
	}

	before := mint()
	k0 := activeKID(t, env, "RS256")
	accept(before, k0)
	for _, aud := range []string{"https://other.internal.example", "sts.amazonaws.com"} {
		if r := v.verify(before, aud); r.OK || r.Error != "InvalidAudienceError" {
			t.Fatalf("PyJWT with audience %q: %+v, want InvalidAudienceError", aud, r)
		}
	}

	// Two rotations: the active key is then one created after PyJWKClient
	// cached the key set.
	started = time.Now()
	for range 2 {
		if out, errOut, code := cli(t, env, "keys", "rotate", "--force"); code != 0 {
			t.Fatalf("keys rotate --force: exit %d\n%s\n%s", code, out, errOut)
		}
	}
	k2 := activeKID(t, env, "RS256")
	if k2 == k0 {
		t.Fatalf("the rotations left the active RS256 key %s", k0)
	}
	// The running bridge signs with the new key within
	// signing.KeyCacheTTL (30 s); tokens meanwhile carry the old kid.
	var after string
	for {
		after = mint()
		kid := tokenKID(after)
		if kid == k2 {
			break
		}
		if kid != k0 {
			t.Fatalf("a token signed with %q, neither the old key %s nor the new %s", kid, k0, k2)
		}
		if time.Since(started) > 45*time.Second {
			t.Fatalf("45 s after the rotations the bridge still signs with %s, not %s", k0, k2)
		}
		time.Sleep(time.Second)
	}
	rotation := time.Since(started)
	fetches := s.jwksFetches()
	started = time.Now()
	accept(after, k2)
	if !s.jwksFetchedSince(fetches) {
		t.Errorf("PyJWT verified a token of a key created after it cached the JWKS without fetching the JWKS again")
	}
	accept(before, k0)
	if r := v.verify(after, "https://other.internal.example"); r.OK || r.Error != "InvalidAudienceError" {
		t.Fatalf("PyJWT with another audience after the rotation: %+v, want InvalidAudienceError", r)
	}
	t.Logf("PyJWT started in %v; the new key signed %v after the rotations, verified in %v",
		pyStart.Round(time.Millisecond), rotation.Round(time.Millisecond), time.Since(started).Round(time.Millisecond))
}
