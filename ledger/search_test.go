package ledger_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

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
// outcome over the last day, and each mapping's per_hour use now with its
// busiest repository.
func TestOutcomes24hAndHourUsage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, owner := newLedger(t)
	backdate(t, owner, time.Minute, "issued", "acme/web", 1, "r", "1", "j")
	backdate(t, owner, 2*time.Minute, "issued", "acme/web", 1, "r", "1", "j")
	backdate(t, owner, 3*time.Minute, "issued", "acme/api", 1, "r", "1", "j")
	backdate(t, owner, 4*time.Minute, "denied", "acme/api", 1, "r", "1", "j")
	backdate(t, owner, 2*time.Hour, "issued", "acme/web", 1, "r", "1", "j")  // in the chart, not the quota
	backdate(t, owner, 30*time.Hour, "issued", "acme/web", 1, "r", "1", "j") // in neither
	now := time.Now()
	oc, err := l.Outcomes24h(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	h := oc[1]
	if h == nil || len(h.Counts) != ledger.OutcomeHours {
		t.Fatalf("outcomes of mapping 1: %+v", h)
	}
	total := map[string]int{}
	for _, c := range h.Counts {
		for o, n := range c {
			total[o] += n
		}
	}
	if total["issued"] != 4 || total["denied"] != 1 {
		t.Errorf("24 h totals %v, want 4 issued, 1 denied", total)
	}
	cur := h.Counts[ledger.OutcomeHours-1]
	if now.Minute() >= 5 && (cur["issued"] != 3 || cur["denied"] != 1) {
		t.Errorf("current hour %v", cur)
	}
	use, err := l.HourUsage(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if u := use[1]; u.Issued != 3 || u.BusiestRepository != "acme/web" || u.BusiestIssued != 2 {
		t.Errorf("hour use %+v, want 3 issued, acme/web busiest with 2", u)
	}
}
