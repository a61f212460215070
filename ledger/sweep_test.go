package ledger_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/oidc-bridge/oidc-bridge/ledger"
)

func TestSweep(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, pool := newLedger(t)

	// Pending rows whose credential could have expired by now: reserved 20
	// minutes ago for 15 minutes.
	var stale []ledger.Reservation
	for range 3 {
		a := attempt(claims())
		a.RequestedAt = time.Now().Add(-20 * time.Minute)
		res, err := l.Reserve(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		stale = append(stale, res)
	}
	// A fresh pending row, and settled rows of the same age as the stale.
	fresh, err := l.Reserve(ctx, attempt(claims()))
	if err != nil {
		t.Fatal(err)
	}
	for _, settle := range []func(ledger.Reservation) error{
		func(r ledger.Reservation) error { return l.Complete(ctx, r, "ASIA1", time.Now().Add(-5*time.Minute)) },
		func(r ledger.Reservation) error { return l.Fail(ctx, r, "provider_error") },
	} {
		a := attempt(claims())
		a.RequestedAt = time.Now().Add(-20 * time.Minute)
		res, err := l.Reserve(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		if err := settle(res); err != nil {
			t.Fatal(err)
		}
	}

	// Several replicas sweep at once: each row is marked exactly once.
	var (
		mu     sync.Mutex
		marked int
		wg     sync.WaitGroup
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := l.Sweep(ctx)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			marked += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	if marked != 3 {
		t.Errorf("sweeps marked %d rows in all, want 3", marked)
	}
	if diff := cmp.Diff(map[string]int{"unknown/abandoned": 3, "pending": 1, "issued": 1, "failed/provider_error": 1},
		outcomes(t, pool)); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM issuances WHERE outcome = 'unknown' AND completed_at IS NOT NULL`).Scan(&n); err != nil || n != 3 {
		t.Errorf("unknown rows with completed_at: %d, %v", n, err)
	}
	// Too late: the row is no longer pending.
	if err := l.Complete(ctx, stale[0], "ASIA2", time.Now()); !errors.Is(err, ledger.ErrNotPending) {
		t.Errorf("Complete of a swept reservation: %v", err)
	}
	if err := l.Complete(ctx, fresh, "ASIA3", time.Now().Add(time.Hour)); err != nil {
		t.Errorf("Complete of the fresh reservation: %v", err)
	}
	// An unknown row keeps counting in the quota and keeps its token spent.
	if n, err := l.Sweep(ctx); err != nil || n != 0 {
		t.Errorf("second Sweep: %d, %v", n, err)
	}
}

func TestSweepPrunesReplayGuard(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, pool := newLedger(t)
	for _, exp := range []time.Duration{-3 * time.Hour, -61 * time.Minute, -59 * time.Minute, 5 * time.Minute} {
		c := claims()
		c.Expiry = time.Now().Add(exp)
		if _, err := l.Reserve(ctx, attempt(c)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM replay_guard WHERE mapping_id = 0`).Scan(&n); err != nil || n != 2 {
		t.Errorf("replay_guard after Sweep: %d rows, %v; want the 2 of tokens expired less than an hour ago", n, err)
	}
}

// Sweep reads the partial index of pending rows, not the ledger.
func TestSweepUsesPendingIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, pool := newLedger(t)
	if _, err := pool.Exec(ctx, `
		INSERT INTO issuances (id, requested_at, completed_at, outcome, issuer)
		SELECT gen_random_uuid(), now() - g * interval '1 second', now(), 'issued', 'x'
		FROM generate_series(1, 20000) g`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `ANALYZE issuances`); err != nil {
		t.Fatal(err)
	}
	plan := explain(t, pool, `SELECT id, requested_at FROM issuances
		WHERE outcome = 'pending' AND expires_at < clock_timestamp() LIMIT 1000 FOR UPDATE SKIP LOCKED`)
	if !strings.Contains(plan, "issuances_pending") {
		t.Errorf("Sweep's scan does not use the pending index:\n%s", plan)
	}
}
