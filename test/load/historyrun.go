package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/oidc-bridge/oidc-bridge/identity"
	"github.com/oidc-bridge/oidc-bridge/internal/database"
	"github.com/oidc-bridge/oidc-bridge/internal/pgcluster"
	"github.com/oidc-bridge/oidc-bridge/ledger"
)

// runHistory is -history N: a private cluster in a temporary folder, the
// schema, N rows of history, then the cookbook's timings and plans, the
// sizes, the quota path's cost and a partition drop under writes.
func runHistory() error {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "oidc-bridge-history-")
	if err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if !*keep {
		defer os.RemoveAll(tmp)
	}
	cl, err := pgcluster.Start(ctx, pgcluster.Options{DataDir: filepath.Join(tmp, "pg"), Port: freePort(), Unsafe: *unsafe,
		Settings: map[string]string{"max_connections": "100", "shared_buffers": "256MB", "max_wal_size": "4GB"}})
	if err != nil {
		return err
	}
	defer cl.Stop(context.Background())
	if err := cl.EnsureDatabase(ctx, "bridge"); err != nil {
		return err
	}
	url := cl.URL("bridge")
	pool, err := database.Open(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := database.Migrate(ctx, pool, nil); err != nil {
		return err
	}
	led := ledger.New(pool)

	// The quota path on the empty ledger first.
	if _, err := pool.Exec(ctx, `INSERT INTO issuers (name, url, kind, audiences) VALUES ('load', 'https://load.example', 'generic', '{x}');
		INSERT INTO mappings (name, issuer_id, conditions, provider, target, max_duration_seconds, quota_per_hour)
		SELECT 'load-quota', id, '{}', 'aws', '{"role_arn": "arn:aws:iam::123456789012:role/deploy"}', 3600, 1000000 FROM issuers WHERE name = 'load'`); err != nil {
		return err
	}
	var quotaID int64
	if err := pool.QueryRow(ctx, `SELECT id FROM mappings WHERE name = 'load-quota'`).Scan(&quotaID); err != nil {
		return err
	}
	before, err := reservePhase(ctx, led, quotaID)
	if err != nil {
		return err
	}
	fmt.Printf("\n== reserve+complete, quota path (per_hour 1,000,000), empty ledger\n  %s\n", before)

	log.Printf("generating %d rows over %d months", *history, *months)
	st, err := generateHistory(ctx, url, historyOptions{Rows: *history, Months: *months, Seed: 1, Hot: "load-quota", HotRows: 50_000})
	if err != nil {
		return err
	}
	fmt.Printf("\n== history: %d rows in %d partitions: COPY and attach %s (%.0f rows/s), guard, buckets, admin changes and VACUUM ANALYZE %s\n",
		st.Rows, len(st.Partitions), st.Copy.Round(time.Second), float64(st.Rows)/st.Copy.Seconds(), st.Finish.Round(time.Second))
	fmt.Printf("  replay guard %d rows, quota buckets %d, admin changes %d\n", st.GuardRows, st.QuotaBuckets, st.AdminChanges)

	after, err := reservePhase(ctx, led, quotaID)
	if err != nil {
		return err
	}
	fmt.Printf("\n== reserve+complete, quota path, after the history (its hour holds 50,000 rows)\n  %s\n  ratio of throughputs %.2f\n",
		after, after.xps/before.xps)

	if err := cookbookTimings(ctx, url); err != nil {
		return err
	}
	if err := sizes(ctx, url); err != nil {
		return err
	}
	return dropUnderLoad(ctx, url, led, quotaID)
}

type phase struct {
	n             int
	xps           float64
	p50, p99, max time.Duration
}

func (p phase) String() string {
	return fmt.Sprintf("%d reservations: %.0f/s, p50 %.2f ms, p99 %.2f ms, max %.1f ms", p.n, p.xps,
		float64(p.p50.Microseconds())/1000, float64(p.p99.Microseconds())/1000, float64(p.max.Microseconds())/1000)
}

var phaseSeq atomic.Int64

// reservePhase runs Reserve and Complete of the quota mapping from 8
// goroutines for *duration (many repositories; every tenth on acme/web,
// the hot bucket).
func reservePhase(ctx context.Context, led *ledger.Ledger, mappingID int64) (phase, error) {
	return reserveFor(ctx, led, mappingID, *duration, nil)
}

func reserveFor(ctx context.Context, led *ledger.Ledger, mappingID int64, d time.Duration, during func()) (phase, error) {
	var (
		mu   sync.Mutex
		lat  []time.Duration
		errs atomic.Int64
		wg   sync.WaitGroup
	)
	deadline := time.Now().Add(d)
	t0 := time.Now()
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []time.Duration
			for time.Now().Before(deadline) {
				i := phaseSeq.Add(1)
				repo := fmt.Sprintf("acme/repo-%d", i%500)
				if i%10 == 0 {
					repo = "acme/web"
				}
				now := time.Now()
				c := &identity.Claims{Issuer: "https://load.example", IssuerName: "load", Kind: identity.KindGeneric,
					JTI: fmt.Sprintf("load-%d-%d", w, i), Repository: repo, RunID: fmt.Sprint(i), JobID: fmt.Sprint(i),
					IssuedAt: now, Expiry: now.Add(5 * time.Minute)}
				a := ledger.Attempt{Claims: c, MappingID: mappingID, Mapping: "load-quota", Provider: "aws",
					Duration: 15 * time.Minute, PerHour: 1_000_000}
				s := time.Now()
				res, err := led.Reserve(ctx, a)
				if err == nil {
					err = led.Complete(ctx, res, "ASIALOAD", res.ExpiresAt)
				}
				local = append(local, time.Since(s))
				if err != nil && errs.Add(1) <= 3 {
					log.Printf("reserve: %v", err)
				}
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}()
	}
	if during != nil {
		during()
	}
	wg.Wait()
	el := time.Since(t0)
	slices.Sort(lat)
	if len(lat) == 0 {
		return phase{}, fmt.Errorf("no reservations")
	}
	if errs.Load() > 0 {
		return phase{}, fmt.Errorf("%d reservations failed", errs.Load())
	}
	pct := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))] }
	return phase{n: len(lat), xps: float64(len(lat)) / el.Seconds(), p50: pct(.5), p99: pct(.99), max: lat[len(lat)-1]}, nil
}

// cookbookTimings runs each of docs/audit.md's queries 20 times as the
// auditor role and prints p50/p95 and one EXPLAIN (ANALYZE, BUFFERS).
func cookbookTimings(ctx context.Context, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var repo, repoID, run, mapping, role, actor string
	if err := conn.QueryRow(ctx, `SELECT repository, repository_id, run_id, mapping, target->>'role_arn', actor
		FROM issuances WHERE outcome = 'issued' AND provider = 'aws' AND token_jti LIKE 'hist-%'
			AND requested_at > now() - interval '1 day' ORDER BY requested_at DESC LIMIT 1`).
		Scan(&repo, &repoID, &run, &mapping, &role, &actor); err != nil {
		return err
	}
	// The busiest repository (the worst case of "by repository").
	if err := conn.QueryRow(ctx, `SELECT repository, repository_id FROM issuances
		WHERE requested_at > now() - interval '1 day' AND token_jti LIKE 'hist-%' GROUP BY 1, 2 ORDER BY count(*) DESC LIMIT 1`).Scan(&repo, &repoID); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, `SELECT set_config('role', oidc_bridge_auditor_role(), false)`); err != nil {
		return err
	}
	var ferr error
	qs := cookbook(fatalErr{&ferr}, strings.NewReplacer("'acme/web'", quote(repo), "'123456'", quote(repoID),
		"'12345678901'", quote(run), "'web-prod-deploy'", quote(mapping),
		"'arn:aws:iam::123456789012:role/deploy'", quote(role), "'alice'", "'admin-00'",
		"'ASIAEXAMPLE000001234'", "'ASIA0000000000000000'"))
	if ferr != nil {
		return ferr
	}
	fmt.Printf("\n== docs/audit.md's queries (20 runs each, as the auditor role): p50, p95, rows\n")
	for _, q := range qs {
		var d []time.Duration
		rows := 0
		for range 20 {
			t0 := time.Now()
			r, err := conn.Query(ctx, q.sql)
			if err != nil {
				return fmt.Errorf("%s: %w", q.title, err)
			}
			rows = 0
			for r.Next() {
				rows++
			}
			if err := r.Err(); err != nil {
				return fmt.Errorf("%s: %w", q.title, err)
			}
			d = append(d, time.Since(t0))
		}
		slices.Sort(d)
		plan, err := planOf(ctx, conn, "(ANALYZE, BUFFERS)", q.sql)
		if err != nil {
			return err
		}
		fmt.Printf("\n-- %s\n-- p50 %.1f ms, p95 %.1f ms, %d rows\n%s\n%s\n", q.title,
			float64(d[9].Microseconds())/1000, float64(d[18].Microseconds())/1000, rows, q.sql, plan)
	}
	return nil
}

// sizes prints the ledger's disk use per row and per month.
func sizes(ctx context.Context, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `
		SELECT c.relname::text, c.reltuples::bigint, pg_table_size(c.oid), pg_indexes_size(c.oid)
		FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'issuances'::regclass AND c.reltuples > 0 ORDER BY 1`)
	if err != nil {
		return err
	}
	fmt.Printf("\n== sizes\n  %-20s %12s %10s %10s %9s\n", "partition", "rows", "table MiB", "index MiB", "bytes/row")
	var tr, tt, ti int64
	for rows.Next() {
		var name string
		var n, t, ix int64
		if err := rows.Scan(&name, &n, &t, &ix); err != nil {
			return err
		}
		tr, tt, ti = tr+n, tt+t, ti+ix
		fmt.Printf("  %-20s %12d %10.0f %10.0f %9.0f\n", name, n, float64(t)/(1<<20), float64(ix)/(1<<20), float64(t+ix)/float64(max(n, 1)))
	}
	if err := rows.Err(); err != nil {
		return err
	}
	fmt.Printf("  %-20s %12d %10.0f %10.0f %9.0f\n", "total", tr, float64(tt)/(1<<20), float64(ti)/(1<<20), float64(tt+ti)/float64(max(tr, 1)))
	var guard, guardN, buckets, bucketsN int64
	if err := conn.QueryRow(ctx, `SELECT pg_total_relation_size('replay_guard'), (SELECT count(*) FROM replay_guard),
		pg_total_relation_size('quota_minutes'), (SELECT count(*) FROM quota_minutes)`).Scan(&guard, &guardN, &buckets, &bucketsN); err != nil {
		return err
	}
	fmt.Printf("  replay_guard %d rows, %.1f MiB; quota_minutes %d rows, %.1f MiB\n", guardN, float64(guard)/(1<<20), bucketsN, float64(buckets)/(1<<20))
	return nil
}

// dropUnderLoad drops the oldest month through the bridge's retention
// (ledger.DropPartitionsBefore) while reservations run, and prints how
// long the drop took and the reservations' latencies meanwhile.
func dropUnderLoad(ctx context.Context, url string, led *ledger.Ledger, quotaID int64) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var oldest time.Time
	var name string
	if err := conn.QueryRow(ctx, `SELECT min(requested_at), min(tableoid::regclass::text) FROM issuances WHERE token_jti LIKE 'hist-%'`).Scan(&oldest, &name); err != nil {
		return err
	}
	cutoff := time.Date(oldest.Year(), oldest.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, 1, 0)
	var took time.Duration
	var dropped []string
	var derr error
	p, err := reserveFor(ctx, led, quotaID, 6*time.Second, func() {
		time.Sleep(2 * time.Second)
		t0 := time.Now()
		dropped, derr = led.DropPartitionsBefore(ctx, cutoff)
		took = time.Since(t0)
	})
	if err != nil {
		return err
	}
	if derr != nil {
		return derr
	}
	fmt.Printf("\n== retention: dropped %v in %s while reserving\n  %s\n", dropped, took.Round(time.Millisecond), p)
	return nil
}
