package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/oidc-bridge/oidc-bridge/ledger"
	"github.com/oidc-bridge/oidc-bridge/test/pgtest"
)

// partitions lists the partitions of issuances.
func partitions(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'issuances'::regclass ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestDropPartitionsBefore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// The ledger runs as the service's runtime role; pool is the owner's.
	runtime, pool := pgtest.NewRuntimePool(t)
	l := ledger.New(runtime)
	now := time.Now().UTC()
	month := func(delta int) time.Time {
		return time.Date(now.Year(), now.Month()+time.Month(delta), 1, 0, 0, 0, 0, time.UTC)
	}
	name := func(delta int) string { return "issuances_" + month(delta).Format("2006_01") }
	// Old months, as ledger_ensure_partitions made them when they were
	// current; -12 reaches past the cutoff (now - 12 months) and must stay.
	for _, d := range []int{-14, -13, -12} {
		if _, err := pool.Exec(ctx, fmt.Sprintf(`CREATE TABLE %s PARTITION OF issuances FOR VALUES FROM (%s) TO (%s)`,
			pgx.Identifier{name(d)}.Sanitize(), literal(month(d)), literal(month(d+1)))); err != nil {
			t.Fatal(err)
		}
	}
	insert := func(at time.Time) {
		t.Helper()
		if _, err := pool.Exec(ctx, `INSERT INTO issuances (id, requested_at, completed_at, outcome, issuer)
			VALUES (gen_random_uuid(), $1, $1, 'issued', 'x')`, at); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []int{-14, -13, -12, 0} {
		insert(month(d).Add(time.Hour))
	}
	insert(month(-12).Add(24*time.Hour*27 + time.Hour)) // late in the month that straddles the cutoff
	insert(month(-60))                                  // before any month: the default partition
	before := partitions(t, pool)

	cutoff := now.AddDate(0, -12, 0)
	dropped, err := l.DropPartitionsBefore(ctx, cutoff)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"public." + name(-14), "public." + name(-13)}; !slices.Equal(dropped, want) {
		t.Fatalf("dropped %v, want %v", dropped, want)
	}
	after := partitions(t, pool)
	want := slices.DeleteFunc(slices.Clone(before), func(s string) bool { return s == name(-14) || s == name(-13) })
	if !slices.Equal(after, want) {
		t.Fatalf("partitions %v, want %v", after, want)
	}
	for _, keep := range []string{"issuances_default", name(-12), name(0), name(1), name(3)} {
		if !slices.Contains(after, keep) {
			t.Errorf("%s dropped", keep)
		}
	}
	for _, gone := range []string{name(-14), name(-13)} {
		var reg *string
		if err := pool.QueryRow(ctx, `SELECT to_regclass($1)::text`, gone).Scan(&reg); err != nil || reg != nil {
			t.Errorf("%s still exists (%v, %v)", gone, reg, err)
		}
	}
	// The rows of the kept partitions survive; the dropped months' rows are gone.
	r, err := pool.Query(ctx, `SELECT tableoid::regclass::text, count(*) FROM issuances GROUP BY 1 ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for r.Next() {
		var p string
		var n int
		if err := r.Scan(&p, &n); err != nil {
			t.Fatal(err)
		}
		counts[p] = n
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if wantCounts := map[string]int{name(-12): 2, name(0): 1, "issuances_default": 1}; fmt.Sprint(counts) != fmt.Sprint(wantCounts) {
		t.Fatalf("rows per partition %v, want %v", counts, wantCounts)
	}

	// Idempotent.
	dropped, err = l.DropPartitionsBefore(ctx, cutoff)
	if err != nil || len(dropped) != 0 {
		t.Fatalf("second call dropped %v (%v)", dropped, err)
	}
	if got := partitions(t, pool); !slices.Equal(got, after) {
		t.Fatalf("second call changed partitions: %v, want %v", got, after)
	}
	// EnsurePartitions is unaffected.
	if err := l.EnsurePartitions(ctx, 3); err != nil {
		t.Fatal(err)
	}
}

func TestDropPartitionsBeforeRefusesRecentCutoff(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// The ledger runs as the service's runtime role; pool is the owner's.
	runtime, pool := pgtest.NewRuntimePool(t)
	l := ledger.New(runtime)
	before := partitions(t, pool)
	for _, cutoff := range []time.Time{{}, time.Now(), time.Now().AddDate(1, 0, 0), time.Now().Add(-ledger.MinRetention + time.Hour)} {
		dropped, err := l.DropPartitionsBefore(ctx, cutoff)
		if !errors.Is(err, ledger.ErrRetentionTooShort) || dropped != nil {
			t.Errorf("cutoff %v: dropped %v, err %v", cutoff, dropped, err)
		}
	}
	if got := partitions(t, pool); !slices.Equal(got, before) {
		t.Fatalf("partitions %v, want %v", got, before)
	}
}

func TestDropPartitionsBeforeLocked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// The ledger runs as the service's runtime role; pool is the owner's.
	runtime, pool := pgtest.NewRuntimePool(t)
	l := ledger.New(runtime)
	old := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := pool.Exec(ctx, fmt.Sprintf(`CREATE TABLE issuances_2000_01 PARTITION OF issuances FOR VALUES FROM (%s) TO (%s)`,
		literal(old), literal(old.AddDate(0, 1, 0)))); err != nil {
		t.Fatal(err)
	}
	// Another replica holds the lock: nothing is dropped, no error.
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(x'6f6964637265746e'::bigint)`); err != nil {
		t.Fatal(err)
	}
	dropped, err := l.DropPartitionsBefore(ctx, time.Now().AddDate(-1, 0, 0))
	if err != nil || len(dropped) != 0 {
		t.Fatalf("while locked: dropped %v (%v)", dropped, err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	dropped, err = l.DropPartitionsBefore(ctx, time.Now().AddDate(-1, 0, 0))
	if err != nil || !slices.Equal(dropped, []string{"public.issuances_2000_01"}) {
		t.Fatalf("unlocked: dropped %v (%v)", dropped, err)
	}
}

// literal is t as a timestamptz SQL literal.
func literal(t time.Time) string { return "'" + t.UTC().Format("2006-01-02 15:04:05Z07:00") + "'" }
