package signing_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/oidc-bridge/oidc-bridge/internal/database"
	"github.com/oidc-bridge/oidc-bridge/signing"
	"github.com/oidc-bridge/oidc-bridge/test/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

const audience = "sts.amazonaws.com"

// clock is a fake clock shared by the replicas of a test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// testOptions are short periods that keep the tests' timelines readable.
func testOptions() signing.Options {
	return signing.Options{
		RotationPeriod:   2 * time.Hour,
		PublishLead:      10 * time.Minute,
		RetiredRetention: time.Hour,
	}
}

// env is one bridge deployment: a database, a KEK, a fake clock and an
// issuer URL serving the discovery document and JWKS of its first Manager.
type env struct {
	url  string
	pool *pgxpool.Pool
	// owner is the schema owner's pool, for checks the service's runtime
	// role may not make (the admin history: it may only INSERT there).
	owner *pgxpool.Pool
	kek   signing.KEK
	clock *clock
	opts  signing.Options
	srv   *httptest.Server
	m     *signing.Manager
	jwksN atomic.Int64 // JWKS requests served
}

func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvWith(t, testOptions())
}

func newEnvWith(t testing.TB, opts signing.Options) *env {
	t.Helper()
	// As the service's runtime role (migrations/00007_roles.sql).
	ownerURL := pgtest.NewDatabase(t)
	e := &env{url: pgtest.RuntimeURL(t, ownerURL), kek: newKEK(t), clock: newClock()}
	e.pool = e.openPool(t)
	owner, err := database.Open(context.Background(), ownerURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(owner.Close)
	e.owner = owner
	var served *signing.Manager
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{
			"issuer":                                e.srv.URL,
			"jwks_uri":                              e.srv.URL + "/.well-known/jwks.json",
			"id_token_signing_alg_values_supported": []string{signing.RS256, signing.ES256},
			"response_types_supported":              []string{"id_token"},
			"subject_types_supported":               []string{"public"},
		})
	})
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		e.jwksN.Add(1)
		set, err := served.JWKS(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, set)
	})
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	opts.Issuer = e.srv.URL + "/" // the Manager drops the slash
	opts.Now = e.clock.Now
	e.opts = opts
	e.m = e.manager(t, e.pool)
	served = e.m
	return e
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func newKEK(t testing.TB) signing.KEK {
	t.Helper()
	enc, err := signing.GenerateKEK()
	if err != nil {
		t.Fatal(err)
	}
	kek, err := signing.ParseKEK([]byte(enc + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return kek
}

// openPool opens another pool on the env's database: another replica.
func (e *env) openPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := database.Open(context.Background(), e.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// manager starts a Manager (a replica) on pool with the env's KEK, clock
// and options.
func (e *env) manager(t testing.TB, pool *pgxpool.Pool) *signing.Manager {
	t.Helper()
	m, err := signing.New(context.Background(), pool, e.kek, e.opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return m
}

// claims are what a provider would set, expiring in an hour by the fake
// clock.
func (e *env) claims() map[string]any {
	now := e.clock.Now()
	return map[string]any{
		"sub": "repo:acme/app:ref:refs/heads/main",
		"aud": audience,
		"exp": now.Add(time.Hour).Unix(),
		"jti": fmt.Sprint(now.UnixNano()),
	}
}

func sign(t testing.TB, m *signing.Manager, claims map[string]any, alg string) string {
	t.Helper()
	tok, err := m.Sign(context.Background(), claims, alg)
	if err != nil {
		t.Fatalf("Sign(%s): %v", alg, err)
	}
	return tok
}

// kidOf returns the kid header of a compact JWS.
func kidOf(t testing.TB, token string) string {
	t.Helper()
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		t.Fatalf("parse token: %v", err)
	}
	return jws.Signatures[0].Header.KeyID
}

func (e *env) oidcConfig() *oidc.Config {
	return &oidc.Config{
		ClientID:             audience,
		SupportedSigningAlgs: []string{signing.RS256, signing.ES256},
		Now:                  e.clock.Now,
	}
}

// verifyRemote verifies token as a relying party does: discovery, then the
// JWKS fetched from the issuer.
func (e *env) verifyRemote(t testing.TB, token string) *oidc.IDToken {
	t.Helper()
	ctx := context.Background()
	p, err := oidc.NewProvider(ctx, e.srv.URL)
	if err != nil {
		t.Fatalf("oidc.NewProvider: %v", err)
	}
	tok, err := p.Verifier(e.oidcConfig()).Verify(ctx, token)
	if err != nil {
		t.Fatalf("verify token (kid %s) against the issuer: %v", kidOf(t, token), err)
	}
	return tok
}

// cachedKeySet is a verifier's cached copy of a JWKS: it never refetches
// and matches keys by kid, as clouds do.
type cachedKeySet struct{ set jose.JSONWebKeySet }

func (c cachedKeySet) VerifySignature(_ context.Context, token string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		return nil, err
	}
	keys := c.set.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) == 0 {
		return nil, errors.New("kid not in the cached JWKS")
	}
	return jws.Verify(keys[0])
}

// verifyCached verifies token against a JWKS cached earlier.
func (e *env) verifyCached(set jose.JSONWebKeySet, token string) error {
	v := oidc.NewVerifier(e.srv.URL, cachedKeySet{set}, e.oidcConfig())
	_, err := v.Verify(context.Background(), token)
	return err
}

func jwks(t testing.TB, m *signing.Manager) jose.JSONWebKeySet {
	t.Helper()
	set, err := m.JWKS(context.Background())
	if err != nil {
		t.Fatalf("JWKS: %v", err)
	}
	return set
}

func kids(set jose.JSONWebKeySet) string {
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.KeyID)
	}
	return strings.Join(out, ",")
}

func published(set jose.JSONWebKeySet, kid string) bool { return len(set.Key(kid)) > 0 }

// stateOf maps alg → state → kid (retired: the newest).
func stateOf(t testing.TB, m *signing.Manager) map[string]map[string]string {
	t.Helper()
	keys, err := m.Keys(context.Background())
	if err != nil {
		t.Fatalf("Keys: %v", err)
	}
	out := map[string]map[string]string{}
	for _, k := range keys {
		if out[k.Alg] == nil {
			out[k.Alg] = map[string]string{}
		}
		if _, ok := out[k.Alg][k.State]; !ok {
			out[k.Alg][k.State] = k.KID
		}
	}
	return out
}

func keyInfo(t testing.TB, m *signing.Manager, kid string) (signing.KeyInfo, bool) {
	t.Helper()
	keys, err := m.Keys(context.Background())
	if err != nil {
		t.Fatalf("Keys: %v", err)
	}
	for _, k := range keys {
		if k.KID == kid {
			return k, true
		}
	}
	return signing.KeyInfo{}, false
}

func maintain(t testing.TB, m *signing.Manager) {
	t.Helper()
	if err := m.Maintain(context.Background()); err != nil {
		t.Fatalf("Maintain: %v", err)
	}
}

// countKeys counts rows by alg and state, straight from SQL.
func countKeys(ctx context.Context, pool *pgxpool.Pool) (map[string]int, error) {
	rows, err := pool.Query(ctx, "SELECT alg || '/' || state, count(*) FROM signing_keys GROUP BY 1")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return nil, err
		}
		out[k] = n
	}
	return out, rows.Err()
}
