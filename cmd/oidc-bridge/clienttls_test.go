package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oidc-bridge/oidc-bridge/bridge/client"
)

// runCLIWith runs the command line with app's transport (the client
// commands' HTTP requests go through it).
func runCLIWith(t *testing.T, transport http.RoundTripper, env []string, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newAppRoot(&app{stdout: &out, stderr: &errOut, environ: env, transport: transport})
	root.SetArgs(args)
	root.SetIn(strings.NewReader(stdin))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := root.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// noNetwork is a transport that fails the test on any request.
func noNetwork(t *testing.T, sent *atomic.Int32) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		sent.Add(1)
		t.Errorf("a request went out to %s", r.URL)
		return nil, errors.New("no network in this test")
	})
}

// TestClientsRefuseInsecureURL: exchange and explain refuse a plain http
// bridge URL off loopback, from a flag or the environment, as a usage error
// and before any request (the GitHub token request included).
func TestClientsRefuseInsecureURL(t *testing.T) {
	t.Parallel()
	var sent atomic.Int32
	rt := noNetwork(t, &sent)
	gh := []string{"ACTIONS_ID_TOKEN_REQUEST_URL=https://gh.example/token", "ACTIONS_ID_TOKEN_REQUEST_TOKEN=runtime-secret"}
	for _, tc := range []struct {
		name string
		env  []string
		args []string
	}{
		{"exchange flag", []string{"JOB_TOKEN=ci-secret"}, []string{"exchange", "--bridge-url", "http://bridge.example.com", "--token-env", "JOB_TOKEN", "--no-cache"}},
		{"exchange OIDC_BRIDGE_URL", []string{"OIDC_BRIDGE_URL=http://bridge.example.com/", "JOB_TOKEN=ci-secret"}, []string{"exchange", "--token-env", "JOB_TOKEN", "--no-cache"}},
		{"exchange OIDC_BRIDGE_ENDPOINT (deprecated)", []string{"OIDC_BRIDGE_ENDPOINT=http://10.0.0.5:8080", "JOB_TOKEN=ci-secret"}, []string{"exchange", "--token-env", "JOB_TOKEN", "--no-cache"}},
		{"exchange GitHub token request", append([]string{"OIDC_BRIDGE_URL=http://bridge.example.com"}, gh...), []string{"exchange", "--no-cache"}},
		{"exchange 127.0.0.2", []string{"OIDC_BRIDGE_URL=http://127.0.0.2:8080", "JOB_TOKEN=ci-secret"}, []string{"exchange", "--token-env", "JOB_TOKEN", "--no-cache"}},
		{"explain flag", []string{"OIDC_BRIDGE_ADMIN_TOKEN=admin-secret", "CI_TOKEN=ci-secret"}, []string{"explain", "--bridge-url", "http://bridge.example.com", "--token-env", "CI_TOKEN"}},
		{"explain OIDC_BRIDGE_URL", []string{"OIDC_BRIDGE_URL=http://bridge.example.com", "OIDC_BRIDGE_ADMIN_TOKEN=admin-secret", "CI_TOKEN=ci-secret"}, []string{"explain", "--token-env", "CI_TOKEN"}},
	} {
		_, _, err := runCLIWith(t, rt, tc.env, "", tc.args...)
		var ue usageError
		if !errors.Is(err, client.ErrInsecureEndpoint) || !errors.As(err, &ue) || !strings.Contains(err.Error(), "https://") {
			t.Errorf("%s: %v, want a usage error saying https", tc.name, err)
		}
		if err != nil && (strings.Contains(err.Error(), "secret")) {
			t.Errorf("%s: the error shows a token: %v", tc.name, err)
		}
	}
	if sent.Load() != 0 {
		t.Errorf("%d requests sent", sent.Load())
	}
}

// redirectingBridge is an https bridge that redirects every request to a
// plain http listener on its own host (Go's http.Client would keep the
// Authorization header there); the listener fails the test on any request.
func redirectingBridge(t *testing.T, status int) (bridge *httptest.Server, bridgeCalls *atomic.Int32, plainURL string) {
	t.Helper()
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the plain listener got %s %s with Authorization %q", r.Method, r.URL, r.Header.Get("Authorization"))
		w.WriteHeader(http.StatusTeapot)
	}))
	t.Cleanup(plain.Close)
	bridgeCalls = new(atomic.Int32)
	bridge = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bridgeCalls.Add(1)
		http.Redirect(w, r, plain.URL+r.URL.RequestURI(), status)
	}))
	t.Cleanup(bridge.Close)
	return bridge, bridgeCalls, plain.URL
}

// TestClientsRefuseRedirects: a redirect from the https bridge is not
// followed by exchange nor explain: the plain listener never sees a request
// (nor the token), the command fails naming the Location's host, and the
// exchange does not retry.
func TestClientsRefuseRedirects(t *testing.T) {
	t.Parallel()
	for _, status := range []int{302, 307, 308} {
		srv, calls, plainURL := redirectingBridge(t, status)
		_, _, err := runCLIWith(t, srv.Client().Transport, []string{"OIDC_BRIDGE_URL=" + srv.URL, "JOB_TOKEN=ci-secret"},
			"", "exchange", "--token-env", "JOB_TOKEN", "--no-cache", "--retries", "3")
		var re *client.RedirectError
		if !errors.As(err, &re) || re.Location != plainURL || !strings.Contains(err.Error(), plainURL) || strings.Contains(err.Error(), "ci-secret") {
			t.Errorf("exchange, %d: %v, want a redirect error naming %s", status, err, plainURL)
		}
		if calls.Load() != 1 {
			t.Errorf("exchange, %d: %d calls to the bridge, want 1 (no retry)", status, calls.Load())
		}

		calls.Store(0)
		_, _, err = runCLIWith(t, srv.Client().Transport, []string{"OIDC_BRIDGE_URL=" + srv.URL, "OIDC_BRIDGE_ADMIN_TOKEN=admin-secret", "CI_TOKEN=ci-secret"},
			"", "explain", "--token-env", "CI_TOKEN")
		if !errors.As(err, &re) || re.Location != plainURL || strings.Contains(err.Error(), "secret") || calls.Load() != 1 {
			t.Errorf("explain, %d: %v after %d calls, want a redirect error naming %s", status, err, calls.Load(), plainURL)
		}
	}
}

// TestExchangeGitHubTokenRequestNoRedirect: the request for GitHub's token
// (with the runner's bearer) follows no redirect either, and is not retried.
func TestExchangeGitHubTokenRequestNoRedirect(t *testing.T) {
	t.Parallel()
	srv, calls, plainURL := redirectingBridge(t, http.StatusFound)
	var bridgeCalls atomic.Int32
	bridge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		bridgeCalls.Add(1)
		w.WriteHeader(http.StatusTeapot)
	}))
	t.Cleanup(bridge.Close)
	_, _, err := runCLIWith(t, srv.Client().Transport, []string{"OIDC_BRIDGE_URL=" + bridge.URL,
		"ACTIONS_ID_TOKEN_REQUEST_URL=" + srv.URL + "/token", "ACTIONS_ID_TOKEN_REQUEST_TOKEN=runtime-secret"},
		"", "exchange", "--no-cache", "--retries", "3")
	var re *client.RedirectError
	if !errors.As(err, &re) || re.Location != plainURL || strings.Contains(err.Error(), "runtime-secret") {
		t.Errorf("GitHub token request: %v, want a redirect error naming %s", err, plainURL)
	}
	if calls.Load() != 1 || bridgeCalls.Load() != 0 {
		t.Errorf("%d token requests (want 1), %d exchanges (want 0)", calls.Load(), bridgeCalls.Load())
	}
}

// TestClientsLoopbackHTTP: plain http on 127.0.0.1 stays allowed (local
// bridges, the e2e tests).
func TestClientsLoopbackHTTP(t *testing.T) {
	t.Parallel()
	f := newFakeExchangeBridge(t, time.Hour)
	out, _, err := runCLIWith(t, nil, []string{"OIDC_BRIDGE_URL=" + f.srv.URL, "JOB_TOKEN=ci"}, "",
		"exchange", "--token-env", "JOB_TOKEN", "--no-cache", "--format", "json")
	if err != nil || f.calls.Load() != 1 || !strings.Contains(out, "ASIAEXAMPLE") {
		t.Errorf("exchange over http on %s: %v, %d calls", f.srv.URL, err, f.calls.Load())
	}
	srv, _, _ := fakeBridge(t, 200, sampleExplanation())
	if _, _, err := runCLIWith(t, nil, []string{"OIDC_BRIDGE_URL=" + srv.URL, "OIDC_BRIDGE_ADMIN_TOKEN=a", "CI_TOKEN=t"}, "",
		"explain", "--token-env", "CI_TOKEN"); err != nil {
		t.Errorf("explain over http on %s: %v", srv.URL, err)
	}
}
