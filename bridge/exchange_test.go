package bridge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/oidc-bridge/oidc-bridge/bridge"
	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/identity"
	"github.com/oidc-bridge/oidc-bridge/providers"
	"github.com/oidc-bridge/oidc-bridge/providers/aws"
	"github.com/oidc-bridge/oidc-bridge/providers/jwt"
	"github.com/oidc-bridge/oidc-bridge/signing/signingtest"
	"github.com/oidc-bridge/oidc-bridge/test/oidctest"
	"github.com/oidc-bridge/oidc-bridge/test/pgtest"
)

// withExchange gives the server a verifier, the ledger and the AWS
// provider (real SDK, aimed at the shared STS fake).
func withExchange(t testing.TB) envOption {
	p, err := aws.New(context.Background(), aws.Config{})
	if err != nil {
		t.Fatal(err)
	}
	signer := signingtest.New(t)
	return func(o *bridge.Options) {
		store := o.Store.(identity.IssuerSource)
		o.Verifier = identity.NewVerifier(identity.Config{AllowInsecureIssuers: true}, store)
		o.Providers = map[string]providers.Provider{"aws": p, "jwt": jwt.New(jwt.Config{Signer: signer})}
		o.AllowInsecureIssuers = true
		o.Keys, o.PublicURL = signer, signer.Issuer()
	}
}

// exchangeEnv is an env with a GitHub-shaped issuer and two mappings:
// "web" (acme/web on main, per_hour 3) and "tags" (acme/web tags).
type exchangeEnv struct {
	*env
	gh *oidctest.Issuer
}

// keys is the in-memory signer withExchange gave the server.
func (x *exchangeEnv) keys() *signingtest.Signer { return x.env.opts.Keys.(*signingtest.Signer) }

func newExchangeEnv(t testing.TB, opts ...envOption) *exchangeEnv {
	t.Helper()
	sts.Reset()
	e := newEnv(t, append([]envOption{withExchange(t)}, opts...)...)
	x := &exchangeEnv{env: e, gh: oidctest.New(t)}
	e.must(201, "POST", "/v1/admin/issuers", fmt.Sprintf(`{"name": "github", "url": %q, "audiences": [%q], "kind": "github"}`,
		x.gh.URL(), oidctest.DefaultAudience))
	x.mapping("web", `"repository": "acme/web", "ref": "refs/heads/main"`, `"quota": {"per_hour": 3}`)
	x.mapping("tags", `"repository": "acme/web", "ref": "refs/tags/*"`, "")
	return x
}

func (x *exchangeEnv) mapping(name, conditions, extra string) {
	x.t.Helper()
	if extra != "" {
		extra = ", " + extra
	}
	x.must(201, "POST", "/v1/admin/mappings", fmt.Sprintf(`{"name": %q, "issuer": "github", "conditions": {%s},
		"provider": "aws", "target": {"role_arn": "arn:aws:iam::123456789012:role/%s", "region": "eu-west-1"}%s}`,
		name, conditions, name, extra))
}

// token mints a GitHub-shaped token with overrides.
func (x *exchangeEnv) token(over map[string]any, opts ...oidctest.MintOption) string {
	x.t.Helper()
	return x.gh.Mint(x.t, x.gh.GitHubClaims(over), opts...)
}

func (x *exchangeEnv) exchange(token, body string) response {
	x.t.Helper()
	hdr := []string{"Authorization", "Bearer " + token}
	if token == "" {
		hdr[1] = ""
	}
	if body == "" {
		hdr = append(hdr, "Content-Type", "")
	}
	return x.do("POST", "/v1/exchange", body, hdr...)
}

// rows returns the ledger's rows as outcome/error_code strings, oldest first.
func (x *exchangeEnv) rows() []string {
	x.t.Helper()
	rows, err := x.pool.Query(context.Background(), `SELECT outcome || '/' || coalesce(error_code, '') FROM audit.issuances`)
	if err != nil {
		x.t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			x.t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func TestExchangeIssues(t *testing.T) {
	x := newExchangeEnv(t)
	r := x.exchange(x.token(nil), `{"duration_seconds": 1800}`)
	if r.status != 200 {
		t.Fatalf("exchange: %d %s", r.status, r.body)
	}
	var resp api.ExchangeResponse
	if err := json.Unmarshal(r.body, &resp); err != nil {
		t.Fatal(err)
	}
	var creds providers.AWSCredentials
	if err := json.Unmarshal(resp.Credentials, &creds); err != nil {
		t.Fatal(err)
	}
	if resp.Mapping != "web" || creds.Region != "eu-west-1" || !strings.HasPrefix(creds.AccessKeyID, "ASIA") {
		t.Fatalf("response %s", r.body)
	}
	calls := sts.Calls()
	if len(calls) != 1 || calls[0].DurationSeconds != 1800 || calls[0].RoleArn != "arn:aws:iam::123456789012:role/web" ||
		calls[0].Tags["issuance_id"] != resp.IssuanceID {
		t.Fatalf("STS calls: %+v", calls)
	}
	var id, outcome, cred string
	if err := x.pool.QueryRow(context.Background(), `SELECT id::text, outcome, credential_id FROM audit.issuances`).
		Scan(&id, &outcome, &cred); err != nil {
		t.Fatal(err)
	}
	if id != resp.IssuanceID || outcome != "issued" || cred != creds.AccessKeyID {
		t.Fatalf("ledger row %s %s %s", id, outcome, cred)
	}
	// Without a duration: the mapping's maximum (3600 by default).
	if r := x.exchange(x.token(nil), ""); r.status != 200 || sts.Calls()[1].DurationSeconds != 3600 {
		t.Fatalf("default duration: %d %s %+v", r.status, r.body, sts.Calls())
	}
}

// TestExchangeErrorTable produces every row of the contract's error table
// and checks what the ledger recorded for each: a row for every verified
// token, none for tokens that did not verify.
func TestExchangeErrorTable(t *testing.T) {
	x := newExchangeEnv(t)
	other := oidctest.New(t) // not registered
	replayed := x.token(nil)
	if r := x.exchange(replayed, ""); r.status != 200 {
		t.Fatalf("first use: %d %s", r.status, r.body)
	}
	tests := []struct {
		name   string
		setup  func()
		token  func() string
		body   string
		status int
		code   string
		field  string
		row    string // the ledger row's outcome/error_code; "" for none
		in     string // a text the message must contain
	}{
		{name: "unknown field (a request-supplied role)", token: func() string { return x.token(nil) },
			body: `{"role_arn": "arn:aws:iam::222222222222:role/admin"}`, status: 400, code: "invalid_request", field: "role_arn", row: "denied/invalid_request"},
		{name: "malformed body", token: func() string { return x.token(nil) }, body: `{"mapping":`, status: 400, code: "invalid_request", row: "denied/invalid_request"},
		{name: "duration below the provider's minimum", token: func() string { return x.token(nil) },
			body: `{"duration_seconds": 899}`, status: 400, code: "invalid_request", field: "duration_seconds", row: "denied/invalid_request", in: "900"},
		{name: "duration above the mapping's maximum", token: func() string { return x.token(nil) },
			body: `{"duration_seconds": 43200}`, status: 400, code: "invalid_request", field: "duration_seconds", row: "denied/invalid_request", in: "3600"},
		{name: "unknown provider", token: func() string { return x.token(nil) }, body: `{"provider": "oracle"}`,
			status: 400, code: "invalid_request", field: "provider", row: "denied/invalid_request"},
		{name: "missing token", token: func() string { return "" }, status: 401, code: "invalid_token"},
		{name: "garbage token", token: func() string { return "not.a.jwt" }, status: 401, code: "invalid_token"},
		{name: "alg none", token: func() string { return x.token(nil, oidctest.WithAlg("none")) }, status: 401, code: "invalid_token"},
		{name: "expired", token: func() string {
			now := time.Now().Unix()
			return x.token(map[string]any{"iat": now - 600, "nbf": now - 600, "exp": now - 120})
		}, status: 401, code: "invalid_token", in: "token_expired"},
		{name: "wrong audience", token: func() string { return x.token(map[string]any{"aud": "sts.amazonaws.com"}) },
			status: 401, code: "invalid_token", in: "audience_mismatch"},
		{name: "signed by another key", token: func() string { return x.token(nil, oidctest.WithUnpublishedKey()) }, status: 401, code: "invalid_token"},
		{name: "unregistered issuer", token: func() string { return other.Mint(t, other.GitHubClaims(nil)) }, status: 401, code: "untrusted_issuer"},
		{name: "no mapping admits", token: func() string { return x.token(map[string]any{"repository": "acme/api", "repository_owner": "acme"}) },
			status: 403, code: "no_matching_mapping", row: "denied/no_matching_mapping"},
		{name: "named mapping does not admit", token: func() string { return x.token(nil) }, body: `{"mapping": "tags"}`,
			status: 403, code: "no_matching_mapping", row: "denied/no_matching_mapping", in: "tags"},
		{name: "named mapping does not exist", token: func() string { return x.token(nil) }, body: `{"mapping": "nope"}`,
			status: 403, code: "no_matching_mapping", row: "denied/no_matching_mapping"},
		{name: "no mapping of that provider", token: func() string { return x.token(nil) }, body: `{"provider": "gcp"}`,
			status: 403, code: "no_matching_mapping", row: "denied/no_matching_mapping"},
		{name: "ambiguous", setup: func() { x.mapping("web-alt", `"repository": "acme/*"`, "") },
			token: func() string { return x.token(nil) }, status: 409, code: "ambiguous_mapping", row: "denied/ambiguous_mapping", in: "web, web-alt"},
		{name: "replayed", token: func() string { return replayed }, body: `{"mapping": "web"}`,
			status: 409, code: "token_replayed", row: "denied/token_replayed"},
		{name: "provider refuses", setup: func() { sts.Refuse("AccessDenied") }, token: func() string { return x.token(nil) },
			body: `{"mapping": "web"}`, status: 502, code: "provider_error", row: "failed/provider_error", in: "AccessDenied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := &exchangeEnv{env: x.env.in(t), gh: x.gh}
			sts.Reset()
			if tt.setup != nil {
				tt.setup()
			}
			before := len(x.rows())
			r := x.exchange(tt.token(), tt.body)
			got := x.wantError(r, tt.status, tt.code, tt.field)
			if tt.in != "" && !strings.Contains(got.Message, tt.in) {
				t.Errorf("message %q does not mention %q", got.Message, tt.in)
			}
			if strings.Contains(got.Message, "123456789012") {
				t.Errorf("message leaks the account: %q", got.Message)
			}
			rows := x.rows()
			switch {
			case tt.row == "" && len(rows) != before:
				t.Errorf("an unverified token wrote a ledger row: %v", rows[before:])
			case tt.row == "" && got.IssuanceID != "":
				t.Errorf("issuance_id %q without a row", got.IssuanceID)
			case tt.row != "" && (len(rows) != before+1 || rows[len(rows)-1] != tt.row):
				t.Errorf("ledger rows %v, want one more: %s", rows[before:], tt.row)
			case tt.row != "" && got.IssuanceID == "":
				t.Error("no issuance_id for a recorded attempt")
			}
			wantCalls := 0
			if tt.code == "provider_error" {
				wantCalls = 1
			}
			if n := sts.CallCount(); n != wantCalls {
				t.Errorf("STS called %d times, want %d", n, wantCalls)
			}
			if strings.Contains(string(r.body), "secret_access_key") {
				t.Errorf("credentials in an error answer: %s", r.body)
			}
		})
	}
	// A named mapping resolves the ambiguity.
	sts.Reset()
	if r := x.exchange(x.token(nil), `{"mapping": "web"}`); r.status != 200 {
		t.Fatalf("named mapping: %d %s", r.status, r.body)
	}
}

func TestExchangeQuota(t *testing.T) {
	x := newExchangeEnv(t)
	for i := range 3 {
		if r := x.exchange(x.token(nil), ""); r.status != 200 {
			t.Fatalf("exchange %d: %d %s", i, r.status, r.body)
		}
	}
	r := x.exchange(x.token(nil), "")
	e := x.wantError(r, 429, "quota_exceeded", "")
	if e.IssuanceID == "" {
		t.Error("no issuance_id")
	}
	ra, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || ra < 3590 || ra > 3600 {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	// The message says when as a date, without the ledger's prefix.
	_, at, ok := strings.Cut(e.Message, "it frees at ")
	at, _, _ = strings.Cut(at, " ")
	when, perr := time.Parse(time.RFC3339, at)
	if !ok || perr != nil || !strings.HasSuffix(at, "Z") || strings.Contains(e.Message, "ledger:") ||
		!strings.HasPrefix(e.Message, "quota per_hour of 3 exceeded") || time.Until(when) < 3580*time.Second || time.Until(when) > 3601*time.Second {
		t.Errorf("message %q: want the date the quota frees (RFC 3339, UTC)", e.Message)
	}
	// Another repository has its own bucket.
	x.mapping("api", `"repository": "acme/api"`, `"quota": {"per_hour": 3}`)
	if r := x.exchange(x.token(map[string]any{"repository": "acme/api"}), ""); r.status != 200 {
		t.Fatalf("other repository: %d %s", r.status, r.body)
	}
	if n := sts.CallCount(); n != 4 {
		t.Fatalf("STS called %d times, want 4", n)
	}
}

func TestExchangeRateLimited(t *testing.T) {
	x := newExchangeEnv(t, func(o *bridge.Options) { o.RateLimit, o.RateBurst = 0.5, 2 })
	// Junk counts too: the limit comes before any token is parsed.
	for range 2 {
		x.wantError(x.exchange("junk", ""), 401, "invalid_token", "")
	}
	r := x.exchange(x.token(nil), "")
	x.wantError(r, 429, "rate_limited", "")
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 || ra > 2 {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	if rows := x.rows(); len(rows) != 0 || sts.CallCount() != 0 {
		t.Fatalf("rate-limited requests left rows %v / STS calls", rows)
	}
}

// TestExchangeMintFailures: a refusal releases the token, so the pipeline
// may retry it; a failure after which STS may have issued (a hang) keeps the
// token spent and the issuance pending, for the sweeper to mark unknown.
func TestExchangeMintFailures(t *testing.T) {
	x := newExchangeEnv(t, func(o *bridge.Options) { o.MintTimeout = 300 * time.Millisecond })
	refused := x.token(nil)
	sts.Refuse("AccessDenied")
	r := x.exchange(refused, "")
	x.wantError(r, 502, "provider_error", "")
	if ra := r.header.Get("Retry-After"); ra != "" {
		t.Errorf("a refusal carries Retry-After %q: clients would retry it", ra)
	}
	sts.Reset()
	if r := x.exchange(refused, ""); r.status != 200 {
		t.Fatalf("retry after a refusal: %d %s", r.status, r.body)
	}

	lost := x.token(nil)
	sts.Hang()
	r = x.exchange(lost, "")
	e := x.wantError(r, 502, "provider_error", "")
	if ra := r.header.Get("Retry-After"); ra != "5" {
		t.Errorf("a failing cloud's 502 has Retry-After %q, want 5", ra)
	}
	if !strings.Contains(e.Message, "Timeout") {
		t.Errorf("message %q", e.Message)
	}
	sts.Reset()
	x.wantError(x.exchange(lost, ""), 409, "token_replayed", "")
	want := []string{"failed/provider_error", "issued/", "unknown/indeterminate", "denied/token_replayed"}
	if got := x.rows(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("ledger %v, want %v", got, want)
	}
}

// TestExchangeUnavailable: with the database refusing connections, the
// exchange answers 503 and no cloud is called.
func TestExchangeUnavailable(t *testing.T) {
	x := newExchangeEnv(t)
	tok := x.token(nil)
	ctx := context.Background()
	var db string
	if err := x.pool.QueryRow(ctx, `SELECT current_database()`).Scan(&db); err != nil {
		t.Fatal(err)
	}
	admin := pgtest.NewPool(t)
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := admin.Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	exec(fmt.Sprintf(`ALTER DATABASE %q ALLOW_CONNECTIONS false`, db))
	exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, db)
	x.pool.Reset()
	x.runtime.Reset()
	r := x.exchange(tok, "")
	x.wantError(r, 503, "unavailable", "")
	if sts.CallCount() != 0 {
		t.Fatal("STS was called with the database down")
	}
	exec(fmt.Sprintf(`ALTER DATABASE %q ALLOW_CONNECTIONS true`, db))
	if r := x.exchange(tok, ""); r.status != 200 {
		t.Fatalf("after the outage: %d %s", r.status, r.body)
	}
}

// TestExchangeRecordFails: when the issued row cannot be committed, the
// minted credential is withheld (503), the row stays pending for the
// sweeper, and the metric counts it.
func TestExchangeRecordFails(t *testing.T) {
	reg := prometheus.NewRegistry()
	x := newExchangeEnv(t, func(o *bridge.Options) { o.Registry = reg })
	ctx := context.Background()
	for _, sql := range []string{
		`CREATE FUNCTION refuse_issued() RETURNS trigger LANGUAGE plpgsql AS $$
		 BEGIN RAISE EXCEPTION 'disk full (test)'; END $$`,
		`CREATE TRIGGER refuse_issued BEFORE UPDATE ON issuances FOR EACH ROW
		 WHEN (NEW.outcome = 'issued') EXECUTE FUNCTION refuse_issued()`,
	} {
		if _, err := x.pool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	r := x.exchange(x.token(nil), "")
	e := x.wantError(r, 503, "unavailable", "")
	if strings.Contains(string(r.body), "ASIA") || strings.Contains(string(r.body), "secret") {
		t.Fatalf("credentials in the answer: %s", r.body)
	}
	if sts.CallCount() != 1 {
		t.Fatalf("STS calls %d, want 1", sts.CallCount())
	}
	if rows := x.rows(); len(rows) != 1 || rows[0] != "pending/" {
		t.Fatalf("ledger %v, want one pending row", rows)
	}
	if e.IssuanceID == "" {
		t.Error("no issuance_id")
	}
	m := x.do("GET", "/metrics", "")
	if !strings.Contains(string(m.body), "oidc_bridge_unrecorded_credentials_total 1") {
		t.Fatalf("metric not counted:\n%s", m.body)
	}
}

// TestClientAddress: the rate limit and the audit client_ip use the socket
// peer unless it is a trusted proxy, whose X-Forwarded-For is then read
// right to left; rotating a forged header neither escapes the limit nor
// lands on another client.
func TestClientAddress(t *testing.T) {
	x := newExchangeEnv(t, func(o *bridge.Options) {
		o.RateLimit, o.RateBurst = 0.001, 1
		o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	})
	ip := func() string {
		var s string
		if err := x.pool.QueryRow(context.Background(), `SELECT host(client_ip) FROM audit.issuances ORDER BY requested_at DESC LIMIT 1`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	// Through the trusted proxy: the client is the right-most untrusted address.
	r := x.do("POST", "/v1/exchange", "", "Authorization", "Bearer "+x.token(nil), "Content-Type", "",
		remoteAddr, "10.1.2.3:5000", "X-Forwarded-For", "203.0.113.50, 198.51.100.7, 10.9.9.9")
	if r.status != 200 || ip() != "198.51.100.7" {
		t.Fatalf("via proxy: %d %s, client_ip %s", r.status, r.body, ip())
	}
	// Directly, from an untrusted peer: the header is ignored, and rotating
	// it does not escape that peer's bucket.
	r = x.do("POST", "/v1/exchange", "", "Authorization", "Bearer "+x.token(nil), "Content-Type", "",
		remoteAddr, "192.0.2.44:5000", "X-Forwarded-For", "198.51.100.1")
	if r.status != 200 || ip() != "192.0.2.44" {
		t.Fatalf("direct: %d %s, client_ip %s", r.status, r.body, ip())
	}
	r = x.do("POST", "/v1/exchange", "", "Authorization", "Bearer "+x.token(nil), "Content-Type", "",
		remoteAddr, "192.0.2.44:5001", "X-Forwarded-For", "198.51.100.2")
	x.wantError(r, 429, "rate_limited", "")
	// The forged addresses were not charged: 198.51.100.1 behind the proxy
	// still has its budget.
	r = x.do("POST", "/v1/exchange", "", "Authorization", "Bearer "+x.token(nil), "Content-Type", "",
		remoteAddr, "10.1.2.3:5000", "X-Forwarded-For", "198.51.100.1")
	if r.status != 200 {
		t.Fatalf("victim locked out: %d %s", r.status, r.body)
	}
}

// TestAuditMode: an audit-mode mapping never issues; every exchange of its
// issuer records what it would have decided, beside the real outcome.
func TestAuditMode(t *testing.T) {
	x := newExchangeEnv(t)
	x.mapping("shadow-tags", `"repository": "acme/web", "ref": "refs/tags/*"`, `"mode": "audit"`)
	x.mapping("shadow-org", `"repository": "acme/*", "ref": "refs/heads/main"`, `"mode": "audit"`)
	// "web" (enforce) issues; the two audit mappings are evaluated too.
	if r := x.exchange(x.token(nil), ""); r.status != 200 {
		t.Fatalf("exchange: %d %s", r.status, r.body)
	}
	rows, err := x.pool.Query(context.Background(),
		`SELECT mapping, outcome, coalesce(error_code, '') FROM audit.issuances ORDER BY mapping`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var m, o, c string
		if err := rows.Scan(&m, &o, &c); err != nil {
			t.Fatal(err)
		}
		got = append(got, m+":"+o+":"+c)
	}
	want := []string{"shadow-org:would_issue:", "shadow-tags:would_deny:ref", "web:issued:"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("ledger %v, want %v", got, want)
	}
	// Naming an audit-mode mapping issues nothing.
	e := x.wantError(x.exchange(x.token(nil), `{"mapping": "shadow-org"}`), 403, "no_matching_mapping", "")
	if !strings.Contains(e.Message, "audit mode") {
		t.Errorf("message %q", e.Message)
	}
	if n := sts.CallCount(); n != 1 {
		t.Fatalf("STS called %d times, want 1", n)
	}
	// would_issue rows do not count towards the quota of the real mapping.
	for range 2 {
		if r := x.exchange(x.token(nil), ""); r.status != 200 {
			t.Fatalf("exchange under quota: %d %s", r.status, r.body)
		}
	}
}

// TestIssuerRateLimited: verified exchanges are limited per issuer,
// whichever client sends them; the refusal is recorded; forged tokens do
// not spend the issuer's budget; another issuer is unaffected.
func TestIssuerRateLimited(t *testing.T) {
	x := newExchangeEnv(t, func(o *bridge.Options) { o.IssuerRateLimit, o.IssuerRateBurst = 0.001, 2 })
	other := oidctest.New(t)
	x.must(201, "POST", "/v1/admin/issuers", fmt.Sprintf(`{"name": "other", "url": %q, "audiences": [%q], "kind": "github"}`,
		other.URL(), oidctest.DefaultAudience))
	x.must(201, "POST", "/v1/admin/mappings", `{"name": "other-web", "issuer": "other", "conditions": {"repository": "acme/web"},
		"provider": "aws", "target": {"role_arn": "arn:aws:iam::123456789012:role/other", "region": "eu-west-1"}}`)
	send := func(tok, client string) response {
		return x.do("POST", "/v1/exchange", "", "Authorization", "Bearer "+tok, "Content-Type", "", remoteAddr, client)
	}
	// Forged tokens naming the issuer: 401, the budget untouched.
	for i := range 5 {
		x.wantError(send(x.token(nil, oidctest.WithUnpublishedKey()), fmt.Sprintf("198.51.100.%d:1", i+1)), 401, "invalid_token", "")
	}
	for i := range 2 {
		if r := send(x.token(nil), fmt.Sprintf("203.0.113.%d:1", i+1)); r.status != 200 {
			t.Fatalf("exchange %d: %d %s", i, r.status, r.body)
		}
	}
	r := send(x.token(nil), "203.0.113.99:1")
	e := x.wantError(r, 429, "rate_limited", "")
	if e.IssuanceID == "" || r.header.Get("Retry-After") == "" {
		t.Fatalf("issuer limit: issuance %q, Retry-After %q", e.IssuanceID, r.header.Get("Retry-After"))
	}
	if rows := x.rows(); rows[len(rows)-1] != "denied/rate_limited" {
		t.Fatalf("ledger %v", rows)
	}
	if r := send(other.Mint(t, other.GitHubClaims(nil)), "203.0.113.99:1"); r.status != 200 {
		t.Fatalf("another issuer: %d %s", r.status, r.body)
	}
}

// TestCircuitBreaker: a cloud that keeps failing opens its provider's
// circuit, so further exchanges fail fast without calling it (and without
// spending the token); after the cooldown one probe closes it again.
// Refusals are answers, and never trip it.
func TestCircuitBreaker(t *testing.T) {
	x := newExchangeEnv(t, func(o *bridge.Options) { o.BreakerFailures, o.BreakerCooldown = 3, 300*time.Millisecond })
	open := func() string {
		for _, line := range strings.Split(string(x.do("GET", "/metrics", "", "Authorization", "").body), "\n") {
			if strings.HasPrefix(line, `oidc_bridge_provider_circuit_open{provider="aws"}`) {
				return strings.Fields(line)[1]
			}
		}
		return "absent"
	}
	// Refusals: five in a row, the circuit stays closed.
	sts.Refuse("AccessDenied")
	for range 5 {
		x.wantError(x.exchange(x.token(nil), ""), 502, "provider_error", "")
	}
	if got := open(); got != "0" || sts.CallCount() != 5 {
		t.Fatalf("after refusals: circuit %s, STS calls %d", got, sts.CallCount())
	}
	// A failing cloud: three failed mints open the circuit.
	sts.Reset()
	sts.Fail(1000, 503)
	for range 3 {
		x.wantError(x.exchange(x.token(nil), ""), 502, "provider_error", "")
	}
	calls := sts.CallCount()
	if got := open(); got != "1" {
		t.Fatalf("circuit after 3 failures: %s", got)
	}
	tok := x.token(nil)
	r := x.exchange(tok, "")
	e := x.wantError(r, 502, "provider_error", "")
	// Retry-After is what remains of the cooldown (under 300 ms here,
	// rounded up to a whole second), not a fixed wait.
	if !strings.Contains(e.Message, "CircuitOpen") || r.header.Get("Retry-After") != "1" || sts.CallCount() != calls {
		t.Fatalf("open circuit: %q, Retry-After %q, STS calls %d -> %d", e.Message, r.header.Get("Retry-After"), calls, sts.CallCount())
	}
	// After the cooldown the cloud is back: the probe succeeds, and the
	// token refused by the open circuit was not spent.
	sts.Reset()
	time.Sleep(350 * time.Millisecond)
	if r := x.exchange(tok, ""); r.status != 200 {
		t.Fatalf("after the cooldown: %d %s", r.status, r.body)
	}
	if got := open(); got != "0" {
		t.Fatalf("circuit after recovery: %s", got)
	}
}

// TestIssuerOwnerRateLimited: verified exchanges are limited per issuer and
// repository owner, so one owner flooding from many addresses is refused
// (429, Retry-After, recorded) while another owner of the same issuer still
// exchanges; the issuer's ceiling still holds across owners, and a refusal
// by the owner's bucket does not spend the ceiling.
func TestIssuerOwnerRateLimited(t *testing.T) {
	x := newExchangeEnv(t, func(o *bridge.Options) {
		o.IssuerOwnerRateLimit, o.IssuerOwnerRateBurst = 0.001, 2
		o.IssuerRateLimit, o.IssuerRateBurst = 0.001, 5
	})
	x.mapping("fair", `"repository": ["acme/web", "beta/app", "gamma/app", "delta/app"]`, "")
	owner := func(name, id string) string {
		return x.token(map[string]any{"repository": name + "/app", "repository_owner": name, "repository_owner_id": id})
	}
	send := func(tok, client string) response {
		return x.do("POST", "/v1/exchange", `{"mapping": "fair"}`, "Authorization", "Bearer "+tok, remoteAddr, client)
	}
	acme := func() string { return x.token(nil) } // acme/web, owner id of GitHubClaims
	for i := range 2 {
		if r := send(acme(), fmt.Sprintf("203.0.113.%d:1", i+1)); r.status != 200 {
			t.Fatalf("acme %d: %d %s", i, r.status, r.body)
		}
	}
	// acme floods from twenty addresses: each refused.
	for i := range 20 {
		r := send(acme(), fmt.Sprintf("198.51.100.%d:1", i+1))
		e := x.wantError(r, 429, api.CodeRateLimited, "")
		if e.IssuanceID == "" || r.header.Get("Retry-After") == "" || !strings.Contains(e.Message, "owner") {
			t.Fatalf("owner limit: %+v, Retry-After %q", e, r.header.Get("Retry-After"))
		}
	}
	if rows := x.rows(); rows[len(rows)-1] != "denied/rate_limited" {
		t.Fatalf("ledger %v", rows)
	}
	// Another owner is not starved.
	for i := range 2 {
		if r := send(owner("beta", "5001"), "203.0.113.50:1"); r.status != 200 {
			t.Fatalf("beta %d starved: %d %s", i, r.status, r.body)
		}
	}
	// The issuer's ceiling (5) holds across owners.
	if r := send(owner("gamma", "5002"), "203.0.113.51:1"); r.status != 200 {
		t.Fatalf("gamma: %d %s", r.status, r.body)
	}
	r := send(owner("delta", "5003"), "203.0.113.52:1")
	e := x.wantError(r, 429, api.CodeRateLimited, "")
	if !strings.Contains(e.Message, "issuer") {
		t.Fatalf("ceiling: %+v", e)
	}
	if n := sts.CallCount(); n != 5 {
		t.Fatalf("STS called %d times, want 5", n)
	}
}

// TestDeniedRowNamesRequestedMapping: a refused request that named a
// mapping keeps that name in the ledger (requested_mapping, always; mapping,
// provider and target too when the token's issuer has that mapping), so an
// auditor sees what was asked for; a bad name is recorded cleaned.
func TestDeniedRowNamesRequestedMapping(t *testing.T) {
	x := newExchangeEnv(t)
	x.mapping("shadow", `"repository": "acme/web"`, `"mode": "audit"`)
	type row struct {
		Outcome, Code                string
		Mapping, Requested, Provider *string
		Role                         *string
	}
	last := func() row {
		t.Helper()
		var r row
		if err := x.pool.QueryRow(context.Background(), `SELECT outcome, coalesce(error_code, ''), mapping,
			requested_mapping, provider, target->>'role_arn' FROM audit.issuances
			WHERE outcome NOT LIKE 'would_%' ORDER BY requested_at DESC, id DESC LIMIT 1`).
			Scan(&r.Outcome, &r.Code, &r.Mapping, &r.Requested, &r.Provider, &r.Role); err != nil {
			t.Fatal(err)
		}
		return r
	}
	s := func(v string) *string { return &v }
	role := func(name string) *string { return s("arn:aws:iam::123456789012:role/" + name) }
	tests := []struct {
		name, body string
		status     int
		want       row
	}{
		{"named mapping refuses the token", `{"mapping": "tags"}`, 403,
			row{"denied", "no_matching_mapping", s("tags"), s("tags"), s("aws"), role("tags")}},
		{"named mapping does not exist", `{"mapping": "web-prod"}`, 403,
			row{"denied", "no_matching_mapping", nil, s("web-prod"), nil, nil}},
		{"named mapping of another provider", `{"mapping": "web", "provider": "gcp"}`, 403,
			row{"denied", "no_matching_mapping", nil, s("web"), nil, nil}},
		{"named mapping in audit mode", `{"mapping": "shadow"}`, 403,
			row{"denied", "no_matching_mapping", s("shadow"), s("shadow"), s("aws"), role("shadow")}},
		{"not a mapping name", `{"mapping": "Web\u0000; DROP"}`, 400,
			row{"denied", "invalid_request", nil, s("Web\uFFFD; DROP"), nil, nil}},
		{"named none, none admits", `{"provider": "gcp"}`, 403,
			row{"denied", "no_matching_mapping", nil, nil, nil, nil}},
		{"named and issued", `{"mapping": "web"}`, 200,
			row{"issued", "", s("web"), s("web"), s("aws"), role("web")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sts.Reset()
			r := x.exchange(x.token(nil), tt.body)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if diff := cmp.Diff(tt.want, last()); diff != "" {
				t.Errorf("ledger row (-want +got):\n%s", diff)
			}
		})
	}
	// RFC 8693 names the mapping by audience: the same record.
	form := url.Values{"grant_type": {grantTE}, "subject_token": {x.token(nil)}, "subject_token_type": {typeJWT},
		"audience": {"no-such-mapping"}}
	wantOAuthError(t, x.tokenExchange(form), 400, "invalid_target", "no_matching_mapping")
	if diff := cmp.Diff(row{"denied", "no_matching_mapping", nil, s("no-such-mapping"), nil, nil}, last()); diff != "" {
		t.Errorf("token exchange's ledger row (-want +got):\n%s", diff)
	}
}
