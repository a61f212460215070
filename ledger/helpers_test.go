package ledger_test

import (
	"context"
	"encoding/json"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/oidc-bridge/oidc-bridge/identity"
	"github.com/oidc-bridge/oidc-bridge/ledger"
	"github.com/oidc-bridge/oidc-bridge/test/pgtest"
)

const ghIssuer = "https://token.actions.githubusercontent.com"

var jtiSeq atomic.Int64

// newJTI returns a jti no other call returns.
func newJTI() string { return "jti-" + strconv.FormatInt(jtiSeq.Add(1), 10) }

// claims returns the verified claims of a GitHub Actions deploy job with a
// fresh jti.
func claims() *identity.Claims {
	now := time.Now()
	return &identity.Claims{
		Issuer:       ghIssuer,
		IssuerName:   "github",
		Kind:         identity.KindGitHub,
		Subject:      "repo:acme/web:environment:production",
		Audience:     "https://bridge.example.com",
		JTI:          newJTI(),
		Repository:   "acme/web",
		RepositoryID: "1339936803",
		Ref:          "refs/heads/main",
		RefType:      "branch",
		SHA:          "4c1b2a3d5e6f708192a3b4c5d6e7f8091a2b3c4d",
		Environment:  "production",
		EventName:    "push",
		WorkflowRef:  "acme/web/.github/workflows/deploy.yml@refs/heads/main",
		Actor:        "octocat",
		RunID:        "12345678901",
		RunAttempt:   "1",
		JobID:        "31822455555",
		IssuedAt:     now.Add(-time.Minute),
		NotBefore:    now.Add(-time.Minute),
		Expiry:       now.Add(4 * time.Minute),
		Raw:          map[string]any{"runner_environment": "github-hosted"},
	}
}

// attempt returns an attempt of c on mapping 1 (web-prod-deploy) without
// quotas.
func attempt(c *identity.Claims) ledger.Attempt {
	return ledger.Attempt{
		Claims:    c,
		ClientIP:  netip.MustParseAddr("203.0.113.7"),
		UserAgent: "oidc-bridge-action/1.0",
		MappingID: 1,
		Mapping:   "web-prod-deploy",
		Provider:  "aws",
		Target:    json.RawMessage(`{"role_arn": "arn:aws:iam::123456789012:role/deploy", "region": "eu-west-1"}`),
		Duration:  15 * time.Minute,
	}
}

// newLedger returns a ledger on a fresh database whose catalog holds the
// enabled issuer "seed" (replay_scope token) and its enabled mappings 1 to
// seedMappings (named seed-<id>): Reserve rechecks that the mapping and its
// issuer exist and are enabled. Later mappings get ids above 1000.
//
// The ledger runs as the service's runtime role (pgtest.RuntimeLogin: no
// ownership, history append-only); the pool returned is the schema owner's,
// for fixtures and checks.
func newLedger(t testing.TB) (*ledger.Ledger, *pgxpool.Pool) {
	t.Helper()
	runtime, owner := pgtest.NewRuntimePool(t)
	seedCatalog(t, owner)
	return ledger.New(runtime), owner
}

// seedCatalog writes newLedger's issuer and mappings.
func seedCatalog(t testing.TB, pool *pgxpool.Pool) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), `
		INSERT INTO issuers (name, url, kind, audiences) VALUES ('seed', 'https://seed.example', 'generic', '{x}');
		INSERT INTO mappings (id, name, issuer_id, conditions, provider, target, max_duration_seconds)
		OVERRIDING SYSTEM VALUE
		SELECT g, 'seed-' || g, (SELECT id FROM issuers WHERE name = 'seed'), '{}', 'aws', '{}', 3600
		FROM generate_series(1, `+strconv.Itoa(seedMappings)+`) g;
		SELECT setval(pg_get_serial_sequence('mappings', 'id'), 1000);`); err != nil {
		t.Fatal(err)
	}
}

const seedMappings = 200

// outcomes counts the ledger's rows by outcome and error code.
func outcomes(t testing.TB, pool *pgxpool.Pool) map[string]int {
	t.Helper()
	rows, err := pool.Query(context.Background(),
		`SELECT outcome || coalesce('/' || error_code, ''), count(*) FROM issuances GROUP BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			t.Fatal(err)
		}
		out[k] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// backdate inserts a row of mapping mappingID as the ledger would have
// written it ago before now.
func backdate(t testing.TB, pool *pgxpool.Pool, ago time.Duration, outcome, repo string, mappingID int64, run, runAttempt, job string) {
	t.Helper()
	var completed *time.Time
	at := time.Now().Add(-ago)
	if outcome != "pending" {
		completed = &at
	}
	nz := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	_, err := pool.Exec(context.Background(), `
		INSERT INTO issuances (id, requested_at, completed_at, outcome, issuer, repository, run_id, run_attempt,
			job_id, token_jti, mapping_id, mapping, provider, expires_at)
		VALUES (gen_random_uuid(), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'm', 'aws', $1::timestamptz + interval '15 minutes')`,
		at, completed, outcome, ghIssuer, nz(repo), nz(run), nz(runAttempt), nz(job), newJTI(), mappingID)
	if err != nil {
		t.Fatal(err)
	}
}

// result is what one concurrent Reserve returned.
type result struct {
	res ledger.Reservation
	err error
}

// concurrently runs n calls of f at once and returns their results.
func concurrently(n int, f func(i int) (ledger.Reservation, error)) []result {
	out := make([]result, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r, err := f(i)
			out[i] = result{r, err}
		}()
	}
	close(start)
	wg.Wait()
	return out
}
