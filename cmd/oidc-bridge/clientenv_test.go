package main

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestClientVariableNames: the admin client (explain) reads OIDC_BRIDGE_URL
// and OIDC_BRIDGE_ADMIN_TOKEN, the pipeline client (exchange) OIDC_BRIDGE_URL;
// the old names work with a deprecation warning on stderr; the server's
// BRIDGE_ADMIN_TOKEN is never read by a client.
func TestClientVariableNames(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		// wantAuth: the Authorization the bridge must see ("" for exchange).
		wantAuth string
		// warn: a deprecation warning naming this variable; "" for none.
		warn string
		// usage: the command must stop with this in a usage error.
		usage string
		// noURL: the test's env names the URL itself (URL is replaced by
		// the fake bridge's); else OIDC_BRIDGE_URL is set.
		noURL bool
	}{
		{name: "explain new names", env: []string{"OIDC_BRIDGE_ADMIN_TOKEN=admin-new"},
			args: []string{"explain", "--token-env", "CI_TOKEN"}, wantAuth: "Bearer admin-new"},
		{name: "explain deprecated names", env: []string{"OIDC_BRIDGE_ENDPOINT=URL", "OIDC_BRIDGE_TOKEN=admin-old"}, noURL: true,
			args: []string{"explain", "--token-env", "CI_TOKEN"}, wantAuth: "Bearer admin-old", warn: "OIDC_BRIDGE_ENDPOINT is deprecated"},
		{name: "explain deprecated token name", env: []string{"OIDC_BRIDGE_TOKEN=admin-old"},
			args: []string{"explain", "--token-env", "CI_TOKEN"}, wantAuth: "Bearer admin-old", warn: "OIDC_BRIDGE_TOKEN is deprecated"},
		{name: "explain new name wins", env: []string{"OIDC_BRIDGE_ADMIN_TOKEN=admin-new", "OIDC_BRIDGE_TOKEN=admin-old"},
			args: []string{"explain", "--token-env", "CI_TOKEN"}, wantAuth: "Bearer admin-new", warn: "OIDC_BRIDGE_TOKEN is deprecated and ignored"},
		{name: "explain never reads the server's bootstrap variable", env: []string{"BRIDGE_ADMIN_TOKEN=bootstrap-secret-bootstrap-secret"},
			args: []string{"explain", "--token-env", "CI_TOKEN"}, usage: "OIDC_BRIDGE_ADMIN_TOKEN"},
		{name: "exchange new name", args: []string{"exchange", "--token-env", "CI_TOKEN", "--no-cache", "--retries", "0"}},
		{name: "exchange deprecated name", env: []string{"OIDC_BRIDGE_ENDPOINT=URL"}, noURL: true,
			args: []string{"exchange", "--token-env", "CI_TOKEN", "--no-cache", "--retries", "0"}, warn: "OIDC_BRIDGE_ENDPOINT is deprecated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var calls atomic.Int32
			var auth atomic.Value
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				auth.Store(r.Header.Get("Authorization"))
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusForbidden)
				_, _ = w.Write([]byte(`{"error": "no_matching_mapping", "message": "refused for the test"}`))
			}))
			t.Cleanup(ts.Close)
			srv := ts.URL
			env := []string{"CI_TOKEN=ci-token"}
			for _, kv := range tc.env {
				env = append(env, strings.ReplaceAll(kv, "=URL", "="+srv))
			}
			if !tc.noURL {
				env = append(env, "OIDC_BRIDGE_URL="+srv)
			}
			_, stderr, err := runCLIWith(t, nil, env, "", tc.args...)
			if tc.usage != "" {
				var ue usageError
				if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.usage) || calls.Load() != 0 {
					t.Fatalf("err %v after %d calls, want a usage error naming %s", err, calls.Load(), tc.usage)
				}
				return
			}
			// The fake bridge refuses: the request reached it, by the URL
			// from the environment.
			if err == nil || !strings.Contains(err.Error(), "no_matching_mapping") || calls.Load() != 1 {
				t.Fatalf("err %v after %d calls, want the bridge's refusal", err, calls.Load())
			}
			if tc.wantAuth != "" && auth.Load() != tc.wantAuth {
				t.Errorf("Authorization %q, want %q", auth.Load(), tc.wantAuth)
			}
			if tc.warn == "" && strings.Contains(stderr, "deprecated") {
				t.Errorf("unexpected warning: %s", stderr)
			}
			if tc.warn != "" && !strings.Contains(stderr, "warning: "+tc.warn) {
				t.Errorf("stderr %q, want a warning %q", stderr, tc.warn)
			}
		})
	}
}
