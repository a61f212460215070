package ledger_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/oidc-bridge/oidc-bridge/ledger"
)

// TestIndeterminate: a mint without a clear answer turns the row unknown
// (indeterminate) at once. Unlike Fail it keeps the token spent and keeps
// counting against the quotas, and the sweeper leaves the row alone.
func TestIndeterminate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, pool := newLedger(t)
	c := claims()
	a := attempt(c)
	a.PerHour = 1
	res, err := l.Reserve(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Indeterminate(ctx, res); err != nil {
		t.Fatal(err)
	}
	var outcome, code string
	var done, expires bool
	if err := pool.QueryRow(ctx, `SELECT outcome, error_code, completed_at IS NOT NULL, expires_at = $2
		FROM issuances WHERE id = $1`, res.ID, res.ExpiresAt).Scan(&outcome, &code, &done, &expires); err != nil {
		t.Fatal(err)
	}
	if outcome != "unknown" || code != ledger.CodeIndeterminate || !done || !expires {
		t.Errorf("row: %s/%s completed %v, expires_at kept %v", outcome, code, done, expires)
	}
	// Settled once: no second settlement of any kind.
	if err := l.Indeterminate(ctx, res); !errors.Is(err, ledger.ErrNotPending) {
		t.Errorf("second Indeterminate: %v; want ErrNotPending", err)
	}
	if err := l.Fail(ctx, res, "provider_error"); !errors.Is(err, ledger.ErrNotPending) {
		t.Errorf("Fail after Indeterminate: %v; want ErrNotPending", err)
	}
	// The token stays spent: the cloud may have issued for it.
	if _, err := l.Reserve(ctx, a); !errors.Is(err, ledger.ErrReplayed) {
		t.Errorf("same token again: %v; want ErrReplayed", err)
	}
	// It counts against the quota like an issued credential.
	b := attempt(claims())
	b.PerHour = 1
	if _, err := l.Reserve(ctx, b); !errors.Is(err, ledger.ErrQuotaExceeded) {
		t.Errorf("another token under per_hour 1: %v; want ErrQuotaExceeded", err)
	}
	// The sweeper has nothing to do with it, even once it would have expired.
	if _, err := pool.Exec(ctx, `UPDATE issuances SET expires_at = now() - interval '1 second' WHERE id = $1`, res.ID); err != nil {
		t.Fatal(err)
	}
	if n, err := l.Sweep(ctx); err != nil || n != 0 {
		t.Errorf("sweep: %d, %v; want 0", n, err)
	}
	want := map[string]int{"unknown/indeterminate": 1, "denied/token_replayed": 1, "denied/quota_exceeded": 1}
	if diff := cmp.Diff(want, outcomes(t, pool)); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
}
