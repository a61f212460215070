package ledger_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/oidc-bridge/oidc-bridge/ledger"
	"github.com/oidc-bridge/oidc-bridge/test/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func TestEnsurePartitions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	l := ledger.New(pool)
	months := func() map[string]bool {
		t.Helper()
		rows, err := pool.Query(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
			WHERE i.inhparent = 'issuances'::regclass`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string]bool{}
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
			out[n] = true
		}
		return out
	}
	now := time.Now().UTC()
	name := func(ahead int) string {
		m := time.Date(now.Year(), now.Month()+time.Month(ahead), 1, 0, 0, 0, 0, time.UTC)
		return "issuances_" + m.Format("2006_01")
	}
	got := months()
	for i := 0; i <= 3; i++ {
		if !got[name(i)] {
			t.Errorf("migration did not create %s (have %v)", name(i), got)
		}
	}
	if !got["issuances_default"] {
		t.Error("no default partition")
	}
	for range 2 { // idempotent
		if err := l.EnsurePartitions(ctx, 6); err != nil {
			t.Fatal(err)
		}
	}
	got = months()
	if !got[name(6)] || len(got) != 8 {
		t.Errorf("after EnsurePartitions(6): %v", got)
	}
	// A row of now lands in its month, not in the default partition.
	if _, err := pool.Exec(ctx, `INSERT INTO issuances (id, requested_at, outcome, issuer) VALUES (gen_random_uuid(), now(), 'pending', 'x')`); err != nil {
		t.Fatal(err)
	}
	var part string
	if err := pool.QueryRow(ctx, `SELECT tableoid::regclass::text FROM issuances`).Scan(&part); err != nil {
		t.Fatal(err)
	}
	if part != name(0) {
		t.Errorf("row stored in %s, want %s", part, name(0))
	}
}
