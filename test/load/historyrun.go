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
	"github.com/jackc/pgx/v5/pgxpool"

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
	tmp := *histDir
	if tmp == "" {
		var err error
		if tmp, err = os.MkdirTemp("", "oidc-bridge-history-"); err != nil {
			return err
		}
		if !*keep {
			defer os.RemoveAll(tmp)
		}
	} else if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
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
	t0 := time.Now()
	if _, err := database.Migrate(ctx, pool, nil); err != nil {
		return err
	}
	log.Printf("migrations applied in %s", time.Since(t0).Round(time.Millisecond))
	led := ledger.New(pool)

	var generated bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM mappings WHERE name = 'hist-000')`).Scan(&generated); err != nil {
		return err
	}
	if !generated {
		log.Printf("generating %d rows over %d months in %s", *history, *months, tmp)
		st, err := generateHistory(ctx, url, historyOptions{Rows: *history, Months: *months, Seed: 1})
		if err != nil {
			return err
		}
		fmt.Printf("\n== history: %d rows in %d partitions: COPY and attach %s (%.0f rows/s), guard, buckets, admin changes and VACUUM ANALYZE %s\n",
			st.Rows, len(st.Partitions), st.Copy.Round(time.Second), float64(st.Rows)/st.Copy.Seconds(), st.Finish.Round(time.Second))
		fmt.Printf("  replay guard %d rows, quota buckets %d, admin changes %d\n", st.GuardRows, st.QuotaBuckets, st.AdminChanges)
	} else {
		log.Printf("measuring the history already in %s", tmp)
	}
	if *genOnly {
		return nil
	}
	return measureHistory(ctx, url, pool, led)
}

// measureHistory is the sitting on a generated history: the quota path on
// an empty mapping and then on a hot one (an hour of 50,000 rows written
// now), the daily analysis, the cookbook, the sizes and a partition drop
// under writes.
func measureHistory(ctx context.Context, url string, pool *pgxpool.Pool, led *ledger.Ledger) error {
	if _, err := pool.Exec(ctx, `INSERT INTO issuers (name, url, kind, audiences) VALUES ('load', 'https://load.example', 'generic', '{x}') ON CONFLICT DO NOTHING;
		INSERT INTO mappings (name, issuer_id, conditions, provider, target, max_duration_seconds, quota_per_hour)
		SELECT 'load-quota', id, '{}', 'aws', '{"role_arn": "arn:aws:iam::123456789012:role/deploy"}', 3600, 1000000 FROM issuers WHERE name = 'load'
		ON CONFLICT DO NOTHING`); err != nil {
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
	fmt.Printf("\n== reserve+complete, quota path (per_hour 1,000,000), mapping with a quiet hour\n  %s\n", before)
	if err := hotHour(ctx, url, 50_000); err != nil {
		return err
	}
	after, err := reservePhase(ctx, led, quotaID)
	if err != nil {
		return err
	}
	fmt.Printf("\n== reserve+complete, quota path, its hour holding 50,000 more rows\n  %s\n  ratio of throughputs %.2f\n",
		after, after.xps/before.xps)

	// The bridge's daily analysis of the partitioned ledger (autovacuum
	// never analyzes it), as a replica would have run it before the
	// auditor's queries.
	if _, err := pool.Exec(ctx, `DELETE FROM ledger_jobs WHERE job = 'analyze'`); err != nil {
		return err
	}
	t0 := time.Now()
	if _, err := led.Analyze(ctx); err != nil {
		return err
	}
	fmt.Printf("\n== ledger.Analyze (ANALYZE issuances, daily): %s\n", time.Since(t0).Round(time.Millisecond))
	if err := cookbookTimings(ctx, url); err != nil {
		return err
	}
	if err := sizes(ctx, url); err != nil {
		return err
	}
	if !*histDrop {
		return nil
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

// runStamp keeps this process's token ids apart from an earlier run's on
// a kept ledger (-history-dir), whose replay guard may still hold them.
var runStamp = time.Now().UnixNano()

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
					JTI: fmt.Sprintf("load-%d-%d-%d", runStamp, w, i), Repository: repo, RunID: fmt.Sprint(i), JobID: fmt.Sprint(i),
					IssuedAt: now, Expiry: now.Add(5 * time.Minute)}
				a := ledger.Attempt{Claims: c, MappingID: mappingID, Mapping: "load-quota", Provider: "aws",
					Duration: 15 * time.Minute, PerHour: 1_000_000}
				s := time.Now()
				res, err := led.Reserve(ctx, a)
				if err == nil {
					// Each its own key id, as STS gives: a shared one would
					// be the cookbook's "heaviest credential".
					err = led.Complete(ctx, res, fmt.Sprintf("ASIALOAD%d%06d", runStamp%1_000_000, i), res.ExpiresAt)
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

// cookLiterals are the values a cookbook query names: of median activity
// (typical) or of the most activity (heaviest) in the query's window.
type cookLiterals struct {
	repo, repoID, run, mapping, role, actor, credential string
	counts                                              string // what each was picked from, for the report
}

// pickLiterals picks a repository (30 days), mapping (7 days), principal
// (30 days) and admin (30 days) of median activity among those active in
// the window and the last week (heaviest: the most active), the latest run
// and a credential of that repository.
func pickLiterals(ctx context.Context, conn *pgx.Conn, heaviest bool) (cookLiterals, error) {
	var l cookLiterals
	pick := func(expr, from, window string, dst ...any) (int64, int64, error) {
		var n, of int64
		args := append(dst, &n, &of)
		having := "true"
		if from == "issuances" {
			// Active in the last week too: the run query's window.
			having = "max(requested_at) >= now() - interval '7 days'"
		}
		err := conn.QueryRow(ctx, `WITH c AS (SELECT `+expr+`, count(*) AS n FROM `+from+`
			WHERE `+window+` GROUP BY `+expr+` HAVING `+having+`)
			SELECT c.*, (SELECT count(*) FROM c) FROM c ORDER BY n DESC, 1
			OFFSET CASE WHEN $1 THEN 0 ELSE (SELECT count(*) / 2 FROM c) END LIMIT 1`, heaviest).Scan(args...)
		return n, of, err
	}
	rn, ro, err := pick("repository, repository_id", "issuances", "requested_at >= now() - interval '30 days' AND repository IS NOT NULL AND repository_id IS NOT NULL", &l.repo, &l.repoID)
	if err != nil {
		return l, fmt.Errorf("repository: %w", err)
	}
	mn, mo, err := pick("mapping", "issuances", "requested_at >= now() - interval '7 days' AND mapping IS NOT NULL", &l.mapping)
	if err != nil {
		return l, fmt.Errorf("mapping: %w", err)
	}
	const principal = "coalesce(target->>'role_arn', target->>'service_account', target->>'client_id')"
	pn, po, err := pick(principal, "issuances", "requested_at >= now() - interval '30 days' AND "+principal+" IS NOT NULL", &l.role)
	if err != nil {
		return l, fmt.Errorf("principal: %w", err)
	}
	an, ao, err := pick("actor", "admin_changes", "changed_at >= now() - interval '30 days'", &l.actor)
	if err != nil {
		return l, fmt.Errorf("admin: %w", err)
	}
	if err := conn.QueryRow(ctx, `SELECT run_id, coalesce((SELECT credential_id FROM issuances WHERE repository = $1
			AND credential_id IS NOT NULL AND requested_at >= now() - interval '30 days' LIMIT 1), 'none')
		FROM issuances WHERE repository = $1 AND requested_at >= now() - interval '7 days' AND run_id IS NOT NULL
		ORDER BY requested_at DESC LIMIT 1`, l.repo).Scan(&l.run, &l.credential); err != nil {
		return l, fmt.Errorf("run of %s: %w", l.repo, err)
	}
	l.counts = fmt.Sprintf("repository %s (%d rows in 30 days, of %d repositories), mapping %s (%d in 7 days, of %d), principal %s (%d in 30 days, of %d), admin %s (%d in 30 days, of %d), run %s, credential %s",
		l.repo, rn, ro, l.mapping, mn, mo, l.role, pn, po, l.actor, an, ao, l.run, l.credential)
	return l, nil
}

// cookResult is one query's timing in one pass.
type cookResult struct {
	title         string
	p50, p95      time.Duration
	rows, runs    int
	sameAsTypical bool
}

// cookbookTimings runs each of docs/audit.md's queries 20 times as the
// auditor role, with the literals of median activity and then with the
// heaviest ones, and prints p50/p95 and one EXPLAIN (ANALYZE, BUFFERS) of
// each (the heaviest pass only for the queries its literals change), then a
// summary table.
func cookbookTimings(ctx context.Context, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	typical := map[string]string{}
	var table [2][]cookResult
	for pass, heaviest := range []bool{false, true} {
		if _, err := conn.Exec(ctx, `RESET role`); err != nil {
			return err
		}
		t0 := time.Now()
		l, err := pickLiterals(ctx, conn, heaviest)
		if err != nil {
			return err
		}
		name := [...]string{"typical (median activity)", "heaviest"}[pass]
		log.Printf("literals (%s) picked in %s", name, time.Since(t0).Round(time.Millisecond))
		if _, err := conn.Exec(ctx, `SELECT set_config('role', oidc_bridge_auditor_role(), false)`); err != nil {
			return err
		}
		var ferr error
		qs := cookbook(fatalErr{&ferr}, strings.NewReplacer("'acme/web'", quote(l.repo), "'123456'", quote(l.repoID),
			"'12345678901'", quote(l.run), "'web-prod-deploy'", quote(l.mapping),
			"'arn:aws:iam::123456789012:role/deploy'", quote(l.role), "'alice'", quote(l.actor),
			"'ASIAEXAMPLE000001234'", quote(l.credential)))
		if ferr != nil {
			return ferr
		}
		fmt.Printf("\n== docs/audit.md's queries, %s literals (20 runs each, as the auditor role): p50, p95, rows\n  %s\n", name, l.counts)
		for _, q := range qs {
			if heaviest && typical[q.title] == q.sql {
				table[pass] = append(table[pass], cookResult{title: q.title, sameAsTypical: true})
				continue
			}
			typical[q.title] = q.sql
			var d []time.Duration
			rows := 0
			for i := 0; i < 20; i++ {
				if i == 5 && d[0] > time.Second {
					break // a report query of seconds: 5 runs (p95 is their maximum)
				}
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
			p50, p95 := d[len(d)/2], d[len(d)*19/20-1]
			if len(d) < 20 {
				p95 = d[len(d)-1]
			}
			table[pass] = append(table[pass], cookResult{title: q.title, p50: p50, p95: p95, rows: rows, runs: len(d)})
			fmt.Printf("\n-- %s\n-- p50 %.1f ms, p95 %.1f ms, %d rows (%d runs)\n%s\n%s\n", q.title, ms(p50), ms(p95), rows, len(d), q.sql, plan)
		}
	}
	fmt.Printf("\n== summary: typical p50 / p95 (rows) | heaviest p50 / p95 (rows)\n")
	for i, t := range table[0] {
		h := table[1][i]
		hs := "same query"
		if !h.sameAsTypical {
			hs = fmt.Sprintf("%.1f / %.1f ms (%d rows, %d runs)", ms(h.p50), ms(h.p95), h.rows, h.runs)
		}
		fmt.Printf("| %s | %.1f / %.1f ms (%d rows, %d runs) | %s |\n", t.title, ms(t.p50), ms(t.p95), t.rows, t.runs, hs)
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
	var guard, guardN, buckets, bucketsN, hours, hoursN int64
	if err := conn.QueryRow(ctx, `SELECT pg_total_relation_size('replay_guard'), (SELECT count(*) FROM replay_guard),
		pg_total_relation_size('quota_minutes'), (SELECT count(*) FROM quota_minutes),
		pg_total_relation_size('mapping_hours'), (SELECT count(*) FROM mapping_hours)`).Scan(&guard, &guardN, &buckets, &bucketsN, &hours, &hoursN); err != nil {
		return err
	}
	fmt.Printf("  replay_guard %d rows, %.1f MiB; quota_minutes %d rows, %.1f MiB; mapping_hours %d rows, %.1f MiB\n",
		guardN, float64(guard)/(1<<20), bucketsN, float64(buckets)/(1<<20), hoursN, float64(hours)/(1<<20))
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

// hotHour writes n issued rows of the quota mapping load-quota (repository
// acme/web) over the last hour, with the quota triggers on as the bridge
// writes them: the quota path's worst hour, and the cookbook's heaviest
// repository, mapping and hour.
func hotHour(ctx context.Context, url string, n int) error {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	t0 := time.Now()
	if err := copyHot(ctx, pool, "load-quota", 0xbeef, 2_000_000_000+int(t0.Unix()%1_000_000)*1000, n, t0); err != nil {
		return err
	}
	log.Printf("hot hour: %d rows in %s", n, time.Since(t0).Round(time.Millisecond))
	return nil
}
