package ciclient

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/bridge/client"
)

// TestRequestToken: the one token request of the request-based CIs (GitHub
// Actions, Azure DevOps) reads the named member of a 200 answer; a refusal
// names the CI and the hint, 429 and 5xx are transient, an answer without
// the member is an error naming it, and the URL (it may carry the runner's
// secrets) is in no error.
func TestRequestToken(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		status    int
		body      string
		want      string
		wantErr   string
		transient bool
	}{
		{"token", 200, `{"oidcToken": "tok-1", "other": 1}`, "tok-1", "", false},
		{"refused", 403, `{}`, "", "exchange: Azure DevOps answered 403 Forbidden to the token request (check the hint)", false},
		{"throttled", 429, `{}`, "", "answered 429 Too Many Requests", true},
		{"failing", 503, `{}`, "", "answered 503 Service Unavailable", true},
		{"no member", 200, `{"value": "tok-1"}`, "", "exchange: Azure DevOps' token answer has no oidcToken", false},
		{"not a string", 200, `{"oidcToken": 7}`, "", "has no oidcToken", false},
		{"empty", 200, `{"oidcToken": ""}`, "", "has no oidcToken", false},
		{"not JSON", 200, `tok-1`, "", "has no oidcToken", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != "Bearer runner-secret" || r.Header.Get("User-Agent") != "oidc-bridge-cli exchange" {
					http.Error(w, "headers", http.StatusBadRequest)
					return
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, srv.URL+"/token?sig=url-secret", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer runner-secret")
			got, err := requestToken(srv.Client(), req, "Azure DevOps", "(check the hint)", "oidcToken")
			if tc.wantErr == "" {
				if err != nil || got != tc.want {
					t.Fatalf("got %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			var te *client.TransientError
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || errors.As(err, &te) != tc.transient {
				t.Fatalf("got %q, %v (transient %v); want an error with %q, transient %v", got, err, errors.As(err, &te), tc.wantErr, tc.transient)
			}
			if strings.Contains(err.Error(), "url-secret") || strings.Contains(err.Error(), "runner-secret") {
				t.Fatalf("the error carries a secret: %v", err)
			}
		})
	}
}
