package bridge_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/oidc-bridge/oidc-bridge/bridge"
	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/internal/admintoken"
	"github.com/oidc-bridge/oidc-bridge/internal/database"
	"github.com/oidc-bridge/oidc-bridge/internal/history"
	"github.com/oidc-bridge/oidc-bridge/ledger"
	"github.com/oidc-bridge/oidc-bridge/mapping"
	"github.com/oidc-bridge/oidc-bridge/test/pgtest"
	"github.com/oidc-bridge/oidc-bridge/test/ststest"
)

// sts is the STS fake every exchange test shares (the AWS SDK reads its
// endpoint from the environment), so exchange tests do not run in parallel.
var sts *ststest.Handler

func TestMain(m *testing.M) {
	sts = ststest.NewHandler()
	srv := httptest.NewServer(sts)
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": ststest.AccessKeyID, "AWS_SECRET_ACCESS_KEY": ststest.SecretAccessKey,
		"AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL_STS": srv.URL,
		"AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull, "AWS_EC2_METADATA_DISABLED": "true",
	} {
		os.Setenv(k, v)
	}
	os.Unsetenv("AWS_PROFILE")
	code := pgtest.Main(m)
	sts.Close()
	srv.Close()
	os.Exit(code)
}

const bootstrap = "bootstrap-token-0123456789-abcdefghij"

type env struct {
	opts bridge.Options
	t    testing.TB
	// pool is the schema owner's, for fixtures and checks; the server
	// runs on runtime, as the service's runtime role
	// (migrations/00007_roles.sql).
	pool    *pgxpool.Pool
	runtime *pgxpool.Pool
	srv     *bridge.Server
	tokens  *admintoken.Store
	token   string
}

type envOption func(*bridge.Options)

func insecureIssuers(o *bridge.Options) { o.AllowInsecureIssuers = true }

// baseOptions are the real dependencies on pool, without the exchange's
// verifier and providers (withExchange adds them).
func baseOptions(t testing.TB, pool *pgxpool.Pool) bridge.Options {
	admins, err := admintoken.New(pool, bootstrap, "")
	if err != nil {
		t.Fatal(err)
	}
	return bridge.Options{
		Store:    mapping.NewPGStore(pool, 0),
		Usage:    ledger.New(pool),
		Ledger:   ledger.New(pool),
		Admins:   admins,
		Ready:    func(ctx context.Context) error { return database.CheckCurrent(ctx, pool) },
		Registry: prometheus.NewRegistry(),
		Logger:   slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	runtime, pool := pgtest.NewRuntimePool(t)
	o := baseOptions(t, runtime)
	for _, f := range opts {
		f(&o)
	}
	return &env{opts: o, t: t, pool: pool, runtime: runtime, srv: bridge.New(o), tokens: o.Admins.(*admintoken.Store), token: bootstrap}
}

// in returns a copy of e that reports to t (a subtest's).
func (e *env) in(t testing.TB) *env {
	c := *e
	c.t = t
	return &c
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) err(t testing.TB) api.Error {
	t.Helper()
	var e api.Error
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("error body %q is not JSON: %v", r.body, err)
	}
	return e
}

func (e *env) do(method, path, body string, hdr ...string) response {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+e.token)
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == remoteAddr { // not a header: the socket peer
			req.RemoteAddr = hdr[i+1]
			continue
		}
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	rec := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(rec, req)
	return response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

// remoteAddr, as a "header" of do, sets the request's socket peer.
const remoteAddr = "Remote-Addr"

// must performs a request that must answer want, returning the body.
func (e *env) must(want int, method, path, body string) []byte {
	e.t.Helper()
	r := e.do(method, path, body)
	if r.status != want {
		e.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, r.status, want, r.body)
	}
	return r.body
}

// wantError checks the status, the error code and, if given, the field.
func (e *env) wantError(r response, status int, code, field string) api.Error {
	e.t.Helper()
	if r.status != status {
		e.t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	got := r.err(e.t)
	if got.Error != code {
		e.t.Fatalf("error %q, want %q; body %s", got.Error, code, r.body)
	}
	if field != "" && got.Field != field {
		e.t.Fatalf("field %q, want %q; body %s", got.Field, field, r.body)
	}
	if got.Message == "" {
		e.t.Fatalf("error without a message: %s", r.body)
	}
	return got
}

// snapshot is the whole admin state, to prove that bad input changed nothing.
func (e *env) snapshot() string {
	e.t.Helper()
	return string(e.must(200, "GET", "/v1/admin/issuers", "")) + string(e.must(200, "GET", "/v1/admin/mappings", ""))
}

const githubIssuer = `{"name": "github", "url": "https://token.actions.githubusercontent.com",
	"audiences": ["https://bridge.example.com"], "kind": "github", "enabled": true}`

const gitlabIssuer = `{"name": "gitlab", "url": "https://gitlab.com", "audiences": ["https://bridge.example.com"], "kind": "gitlab"}`

const webMapping = `{
  "name": "web-prod-deploy",
  "issuer": "github",
  "enabled": true,
  "conditions": {
    "repository": "acme/web",
    "repository_id": "123456",
    "ref": "refs/heads/main",
    "environment": "production",
    "event_name": ["push", "workflow_dispatch"],
    "workflow_ref": "acme/web/.github/workflows/deploy.yml@refs/heads/main",
    "claims": {"runner_environment": "github-hosted"}
  },
  "provider": "aws",
  "target": {"role_arn": "arn:aws:iam::123456789012:role/deploy", "region": "eu-west-1"},
  "max_duration_seconds": 3600,
  "quota": {"per_hour": 100, "per_job": 5}
}`

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

func TestAdminAuth(t *testing.T) {
	e := newEnv(t)
	created, info, err := e.tokens.Create(context.Background(), testActor, "ops", admintoken.AllScopes(), nil)
	if err != nil {
		t.Fatal(err)
	}
	revoked, _, err := e.tokens.Create(context.Background(), testActor, "gone", admintoken.AllScopes(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.tokens.Revoke(context.Background(), testActor, "gone"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		header string
		want   int
	}{
		{"bootstrap", "Bearer " + bootstrap, 200},
		{"created token", "Bearer " + created, 200},
		{"scheme is case-insensitive", "bearer " + created, 200},
		{"missing", "", 401},
		{"wrong scheme", "Basic " + bootstrap, 401},
		{"empty bearer", "Bearer ", 401},
		{"wrong token", "Bearer " + bootstrap + "x", 401},
		{"prefix of the bootstrap", "Bearer " + bootstrap[:31], 401},
		{"revoked token", "Bearer " + revoked, 401},
		{"unknown token with the prefix", "Bearer obat_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 401},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := fmt.Sprintf("198.51.100.%d:4000", i+1) // failures are limited per client
			for _, path := range []string{"/v1/admin/issuers", "/v1/admin/mappings"} {
				r := e.do("GET", path, "", "Authorization", tt.header, remoteAddr, client)
				if r.status != tt.want {
					t.Fatalf("GET %s: status %d, want %d: %s", path, r.status, tt.want, r.body)
				}
				if tt.want == 401 {
					e.wantError(r, 401, api.CodeUnauthorized, "")
					if r.header.Get("WWW-Authenticate") == "" {
						t.Error("401 without WWW-Authenticate")
					}
				}
			}
		})
	}
	// A write without a valid token changes nothing.
	r := e.do("POST", "/v1/admin/issuers", githubIssuer, "Authorization", "Bearer nope", remoteAddr, "198.51.100.200:4000")
	e.wantError(r, 401, api.CodeUnauthorized, "")
	if got := e.must(200, "GET", "/v1/admin/issuers", ""); string(got) != `{"issuers":[]}`+"\n" {
		t.Fatalf("issuers after refused write: %s", got)
	}
	infos, err := e.tokens.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range infos {
		if i.ID == info.ID && i.LastUsedAt == nil {
			t.Error("last_used_at not recorded for a used token")
		}
	}
}

// TestAdminAuthFailuresLimited: after a burst of failed authentications a
// client is refused (429) even with a valid token until its bucket refills;
// other clients are unaffected.
func TestAdminAuthFailuresLimited(t *testing.T) {
	e := newEnv(t)
	for i := range 10 {
		if r := e.do("GET", "/v1/admin/issuers", "", "Authorization", fmt.Sprintf("Bearer guess-%d", i)); r.status != 401 {
			t.Fatalf("guess %d: %d", i, r.status)
		}
	}
	r := e.do("GET", "/v1/admin/issuers", "")
	e.wantError(r, 429, api.CodeRateLimited, "")
	if ra := r.header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After %q", ra)
	}
	spoofed := e.do("GET", "/v1/admin/issuers", "", "X-Forwarded-For", "203.0.113.9")
	if spoofed.status != 429 {
		t.Error("a forwarded header changed the client: only the socket peer counts")
	}
	if other := e.do("GET", "/v1/admin/issuers", "", remoteAddr, "203.0.113.9:5000"); other.status != 200 {
		t.Errorf("another client was refused: %d", other.status)
	}
}

func TestIssuerLifecycle(t *testing.T) {
	e := newEnv(t)
	r := e.do("POST", "/v1/admin/issuers", githubIssuer)
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	if got := r.header.Get("Location"); got != "/v1/admin/issuers/github" {
		t.Errorf("Location %q", got)
	}
	created := decode[mapping.Issuer](t, r.body)
	want := mapping.Issuer{Name: "github", URL: "https://token.actions.githubusercontent.com",
		Audiences: []string{"https://bridge.example.com"}, Kind: "github", Enabled: true, ReplayScope: "token"}
	if diff := cmp.Diff(want, created, ignoreTimes); diff != "" {
		t.Errorf("created (-want +got):\n%s", diff)
	}
	if created.CreatedAt.IsZero() || created.UpdatedAt.IsZero() {
		t.Error("timestamps missing")
	}
	got := decode[mapping.Issuer](t, e.must(200, "GET", "/v1/admin/issuers/github", ""))
	if diff := cmp.Diff(created, got); diff != "" {
		t.Errorf("get (-created +got):\n%s", diff)
	}

	// enabled defaults to true.
	gl := decode[mapping.Issuer](t, e.must(201, "POST", "/v1/admin/issuers", gitlabIssuer))
	if !gl.Enabled {
		t.Error("enabled did not default to true")
	}
	list := decode[api.IssuerList](t, e.must(200, "GET", "/v1/admin/issuers", ""))
	if len(list.Issuers) != 2 || list.Issuers[0].Name != "github" || list.Issuers[1].Name != "gitlab" {
		t.Fatalf("list: %+v", list)
	}

	// PUT replaces; the body may omit the name.
	upd := decode[mapping.Issuer](t, e.must(200, "PUT", "/v1/admin/issuers/gitlab",
		`{"url": "https://gitlab.example.com", "audiences": ["a", "b"], "kind": "gitlab", "enabled": false}`))
	if upd.Name != "gitlab" || upd.URL != "https://gitlab.example.com" || upd.Enabled || len(upd.Audiences) != 2 {
		t.Fatalf("update: %+v", upd)
	}
	if !upd.UpdatedAt.After(gl.UpdatedAt) && !upd.UpdatedAt.Equal(gl.UpdatedAt) {
		t.Error("updated_at went back")
	}
	// Rename through PUT.
	e.must(200, "PUT", "/v1/admin/issuers/gitlab", `{"name": "gitlab-self", "url": "https://gitlab.example.com", "audiences": ["a"], "kind": "gitlab"}`)
	e.wantError(e.do("GET", "/v1/admin/issuers/gitlab", ""), 404, api.CodeNotFound, "")
	e.must(200, "GET", "/v1/admin/issuers/gitlab-self", "")

	e.must(204, "DELETE", "/v1/admin/issuers/gitlab-self", "")
	e.wantError(e.do("DELETE", "/v1/admin/issuers/gitlab-self", ""), 404, api.CodeNotFound, "")
	e.wantError(e.do("GET", "/v1/admin/issuers/gitlab-self", ""), 404, api.CodeNotFound, "")
	e.wantError(e.do("PUT", "/v1/admin/issuers/nope", gitlabIssuer), 404, api.CodeNotFound, "")
}

var ignoreTimes = cmp.FilterPath(func(p cmp.Path) bool {
	s := p.String()
	return s == "CreatedAt" || s == "UpdatedAt"
}, cmp.Ignore())

func TestIssuerConflicts(t *testing.T) {
	e := newEnv(t)
	e.must(201, "POST", "/v1/admin/issuers", githubIssuer)
	e.must(201, "POST", "/v1/admin/issuers", gitlabIssuer)
	before := e.snapshot()
	// Same name.
	e.wantError(e.do("POST", "/v1/admin/issuers", strings.Replace(githubIssuer, "token.actions", "other", 1)), 409, api.CodeConflict, "")
	// Same URL under another name.
	e.wantError(e.do("POST", "/v1/admin/issuers", strings.Replace(githubIssuer, `"github"`, `"gh2"`, 1)), 409, api.CodeConflict, "")
	// Renaming onto an existing name.
	e.wantError(e.do("PUT", "/v1/admin/issuers/gitlab", strings.Replace(gitlabIssuer, `"gitlab"`, `"github"`, 1)), 409, api.CodeConflict, "")
	if after := e.snapshot(); after != before {
		t.Fatalf("a conflict changed state:\nbefore %s\nafter  %s", before, after)
	}
	// An issuer that mappings use cannot be deleted.
	e.must(201, "POST", "/v1/admin/mappings", webMapping)
	before = e.snapshot()
	e.wantError(e.do("DELETE", "/v1/admin/issuers/github", ""), 409, api.CodeConflict, "")
	if after := e.snapshot(); after != before {
		t.Fatalf("a refused delete changed state:\nbefore %s\nafter  %s", before, after)
	}
	// A change of kind that would leave an invalid mapping is refused: a
	// generic issuer's mapping need not name a repository, a github one must.
	e.must(201, "POST", "/v1/admin/issuers", `{"name": "corp", "url": "https://ci.corp.example", "audiences": ["x"], "kind": "generic"}`)
	e.must(201, "POST", "/v1/admin/mappings", `{"name": "corp-jwt", "issuer": "corp", "conditions": {"claims": {"team": "infra"}},
		"provider": "jwt", "target": {"audience": "https://internal.example"}}`)
	before = e.snapshot()
	r := e.do("PUT", "/v1/admin/issuers/corp", `{"url": "https://ci.corp.example", "audiences": ["x"], "kind": "github"}`)
	got := e.wantError(r, 409, api.CodeConflict, "")
	if !strings.Contains(got.Message, "corp-jwt") {
		t.Errorf("message does not name the mapping: %q", got.Message)
	}
	if after := e.snapshot(); after != before {
		t.Fatalf("a refused change changed state:\nbefore %s\nafter  %s", before, after)
	}
}

func TestIssuerValidation(t *testing.T) {
	tests := []struct {
		name, body, field string
		insecure          bool
	}{
		{"missing name", `{"url": "https://a.example", "audiences": ["x"], "kind": "github"}`, "name", false},
		{"bad name", `{"name": "Git Hub", "url": "https://a.example", "audiences": ["x"], "kind": "github"}`, "name", false},
		{"non-ASCII name", `{"name": "gïthub", "url": "https://a.example", "audiences": ["x"], "kind": "github"}`, "name", false},
		{"missing url", `{"name": "a", "audiences": ["x"], "kind": "github"}`, "url", false},
		{"http url", `{"name": "a", "url": "http://a.example", "audiences": ["x"], "kind": "github"}`, "url", false},
		{"http loopback without the flag", `{"name": "a", "url": "http://127.0.0.1:9999", "audiences": ["x"], "kind": "github"}`, "url", false},
		{"http non-loopback with the flag", `{"name": "a", "url": "http://a.example", "audiences": ["x"], "kind": "github"}`, "url", true},
		{"url with query", `{"name": "a", "url": "https://a.example/?x=1", "audiences": ["x"], "kind": "github"}`, "url", false},
		{"url with user", `{"name": "a", "url": "https://u:p@a.example", "audiences": ["x"], "kind": "github"}`, "url", false},
		{"relative url", `{"name": "a", "url": "/issuer", "audiences": ["x"], "kind": "github"}`, "url", false},
		{"bad kind", `{"name": "a", "url": "https://a.example", "audiences": ["x"], "kind": "teamcity"}`, "kind", false},
		{"missing kind", `{"name": "a", "url": "https://a.example", "audiences": ["x"]}`, "kind", false},
		{"no audiences", `{"name": "a", "url": "https://a.example", "audiences": [], "kind": "github"}`, "audiences", false},
		{"missing audiences", `{"name": "a", "url": "https://a.example", "kind": "github"}`, "audiences", false},
		{"empty audience", `{"name": "a", "url": "https://a.example", "audiences": [""], "kind": "github"}`, "audiences[0]", false},
		{"unknown field", `{"name": "a", "url": "https://a.example", "audiences": ["x"], "kind": "github", "jwks_uri": "https://evil"}`, "jwks_uri", false},
		{"wrong type", `{"name": "a", "url": "https://a.example", "audiences": "x", "kind": "github"}`, "audiences", false},
		{"wrong type enabled", `{"name": "a", "url": "https://a.example", "audiences": ["x"], "kind": "github", "enabled": "yes"}`, "enabled", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var e *env
			if tt.insecure {
				e = newEnv(t, insecureIssuers)
			} else {
				e = newEnv(t)
			}
			e.must(201, "POST", "/v1/admin/issuers", githubIssuer)
			before := e.snapshot()
			e.wantError(e.do("POST", "/v1/admin/issuers", tt.body), 400, api.CodeInvalidRequest, tt.field)
			// The same body as a PUT over the existing issuer (where a
			// missing name is the one in the path).
			if tt.field != "name" || strings.Contains(tt.body, `"name"`) {
				e.wantError(e.do("PUT", "/v1/admin/issuers/github", tt.body), 400, api.CodeInvalidRequest, tt.field)
			}
			if after := e.snapshot(); after != before {
				t.Fatalf("bad input changed state:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

func TestInsecureIssuerOnLoopback(t *testing.T) {
	e := newEnv(t, insecureIssuers)
	e.must(201, "POST", "/v1/admin/issuers", `{"name": "local", "url": "http://127.0.0.1:5556/dex", "audiences": ["x"], "kind": "generic"}`)
	e.must(201, "POST", "/v1/admin/issuers", `{"name": "local2", "url": "http://localhost:5556", "audiences": ["x"], "kind": "generic"}`)
}

// TestInsecureIssuerMessage: refusing an http issuer tells the admin what
// would allow it (BRIDGE_ALLOW_INSECURE_ISSUERS, loopback only) and that
// it is for local tests and demos, never production.
func TestInsecureIssuerMessage(t *testing.T) {
	e := newEnv(t)
	got := e.wantError(e.do("POST", "/v1/admin/issuers", `{"name": "local", "url": "http://127.0.0.1:5556", "audiences": ["x"], "kind": "generic"}`),
		400, api.CodeInvalidRequest, "url")
	for _, want := range []string{"BRIDGE_ALLOW_INSECURE_ISSUERS=true", "loopback", "tests and demos", "never set it in production"} {
		if !strings.Contains(got.Message, want) {
			t.Errorf("message %q does not say %q", got.Message, want)
		}
	}
	e = newEnv(t, insecureIssuers)
	got = e.wantError(e.do("POST", "/v1/admin/issuers", `{"name": "remote", "url": "http://ci.example.com", "audiences": ["x"], "kind": "generic"}`),
		400, api.CodeInvalidRequest, "url")
	for _, want := range []string{"BRIDGE_ALLOW_INSECURE_ISSUERS", "loopback", "https"} {
		if !strings.Contains(got.Message, want) {
			t.Errorf("message %q does not say %q", got.Message, want)
		}
	}
}

func TestMalformedBodies(t *testing.T) {
	e := newEnv(t)
	e.must(201, "POST", "/v1/admin/issuers", githubIssuer)
	before := e.snapshot()
	tests := []struct {
		name, body string
		hdr        []string
		status     int
		code       string
	}{
		{"empty body", "", nil, 400, api.CodeInvalidRequest},
		{"not JSON", "name=github", nil, 400, api.CodeInvalidRequest},
		{"truncated", `{"name": "x"`, nil, 400, api.CodeInvalidRequest},
		{"array", `[1, 2]`, nil, 400, api.CodeInvalidRequest},
		{"two objects", gitlabIssuer + gitlabIssuer, nil, 400, api.CodeInvalidRequest},
		{"trailing garbage", gitlabIssuer + " x", nil, 400, api.CodeInvalidRequest},
		{"form content type", gitlabIssuer, []string{"Content-Type", "application/x-www-form-urlencoded"}, 400, api.CodeInvalidRequest},
		{"too large", `{"name": "` + strings.Repeat("a", 70<<10) + `"}`, nil, 413, api.CodeRequestTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, path := range []string{"/v1/admin/issuers", "/v1/admin/mappings"} {
				r := e.do("POST", path, tt.body, tt.hdr...)
				e.wantError(r, tt.status, tt.code, "")
			}
		})
	}
	if after := e.snapshot(); after != before {
		t.Fatalf("bad input changed state")
	}
}

func TestMappingLifecycle(t *testing.T) {
	e := newEnv(t)
	e.must(201, "POST", "/v1/admin/issuers", githubIssuer)
	r := e.do("POST", "/v1/admin/mappings", webMapping)
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	if got := r.header.Get("Location"); got != "/v1/admin/mappings/web-prod-deploy" {
		t.Errorf("Location %q", got)
	}
	// What was written reads back the same (strings stay strings, lists stay lists).
	assertJSONSubset(t, webMapping, r.body)
	assertJSONSubset(t, webMapping, e.must(200, "GET", "/v1/admin/mappings/web-prod-deploy", ""))

	// Defaults: enabled true, max_duration_seconds 3600, no quota.
	minimal := `{"name": "min", "issuer": "github", "conditions": {"repository": "acme/*"}, "provider": "aws",
		"target": {"role_arn": "arn:aws:iam::123456789012:role/ro", "region": "us-east-1"}}`
	m := decode[mapping.Mapping](t, e.must(201, "POST", "/v1/admin/mappings", minimal))
	if !m.Enabled || m.MaxDurationSeconds != 3600 || m.Quota != nil {
		t.Errorf("defaults: enabled=%v max=%d quota=%+v", m.Enabled, m.MaxDurationSeconds, m.Quota)
	}

	// Lists and filters.
	e.must(201, "POST", "/v1/admin/issuers", gitlabIssuer)
	e.must(201, "POST", "/v1/admin/mappings", `{"name": "gl", "issuer": "gitlab", "enabled": false, "conditions": {"repository": "platform/app"},
		"provider": "gcp", "target": {"service_account": "deploy@acme-prod.iam.gserviceaccount.com"}}`)
	names := func(q string) []string {
		l := decode[api.MappingList](t, e.must(200, "GET", "/v1/admin/mappings"+q, ""))
		out := []string{}
		for _, m := range l.Mappings {
			out = append(out, m.Name)
		}
		return out
	}
	for q, want := range map[string][]string{
		"":                            {"gl", "min", "web-prod-deploy"},
		"?issuer=github":              {"min", "web-prod-deploy"},
		"?provider=gcp":               {"gl"},
		"?enabled=true":               {"min", "web-prod-deploy"},
		"?issuer=nobody":              {},
		"?provider=aws&issuer=gitlab": {},
	} {
		if diff := cmp.Diff(want, names(q)); diff != "" {
			t.Errorf("list %q (-want +got):\n%s", q, diff)
		}
	}
	e.wantError(e.do("GET", "/v1/admin/mappings?enabled=maybe", ""), 400, api.CodeInvalidRequest, "enabled")

	// PUT replaces the whole mapping: omitted quota goes away, name may change.
	upd := decode[mapping.Mapping](t, e.must(200, "PUT", "/v1/admin/mappings/min", strings.Replace(minimal, `"min"`, `"min2"`, 1)))
	if upd.Name != "min2" {
		t.Fatalf("rename: %+v", upd)
	}
	e.wantError(e.do("GET", "/v1/admin/mappings/min", ""), 404, api.CodeNotFound, "")
	// Moving a mapping to another issuer.
	moved := decode[mapping.Mapping](t, e.must(200, "PUT", "/v1/admin/mappings/min2", strings.Replace(strings.Replace(minimal, `"min"`, `"min2"`, 1), `"github"`, `"gitlab"`, 1)))
	if moved.Issuer != "gitlab" {
		t.Fatalf("move: %+v", moved)
	}
	e.wantError(e.do("PUT", "/v1/admin/mappings/absent", minimal), 404, api.CodeNotFound, "")
	e.must(204, "DELETE", "/v1/admin/mappings/min2", "")
	e.wantError(e.do("DELETE", "/v1/admin/mappings/min2", ""), 404, api.CodeNotFound, "")
	e.wantError(e.do("GET", "/v1/admin/mappings/min2/usage", ""), 404, api.CodeNotFound, "")

	// Duplicate name.
	before := e.snapshot()
	e.wantError(e.do("POST", "/v1/admin/mappings", webMapping), 409, api.CodeConflict, "")
	e.wantError(e.do("PUT", "/v1/admin/mappings/gl", strings.Replace(webMapping, `"issuer": "github"`, `"issuer": "github"`, 1)), 409, api.CodeConflict, "")
	if after := e.snapshot(); after != before {
		t.Fatal("conflicts changed state")
	}
}

// assertJSONSubset checks that every member of want appears in got with
// the same value and JSON type.
func assertJSONSubset(t *testing.T, want string, got []byte) {
	t.Helper()
	var w, g map[string]any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatal(err)
	}
	for k, v := range w {
		if diff := cmp.Diff(v, g[k]); diff != "" {
			t.Errorf("%s (-wrote +read):\n%s", k, diff)
		}
	}
}

func TestMappingValidation(t *testing.T) {
	e := newEnv(t)
	e.must(201, "POST", "/v1/admin/issuers", githubIssuer)
	e.must(201, "POST", "/v1/admin/mappings", webMapping)
	before := e.snapshot()
	// Each case edits the valid mapping.
	var base map[string]any
	if err := json.Unmarshal([]byte(webMapping), &base); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		edit  func(m map[string]any)
		field string
	}{
		{"missing issuer", func(m map[string]any) { delete(m, "issuer") }, "issuer"},
		{"unknown issuer", func(m map[string]any) { m["issuer"] = "nope" }, "issuer"},
		{"bad name", func(m map[string]any) { m["name"] = "Web Prod" }, "name"},
		{"bad provider", func(m map[string]any) { m["provider"] = "oracle" }, "provider"},
		{"target of another provider", func(m map[string]any) { m["target"] = map[string]any{"service_account": "a@b.iam.gserviceaccount.com"} }, "target"},
		{"bad role arn", func(m map[string]any) {
			m["target"] = map[string]any{"role_arn": "arn:aws:iam::12:role/x", "region": "eu-west-1"}
		}, "target.role_arn"},
		{"unknown target field", func(m map[string]any) {
			m["target"] = map[string]any{"role_arn": "arn:aws:iam::123456789012:role/deploy", "region": "eu-west-1", "admin": true}
		}, "target"},
		{"duration too long", func(m map[string]any) { m["max_duration_seconds"] = 86400 * 7 }, "max_duration_seconds"},
		{"duration negative", func(m map[string]any) { m["max_duration_seconds"] = -1 }, "max_duration_seconds"},
		{"negative quota", func(m map[string]any) { m["quota"] = map[string]any{"per_hour": -1} }, "quota.per_hour"},
		{"unknown quota field", func(m map[string]any) { m["quota"] = map[string]any{"per_day": 1} }, "quota.per_day"},
		{"unknown condition", func(m map[string]any) { cond(m)["branch"] = "main" }, "conditions.branch"},
		{"condition of wrong type", func(m map[string]any) { cond(m)["ref"] = 7 }, "conditions.ref"},
		{"empty condition list", func(m map[string]any) { cond(m)["event_name"] = []any{} }, "conditions.event_name"},
		{"empty pattern", func(m map[string]any) { cond(m)["environment"] = "" }, "conditions.environment"},
		{"repository without owner", func(m map[string]any) { cond(m)["repository"] = "*" }, "conditions.repository"},
		{"repository wildcard owner", func(m map[string]any) { cond(m)["repository"] = "**/web" }, "conditions.repository"},
		{"repository non-ASCII", func(m map[string]any) { cond(m)["repository"] = "аcme/web" }, "conditions.repository"},
		{"repository_id not digits", func(m map[string]any) { cond(m)["repository_id"] = "12*" }, "conditions.repository_id"},
		{"ref not full", func(m map[string]any) { cond(m)["ref"] = "main" }, "conditions.ref"},
		{"newline in pattern", func(m map[string]any) { cond(m)["environment"] = "prod\nx" }, "conditions.environment"},
		{"claims on sub", func(m map[string]any) { cond(m)["claims"] = map[string]any{"sub": "repo:acme/web:*"} }, "conditions.claims.sub"},
		{"claims list mixing types", func(m map[string]any) { cond(m)["claims"] = map[string]any{"team_id": []any{"7", 7}} }, "conditions.claims.team_id"},
		{"claims null", func(m map[string]any) { cond(m)["claims"] = map[string]any{"team_id": nil} }, "conditions.claims.team_id"},
		{"claims object", func(m map[string]any) { cond(m)["claims"] = map[string]any{"team_id": map[string]any{"a": 1}} }, "conditions.claims.team_id"},
		{"claims list of lists", func(m map[string]any) { cond(m)["claims"] = map[string]any{"team_id": []any{[]any{1}}} }, "conditions.claims.team_id[0]"},
		{"claims pointer bad escape", func(m map[string]any) { cond(m)["claims"] = map[string]any{"/kubernetes.io/a~2": "x"} }, "conditions.claims./kubernetes.io/a~2"},
		{"claims pointer empty segment", func(m map[string]any) { cond(m)["claims"] = map[string]any{"/kubernetes.io//a": "x"} }, "conditions.claims./kubernetes.io//a"},
		{"claims pointer into sub", func(m map[string]any) { cond(m)["claims"] = map[string]any{"/sub": "repo:acme/web:*"} }, "conditions.claims./sub"},
		{"claims pointer into ref", func(m map[string]any) { cond(m)["claims"] = map[string]any{"/ref": "refs/heads/main"} }, "conditions.claims./ref"},
		{"claims pointer with a plain spelling", func(m map[string]any) { cond(m)["claims"] = map[string]any{"/runner_environment": "github-hosted"} }, "conditions.claims./runner_environment"},
		{"condition boolean", func(m map[string]any) { cond(m)["environment"] = true }, "conditions.environment"},
		{"no repository constraint", func(m map[string]any) {
			m["conditions"] = map[string]any{"ref": "refs/heads/main"}
		}, "conditions"},
		{"no conditions at all", func(m map[string]any) { delete(m, "conditions") }, "conditions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := clone(t, base)
			tt.edit(m)
			b, _ := json.Marshal(m)
			r := e.do("POST", "/v1/admin/mappings", strings.Replace(string(b), "web-prod-deploy", "other", 1))
			got := e.wantError(r, 400, api.CodeInvalidRequest, "")
			if !strings.HasPrefix(got.Field, tt.field) {
				t.Errorf("field %q, want %q (message %q)", got.Field, tt.field, got.Message)
			}
			r = e.do("PUT", "/v1/admin/mappings/web-prod-deploy", string(b))
			got = e.wantError(r, 400, api.CodeInvalidRequest, "")
			if !strings.HasPrefix(got.Field, tt.field) {
				t.Errorf("PUT field %q, want %q (message %q)", got.Field, tt.field, got.Message)
			}
		})
	}
	if after := e.snapshot(); after != before {
		t.Fatalf("bad input changed state:\nbefore %s\nafter  %s", before, after)
	}
}

// TestMappingPointerClaims: claims conditions keyed by JSON Pointers are
// stored and read back exactly as written, typed values included.
func TestMappingPointerClaims(t *testing.T) {
	e := newEnv(t)
	e.must(201, "POST", "/v1/admin/issuers", githubIssuer)
	body := `{"name": "nested", "issuer": "github", "conditions": {"repository": "acme/web",
		"claims": {"/kubernetes.io/namespace": ["payments", "billing"], "/https:~1~1sts.amazonaws.com~1/aws_account": "123456789012",
		"/https:~1~1sts.amazonaws.com~1/mfa": false, "/a~0b/0": 7}},
		"provider": "aws", "target": {"role_arn": "arn:aws:iam::123456789012:role/deploy", "region": "eu-west-1"}}`
	assertJSONSubset(t, body, e.must(201, "POST", "/v1/admin/mappings", body))
	got := e.must(200, "GET", "/v1/admin/mappings/nested", "")
	assertJSONSubset(t, body, got)
	m := decode[api.Mapping](t, got)
	if v := m.Conditions.Claims["/https:~1~1sts.amazonaws.com~1/mfa"]; v.Type != api.TypeBoolean {
		t.Errorf("pointer condition type %q, want boolean", v.Type)
	}
	assertJSONSubset(t, body, e.must(200, "PUT", "/v1/admin/mappings/nested", body))
}

func cond(m map[string]any) map[string]any { return m["conditions"].(map[string]any) }

func clone(t *testing.T, m map[string]any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(m)
	return decode[map[string]any](t, b)
}

func TestMappingUsage(t *testing.T) {
	e := newEnv(t)
	e.must(201, "POST", "/v1/admin/issuers", githubIssuer)
	e.must(201, "POST", "/v1/admin/mappings", webMapping)
	var m mapping.Mapping
	if err := e.pool.QueryRow(context.Background(), `SELECT id FROM mappings WHERE name = 'web-prod-deploy'`).Scan(&m.ID); err != nil {
		t.Fatal(err)
	}
	u := decode[ledger.Usage](t, e.must(200, "GET", "/v1/admin/mappings/web-prod-deploy/usage", ""))
	if u.Issued != 0 || len(u.Repositories) != 0 || u.PerHour != 100 || u.PerJob != 5 || u.WindowSeconds != 3600 {
		t.Fatalf("empty usage: %+v", u)
	}
	// Ledger rows as the exchange will write them: counted outcomes in the
	// window, plus rows that must not count (denied, too old, other mapping).
	ctx := context.Background()
	ins := func(ago time.Duration, outcome, repo, run, job string, mappingID int64) {
		t.Helper()
		var completed *time.Time
		if outcome != "pending" {
			c := time.Now().Add(-ago)
			completed = &c
		}
		_, err := e.pool.Exec(ctx, `INSERT INTO issuances (id, requested_at, completed_at, outcome, issuer, repository,
			run_id, run_attempt, job_id, mapping_id, mapping, provider)
			VALUES (gen_random_uuid(), $1, $2, $3, 'https://token.actions.githubusercontent.com', $4, $5, '1', $6, $7, 'web-prod-deploy', 'aws')`,
			time.Now().Add(-ago), completed, outcome, repo, run, job, mappingID)
		if err != nil {
			t.Fatal(err)
		}
	}
	ins(time.Minute, "issued", "acme/web", "1", "10", m.ID)
	ins(2*time.Minute, "issued", "Acme/Web", "1", "10", m.ID)
	ins(3*time.Minute, "pending", "acme/web", "2", "20", m.ID)
	ins(4*time.Minute, "issued", "acme/api", "3", "30", m.ID)
	ins(5*time.Minute, "denied", "acme/web", "1", "10", m.ID)
	ins(2*time.Hour, "issued", "acme/web", "1", "10", m.ID)
	ins(time.Minute, "issued", "acme/web", "1", "10", m.ID+1000)
	u = decode[ledger.Usage](t, e.must(200, "GET", "/v1/admin/mappings/web-prod-deploy/usage", ""))
	p := func(i int) *int { return &i }
	wantRepos := []ledger.RepositoryUsage{
		{Repository: "acme/web", Issued: 3, Remaining: p(97)},
		{Repository: "acme/api", Issued: 1, Remaining: p(99)},
	}
	if diff := cmp.Diff(wantRepos, u.Repositories); diff != "" {
		t.Errorf("repositories (-want +got):\n%s", diff)
	}
	if u.Issued != 4 {
		t.Errorf("issued %d, want 4", u.Issued)
	}
	// per_job counts over the job's window (ledger.JobWindow, longer than
	// an hour): the two-hour-old issuance still counts for job 10.
	if len(u.Jobs) != 3 || u.Jobs[0].RunID != "1" || u.Jobs[0].JobID != "10" || u.Jobs[0].Issued != 3 || *u.Jobs[0].Remaining != 2 {
		t.Errorf("jobs: %+v", u.Jobs)
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/healthz", "/readyz"} {
		r := e.do("GET", p, "", "Authorization", "")
		if r.status != 200 {
			t.Errorf("%s: %d %s", p, r.status, r.body)
		}
	}
	e.do("GET", "/v1/admin/issuers", "")
	r := e.do("GET", "/metrics", "", "Authorization", "")
	if r.status != 200 || !bytes.Contains(r.body, []byte(`oidc_bridge_http_requests_total{code="200",method="GET",route="/v1/admin/issuers"} 1`)) {
		t.Fatalf("metrics: %d\n%s", r.status, r.body)
	}
	r = e.do("GET", "/nowhere", "")
	e.wantError(r, 404, api.CodeNotFound, "")
	r = e.do("POST", "/healthz", "{}")
	e.wantError(r, 405, api.CodeMethodNotAllowed, "")
}

// TestSeparateMetrics: with SeparateMetrics the service's handler answers
// 404 for /metrics, and MetricsHandler serves it (and nothing else).
func TestSeparateMetrics(t *testing.T) {
	e := newEnv(t, func(o *bridge.Options) { o.SeparateMetrics = true })
	e.do("GET", "/v1/admin/issuers", "")
	e.wantError(e.do("GET", "/metrics", "", "Authorization", ""), 404, api.CodeNotFound, "")
	get := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		e.srv.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		return rec
	}
	if rec := get("/metrics"); rec.Code != 200 ||
		!strings.Contains(rec.Body.String(), `oidc_bridge_http_requests_total{code="200",method="GET",route="/v1/admin/issuers"} 1`) {
		t.Fatalf("metrics listener: %d\n%s", rec.Code, rec.Body)
	}
	for _, p := range []string{"/v1/admin/issuers", "/healthz", "/"} {
		if rec := get(p); rec.Code != 404 {
			t.Errorf("metrics listener serves %s: %d", p, rec.Code)
		}
	}
}

func TestReadyzSchemaBehind(t *testing.T) {
	pool := pgtest.NewPool(t)
	url := pgtest.NewEmptyDatabase(t)
	empty, err := database.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(empty.Close)
	srv := bridge.New(bridge.Options{
		Store: mapping.NewPGStore(pool, 0), Usage: ledger.New(pool), Admins: baseOptions(t, pool).Admins,
		Ready: func(ctx context.Context) error { return database.CheckCurrent(ctx, empty) },
	})
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), "schema") {
		t.Fatalf("readyz on an unmigrated database: %d %s", rec.Code, rec.Body)
	}
}

// TestDatabaseDown: with the database refusing connections, admin calls
// answer 503 unavailable, readyz answers 503, and nothing is written.
func TestDatabaseDown(t *testing.T) {
	e := newEnv(t)
	e.must(201, "POST", "/v1/admin/issuers", githubIssuer)
	ctx := context.Background()
	var db string
	if err := e.pool.QueryRow(ctx, `SELECT current_database()`).Scan(&db); err != nil {
		t.Fatal(err)
	}
	admin := pgtest.NewPool(t)
	if _, err := admin.Exec(ctx, fmt.Sprintf(`ALTER DATABASE %q ALLOW_CONNECTIONS false`, db)); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, db); err != nil {
		t.Fatal(err)
	}
	e.pool.Reset()
	e.runtime.Reset()
	// The bootstrap token needs no database, so the handlers are reached.
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/v1/admin/issuers", ""},
		{"GET", "/v1/admin/issuers/github", ""},
		{"POST", "/v1/admin/issuers", gitlabIssuer},
		{"DELETE", "/v1/admin/issuers/github", ""},
		{"GET", "/v1/admin/mappings", ""},
	} {
		e.wantError(e.do(c.method, c.path, c.body), 503, api.CodeUnavailable, "")
	}
	r := e.do("GET", "/readyz", "")
	if r.status != 503 || !strings.Contains(string(r.body), `"reason":"database unavailable"`) {
		t.Fatalf("readyz with the database down: %d %s", r.status, r.body)
	}
	if _, err := admin.Exec(ctx, fmt.Sprintf(`ALTER DATABASE %q ALLOW_CONNECTIONS true`, db)); err != nil {
		t.Fatal(err)
	}
	list := decode[api.IssuerList](t, e.must(200, "GET", "/v1/admin/issuers", ""))
	if len(list.Issuers) != 1 {
		t.Fatalf("issuers after the outage: %+v", list)
	}
}

// newToken makes an admin token with scopes for the test.
func (e *env) newToken(name string, scopes ...string) string {
	e.t.Helper()
	token, _, err := e.tokens.Create(context.Background(), testActor, name, scopes, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return token
}

// as returns a copy of e that sends token.
func (e *env) as(token string) *env {
	c := *e
	c.token = token
	return &c
}

// changeCount is the number of rows of issuers and mappings in the
// admin-change history.
func (e *env) changeCount() int {
	e.t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(),
		`SELECT count(*) FROM audit.admin_changes WHERE kind IN ('issuer', 'mapping')`).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// TestAdminScopes: a read token reads but every write is 403 forbidden and
// changes nothing; a write token (write implies read) and the bootstrap
// token do everything.
func TestAdminScopes(t *testing.T) {
	e := newEnv(t)
	e.must(201, "POST", "/v1/admin/issuers", githubIssuer)
	e.must(201, "POST", "/v1/admin/mappings", webMapping)
	reader := e.as(e.newToken("reader", "read"))
	writer := e.as(e.newToken("writer", "write"))
	both := e.as(e.newToken("both", "read", "write"))

	before, changes := e.snapshot(), e.changeCount()
	for _, path := range []string{"/v1/admin/issuers", "/v1/admin/issuers/github", "/v1/admin/mappings",
		"/v1/admin/mappings/web-prod-deploy", "/v1/admin/mappings/web-prod-deploy/usage"} {
		reader.must(200, "GET", path, "")
	}
	writes := []struct{ method, path, body string }{
		{"POST", "/v1/admin/issuers", gitlabIssuer},
		{"PUT", "/v1/admin/issuers/github", githubIssuer},
		{"DELETE", "/v1/admin/issuers/github", ""},
		{"POST", "/v1/admin/mappings", strings.Replace(webMapping, "web-prod-deploy", "other", 1)},
		{"PUT", "/v1/admin/mappings/web-prod-deploy", webMapping},
		{"DELETE", "/v1/admin/mappings/web-prod-deploy", ""},
		// Refused before the body is read or the object looked up.
		{"POST", "/v1/admin/mappings", `{"bad json`},
		{"DELETE", "/v1/admin/mappings/absent", ""},
	}
	for _, w := range writes {
		got := reader.wantError(reader.do(w.method, w.path, w.body), 403, api.CodeForbidden, "")
		if !strings.Contains(got.Message, `"write"`) {
			t.Errorf("%s %s: message %q does not name the missing scope", w.method, w.path, got.Message)
		}
	}
	if after := e.snapshot(); after != before {
		t.Fatalf("forbidden writes changed state:\nbefore %s\nafter  %s", before, after)
	}
	if n := e.changeCount(); n != changes {
		t.Fatalf("forbidden writes recorded %d changes", n-changes)
	}
	// A forbidden request is no failed authentication: it is never limited.
	for range 15 {
		reader.wantError(reader.do("DELETE", "/v1/admin/issuers/github", ""), 403, api.CodeForbidden, "")
	}
	reader.must(200, "GET", "/v1/admin/issuers", "")

	for i, w := range []*env{writer, both, e} {
		name := fmt.Sprintf("m%d", i)
		w.must(200, "GET", "/v1/admin/mappings", "")
		w.must(201, "POST", "/v1/admin/mappings", strings.Replace(webMapping, "web-prod-deploy", name, 1))
		w.must(200, "PUT", "/v1/admin/mappings/"+name, strings.Replace(webMapping, "web-prod-deploy", name+"-x", 1))
		w.must(204, "DELETE", "/v1/admin/mappings/"+name+"-x", "")
	}
	var actors []string
	rows, err := e.pool.Query(context.Background(), `SELECT actor || ':' || action FROM audit.admin_changes WHERE id > $1 AND kind IN ('issuer', 'mapping')`, changes)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			t.Fatal(err)
		}
		actors = append(actors, a)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{"writer:create", "writer:update", "writer:delete", "both:create", "both:update", "both:delete",
		"bootstrap:create", "bootstrap:update", "bootstrap:delete"}
	if diff := cmp.Diff(want, actors); diff != "" {
		t.Fatalf("actors (-want +got):\n%s", diff)
	}
}

// TestAdminExpiredToken: an expired token is refused like an unknown one.
func TestAdminExpiredToken(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	token, _, err := e.tokens.Create(ctx, testActor, "temp", admintoken.AllScopes(), &exp)
	if err != nil {
		t.Fatal(err)
	}
	temp := e.as(token)
	temp.must(200, "GET", "/v1/admin/issuers", "")
	if _, err := e.pool.Exec(ctx, `UPDATE admin_tokens SET expires_at = now() - interval '1 second' WHERE name = 'temp'`); err != nil {
		t.Fatal(err)
	}
	temp.wantError(temp.do("GET", "/v1/admin/issuers", ""), 401, api.CodeUnauthorized, "")
	temp.wantError(temp.do("POST", "/v1/admin/issuers", githubIssuer), 401, api.CodeUnauthorized, "")
	if n := e.changeCount(); n != 0 {
		t.Fatalf("an expired token's write recorded %d changes", n)
	}
}

// adminChange is a row of audit.admin_changes.
type adminChange struct {
	Actor, Action, Kind, Name string
	Before, After             map[string]any
	RequestID                 string
}

func (e *env) adminChanges() []adminChange {
	e.t.Helper()
	// The server runs as the service's runtime login (e.pool is the
	// owner's, for checks).
	user := pgtest.RuntimeLogin
	// The API's writes are recorded by the API alone (source api, with the
	// database login): the direct-SQL trigger sees the API's row in the
	// transaction and adds none.
	rows, err := e.pool.Query(context.Background(),
		`SELECT actor, action, kind, name, before, after, coalesce(request_id, ''), source, db_user
		FROM audit.admin_changes WHERE kind IN ('issuer', 'mapping')`)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []adminChange
	for rows.Next() {
		var c adminChange
		var source, dbUser string
		if err := rows.Scan(&c.Actor, &c.Action, &c.Kind, &c.Name, &c.Before, &c.After, &c.RequestID, &source, &dbUser); err != nil {
			e.t.Fatal(err)
		}
		if source != "api" || dbUser != user {
			e.t.Errorf("row %+v: source %q, db_user %q; want api, %q", c, source, dbUser, user)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// object decodes an API object, without its read-only lint warnings, which
// the history leaves out.
func object(t *testing.T, b []byte) map[string]any {
	t.Helper()
	m := decode[map[string]any](t, b)
	delete(m, "warnings")
	return m
}

// TestAdminChanges: every admin write records exactly one row, with the
// token's name, the request's id and the API objects before and after;
// refused writes record nothing.
func TestAdminChanges(t *testing.T) {
	e := newEnv(t)
	alice := e.as(e.newToken("alice", "read", "write"))
	var want []adminChange
	// write performs a write that must answer status and expects its row.
	write := func(w *env, status int, method, path, body, action, kind, name string, before map[string]any) map[string]any {
		t.Helper()
		r := w.do(method, path, body)
		if r.status != status {
			t.Fatalf("%s %s: %d %s", method, path, r.status, r.body)
		}
		var after map[string]any
		if len(r.body) > 0 {
			after = object(t, r.body)
		}
		actor := admintoken.BootstrapName
		if w.token != bootstrap {
			actor = "alice"
		}
		rid := r.header.Get("X-Request-ID")
		if rid == "" {
			t.Fatal("no X-Request-ID")
		}
		want = append(want, adminChange{actor, action, kind, name, before, after, rid})
		if diff := cmp.Diff(want, e.adminChanges()); diff != "" {
			t.Fatalf("%s %s: changes (-want +got):\n%s", method, path, diff)
		}
		return after
	}
	get := func(path string) map[string]any { t.Helper(); return object(t, e.must(200, "GET", path, "")) }

	gh := write(alice, 201, "POST", "/v1/admin/issuers", githubIssuer, "create", "issuer", "github", nil)
	gl := write(e, 201, "POST", "/v1/admin/issuers", gitlabIssuer, "create", "issuer", "gitlab", nil)
	gl = write(alice, 200, "PUT", "/v1/admin/issuers/gitlab",
		`{"url": "https://gitlab.example.com", "audiences": ["a"], "kind": "gitlab"}`, "update", "issuer", "gitlab", gl)
	// A rename is recorded under the old name.
	gl = write(alice, 200, "PUT", "/v1/admin/issuers/gitlab",
		`{"name": "gitlab-self", "url": "https://gitlab.example.com", "audiences": ["a"], "kind": "gitlab"}`, "update", "issuer", "gitlab", gl)
	if gl["name"] != "gitlab-self" {
		t.Fatalf("renamed issuer %v", gl)
	}

	m := write(alice, 201, "POST", "/v1/admin/mappings", webMapping, "create", "mapping", "web-prod-deploy", nil)
	if diff := cmp.Diff(get("/v1/admin/mappings/web-prod-deploy"), m); diff != "" {
		t.Fatalf("after differs from the object read back (-get +after):\n%s", diff)
	}
	m = write(e, 200, "PUT", "/v1/admin/mappings/web-prod-deploy",
		strings.Replace(webMapping, `"enabled": true`, `"enabled": false, "mode": "audit"`, 1), "update", "mapping", "web-prod-deploy", m)
	if m["mode"] != "audit" || m["enabled"] != false {
		t.Fatalf("updated mapping %v", m)
	}
	m = write(alice, 200, "PUT", "/v1/admin/mappings/web-prod-deploy",
		strings.Replace(webMapping, `"name": "web-prod-deploy"`, `"name": "web-prod"`, 1), "update", "mapping", "web-prod-deploy", m)

	// Refused writes record nothing.
	n := e.changeCount()
	refused := []struct {
		method, path, body string
		status             int
	}{
		{"POST", "/v1/admin/issuers", githubIssuer, 409},
		{"POST", "/v1/admin/issuers", `{"name": "x", "url": "http://example.com", "audiences": ["a"], "kind": "github"}`, 400},
		{"PUT", "/v1/admin/issuers/nope", gitlabIssuer, 404},
		{"PUT", "/v1/admin/issuers/github", `{"url": "https://gitlab.example.com", "audiences": ["a"], "kind": "github"}`, 409},
		{"DELETE", "/v1/admin/issuers/github", "", 409},
		{"DELETE", "/v1/admin/issuers/nope", "", 404},
		{"POST", "/v1/admin/mappings", strings.Replace(webMapping, "web-prod-deploy", "web-prod", 1), 409},
		{"POST", "/v1/admin/mappings", strings.Replace(webMapping, `"provider": "aws"`, `"provider": "oracle"`, 1), 400},
		{"POST", "/v1/admin/mappings", strings.Replace(webMapping, `"enabled": true`, `"mode": "shadow"`, 1), 400},
		{"PUT", "/v1/admin/mappings/web-prod", strings.Replace(webMapping, `"issuer": "github"`, `"issuer": "nope"`, 1), 400},
		{"PUT", "/v1/admin/mappings/absent", webMapping, 404},
		{"DELETE", "/v1/admin/mappings/absent", "", 404},
	}
	for _, r := range refused {
		if got := alice.do(r.method, r.path, r.body); got.status != r.status {
			t.Fatalf("%s %s: %d, want %d: %s", r.method, r.path, got.status, r.status, got.body)
		}
	}
	if got := e.changeCount(); got != n {
		t.Fatalf("refused writes recorded %d changes:\n%+v", got-n, e.adminChanges()[n:])
	}

	write(alice, 204, "DELETE", "/v1/admin/mappings/web-prod", "", "delete", "mapping", "web-prod", m)
	write(e, 204, "DELETE", "/v1/admin/issuers/gitlab-self", "", "delete", "issuer", "gitlab-self", gl)
	write(alice, 204, "DELETE", "/v1/admin/issuers/github", "", "delete", "issuer", "github", gh)
}

// TestMappingMode: mode defaults to enforce, takes audit, refuses others,
// and is replaced by PUT like every field.
func TestMappingMode(t *testing.T) {
	e := newEnv(t)
	e.must(201, "POST", "/v1/admin/issuers", githubIssuer)
	m := decode[mapping.Mapping](t, e.must(201, "POST", "/v1/admin/mappings", webMapping))
	if m.Mode != mapping.ModeEnforce {
		t.Fatalf("default mode %q", m.Mode)
	}
	audit := strings.Replace(webMapping, `"enabled": true`, `"enabled": true, "mode": "audit"`, 1)
	m = decode[mapping.Mapping](t, e.must(200, "PUT", "/v1/admin/mappings/web-prod-deploy", audit))
	if m.Mode != mapping.ModeAudit {
		t.Fatalf("mode %q after PUT", m.Mode)
	}
	if got := decode[mapping.Mapping](t, e.must(200, "GET", "/v1/admin/mappings/web-prod-deploy", "")); got.Mode != mapping.ModeAudit {
		t.Fatalf("mode %q read back", got.Mode)
	}
	created := decode[mapping.Mapping](t, e.must(201, "POST", "/v1/admin/mappings", strings.Replace(audit, "web-prod-deploy", "shadow", 1)))
	if created.Mode != mapping.ModeAudit {
		t.Fatalf("created mode %q", created.Mode)
	}
	before := e.snapshot()
	for _, bad := range []string{`"shadow"`, `"AUDIT"`, `1`, `null`} {
		body := strings.Replace(webMapping, `"enabled": true`, `"enabled": true, "mode": `+bad, 1)
		r := e.do("PUT", "/v1/admin/mappings/web-prod-deploy", body)
		if bad == `null` {
			// null is absent: the default.
			if r.status != 200 || decode[mapping.Mapping](t, r.body).Mode != mapping.ModeEnforce {
				t.Fatalf("mode null: %d %s", r.status, r.body)
			}
			before = e.snapshot()
			continue
		}
		e.wantError(r, 400, api.CodeInvalidRequest, "mode")
	}
	if after := e.snapshot(); after != before {
		t.Fatal("a bad mode changed state")
	}
	// PUT without mode restores the default.
	if m := decode[mapping.Mapping](t, e.must(200, "PUT", "/v1/admin/mappings/shadow", strings.Replace(webMapping, "web-prod-deploy", "shadow", 1))); m.Mode != mapping.ModeEnforce {
		t.Fatalf("mode %q after PUT without mode", m.Mode)
	}
}

// TestMappingLint: risky but valid mappings are accepted with warnings on
// every read and write; ?lint=strict refuses them and writes nothing.
func TestMappingLint(t *testing.T) {
	e := newEnv(t)
	e.must(201, "POST", "/v1/admin/issuers", githubIssuer)
	risky := `{"name": "risky", "issuer": "github", "conditions": {"repository": "acme/*", "event_name": "pull_request_target"},
		"provider": "aws", "target": {"role_arn": "arn:aws:iam::123456789012:role/prod-deploy", "region": "eu-west-1"}}`
	codes := func(b []byte) []string { return warningCodes(t, b) }
	before := e.snapshot()
	r := e.do("POST", "/v1/admin/mappings?lint=strict", risky)
	got := e.wantError(r, 400, api.CodeInvalidRequest, "")
	if !strings.Contains(got.Message, "lint") {
		t.Errorf("message %q", got.Message)
	}
	if e.snapshot() != before {
		t.Fatal("a strict-lint refusal wrote the mapping")
	}
	e.wantError(e.do("POST", "/v1/admin/mappings?lint=loud", risky), 400, api.CodeInvalidRequest, "lint")

	created := codes(e.must(201, "POST", "/v1/admin/mappings", risky))
	// The strict refusal listed every warning the mapping has, with its
	// field and message, in lint order; field is the first one's and the
	// message names every code.
	if len(got.Warnings) < 3 || !slices.Equal(codesOf(got.Warnings), created) {
		t.Fatalf("strict refusal's warnings %v, want all of %v", got.Warnings, created)
	}
	for _, w := range got.Warnings {
		if w.Field == "" || w.Message == "" || !strings.Contains(got.Message, w.Code) {
			t.Errorf("warning %+v: no field or message, or not named in the message %q", w, got.Message)
		}
	}
	if got.Field != got.Warnings[0].Field {
		t.Errorf("field %q, want the first warning's, %q", got.Field, got.Warnings[0].Field)
	}
	var raw map[string]any
	if err := json.Unmarshal(r.body, &raw); err != nil || raw["warnings"] == nil {
		t.Errorf("no \"warnings\" member in %s", r.body)
	}
	// A PUT under strict lint lists them all too, and changes nothing.
	before = e.snapshot()
	up := e.wantError(e.do("PUT", "/v1/admin/mappings/risky?lint=strict", risky), 400, api.CodeInvalidRequest, got.Field)
	if !slices.Equal(codesOf(up.Warnings), created) || e.snapshot() != before {
		t.Errorf("strict PUT: warnings %v, want %v (or it wrote)", codesOf(up.Warnings), created)
	}
	// Other refusals carry no warnings.
	if raw := e.do("POST", "/v1/admin/mappings?lint=loud", risky).body; strings.Contains(string(raw), "warnings") {
		t.Errorf("a refusal that is not lint's has warnings: %s", raw)
	}
	for _, want := range []string{"no_immutable_id", "wildcard_repository", "risky_event"} {
		if !slices.Contains(created, want) {
			t.Errorf("warnings %v lack %s", created, want)
		}
	}
	if got := codes(e.must(200, "GET", "/v1/admin/mappings/risky", "")); !slices.Equal(got, created) {
		t.Errorf("GET warnings %v, POST %v", got, created)
	}
	var list api.MappingList
	if err := json.Unmarshal(e.must(200, "GET", "/v1/admin/mappings", ""), &list); err != nil || len(list.Mappings[0].Warnings) == 0 {
		t.Errorf("list without warnings: %+v %v", list, err)
	}
	// Warnings are read-only: sent back, they are ignored.
	var m map[string]any
	_ = json.Unmarshal(e.must(200, "GET", "/v1/admin/mappings/risky", ""), &m)
	m["warnings"] = []any{map[string]any{"code": "forged", "message": "x"}}
	b, _ := json.Marshal(m)
	if got := codes(e.must(200, "PUT", "/v1/admin/mappings/risky", string(b))); slices.Contains(got, "forged") {
		t.Errorf("a client-sent warning came back: %v", got)
	}
	// A clean mapping passes strict lint with no warnings.
	clean := `{"name": "clean", "issuer": "github", "conditions": {"repository": "acme/web", "repository_id": "123456",
		"ref": "refs/heads/main", "event_name": "push", "claims": {"runner_environment": "github-hosted"}},
		"provider": "aws", "target": {"role_arn": "arn:aws:iam::123456789012:role/ci", "region": "eu-west-1"}}`
	if got := codes(e.must(201, "POST", "/v1/admin/mappings?lint=strict", clean)); len(got) != 0 {
		t.Errorf("clean mapping warnings %v", got)
	}
}

// codesOf lists the warnings' codes.
func codesOf(ws []api.Warning) []string {
	out := []string{}
	for _, w := range ws {
		out = append(out, w.Code)
	}
	return out
}

// TestAdminAuthLimiterFullTable: when the failure table is full (here 3
// entries), a client not in it is refused with 429 and Retry-After, even
// with a valid token, rather than exempted; and an IPv6 client is one
// client across its /64, so rotating addresses neither escapes its bucket
// nor fills the table.
func TestAdminAuthLimiterFullTable(t *testing.T) {
	e := newEnv(t, func(o *bridge.Options) { o.MaxTrackedClients = 3 })
	fail := func(from string) int {
		return e.do("GET", "/v1/admin/issuers", "", "Authorization", "Bearer wrong", remoteAddr, from).status
	}
	// One IPv6 host rotating through its /64: its 11th failure is refused.
	for i := range 10 {
		if s := fail(fmt.Sprintf("[2001:db8:1:2::%x]:5000", i+1)); s != 401 {
			t.Fatalf("guess %d: %d", i, s)
		}
	}
	r := e.do("GET", "/v1/admin/issuers", "", remoteAddr, "[2001:db8:1:2:ffff::99]:5000")
	e.wantError(r, 429, api.CodeRateLimited, "")
	// An IPv4-mapped address is its IPv4 client.
	for range 10 {
		fail("[::ffff:198.51.100.1]:5000")
	}
	e.wantError(e.do("GET", "/v1/admin/issuers", "", remoteAddr, "198.51.100.1:5000"), 429, api.CodeRateLimited, "")
	// The third slot.
	if s := fail("[2001:db8:1:3::1]:5000"); s != 401 {
		t.Fatalf("third client: %d", s)
	}
	// The table is full: a newcomer is refused, even with a good token.
	r = e.do("GET", "/v1/admin/issuers", "", remoteAddr, "203.0.113.9:5000")
	e.wantError(r, 429, api.CodeRateLimited, "")
	if ra := r.header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After %q", ra)
	}
}

// TestAdminChangesBootstrapLabel: the bootstrap token's writes (and
// revocations) name its holder by BRIDGE_ADMIN_TOKEN_LABEL.
func TestAdminChangesBootstrapLabel(t *testing.T) {
	runtime, pool := pgtest.NewRuntimePool(t)
	o := baseOptions(t, runtime)
	admins, err := admintoken.New(runtime, bootstrap, "ops-team")
	if err != nil {
		t.Fatal(err)
	}
	o.Admins = admins
	e := &env{opts: o, t: t, pool: pool, runtime: runtime, srv: bridge.New(o), tokens: admins, token: bootstrap}
	e.must(201, "POST", "/v1/admin/issuers", githubIssuer)
	got := e.adminChanges()
	if len(got) != 1 || got[0].Actor != "bootstrap:ops-team" || got[0].Action != "create" {
		t.Fatalf("changes: %+v", got)
	}
}

// testActor makes the tests' admin tokens.
var testActor = history.Actor{Name: "cli:test", Source: history.SourceCLI}
