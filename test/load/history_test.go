package main

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/oidc-bridge/oidc-bridge/test/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// TestHistoryGenerator: -history's generator writes its rows into monthly
// partitions with their indexes, the replay guard and quota buckets they
// imply, and docs/audit.md's cookbook queries run on them and use the
// indexes (with partition pruning) that docs/audit.md names. The full-size
// figures (20 million rows) come from `go run ./test/load -history`.
func TestHistoryGenerator(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	st, err := generateHistory(ctx, url, historyOptions{Rows: 20_000, Months: 3, Seed: 1, Hot: "hist-010", HotRows: 300})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var rows, parts, defaults, guard, buckets, bucketed, exact int
	if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM issuances),
		(SELECT count(DISTINCT tableoid) FROM issuances),
		(SELECT count(*) FROM issuances_default),
		(SELECT count(*) FROM replay_guard),
		(SELECT count(*) FROM quota_minutes),
		(SELECT coalesce(sum(n), 0) FROM quota_minutes WHERE mapping_id = (SELECT id FROM mappings WHERE name = 'hist-010')
			AND minute >= date_trunc('minute', now() - interval '58 minutes')),
		(SELECT count(*) FROM issuances WHERE mapping = 'hist-010' AND outcome IN ('issued', 'pending', 'unknown')
			AND requested_at >= date_trunc('minute', now() - interval '58 minutes'))`).
		Scan(&rows, &parts, &defaults, &guard, &buckets, &bucketed, &exact); err != nil {
		t.Fatal(err)
	}
	if rows != 20_300 || st.Rows != rows || parts < 3 || defaults != 0 {
		t.Errorf("%d rows (stats %d) in %d partitions, %d in the default one; want 20300 in monthly partitions", rows, st.Rows, parts, defaults)
	}
	if guard == 0 || guard != st.GuardRows || buckets == 0 || st.AdminChanges == 0 {
		t.Errorf("replay guard %d rows (stats %d), %d quota buckets, %d admin changes", guard, st.GuardRows, buckets, st.AdminChanges)
	}
	if bucketed < 250 || bucketed != exact {
		t.Errorf("quota buckets of hist-010 hold %d of its hour, issuances %d", bucketed, exact)
	}

	// The cookbook, with the literals of this history.
	var repo, repoID, run, mapping, role, actor string
	if err := conn.QueryRow(ctx, `SELECT repository, repository_id, run_id, mapping, target->>'role_arn', actor
		FROM issuances WHERE outcome = 'issued' AND provider = 'aws' AND requested_at > now() - interval '2 days' LIMIT 1`).
		Scan(&repo, &repoID, &run, &mapping, &role, &actor); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `ANALYZE`); err != nil {
		t.Fatal(err)
	}
	// The planner prefers reading a few thousand rows whole; the indexes
	// are for millions. Without sequential scans the plan shows that each
	// query can use the index it names (the full-size plans are in
	// docs/audit.md).
	if _, err := conn.Exec(ctx, `SET enable_seqscan = off`); err != nil {
		t.Fatal(err)
	}
	queries := cookbook(t, strings.NewReplacer("'acme/web'", quote(repo), "'123456'", quote(repoID),
		"'12345678901'", quote(run), "'web-prod-deploy'", quote(mapping),
		"'arn:aws:iam::123456789012:role/deploy'", quote(role), "'alice'", "'admin-00'"))
	if len(queries) < 12 {
		t.Fatalf("%d cookbook queries in docs/audit.md", len(queries))
	}
	for _, q := range queries {
		p, err := planOf(ctx, conn, "", q.sql)
		if err != nil {
			t.Errorf("%s: %v", q.title, err)
			continue
		}
		if q.index != "" && !regexp.MustCompile(`\b(?:`+strings.ReplaceAll(q.index, " or ", "|")+`)\b`).MatchString(p) {
			t.Errorf("%s: the plan does not use %s:\n%s", q.title, q.index, p)
		}
		// A window of at most 30 days skips every month before it.
		for _, part := range partitionRe.FindAllStringSubmatch(p, -1) {
			if m, err := time.Parse("2006_01", strings.TrimPrefix(part[1], "issuances_")); q.pruned && err == nil &&
				m.AddDate(0, 1, 0).Before(time.Now().AddDate(0, 0, -31)) {
				t.Errorf("%s: the plan reads %s, before the window:\n%s", q.title, part[1], p)
			}
		}
		if _, err := conn.Exec(ctx, q.sql); err != nil {
			t.Errorf("%s: %v", q.sql, err)
		}
	}
}
