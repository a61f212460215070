package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/oidc-bridge/oidc-bridge/internal/database"
	"github.com/oidc-bridge/oidc-bridge/ledger"
	"github.com/oidc-bridge/oidc-bridge/test/pgtest"
)

// quotaMapping creates an enabled mapping of the seed issuer with a per_hour
// quota in the database, so that its rows are counted in quota_minutes from
// the start (migration 00016), and returns its id.
func quotaMapping(t testing.TB, pool *pgxpool.Pool, perHour int) int64 {
	t.Helper()
	var id int64
	if err := pool.QueryRow(context.Background(), `
		INSERT INTO mappings (name, issuer_id, conditions, provider, target, max_duration_seconds, quota_per_hour)
		SELECT 'quota-' || gen_random_uuid(), id, '{}', 'aws', '{}', 3600, $1 FROM issuers WHERE name = 'seed'
		RETURNING id`, perHour).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// newLedgerOn opens a second ledger (a second replica) as the runtime role
// on the database of owner.
func newLedgerOn(t testing.TB, owner *pgxpool.Pool) (*ledger.Ledger, *pgxpool.Pool) {
	t.Helper()
	pool, err := database.Open(context.Background(), pgtest.RuntimeURL(t, owner.Config().ConnString()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return ledger.New(pool), pool
}

// bucketed is the sum of a mapping's per-minute buckets.
func bucketed(t testing.TB, pool *pgxpool.Pool, mappingID int64) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(),
		`SELECT coalesce(sum(n), 0) FROM quota_minutes WHERE mapping_id = $1`, mappingID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// With the quota in the database the count reads the buckets, and stays
// exact under concurrency across two pools (two replicas).
func TestQuotaCountersConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, pool := newLedger(t)
	l2, _ := newLedgerOn(t, pool)
	id := quotaMapping(t, pool, 10)
	results := concurrently(60, func(i int) (ledger.Reservation, error) {
		a := attempt(claims())
		a.MappingID, a.PerHour = id, 10
		if i%2 == 1 {
			return l2.Reserve(ctx, a)
		}
		return l.Reserve(ctx, a)
	})
	ok, denied := tally(t, results, ledger.QuotaPerHour, 10, time.Hour)
	if ok != 10 || denied != 50 {
		t.Errorf("%d reserved, %d denied; want 10, 50", ok, denied)
	}
	if n := bucketed(t, pool, id); n != 10 {
		t.Errorf("buckets hold %d, want 10", n)
	}
}

// The buckets are what the count reads: a bucket that says the hour is
// spent refuses, whatever issuances holds. (Without the buckets' read, the
// count of the two rows would admit.)
func TestQuotaCountersAreRead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, pool := newLedger(t)
	id := quotaMapping(t, pool, 5)
	for range 2 {
		a := attempt(claims())
		a.MappingID, a.PerHour = id, 5
		if _, err := l.Reserve(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pool.Exec(ctx, `UPDATE quota_minutes SET n = n + 3 WHERE mapping_id = $1`, id); err != nil {
		t.Fatal(err)
	}
	a := attempt(claims())
	a.MappingID, a.PerHour = id, 5
	if _, err := l.Reserve(ctx, a); !errors.Is(err, ledger.ErrQuotaExceeded) {
		t.Errorf("with the buckets at the limit: %v; want ErrQuotaExceeded", err)
	}
}

// The window's edges are exact: a row 59.5 minutes old counts, one 60.5
// minutes old (in the same or the previous minute) does not; the oldest
// counted gives Retry-After. Fail gives its row's place back.
func TestQuotaCountersWindowAndFail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, pool := newLedger(t)
	id := quotaMapping(t, pool, 3)
	backdate(t, pool, 60*time.Minute+30*time.Second, "issued", "acme/web", id, "r", "1", "j")
	backdate(t, pool, 61*time.Minute, "issued", "Acme/Web", id, "r", "1", "j")
	backdate(t, pool, 59*time.Minute+30*time.Second, "issued", "ACME/web", id, "r", "1", "j")
	backdate(t, pool, 5*time.Minute, "failed", "acme/web", id, "r", "1", "j")
	backdate(t, pool, 5*time.Minute, "issued", "acme/api", id, "r", "1", "j")
	if n := bucketed(t, pool, id); n != 4 {
		t.Errorf("buckets hold %d, want the 4 counted rows", n)
	}
	a := attempt(claims())
	a.MappingID, a.PerHour = id, 3
	res, err := l.Reserve(ctx, a)
	if err != nil {
		t.Fatalf("second in the hour: %v", err)
	}
	a = attempt(claims())
	a.MappingID, a.PerHour = id, 3
	if _, err := l.Reserve(ctx, a); err != nil {
		t.Fatalf("third in the hour: %v", err)
	}
	a = attempt(claims())
	a.MappingID, a.PerHour = id, 3
	_, err = l.Reserve(ctx, a)
	var qe *ledger.QuotaError
	if !errors.As(err, &qe) || qe.RetryAfter > 31*time.Second {
		t.Fatalf("fourth in the hour: %v; want a QuotaError with Retry-After within 30 s", err)
	}
	if err := l.Fail(ctx, res, "provider_error"); err != nil {
		t.Fatal(err)
	}
	a = attempt(claims())
	a.MappingID, a.PerHour = id, 3
	if _, err := l.Reserve(ctx, a); err != nil {
		t.Errorf("after a Fail: %v", err)
	}
}

// A mapping that gains a quota counts its earlier rows from issuances
// (they are in no bucket) until its hour is all in buckets; losing the
// quota stops the buckets.
func TestQuotaCountersGainedQuota(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, pool := newLedger(t)
	for range 3 {
		if _, err := l.Reserve(ctx, attempt(claims())); err != nil { // mapping 1, no quota
			t.Fatal(err)
		}
	}
	if _, err := pool.Exec(ctx, `UPDATE mappings SET quota_per_hour = 4 WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	var since time.Time
	if err := pool.QueryRow(ctx, `SELECT since FROM quota_counting WHERE mapping_id = 1`).Scan(&since); err != nil ||
		since.Before(time.Now().Add(time.Hour)) {
		t.Fatalf("counting start %v, %v; want more than an hour ahead", since, err)
	}
	a := attempt(claims())
	a.PerHour = 4
	if _, err := l.Reserve(ctx, a); err != nil {
		t.Fatalf("fourth: %v", err)
	}
	a = attempt(claims())
	a.PerHour = 4
	if _, err := l.Reserve(ctx, a); !errors.Is(err, ledger.ErrQuotaExceeded) {
		t.Errorf("fifth, three of them before the quota: %v; want ErrQuotaExceeded", err)
	}
	if _, err := pool.Exec(ctx, `UPDATE mappings SET quota_per_hour = NULL WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM quota_counting WHERE mapping_id = 1`).Scan(&n); err != nil || n != 0 {
		t.Errorf("counting start kept after the quota went: %d, %v", n, err)
	}
}

// Old buckets, and hourly counters older than HourRetention, are pruned
// by Sweep.
func TestSweepPrunesQuotaBuckets(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, pool := newLedger(t)
	id := quotaMapping(t, pool, 3)
	backdate(t, pool, 3*time.Hour, "issued", "acme/web", id, "r", "1", "j")
	backdate(t, pool, 90*time.Minute, "issued", "acme/web", id, "r", "1", "j")
	backdate(t, pool, ledger.HourRetention+2*time.Hour, "issued", "acme/web", id, "r", "1", "j")
	if _, err := l.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if n := bucketed(t, pool, id); n != 1 {
		t.Errorf("after Sweep the buckets hold %d, want the 90-minute-old one", n)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT coalesce(sum(n), 0) FROM mapping_hours WHERE mapping_id = $1`, id).Scan(&n); err != nil || n != 2 {
		t.Errorf("after Sweep the hourly counters hold %d, %v; want the two within HourRetention", n, err)
	}
}

// BenchmarkQuota: one Reserve of a mapping whose per_hour quota is spent
// (so the whole hour is counted), for quotas of 10 and 10,000 issuances
// spread over the last 59.5 minutes (so the partial minute at the window's
// edge holds its share of them). "buckets" counts with the per-minute
// buckets (the quota in the database); "rows" is the former count, from
// issuances alone (a mapping without the quota in the database: its
// replica's catalog is ahead of it), for comparison. Each runs in a
// database of its own: what one leaves (rows, dead replay guard entries)
// does not weigh on the next, nor does a repetition (-count) on itself.
func BenchmarkQuota(b *testing.B) {
	ctx := context.Background()
	for _, size := range []int{10, 10_000} {
		for _, mode := range []string{"buckets", "rows"} {
			b.Run(fmt.Sprintf("%s/%d", mode, size), func(b *testing.B) {
				l, pool := newLedger(b)
				id := quotaMapping(b, pool, size)
				if mode == "rows" {
					if _, err := pool.Exec(ctx, `DELETE FROM quota_counting WHERE mapping_id = $1`, id); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := pool.Exec(ctx, `
					INSERT INTO issuances (id, requested_at, completed_at, outcome, issuer, repository, token_jti,
						mapping_id, mapping, provider, expires_at, credential_id)
					SELECT gen_random_uuid(), now() - g * interval '3570 seconds' / $2, now(), 'issued', $3,
						'acme/web', 'bench-' || ($1::bigint)::text || '-' || g, $1::bigint, 'm', 'aws', now() + interval '1 hour', 'ASIA'
					FROM generate_series(1, $2) g`, id, size, ghIssuer); err != nil {
					b.Fatal(err)
				}
				if _, err := pool.Exec(ctx, `VACUUM ANALYZE issuances, quota_minutes`); err != nil {
					b.Fatal(err)
				}
				for b.Loop() {
					a := attempt(claims())
					a.MappingID, a.PerHour = id, size
					if _, err := l.Reserve(ctx, a); !errors.Is(err, ledger.ErrQuotaExceeded) {
						b.Fatalf("Reserve: %v; want ErrQuotaExceeded", err)
					}
				}
			})
		}
	}
}
