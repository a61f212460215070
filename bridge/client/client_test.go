package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/bridge/client"
	"github.com/oidc-bridge/oidc-bridge/bridge/client/clienttest"
	"github.com/oidc-bridge/oidc-bridge/test/oidctest"
	"github.com/oidc-bridge/oidc-bridge/test/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

var github = api.Issuer{
	Name: "github", URL: "https://token.actions.githubusercontent.com",
	Audiences: []string{"https://bridge.example.com"}, Kind: "github", Enabled: true, ReplayScope: "token",
}

func webMapping() api.Mapping {
	return api.Mapping{
		Name: "web-prod-deploy", Issuer: "github", Enabled: true,
		Conditions: api.Conditions{
			Repository:   one("acme/web"),
			RepositoryID: one("123456"),
			Ref:          one("refs/heads/main"),
			EventName:    list("push", "workflow_dispatch"),
		},
		Provider: "aws",
		Target:   json.RawMessage(`{"role_arn":"arn:aws:iam::123456789012:role/deploy","region":"eu-west-1"}`),
		Quota:    &api.Quota{PerHour: 100, PerJob: 5},
	}
}

var ignoreReadOnly = cmp.Options{
	cmpopts.IgnoreFields(api.Mapping{}, "CreatedAt", "UpdatedAt", "Warnings"),
	// The store keeps targets as jsonb: the same object, keys reordered.
	cmp.Transformer("json", func(r json.RawMessage) any {
		var v any
		if err := json.Unmarshal(r, &v); err != nil {
			return string(r)
		}
		return v
	}),
}
var ignoreIssuerTimes = cmpopts.IgnoreFields(api.Issuer{}, "CreatedAt", "UpdatedAt")

func TestIssuers(t *testing.T) {
	t.Parallel()
	b := clienttest.New(t)
	c := client.New(b.URL+"/", b.Token) // a trailing slash is fine
	ctx := t.Context()

	got, err := c.CreateIssuer(ctx, github)
	if err != nil {
		t.Fatalf("CreateIssuer: %v", err)
	}
	if d := cmp.Diff(github, got, ignoreIssuerTimes); d != "" {
		t.Errorf("CreateIssuer (-want +got):\n%s", d)
	}
	if got.CreatedAt.IsZero() {
		t.Error("CreateIssuer: no created_at")
	}
	if _, err := c.CreateIssuer(ctx, github); !client.IsConflict(err) {
		t.Errorf("duplicate CreateIssuer: %v, want a conflict", err)
	}
	bad := github
	bad.Name, bad.URL = "bad", "https://bad.example.com?x=1"
	_, err = c.CreateIssuer(ctx, bad)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != 400 || ce.Code != "invalid_request" || ce.Field != "url" {
		t.Errorf("invalid CreateIssuer: %#v, want 400 invalid_request on url", err)
	}

	renamed := github
	renamed.Name, renamed.Enabled = "gh", false
	got, err = c.UpdateIssuer(ctx, "github", renamed)
	if err != nil {
		t.Fatalf("UpdateIssuer: %v", err)
	}
	if d := cmp.Diff(renamed, got, ignoreIssuerTimes); d != "" {
		t.Errorf("UpdateIssuer (-want +got):\n%s", d)
	}
	if _, err := c.GetIssuer(ctx, "github"); !client.IsNotFound(err) {
		t.Errorf("GetIssuer of the old name: %v, want not found", err)
	}
	list, err := c.ListIssuers(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "gh" {
		t.Errorf("ListIssuers = %+v, %v; want [gh]", list, err)
	}
	if err := c.DeleteIssuer(ctx, "gh"); err != nil {
		t.Fatalf("DeleteIssuer: %v", err)
	}
	if err := c.DeleteIssuer(ctx, "gh"); !client.IsNotFound(err) {
		t.Errorf("second DeleteIssuer: %v, want not found", err)
	}
}

func TestMappings(t *testing.T) {
	t.Parallel()
	b := clienttest.New(t)
	c := client.New(b.URL, b.Token)
	ctx := t.Context()
	if _, err := c.CreateIssuer(ctx, github); err != nil {
		t.Fatal(err)
	}

	want := webMapping()
	got, err := c.CreateMapping(ctx, want)
	if err != nil {
		t.Fatalf("CreateMapping: %v", err)
	}
	want.MaxDurationSeconds, want.Mode = 3600, api.ModeEnforce // the defaults
	if d := cmp.Diff(want, got, ignoreReadOnly); d != "" {
		t.Errorf("CreateMapping (-want +got):\n%s", d)
	}
	// Single strings read back as single strings: the API keeps the form.
	if got.Conditions.Repository.List || !got.Conditions.EventName.List {
		t.Errorf("condition forms not kept: %+v", got.Conditions)
	}
	if _, err := c.CreateMapping(ctx, webMapping()); !client.IsConflict(err) {
		t.Errorf("duplicate CreateMapping: %v, want a conflict", err)
	}

	bad := webMapping()
	bad.Name = "bad"
	bad.Target = json.RawMessage(`{"role_arn":"arn:aws:iam::1:role/x","region":"eu-west-1"}`)
	_, err = c.CreateMapping(ctx, bad)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != 400 || ce.Field != "target.role_arn" {
		t.Errorf("invalid CreateMapping: %v, want 400 on target.role_arn", err)
	}

	upd := webMapping()
	upd.Name, upd.Mode, upd.MaxDurationSeconds = "web-deploy", api.ModeAudit, 900
	got, err = c.UpdateMapping(ctx, "web-prod-deploy", upd)
	if err != nil {
		t.Fatalf("UpdateMapping: %v", err)
	}
	if d := cmp.Diff(upd, got, ignoreReadOnly); d != "" {
		t.Errorf("UpdateMapping (-want +got):\n%s", d)
	}
	if _, err := c.GetMapping(ctx, "web-prod-deploy"); !client.IsNotFound(err) {
		t.Errorf("GetMapping of the old name: %v, want not found", err)
	}
	got, err = c.GetMapping(ctx, "web-deploy")
	if err != nil {
		t.Fatalf("GetMapping: %v", err)
	}
	if d := cmp.Diff(upd, got, ignoreReadOnly); d != "" {
		t.Errorf("GetMapping (-want +got):\n%s", d)
	}

	for _, tc := range []struct {
		name string
		o    client.ListMappingsOptions
		want int
	}{
		{"all", client.ListMappingsOptions{}, 1},
		{"issuer", client.ListMappingsOptions{Issuer: "github"}, 1},
		{"other issuer", client.ListMappingsOptions{Issuer: "gitlab"}, 0},
		{"provider", client.ListMappingsOptions{Provider: "gcp"}, 0},
		{"enabled", client.ListMappingsOptions{EnabledOnly: true, Provider: "aws"}, 1},
	} {
		ms, err := c.ListMappings(ctx, tc.o)
		if err != nil || len(ms) != tc.want {
			t.Errorf("ListMappings(%s) = %d mappings, %v; want %d", tc.name, len(ms), err, tc.want)
		}
	}

	u, err := c.MappingUsage(ctx, "web-deploy")
	if err != nil {
		t.Fatalf("MappingUsage: %v", err)
	}
	if u.Mapping != "web-deploy" || u.PerHour != 100 || u.PerJob != 5 || u.Issued != 0 {
		t.Errorf("MappingUsage = %+v", u)
	}
	if _, err := c.MappingUsage(ctx, "nope"); !client.IsNotFound(err) {
		t.Errorf("MappingUsage of a missing mapping: %v, want not found", err)
	}

	if err := c.DeleteIssuer(ctx, "github"); !client.IsConflict(err) {
		t.Errorf("DeleteIssuer with mappings: %v, want a conflict", err)
	}
	if err := c.DeleteMapping(ctx, "web-deploy"); err != nil {
		t.Fatalf("DeleteMapping: %v", err)
	}
	if _, err := c.GetMapping(ctx, "web-deploy"); !client.IsNotFound(err) {
		t.Errorf("GetMapping after delete: %v, want not found", err)
	}
}

func TestUnauthorizedNeverShowsToken(t *testing.T) {
	t.Parallel()
	b := clienttest.New(t)
	const secret = "wrong-token-that-must-never-show-0123456789"
	c := client.New(b.URL, secret, client.WithRetries(0))
	_, err := c.ListIssuers(t.Context())
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != 401 || ce.Code != "unauthorized" {
		t.Fatalf("ListIssuers with a bad token: %v, want 401 unauthorized", err)
	}
	for _, s := range []string{err.Error(), fmt.Sprintf("%v %+v %#v %s", c, c, c, c)} {
		if strings.Contains(s, secret) {
			t.Errorf("the token shows in %q", s)
		}
	}
}

// flaky answers the first fail requests with status, then 200 {}.
func flaky(t *testing.T, fail int, status int, retryAfter string) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("Authorization"); got != "Bearer tok" {
			t.Errorf("Authorization = %q", got)
		}
		if int(n.Add(1)) <= fail {
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"error":"unavailable","message":"try later","request_id":"r1"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"name":"x","issuer":"github","provider":"jwt","target":{"audience":"a"}}`)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestRetries(t *testing.T) {
	t.Parallel()
	fast := client.WithBackoff(time.Millisecond, 5*time.Millisecond)
	tests := []struct {
		name      string
		status    int
		fail      int
		call      func(*client.Client) error
		wantCalls int32
		wantErr   int // status, 0 for success
	}{
		{"GET retried on 503", 503, 2, get, 3, 0},
		{"GET retried on 429 with Retry-After", 429, 1, get, 2, 0},
		{"GET gives up", 502, 10, get, 3, 502},
		{"PUT retried on 500", 500, 1, put, 2, 0},
		{"DELETE retried on 503", 503, 1, del, 2, 0},
		{"POST not retried on 503", 503, 1, post, 1, 503},
		{"POST retried on 429", 429, 1, post, 2, 0},
		{"no retry on 400", 400, 1, get, 1, 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, n := flaky(t, tc.fail, tc.status, "0")
			c := client.New(srv.URL, "tok", fast, client.WithRetries(2))
			err := tc.call(c)
			if got := n.Load(); got != tc.wantCalls {
				t.Errorf("%d calls, want %d", got, tc.wantCalls)
			}
			var ce *client.Error
			switch {
			case tc.wantErr == 0 && err != nil:
				t.Errorf("err = %v", err)
			case tc.wantErr != 0 && (!errors.As(err, &ce) || ce.Status != tc.wantErr || ce.RequestID != "r1"):
				t.Errorf("err = %#v, want status %d with the request id", err, tc.wantErr)
			}
		})
	}
}

func TestContextCancelStopsRetries(t *testing.T) {
	t.Parallel()
	srv, _ := flaky(t, 100, 503, "3600")
	c := client.New(srv.URL, "tok", client.WithBackoff(time.Hour, time.Hour))
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := c.GetMapping(ctx, "x"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the context's deadline", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Error("the retry wait ignored the context")
	}
}

func TestTransportError(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now
	c := client.New(url, "secret-token-value", client.WithBackoff(time.Millisecond, time.Millisecond), client.WithRetries(1))
	_, err := c.ListIssuers(t.Context())
	if err == nil || client.IsNotFound(err) || strings.Contains(err.Error(), "secret-token-value") {
		t.Errorf("err = %v, want a transport error without the token", err)
	}
}

func get(c *client.Client) error { _, err := c.GetMapping(context.Background(), "x"); return err }
func put(c *client.Client) error {
	_, err := c.UpdateMapping(context.Background(), "x", webMapping())
	return err
}
func del(c *client.Client) error { return c.DeleteMapping(context.Background(), "x") }
func post(c *client.Client) error {
	_, err := c.CreateMapping(context.Background(), webMapping())
	return err
}

// An issuer's replay_scope and token limits go both ways; token_mapping
// comes back with its warning and WithStrictLint refuses it.
func TestIssuerReplayScopeAndLimits(t *testing.T) {
	t.Parallel()
	b := clienttest.New(t)
	c := client.New(b.URL, b.Token)
	ctx := t.Context()
	age, life := 300, 3600
	is := api.Issuer{Name: "tfc", URL: "https://app.terraform.io", Audiences: []string{"https://bridge.example.com"},
		Kind: "generic", Enabled: true, ReplayScope: api.ReplayScopeTokenMapping,
		MaxTokenAgeSeconds: &age, MaxTokenLifetimeSeconds: &life}
	strict := client.New(b.URL, b.Token, client.WithStrictLint())
	_, err := strict.CreateIssuer(ctx, is)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != 400 || ce.Field != "replay_scope" ||
		len(ce.Warnings) != 1 || ce.Warnings[0].Code != "replay_scope_token_mapping" || ce.Warnings[0].Field != "replay_scope" {
		t.Fatalf("strict CreateIssuer(token_mapping): %v (warnings %+v); want 400 on replay_scope listing its warning", err, ce)
	}
	got, err := c.CreateIssuer(ctx, is)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Warnings) != 1 || got.Warnings[0].Code != "replay_scope_token_mapping" {
		t.Errorf("warnings %v; want replay_scope_token_mapping", got.Warnings)
	}
	got.Warnings = nil
	if d := cmp.Diff(is, got, ignoreIssuerTimes); d != "" {
		t.Errorf("CreateIssuer (-want +got):\n%s", d)
	}
	// Sending back what was read works: warnings are read-only.
	read, err := c.GetIssuer(ctx, "tfc")
	if err != nil || len(read.Warnings) != 1 {
		t.Fatalf("GetIssuer: %+v, %v", read, err)
	}
	if _, err := c.UpdateIssuer(ctx, "tfc", read); err != nil {
		t.Errorf("UpdateIssuer with what GetIssuer read: %v", err)
	}
	tooLong := 86400
	is.MaxTokenLifetimeSeconds = &tooLong
	if _, err := c.UpdateIssuer(ctx, "tfc", is); !errors.As(err, &ce) || ce.Status != 400 || ce.Field != "max_token_lifetime_seconds" {
		t.Errorf("a day's lifetime: %v; want 400 on max_token_lifetime_seconds", err)
	}
}

// one and list are a condition of one pattern and of a list of patterns.
func one(p string) *api.Values { return &api.Values{Patterns: []string{p}} }

func list(p ...string) *api.Values { return &api.Values{Patterns: p, List: true} }

// TestExplain: Explain returns the bridge's answer byte for byte as a
// plain POST gets it, and its refusals as *Error.
func TestExplain(t *testing.T) {
	t.Parallel()
	b := clienttest.New(t)
	c := client.New(b.URL, b.Token)
	ctx := t.Context()
	if _, err := c.CreateIssuer(ctx, github); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateMapping(ctx, webMapping()); err != nil {
		t.Fatal(err)
	}
	// A GitHub token's claims (the shared claim set), of webMapping's
	// repository id.
	var claims map[string]any
	if err := json.Unmarshal(oidctest.ClaimSet("github-actions.json"), &claims); err != nil {
		t.Fatal(err)
	}
	delete(claims, "_about")
	claims["repository_id"] = "123456"
	raw, _ := json.Marshal(claims)
	req := api.ExplainRequest{Issuer: "github", Claims: raw}
	got, err := c.Explain(ctx, req)
	if err != nil {
		t.Fatalf("Explain: %v", err)
	}
	payload, _ := json.Marshal(req)
	hr, _ := http.NewRequestWithContext(ctx, http.MethodPost, b.URL+"/v1/admin/explain", strings.NewReader(string(payload)))
	hr.Header.Set("Authorization", "Bearer "+b.Token)
	hr.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	want, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(got) != string(want) {
		t.Errorf("Explain answered\n%s\nwant (%d)\n%s", got, resp.StatusCode, want)
	}
	var res api.ExplainResponse
	if err := json.Unmarshal(got, &res); err != nil || res.Decision.Outcome != "would_issue" || res.Decision.Mapping != "web-prod-deploy" {
		t.Errorf("explanation %+v, %v", res.Decision, err)
	}

	req.Issuer = "nope"
	_, err = c.Explain(ctx, req)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != 400 || ce.Code != "invalid_request" || ce.Field != "issuer" {
		t.Errorf("unknown issuer: %v, want 400 invalid_request on issuer", err)
	}
}
