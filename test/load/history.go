package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/oidc-bridge/oidc-bridge/ledger"
)

// historyOptions shape the history that generateHistory writes.
type historyOptions struct {
	Rows   int // issuances
	Months int // spread evenly over this many months up to now
	Seed   uint64
	// Hot, when set, gets HotRows issued rows of its repository acme/web
	// spread over the last 59 minutes: a quota's hour near its limit.
	Hot     string
	HotRows int
}

// historyStats is what generateHistory did and how long it took.
type historyStats struct {
	Rows, GuardRows, QuotaBuckets, AdminChanges int
	Partitions                                  []string
	Copy, Finish                                time.Duration
}

const (
	histMappings = 200
	histRepos    = 5000
	histActors   = 2000
	histAdmins   = 30
	// histTokenLife is the generated tokens' life: with the guard's hour
	// of retention it bounds the replay guard's rows.
	histTokenLife = 5 * time.Minute
)

var histIssuers = []struct{ name, url, kind string }{
	{"hist-github", "https://token.actions.githubusercontent.com", "github"},
	{"hist-gitlab", "https://gitlab.example.com", "gitlab"},
}

// histMapping is a generated mapping, as the rows name it.
type histMapping struct {
	id       int64
	name     string
	issuer   string
	provider string
	target   []byte
}

// generateHistory fills the database at url (a superuser's: it creates
// partitions and switches the quota triggers off for its own session) with
// opts.Rows realistic issuances over opts.Months months, with the catalog
// they name, the replay guard and the quota buckets such a history leaves,
// and admin changes. Past months are written as plain tables with COPY and
// then attached (their indexes built once, not row by row); the current
// month is copied into the ledger. The database must hold no generated
// history yet; rows of the bridge itself may be there.
func generateHistory(ctx context.Context, url string, opts historyOptions) (historyStats, error) {
	var st historyStats
	if opts.Months < 1 {
		opts.Months = 1
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return st, err
	}
	cfg.MaxConns = 4
	cfg.ConnConfig.RuntimeParams["session_replication_role"] = "replica" // no triggers: quota buckets come after
	cfg.ConnConfig.RuntimeParams["maintenance_work_mem"] = "256MB"
	cfg.ConnConfig.RuntimeParams["statement_timeout"] = "0"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return st, err
	}
	defer pool.Close()

	// The catalog with the triggers on: a mapping's quota state is
	// created with it.
	catalog, err := pgxpool.New(ctx, url)
	if err != nil {
		return st, err
	}
	maps, err := histCatalog(ctx, catalog)
	catalog.Close()
	if err != nil {
		return st, fmt.Errorf("catalog: %w", err)
	}
	if _, err := pool.Exec(ctx, `SELECT ledger_ensure_partitions(3)`); err != nil {
		return st, err
	}

	// The months, oldest first, with their share of the rows.
	now := time.Now().UTC()
	start := now.Add(-time.Duration(opts.Months) * 30 * 24 * time.Hour)
	type chunk struct {
		lo, hi     time.Time // rows' times
		plo, phi   time.Time // the partition's bounds
		first, cnt int
		current    bool
	}
	var chunks []chunk
	total := now.Sub(start)
	done := 0
	for m := time.Date(start.Year(), start.Month(), 1, 0, 0, 0, 0, time.UTC); m.Before(now); m = m.AddDate(0, 1, 0) {
		lo, hi := maxTime(m, start), minTime(m.AddDate(0, 1, 0), now)
		cnt := int(float64(opts.Rows) * float64(hi.Sub(start)) / float64(total))
		cnt, done = cnt-done, cnt
		chunks = append(chunks, chunk{lo: lo, hi: hi, plo: m, phi: m.AddDate(0, 1, 0), first: done - cnt, cnt: cnt,
			current: !m.AddDate(0, 1, 0).Before(now)})
	}
	t0 := time.Now()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		work = make(chan chunk)
	)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				name := "issuances_" + c.plo.Format("2006_01")
				err := func() error {
					src := newHistSource(opts.Seed+uint64(c.first), maps, c.lo, c.hi, c.first, c.cnt)
					if c.current {
						_, err := pool.CopyFrom(ctx, pgx.Identifier{"issuances"}, histColumns, src)
						return err
					}
					// A past month: a plain table, filled, then attached
					// (which builds its indexes and checks its bounds).
					if _, err := pool.Exec(ctx, `DROP TABLE IF EXISTS `+pgx.Identifier{name}.Sanitize()+`;
						CREATE TABLE `+pgx.Identifier{name}.Sanitize()+` (LIKE issuances INCLUDING DEFAULTS INCLUDING CONSTRAINTS)`); err != nil {
						return err
					}
					if _, err := pool.CopyFrom(ctx, pgx.Identifier{name}, histColumns, src); err != nil {
						return err
					}
					_, err := pool.Exec(ctx, fmt.Sprintf(`ALTER TABLE issuances ATTACH PARTITION %s FOR VALUES FROM ('%s') TO ('%s')`,
						pgx.Identifier{name}.Sanitize(), c.plo.Format(time.RFC3339), c.phi.Format(time.RFC3339)))
					return err
				}()
				mu.Lock()
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", name, err))
				}
				st.Partitions = append(st.Partitions, name)
				mu.Unlock()
			}
		}()
	}
	for _, c := range chunks {
		work <- c
	}
	close(work)
	wg.Wait()
	if len(errs) > 0 {
		return st, errs[0]
	}
	st.Rows = opts.Rows
	if opts.Hot != "" && opts.HotRows > 0 {
		if err := copyHot(ctx, pool, opts.Hot, opts.Seed^0xbeef, opts.Rows, opts.HotRows, now); err != nil {
			return st, err
		}
		st.Rows += opts.HotRows
	}
	st.Copy = time.Since(t0)

	t0 = time.Now()
	// What such a history leaves beside the rows: the replay guard of
	// the tokens that expired less than an hour ago (GuardRetention), both
	// rows of each claim; the quota buckets of the last two hours.
	tag, err := pool.Exec(ctx, `
		INSERT INTO replay_guard (issuer, replay_key, mapping_id, issuance_id, token_exp, created_at)
		SELECT i.issuer, 'jti:' || i.token_jti, x.m, i.id, i.requested_at + $1::interval, i.requested_at
		FROM issuances i, LATERAL (VALUES (0::bigint), (i.mapping_id)) AS x(m)
		WHERE i.requested_at > now() - interval '1 hour' - $1::interval AND i.token_jti LIKE 'hist-%'
			AND i.outcome IN ('issued', 'unknown') AND i.mapping_id IS NOT NULL
		ON CONFLICT DO NOTHING`, histTokenLife.String())
	if err != nil {
		return st, fmt.Errorf("replay guard: %w", err)
	}
	st.GuardRows = int(tag.RowsAffected())
	tag, err = pool.Exec(ctx, `
		INSERT INTO quota_minutes AS q (mapping_id, repo_key, minute, n)
		SELECT i.mapping_id, coalesce('r' || lower(i.repository), 'n'), date_trunc('minute', i.requested_at), count(*)
		FROM issuances i JOIN quota_counting c ON c.mapping_id = i.mapping_id
		JOIN mappings m ON m.id = i.mapping_id AND m.quota_per_hour IS NOT NULL
		WHERE i.requested_at > now() - interval '2 hours' AND i.requested_at >= c.since
			AND i.token_jti LIKE 'hist-%' AND i.outcome IN ('issued', 'pending', 'unknown')
		GROUP BY 1, 2, 3
		ON CONFLICT (mapping_id, repo_key, minute) DO UPDATE SET n = q.n + excluded.n`)
	if err != nil {
		return st, fmt.Errorf("quota buckets: %w", err)
	}
	st.QuotaBuckets = int(tag.RowsAffected())
	// The hourly outcome counters of the last two days (the mappings page;
	// the trigger does not see rows copied into a partition before it is
	// attached).
	if _, err := pool.Exec(ctx, `
		INSERT INTO mapping_hours AS h (mapping_id, hour, outcome, shard, n)
		SELECT mapping_id, date_trunc('hour', requested_at, 'UTC'), outcome, 0, count(*)
		FROM issuances
		WHERE requested_at >= now() - $1::interval AND token_jti LIKE 'hist-%'
			AND mapping_id IS NOT NULL AND outcome <> 'pending'
		GROUP BY 1, 2, 3
		ON CONFLICT (mapping_id, hour, outcome, shard) DO UPDATE SET n = h.n + excluded.n`, ledger.HourRetention.String()); err != nil {
		return st, fmt.Errorf("hourly counters: %w", err)
	}
	n, err := histAdminChanges(ctx, pool, maps, start, now, max(opts.Rows/2000, 50), opts.Seed)
	if err != nil {
		return st, fmt.Errorf("admin changes: %w", err)
	}
	st.AdminChanges = n
	// What autovacuum does to a ledger that grows (PostgreSQL 13+ vacuums
	// on inserts): visibility map and statistics.
	for _, v := range []string{`VACUUM (ANALYZE) issuances`, `VACUUM (ANALYZE) replay_guard, quota_minutes, mapping_hours, admin_changes`} {
		if _, err := pool.Exec(ctx, v); err != nil {
			return st, fmt.Errorf("vacuum: %w", err)
		}
	}
	st.Finish = time.Since(t0)
	return st, nil
}

// copyHot copies n issued rows of mapping name and repository acme/web
// over the hour before now (rows first.. of the generator's numbering).
func copyHot(ctx context.Context, pool *pgxpool.Pool, name string, seed uint64, first, n int, now time.Time) error {
	var m histMapping
	if err := pool.QueryRow(ctx, `SELECT m.id, m.name, i.url, m.provider, m.target::text FROM mappings m JOIN issuers i ON i.id = m.issuer_id WHERE m.name = $1`,
		name).Scan(&m.id, &m.name, &m.issuer, &m.provider, &m.target); err != nil {
		return fmt.Errorf("hot mapping %s: %w", name, err)
	}
	src := newHistSource(seed, []histMapping{m}, now.Add(-59*time.Minute), now.Add(-time.Second), first, n)
	src.hot = true
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{"issuances"}, histColumns, src); err != nil {
		return fmt.Errorf("hot rows: %w", err)
	}
	return nil
}

// histCatalog creates the generated issuers and mappings (every tenth
// mapping with a per_hour quota) and returns the mappings.
func histCatalog(ctx context.Context, pool *pgxpool.Pool) ([]histMapping, error) {
	ids := map[string]int64{}
	for _, is := range histIssuers {
		var id int64
		if err := pool.QueryRow(ctx, `
			INSERT INTO issuers (name, url, kind, audiences) VALUES ($1, $2, $3, '{https://bridge.example.com}')
			ON CONFLICT (url) DO UPDATE SET updated_at = now() RETURNING id`, is.name, is.url, is.kind).Scan(&id); err != nil {
			return nil, err
		}
		ids[is.url] = id
	}
	var out []histMapping
	for i := range histMappings {
		is := histIssuers[0]
		if i%5 == 4 {
			is = histIssuers[1]
		}
		m := histMapping{name: fmt.Sprintf("hist-%03d", i), issuer: is.url}
		switch i % 4 {
		case 0, 1:
			m.provider = "aws"
			m.target, _ = json.Marshal(map[string]string{"role_arn": fmt.Sprintf("arn:aws:iam::%012d:role/deploy-%03d", 100000000000+i%20, i), "region": "eu-west-1"})
		case 2:
			m.provider = "gcp"
			m.target, _ = json.Marshal(map[string]string{"service_account": fmt.Sprintf("deploy-%03d@proj-%02d.iam.gserviceaccount.com", i, i%20)})
		default:
			m.provider = "azure"
			m.target, _ = json.Marshal(map[string]string{"tenant_id": "00000000-0000-0000-0000-000000000001",
				"client_id": fmt.Sprintf("00000000-0000-0000-0001-%012d", i)})
		}
		var quota *int
		if i%10 == 0 {
			q := 500
			quota = &q
		}
		if err := pool.QueryRow(ctx, `
			INSERT INTO mappings (name, issuer_id, conditions, provider, target, max_duration_seconds, quota_per_hour)
			VALUES ($1, $2, '{"repository_owner": "acme"}', $3, $4, 3600, $5) RETURNING id`,
			m.name, ids[is.url], m.provider, m.target, quota).Scan(&m.id); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

func histAdminChanges(ctx context.Context, pool *pgxpool.Pool, maps []histMapping, start, end time.Time, n int, seed uint64) (int, error) {
	r := rand.New(rand.NewPCG(seed, 7))
	zipf := rand.NewZipf(r, 1.3, 1, histAdmins-1)
	rows := make([][]any, n)
	for i := range rows {
		at := start.Add(time.Duration(float64(end.Sub(start)) * float64(i) / float64(n)))
		m := maps[r.IntN(len(maps))]
		before := fmt.Sprintf(`{"name": %q, "enabled": true}`, m.name)
		after := fmt.Sprintf(`{"name": %q, "enabled": %t}`, m.name, r.IntN(2) == 0)
		rows[i] = []any{at, fmt.Sprintf("admin-%02d", zipf.Uint64()), "update", "mapping", m.name, before, after,
			fmt.Sprintf("req-%d", i), "api"}
	}
	// The stamp trigger (ENABLE ALWAYS) sets changed_at to now(): off for
	// the copy of a past, in this throwaway database only.
	tx, err := pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `ALTER TABLE admin_changes DISABLE TRIGGER admin_changes_stamp`); err != nil {
		return 0, err
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"admin_changes"},
		[]string{"changed_at", "actor", "action", "kind", "name", "before", "after", "request_id", "source"}, pgx.CopyFromRows(rows)); err != nil {
		return 0, err
	}
	if _, err := tx.Exec(ctx, `ALTER TABLE admin_changes ENABLE ALWAYS TRIGGER admin_changes_stamp`); err != nil {
		return 0, err
	}
	return n, tx.Commit(ctx)
}

var histColumns = []string{"id", "requested_at", "completed_at", "outcome", "error_code", "issuer", "subject",
	"repository", "repository_id", "ref", "sha", "environment", "event_name", "workflow_ref", "actor",
	"run_id", "run_attempt", "job_id", "token_jti", "mapping_id", "mapping", "provider", "target",
	"credential_id", "expires_at", "client_ip", "user_agent", "requested_mapping"}

// histSource generates rows for CopyFrom, in time order.
type histSource struct {
	r          *rand.Rand
	repoZ, acZ *rand.Zipf
	maps       []histMapping
	lo         time.Time
	step       float64 // ns between rows
	first, i   int
	n          int
	hot        bool
	row        []any
}

func newHistSource(seed uint64, maps []histMapping, lo, hi time.Time, first, n int) *histSource {
	r := rand.New(rand.NewPCG(seed, 42))
	return &histSource{r: r, repoZ: rand.NewZipf(r, 1.1, 8, histRepos-1), acZ: rand.NewZipf(r, 1.2, 4, histActors-1),
		maps: maps, lo: lo, step: float64(hi.Sub(lo)) / float64(max(n, 1)), first: first, n: n, i: -1}
}

func (s *histSource) Next() bool {
	s.i++
	if s.i >= s.n {
		return false
	}
	r := s.r
	g := s.first + s.i
	at := s.lo.Add(time.Duration((float64(s.i) + r.Float64()) * s.step))
	repo := int(s.repoZ.Uint64())
	m := s.maps[repo%len(s.maps)]
	repoName := fmt.Sprintf("org%03d/repo%04d", repo%300, repo)
	repoID := strconv.Itoa(100000 + repo)
	if s.hot {
		repoName, repoID = "acme/web", "1339936803"
	}
	run := g / 3
	outcome, code := "issued", ""
	switch p := r.IntN(10000); {
	case s.hot:
	case p < 150:
		outcome, code = "denied", "no_matching_mapping"
	case p < 200:
		outcome, code = "denied", "token_replayed"
	case p < 250:
		outcome, code = "denied", "quota_exceeded"
	case p < 280:
		outcome, code = "denied", "invalid_request"
	case p < 300:
		outcome, code = "denied", "ambiguous_mapping"
	case p < 380:
		outcome, code = "failed", "provider_error"
	case p < 385:
		outcome, code = "unknown", "abandoned"
	case p < 390:
		outcome, code = "unknown", "indeterminate"
	}
	var mappingID, mapping, provider, target, credential, reqMapping any
	mappingID, mapping, provider, target, reqMapping = m.id, m.name, m.provider, m.target, m.name
	if code == "no_matching_mapping" || code == "ambiguous_mapping" || code == "invalid_request" {
		mappingID, mapping, provider, target = nil, nil, nil, nil
		if code == "no_matching_mapping" && r.IntN(2) == 0 {
			reqMapping = m.name + "-typo"
		}
	}
	if outcome == "issued" {
		if m.provider == "aws" {
			credential = fmt.Sprintf("ASIA%016X", r.Uint64())
		} else {
			credential = fmt.Sprintf("sha256:%016x", r.Uint64())
		}
	}
	env := any(nil)
	if repo%3 == 0 {
		env = "production"
	}
	event := "push"
	if p := r.IntN(10); p >= 7 {
		event = [...]string{"pull_request", "pull_request", "workflow_dispatch"}[p-7]
	}
	ref := "refs/heads/main"
	if event == "pull_request" {
		ref = fmt.Sprintf("refs/pull/%d/merge", run%5000)
	}
	attempt := "1"
	if run%20 == 0 {
		attempt = "2"
	}
	s.row = []any{histUUID(at, r), at, at.Add(300 * time.Millisecond), outcome, nz(code), m.issuer,
		"repo:" + repoName + ":ref:" + ref, repoName, repoID, ref, fmt.Sprintf("%016x%016x%08x", r.Uint64(), r.Uint64(), r.Uint32()),
		env, event, repoName + "/.github/workflows/deploy.yml@" + ref, fmt.Sprintf("user%04d", s.acZ.Uint64()),
		strconv.Itoa(9000000000 + run), attempt, strconv.Itoa(30000000000 + g), fmt.Sprintf("hist-%d", g),
		mappingID, mapping, provider, target, credential, at.Add(time.Hour),
		netip.AddrFrom4([4]byte{10, byte(repo >> 8), byte(repo), byte(r.IntN(250) + 1)}), "oidc-bridge-action/1.2", reqMapping}
	return true
}

func (s *histSource) Values() ([]any, error) { return s.row, nil }
func (s *histSource) Err() error             { return nil }

func nz(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// histUUID is a UUIDv7 of the moment at, as the bridge's ids are.
func histUUID(at time.Time, r *rand.Rand) string {
	var b [16]byte
	ms := uint64(at.UnixMilli())
	for i := range 6 {
		b[i] = byte(ms >> (40 - 8*i))
	}
	x, y := r.Uint64(), r.Uint64()
	for i := range 8 {
		b[8+i] = byte(y >> (8 * i))
	}
	b[6], b[7] = 0x70|byte(x&0x0f), byte(x>>8)
	b[8] = 0x80 | b[8]&0x3f
	h := fmt.Sprintf("%x", b)
	return strings.Join([]string{h[:8], h[8:12], h[12:16], h[16:20], h[20:]}, "-")
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// cookQuery is one of docs/audit.md's example queries: its text, the index
// its comment names ("" when none) and whether it bounds requested_at (so
// that whole months are skipped).
type cookQuery struct {
	title, sql, index string
	pruned            bool
}

var (
	cookBlock = regexp.MustCompile("(?s)\n\n((?:[^\n]+\n)+)\n```sql\n(.*?)```")
	cookIndex = regexp.MustCompile(`(?m)^-- uses index (\w+(?: or \w+)*)`)
)

// cookbook returns docs/audit.md's example queries on the ledger and the
// admin changes, with their literals replaced by r.
func cookbook(t interface{ Fatal(...any) }, r *strings.Replacer) []cookQuery {
	b, err := os.ReadFile(filepath.Join(repoRoot(), "docs", "audit.md"))
	if err != nil {
		t.Fatal(err)
	}
	var out []cookQuery
	for _, m := range cookBlock.FindAllStringSubmatch(string(b), -1) {
		q := strings.TrimSpace(m[2])
		if !strings.Contains(q, "audit.issuances") && !strings.Contains(q, "audit.admin_changes") {
			continue
		}
		c := cookQuery{title: cookTitle(m[1]), sql: strings.TrimSuffix(r.Replace(q), ";"),
			pruned: strings.Contains(q, "requested_at >=")}
		if i := cookIndex.FindStringSubmatch(q); i != nil {
			c.index = i[1]
		}
		out = append(out, c)
	}
	return out
}

// cookTitle is a query's title: the paragraph before it, on one line, up
// to its first parenthesis or colon.
func cookTitle(p string) string {
	t := strings.Join(strings.Fields(p), " ")
	if i := strings.IndexAny(t, "(:"); i > 0 {
		t = t[:i]
	}
	if i := strings.Index(t, ". "); i > 0 {
		t = t[:i]
	}
	return strings.TrimSpace(t)
}

// repoRoot is the module's root: the working directory of go run, or two
// levels up in go test.
func repoRoot() string {
	if _, err := os.Stat("go.mod"); err == nil {
		return "."
	}
	return filepath.Join("..", "..")
}

type fatalErr struct{ err *error }

func (f fatalErr) Fatal(a ...any) { *f.err = fmt.Errorf("%v", a...) }

// planOf returns query's plan (EXPLAIN with options, "" for the plain
// one), with the partitions' indexes named after the partitioned index they
// belong to.
func planOf(ctx context.Context, conn *pgx.Conn, options, query string) (string, error) {
	rows, err := conn.Query(ctx, "EXPLAIN "+options+" "+query)
	if err != nil {
		return "", err
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", err
	}
	rows, err = conn.Query(ctx, `SELECT c.relname::text, p.relname::text FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent WHERE c.relkind = 'i'`)
	if err != nil {
		return "", err
	}
	parents := map[string]string{}
	for rows.Next() {
		var c, p string
		if err := rows.Scan(&c, &p); err != nil {
			return "", err
		}
		parents[c] = p
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	return identRe.ReplaceAllStringFunc(strings.Join(lines, "\n"), func(s string) string {
		if p, ok := parents[s]; ok {
			return p
		}
		return s
	}), nil
}

var (
	identRe     = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*`)
	partitionRe = regexp.MustCompile(`\bon (issuances_\d{4}_\d{2}|issuances_default)\b`)
)

// quote is s as an SQL string literal.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
