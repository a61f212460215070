package ledger_test

import (
	"context"
	"testing"
	"time"
)

// Analyze, as the runtime role, analyzes the partitioned ledger (its own
// statistics and the cookbook's day-and-reason statistics appear) once per
// interval, whichever replica asks.
func TestAnalyze(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, owner := newLedger(t)
	l2, _ := newLedgerOn(t, owner)
	for i := range 30 {
		backdate(t, owner, time.Duration(i)*time.Hour, []string{"issued", "denied"}[i%2], "acme/web", 1, "r", "1", "j")
	}
	stats := func() (parent, dayReason bool) {
		t.Helper()
		if err := owner.QueryRow(ctx, `
			SELECT EXISTS (SELECT FROM pg_stats WHERE schemaname = 'public' AND tablename = 'issuances' AND inherited),
				EXISTS (SELECT FROM pg_statistic_ext s JOIN pg_statistic_ext_data d ON d.stxoid = s.oid
					WHERE s.stxname = 'issuances_day_reason' AND d.stxdndistinct IS NOT NULL)`).Scan(&parent, &dayReason); err != nil {
			t.Fatal(err)
		}
		return parent, dayReason
	}
	if p, d := stats(); p || d {
		t.Fatalf("before Analyze: parent statistics %v, day-and-reason %v", p, d)
	}
	ran, err := l.Analyze(ctx)
	if err != nil || !ran {
		t.Fatalf("first Analyze: %v, %v; want it to run", ran, err)
	}
	if p, d := stats(); !p || !d {
		t.Errorf("after Analyze: parent statistics %v, day-and-reason %v; want both", p, d)
	}
	if ran, err := l2.Analyze(ctx); err != nil || ran {
		t.Errorf("another replica right after: %v, %v; want it skipped", ran, err)
	}
	if _, err := owner.Exec(ctx, `UPDATE ledger_jobs SET last_run = now() - interval '24 hours' WHERE job = 'analyze'`); err != nil {
		t.Fatal(err)
	}
	if ran, err := l2.Analyze(ctx); err != nil || !ran {
		t.Errorf("a day later: %v, %v; want it to run", ran, err)
	}
}
