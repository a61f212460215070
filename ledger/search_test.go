package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/oidc-bridge/oidc-bridge/ledger"
)

// TestSearch: the console's searches filter by each column, keep to the
// window, page by keyset without gaps or repeats, newest first, and refuse
// an unbounded search.
func TestSearch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, owner := newLedger(t)
	for i := range 7 {
		backdate(t, owner, time.Duration(i+1)*time.Minute, "issued", "acme/web", 1, "run-1", "1", "job")
	}
	backdate(t, owner, 30*time.Minute, "denied", "acme/web", 2, "run-2", "1", "job")
	backdate(t, owner, 40*time.Minute, "failed", "acme/api", 2, "run-3", "1", "job")
	backdate(t, owner, 3*time.Hour, "denied", "acme/web", 2, "run-4", "1", "job") // outside a 2 h window
	c := claims()
	c.Repository = "acme/other"
	if _, err := l.Deny(ctx, attempt(c), "no_matching_mapping"); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	window := func(s ledger.Search) ledger.Search {
		s.From, s.To = now.Add(-2*time.Hour), now.Add(time.Minute)
		if s.Limit == 0 {
			s.Limit = 100
		}
		return s
	}
	count := func(s ledger.Search) []ledger.Record {
		t.Helper()
		rs, err := l.Search(ctx, window(s))
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i < len(rs); i++ {
			if rs[i].RequestedAt.After(rs[i-1].RequestedAt) {
				t.Fatalf("not newest first: %v after %v", rs[i].RequestedAt, rs[i-1].RequestedAt)
			}
		}
		return rs
	}
	for _, tc := range []struct {
		name string
		s    ledger.Search
		want int
	}{
		{"everything in the window", ledger.Search{}, 10},
		{"denials", ledger.Search{Outcomes: []string{"denied", "failed"}}, 3},
		{"repository", ledger.Search{Repository: "acme/web"}, 8},
		{"repository is exact", ledger.Search{Repository: "acme/we"}, 0},
		{"run", ledger.Search{RunID: "run-3"}, 1},
		{"mapping", ledger.Search{Mapping: "m", Outcomes: []string{"issued"}}, 7},
		{"error code", ledger.Search{ErrorCode: "no_matching_mapping"}, 1},
		{"issuer", ledger.Search{Issuer: ghIssuer, Repository: "acme/other"}, 1},
		{"provider", ledger.Search{Provider: "gcp"}, 0},
	} {
		if got := count(tc.s); len(got) != tc.want {
			t.Errorf("%s: %d rows, want %d", tc.name, len(got), tc.want)
		}
	}
	// Keyset pages of 3 cover the 10 rows once each.
	seen := map[string]bool{}
	s := window(ledger.Search{Limit: 3})
	for page := 0; ; page++ {
		rs, err := l.Search(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if seen[r.ID] {
				t.Fatalf("row %s on two pages", r.ID)
			}
			seen[r.ID] = true
		}
		if len(rs) < 3 {
			break
		}
		last := rs[len(rs)-1]
		cur, err := ledger.ParseCursor(ledger.Cursor{At: last.RequestedAt, ID: last.ID}.String())
		if err != nil || !cur.At.Equal(last.RequestedAt) {
			t.Fatalf("cursor round trip: %v %v", cur, err)
		}
		s.After = &cur
		if page > 5 {
			t.Fatal("paging does not end")
		}
	}
	if len(seen) != 10 {
		t.Errorf("paging saw %d rows, want 10", len(seen))
	}
	// The recorded attempt reads back whole, by id, never with a token.
	rs := count(ledger.Search{ErrorCode: "no_matching_mapping"})
	r, err := l.Record(ctx, rs[0].ID)
	if err != nil || r.Repository != "acme/other" || r.TokenJTI != c.JTI || r.Ref != c.Ref || r.WorkflowRef != c.WorkflowRef {
		t.Errorf("Record: %+v %v", r, err)
	}
	if _, err := l.Record(ctx, "01a24a9f-6e81-755a-8087-10b049cf411d"); !errors.Is(err, ledger.ErrNoRecord) {
		t.Errorf("Record of an unknown id: %v", err)
	}
	// Unbounded or malformed searches are refused before any query.
	for _, bad := range []ledger.Search{
		{Limit: 10},
		{From: now.Add(-32 * 24 * time.Hour), To: now, Limit: 10},
		{From: now.Add(-time.Hour), To: now, Limit: ledger.MaxSearchLimit + 1},
		{From: now.Add(-time.Hour), To: now, Limit: 10, Outcomes: []string{"issued') OR true --"}},
	} {
		if _, err := l.Search(ctx, bad); !errors.Is(err, ledger.ErrInvalid) {
			t.Errorf("Search(%+v) = %v, want ErrInvalid", bad, err)
		}
	}
	if _, err := ledger.ParseCursor("123_not-a-uuid"); err == nil || !strings.Contains(err.Error(), "cursor") {
		t.Errorf("ParseCursor of a bad id: %v", err)
	}
}

// TestOutcomes24hAndHourUsage: the mappings page's counts: per hour and
// settled outcome over the last day, and the per_hour use now with the
// busiest repository of each mapping that has such a quota, from buckets
// (a mapping created with its quota) or from the rows (a quota gained just
// now, whose hour is not yet in buckets).
func TestOutcomes24hAndHourUsage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, owner := newLedger(t)
	bucketed := quotaMapping(t, owner, 10)
	for _, id := range []int64{1, bucketed} {
		backdate(t, owner, time.Minute, "issued", "acme/web", id, "r", "1", "j")
		backdate(t, owner, 2*time.Minute, "issued", "ACME/web", id, "r", "1", "j")
		backdate(t, owner, 3*time.Minute, "issued", "acme/api", id, "r", "1", "j")
		backdate(t, owner, 4*time.Minute, "denied", "acme/api", id, "r", "1", "j")
		backdate(t, owner, 5*time.Minute, "pending", "acme/web", id, "r", "1", "j")  // counted by the quota, not in the chart
		backdate(t, owner, 2*time.Hour, "issued", "acme/web", id, "r", "1", "j")     // in the chart, not the quota
		backdate(t, owner, 30*time.Hour, "issued", "acme/web", id, "r", "1", "j")    // in neither
		backdate(t, owner, 61*time.Minute, "unknown", "acme/web", id, "r", "1", "j") // in the chart's other, not the quota
	}
	backdate(t, owner, time.Minute, "issued", "acme/web", 2, "r", "1", "j") // mapping 2: no quota
	if _, err := owner.Exec(ctx, `UPDATE mappings SET quota_per_hour = 10 WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	oc, err := l.Outcomes24h(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []int64{1, bucketed} {
		h := oc[id]
		if h == nil || len(h.Counts) != ledger.OutcomeHours {
			t.Fatalf("outcomes of mapping %d: %+v", id, h)
		}
		total := map[string]int{}
		for _, c := range h.Counts {
			for o, n := range c {
				total[o] += n
			}
		}
		if want := map[string]int{"issued": 4, "denied": 1, "unknown": 1}; !maps.Equal(total, want) {
			t.Errorf("mapping %d: 24 h totals %v, want %v", id, total, want)
		}
		cur := h.Counts[ledger.OutcomeHours-1]
		if now.Minute() >= 5 && (cur["issued"] != 3 || cur["denied"] != 1) {
			t.Errorf("mapping %d: current hour %v", id, cur)
		}
	}
	use, err := l.HourUsage(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []int64{1, bucketed} {
		if u := use[id]; u.Issued != 4 || u.BusiestRepository != "acme/web" || u.BusiestIssued != 3 {
			t.Errorf("mapping %d: hour use %+v, want 4 counted, acme/web busiest with 3", id, u)
		}
	}
	if u, ok := use[2]; ok {
		t.Errorf("a mapping without a per_hour quota has a use: %+v", u)
	}
}

// TestMappingHoursExact: the hourly counters equal the ledger's rows per
// mapping, hour and settled outcome after concurrent exchanges through the
// ledger (reserved, then completed, failed or left pending, on two
// replicas), denials, audit-mode records, an owner's updates and deletes,
// and the sweeper's marks.
func TestMappingHoursExact(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, owner := newLedger(t)
	l2, _ := newLedgerOn(t, owner)
	q := quotaMapping(t, owner, 1000)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 8 {
		wg.Go(func() {
			led := []*ledger.Ledger{l, l2}[w%2]
			for i := range 25 {
				a := attempt(claims())
				a.MappingID = []int64{1, 2, q}[i%3]
				if a.MappingID == q {
					a.PerHour = 1000
				}
				r, err := led.Reserve(ctx, a)
				if err != nil {
					errs <- err
					return
				}
				switch i % 4 {
				case 0, 1:
					err = led.Complete(ctx, r, fmt.Sprintf("cred-%d-%d", w, i), time.Now().Add(time.Hour))
				case 2:
					err = led.Fail(ctx, r, "provider_error")
				}
				if err == nil && i%5 == 0 {
					_, err = led.Deny(ctx, attempt(claims()), "no_matching_mapping")
				}
				if err == nil && i%7 == 0 {
					_, err = led.RecordAudit(ctx, a, i%2 == 0, "ref")
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	backdate(t, owner, 3*time.Hour, "issued", "acme/web", 1, "r", "1", "j")
	backdate(t, owner, 2*time.Hour, "pending", "acme/web", 2, "r", "1", "j")
	for _, stmt := range []string{
		// An owner's fixes in SQL: a row moved to another mapping and hour,
		// one deleted, and old pending rows expired for the sweeper.
		`UPDATE issuances SET mapping_id = 2, requested_at = requested_at - interval '1 hour'
		 WHERE id = (SELECT id FROM issuances WHERE mapping_id = 1 AND outcome = 'issued' LIMIT 1)`,
		`DELETE FROM issuances WHERE id = (SELECT id FROM issuances WHERE mapping_id = 2 AND outcome = 'failed' LIMIT 1)`,
		`UPDATE issuances SET expires_at = now() - interval '1 minute' WHERE outcome = 'pending'`,
	} {
		if _, err := owner.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := l.Sweep(ctx); err != nil || n == 0 {
		t.Fatalf("sweep marked %d, %v; want the pending rows", n, err)
	}
	counted := func(sql string) map[string]int {
		t.Helper()
		rows, err := owner.Query(ctx, sql)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int{}
		var (
			key string
			n   int
		)
		if _, err := pgx.ForEachRow(rows, []any{&key, &n}, func() error { out[key] = n; return nil }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	want := counted(`SELECT mapping_id || ' ' || date_trunc('hour', requested_at, 'UTC') || ' ' || outcome, count(*)
		FROM issuances WHERE mapping_id IS NOT NULL AND outcome <> 'pending' GROUP BY 1`)
	got := counted(`SELECT mapping_id || ' ' || hour || ' ' || outcome, sum(n) FROM mapping_hours GROUP BY 1 HAVING sum(n) <> 0`)
	if len(want) < 10 || !maps.Equal(got, want) {
		t.Errorf("hourly counters\n%v\nwant the ledger's\n%v", got, want)
	}
}
