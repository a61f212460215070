package client_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/bridge/client"
)

// seenRequest is what the stand-in of the client's GitHub App tests saw.
type seenRequest struct {
	Method, Path, Auth string
	Body               map[string]any
}

// appServer answers the GitHub App routes and the revocation as the wire
// contract (bridge/api/github.go) says, recording each request; it is a unit
// test of the client's requests, not of the server.
func appServer(t *testing.T, answer http.HandlerFunc) (*httptest.Server, func() []seenRequest) {
	t.Helper()
	var mu sync.Mutex
	var seen []seenRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s := seenRequest{Method: r.Method, Path: r.URL.EscapedPath(), Auth: r.Header.Get("Authorization")}
		if len(b) > 0 {
			if err := json.Unmarshal(b, &s.Body); err != nil {
				t.Errorf("%s %s: body not JSON: %v", r.Method, r.URL, err)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("%s %s: Content-Type %q", r.Method, r.URL, ct)
			}
		}
		mu.Lock()
		seen = append(seen, s)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		answer(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []seenRequest {
		mu.Lock()
		defer mu.Unlock()
		return append([]seenRequest(nil), seen...)
	}
}

const testPEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIB...not-a-real-key\n-----END RSA PRIVATE KEY-----\n"

func TestGitHubAppRequests(t *testing.T) {
	t.Parallel()
	stored := api.GitHubApp{Name: "acme/ci", AppID: 12345, BaseURL: "https://ghe.example.com/api/v3/",
		Keys:      []api.GitHubAppKey{{Fingerprint: "SHA256:abc=", AddedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Signing: true}},
		CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), UpdatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	srv, seen := appServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/v1/admin/github-apps":
			_ = json.NewEncoder(w).Encode(map[string]any{"github_apps": []api.GitHubApp{stored}})
		case r.Method == http.MethodDelete:
			w.WriteHeader(http.StatusNoContent)
		case r.Method == http.MethodPost:
			w.WriteHeader(http.StatusCreated)
			_ = json.NewEncoder(w).Encode(stored)
		default:
			_ = json.NewEncoder(w).Encode(stored)
		}
	})
	c := client.New(srv.URL, "admin-token-1")
	ctx := t.Context()

	list, err := c.ListGitHubApps(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("ListGitHubApps: %v %v", list, err)
	}
	if d := cmp.Diff(stored, list[0]); d != "" {
		t.Errorf("ListGitHubApps (-want +got):\n%s", d)
	}
	got, err := c.GetGitHubApp(ctx, "acme/ci")
	if err != nil || got.Keys[0].Fingerprint != "SHA256:abc=" {
		t.Fatalf("GetGitHubApp: %+v %v", got, err)
	}
	// The read-only fields are not sent; the write-only ones are.
	in := stored
	in.PrivateKey = testPEM
	if _, err := c.CreateGitHubApp(ctx, in); err != nil {
		t.Fatalf("CreateGitHubApp: %v", err)
	}
	in.RetirePreviousKey = true
	if _, err := c.UpdateGitHubApp(ctx, "acme/ci", in); err != nil {
		t.Fatalf("UpdateGitHubApp: %v", err)
	}
	if err := c.DeleteGitHubApp(ctx, "acme/ci"); err != nil {
		t.Fatalf("DeleteGitHubApp: %v", err)
	}
	write := map[string]any{"name": "acme/ci", "app_id": float64(12345), "base_url": "https://ghe.example.com/api/v3/", "private_key": testPEM}
	rotate := map[string]any{"retire_previous_key": true}
	for k, v := range write {
		rotate[k] = v
	}
	want := []seenRequest{
		{Method: "GET", Path: "/v1/admin/github-apps", Auth: "Bearer admin-token-1"},
		{Method: "GET", Path: "/v1/admin/github-apps/acme%2Fci", Auth: "Bearer admin-token-1"},
		{Method: "POST", Path: "/v1/admin/github-apps", Auth: "Bearer admin-token-1", Body: write},
		{Method: "PUT", Path: "/v1/admin/github-apps/acme%2Fci", Auth: "Bearer admin-token-1", Body: rotate},
		{Method: "DELETE", Path: "/v1/admin/github-apps/acme%2Fci", Auth: "Bearer admin-token-1"},
	}
	if d := cmp.Diff(want, seen()); d != "" {
		t.Errorf("requests (-want +got):\n%s", d)
	}
}

func TestListGitHubAppsBareArray(t *testing.T) {
	t.Parallel()
	srv, _ := appServer(t, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `[{"name":"a","app_id":1},{"name":"b","app_id":2}]`)
	})
	list, err := client.New(srv.URL, "t").ListGitHubApps(t.Context())
	if err != nil || len(list) != 2 || list[1].Name != "b" {
		t.Fatalf("ListGitHubApps: %+v %v", list, err)
	}
}

func TestRevokeCredential(t *testing.T) {
	t.Parallel()
	const token = "ghs_abcdefghijklmnopqrstuvwxyz0123456789"
	revokedAt := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	calls := 0
	srv, seen := appServer(t, func(w http.ResponseWriter, r *http.Request) {
		calls++
		switch {
		case calls == 1: // a transient failure: the call is idempotent, retried
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"error":"unavailable","message":"try again"}`)
		case calls == 2:
			_ = json.NewEncoder(w).Encode(api.RevokeCredentialResponse{CredentialID: "cred-1", RevokedAt: revokedAt})
		case calls == 3:
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"error":"not_found","message":"no credential with that id"}`)
		default:
			w.WriteHeader(http.StatusBadGateway)
			_, _ = io.WriteString(w, `{"error":"provider_error","message":"github refused"}`)
		}
	})
	// The admin token is never sent: holding the credential authorizes.
	c := client.New(srv.URL, "admin-token-1", client.WithBackoff(time.Millisecond, time.Millisecond), client.WithRetries(1))
	got, err := c.RevokeCredential(t.Context(), token)
	if err != nil || got.CredentialID != "cred-1" || !got.RevokedAt.Equal(revokedAt) {
		t.Fatalf("RevokeCredential: %+v %v", got, err)
	}
	for i, s := range seen() {
		if s.Method != "POST" || s.Path != "/v1/credentials/revoke" || s.Auth != "" || s.Body["token"] != token || len(s.Body) != 1 {
			t.Errorf("request %d: %+v", i, s)
		}
	}
	if _, err := c.RevokeCredential(t.Context(), token); !client.IsNotFound(err) || strings.Contains(err.Error(), token) {
		t.Errorf("unknown token: %v, want a 404 without the token", err)
	}
	_, err = c.RevokeCredential(t.Context(), token)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Code != api.CodeProviderError || strings.Contains(err.Error(), token) {
		t.Errorf("source refusal: %v, want provider_error without the token", err)
	}
	if _, err := c.RevokeCredential(t.Context(), ""); err == nil {
		t.Error("an empty token was sent")
	}
}
