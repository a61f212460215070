package e2e

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/test/oidctest"
	"github.com/oidc-bridge/oidc-bridge/test/proxytest"
	"github.com/oidc-bridge/oidc-bridge/test/ststest"
)

// ghRequestStandIn is GitHub Actions' token request: each call mints a
// fresh token for the audience asked for (its jti differs), and it counts
// the calls.
type ghRequestStandIn struct {
	srv    *httptest.Server
	mu     sync.Mutex
	tokens []string
}

const ghRequestBearer = "runner-request-token-0123"

func newGHRequestStandIn(t *testing.T, iss *oidctest.Issuer) *ghRequestStandIn {
	t.Helper()
	g := &ghRequestStandIn{}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+ghRequestBearer || r.URL.Query().Get("audience") == "" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		tok := iss.Mint(t, iss.GitHubClaims(map[string]any{"aud": r.URL.Query().Get("audience")}))
		g.mu.Lock()
		g.tokens = append(g.tokens, tok)
		g.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"count": 1, "value": tok})
	}))
	t.Cleanup(g.srv.Close)
	return g
}

// distinct is how many tokens were minted, and how many of them differ.
func (g *ghRequestStandIn) distinct() (int, int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := slices.Clone(g.tokens)
	slices.Sort(s)
	return len(g.tokens), len(slices.Compact(s))
}

// noProxyEnv clears whatever proxy and CA settings the machine has.
var noProxyEnv = []string{"HTTPS_PROXY=", "https_proxy=", "HTTP_PROXY=", "http_proxy=", "NO_PROXY=", "no_proxy=",
	"SSL_CERT_FILE=", "SSL_CERT_DIR=", "OIDC_BRIDGE_CA_FILE=", "OIDC_BRIDGE_MAPPING="}

// TestCLIProxyAndPrivateCA: the real binary reaches a bridge behind a
// corporate proxy and a private CA. The bridge and GitHub's token request
// are served over TLS by a test CA under names (bridge.test, token.test)
// that only the CONNECT proxy resolves: the exchange succeeds only when
// both requests went through HTTPS_PROXY and the CA was trusted, from
// SSL_CERT_FILE, --ca-file or $OIDC_BRIDGE_CA_FILE; without the CA the
// handshake fails and no token reaches the bridge.
func TestCLIProxyAndPrivateCA(t *testing.T) {
	t.Parallel()
	x := newExchangeEnv(t)
	s := startServer(t, x.env)
	x.register(s, "")
	gh := newGHRequestStandIn(t, x.gh)
	front := proxytest.NewFront(t, map[string]string{"bridge.test": s.url, "token.test": gh.srv.URL})
	proxy := proxytest.NewProxy(t, map[string]string{"bridge.test:443": front.Addr(), "token.test:443": front.Addr()})
	base := append(slices.Clone(noProxyEnv), "OIDC_BRIDGE_URL=https://bridge.test", "HTTPS_PROXY="+proxy.URL(),
		"ACTIONS_ID_TOKEN_REQUEST_URL=https://token.test/token?api-version=2.0", "ACTIONS_ID_TOKEN_REQUEST_TOKEN="+ghRequestBearer)
	args := []string{"exchange", "--mapping", "web-prod", "--audience", oidctest.DefaultAudience, "--format", "json", "--no-cache", "--retries", "0"}

	for _, tc := range []struct {
		name string
		env  []string
		args []string
	}{
		{"SSL_CERT_FILE", []string{"SSL_CERT_FILE=" + front.CAFile}, nil},
		{"--ca-file", nil, []string{"--ca-file", front.CAFile}},
		{"OIDC_BRIDGE_CA_FILE", []string{"OIDC_BRIDGE_CA_FILE=" + front.CAFile}, nil},
	} {
		before := len(proxy.Targets())
		calls := x.sts.CallCount()
		out, errOut, code := cli(t, append(slices.Clone(base), tc.env...), append(slices.Clone(args), tc.args...)...)
		var resp api.ExchangeResponse
		if err := json.Unmarshal([]byte(out), &resp); code != 0 || err != nil || resp.Mapping != "web-prod" || x.sts.CallCount() != calls+1 {
			t.Fatalf("%s: exit %d\n%s\n%s", tc.name, code, out, errOut)
		}
		if got := proxy.Targets()[before:]; !slices.Equal(got, []string{"token.test:443", "bridge.test:443"}) {
			t.Errorf("%s: CONNECT targets %v, want the token request's then the bridge's", tc.name, got)
		}
	}

	// Without the CA: the token request's handshake fails (through the
	// proxy), and the bridge never sees a token.
	calls := x.sts.CallCount()
	_, errOut, code := cli(t, base, args...)
	if code != 1 || !strings.Contains(errOut, "certificate signed by unknown authority") || x.sts.CallCount() != calls {
		t.Fatalf("without the CA: exit %d, STS calls %d→%d: %s", code, calls, x.sts.CallCount(), errOut)
	}
	// A --ca-file that holds no certificate is a usage error.
	empty := filepath.Join(t.TempDir(), "empty.pem")
	if err := os.WriteFile(empty, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := cli(t, base, append(slices.Clone(args), "--ca-file", empty)...); code != 2 || !strings.Contains(errOut, "holds no PEM certificate") {
		t.Fatalf("bad --ca-file: exit %d: %s", code, errOut)
	}
}

var awsConfigKey = regexp.MustCompile(`(?m)^(aws_access_key_id|aws_secret_access_key|aws_session_token|region) = (\S+)$`)

// TestAWSCLIProfiles: `oidc-bridge exchange --mapping web-prod --mapping
// web-ops --format aws-config --output FILE` in a GitHub job exchanges
// twice, each time with a fresh token from the job's token request, and
// writes one AWS config file (mode 0600) with a profile per mapping; the
// AWS CLI v2 then calls `aws --profile NAME sts get-caller-identity` with
// each profile, and the STS endpoint sees each profile's request signed
// with the key issued for that mapping's role (SigV4 checked, session
// token included).
func TestAWSCLIProfiles(t *testing.T) {
	t.Parallel()
	bin := awsCLI(t, "v2", "OIDC_BRIDGE_AWS_CLI_V2")
	x := newExchangeEnv(t)
	s := startServer(t, x.env)
	x.register(s, "")
	s.must(201, "POST", "/v1/admin/mappings", `{"name": "web-ops", "issuer": "github",
		"conditions": {"repository": "acme/web", "ref": "refs/heads/main"},
		"provider": "aws", "target": {"role_arn": "arn:aws:iam::123456789012:role/web-ops", "region": "us-east-2"}}`)
	gh := newGHRequestStandIn(t, x.gh)
	dir := t.TempDir()
	file := filepath.Join(dir, "aws-config")
	env := append(slices.Clone(noProxyEnv), "OIDC_BRIDGE_URL="+s.url, "RUNNER_TEMP="+dir,
		"ACTIONS_ID_TOKEN_REQUEST_URL="+gh.srv.URL+"/token?api-version=2.0", "ACTIONS_ID_TOKEN_REQUEST_TOKEN="+ghRequestBearer)
	out, errOut, code := cli(t, env, "exchange", "--mapping", "web-prod", "--mapping", "web-ops", "--format", "aws-config",
		"--output", file, "--audience", oidctest.DefaultAudience, "--duration", "900")
	if code != 0 || out != "" {
		t.Fatalf("exchange: exit %d, stdout %q\n%s", code, out, errOut)
	}
	if n, d := gh.distinct(); n != 2 || d != 2 {
		t.Fatalf("%d token requests, %d distinct tokens: want a fresh token per mapping", n, d)
	}
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the config file: %v, mode %v", err, fi.Mode())
	}
	body, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// Each profile's keys, and the key STS issued for each mapping's role.
	profiles := map[string]map[string]string{}
	var cur string
	for _, line := range strings.Split(string(body), "\n") {
		if h, ok := strings.CutPrefix(line, "[profile "); ok {
			cur = strings.TrimSuffix(h, "]")
			profiles[cur] = map[string]string{}
		} else if m := awsConfigKey.FindStringSubmatch(line); m != nil && cur != "" {
			profiles[cur][m[1]] = m[2]
		}
	}
	issued := map[string]string{}
	for _, c := range x.sts.Calls() {
		issued[c.RoleArn] = c.IssuedAccessKeyID
	}
	want := map[string][2]string{"web-prod": {"arn:aws:iam::123456789012:role/web-deploy", "eu-west-1"},
		"web-ops": {"arn:aws:iam::123456789012:role/web-ops", "us-east-2"}}
	var keys []ststest.Key
	for name, w := range want {
		p := profiles[name]
		if p == nil || p["aws_access_key_id"] != issued[w[0]] || p["aws_access_key_id"] == "" || p["region"] != w[1] {
			t.Fatalf("profile %s: %v, want the key issued for %s (%s) in %s", name, p, w[0], issued[w[0]], w[1])
		}
		keys = append(keys, ststest.Key{AccessKeyID: p["aws_access_key_id"], SecretAccessKey: p["aws_secret_access_key"], SessionToken: p["aws_session_token"]})
	}

	sts := ststest.NewHandler(ststest.WithKeys(keys...))
	stsSrv := httptest.NewServer(sts)
	t.Cleanup(stsSrv.Close)
	cliEnvironment := cliEnv(t, "", "AWS_CONFIG_FILE="+file)
	for name := range want {
		start := time.Now()
		if _, errOut, err := runAWS(t, cliEnvironment, bin, stsSrv.URL, "sts", "get-caller-identity", "--profile", name); err != nil {
			t.Fatalf("aws --profile %s sts get-caller-identity: %v\n%s", name, err, errOut)
		}
		calls := sts.Calls()
		last := calls[len(calls)-1]
		if last.Action != "GetCallerIdentity" || last.Status != http.StatusOK || last.AccessKeyID != profiles[name]["aws_access_key_id"] ||
			last.Region != want[name][1] {
			t.Fatalf("profile %s: STS saw %s %d signed by %s in %s", name, last.Action, last.Status, last.AccessKeyID, last.Region)
		}
		t.Logf("aws --profile %s sts get-caller-identity in %v", name, time.Since(start).Round(time.Millisecond))
	}

	// A token source that holds one token cannot serve two mappings: refused
	// before it is spent.
	_, errOut, code = cli(t, append(slices.Clone(env), "JOB_TOKEN="+x.gh.Mint(t, x.gh.GitHubClaims(nil))), "exchange",
		"--mapping", "web-prod", "--mapping", "web-ops", "--format", "aws-config", "--token-env", "JOB_TOKEN")
	if code != 2 || !strings.Contains(errOut, "fresh token for each exchange") {
		t.Fatalf("static token, two mappings: exit %d: %s", code, errOut)
	}
}
