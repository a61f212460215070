package ledger_test

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// explain returns the plan of query, with the names of the partitions'
// indexes replaced by the name of the partitioned index they belong to.
func explain(t *testing.T, pool *pgxpool.Pool, query string) string {
	t.Helper()
	ctx := context.Background()
	rows, err := pool.Query(ctx, `EXPLAIN `+query)
	if err != nil {
		t.Fatalf("EXPLAIN %s: %v", query, err)
	}
	var b strings.Builder
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		b.WriteString(line + "\n")
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	parents := map[string]string{}
	prow, err := pool.Query(ctx, `SELECT c.relname::text, p.relname::text FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent WHERE c.relkind = 'i'`)
	if err != nil {
		t.Fatal(err)
	}
	for prow.Next() {
		var c, p string
		if err := prow.Scan(&c, &p); err != nil {
			t.Fatal(err)
		}
		parents[c] = p
	}
	if err := prow.Err(); err != nil {
		t.Fatal(err)
	}
	return identifier.ReplaceAllStringFunc(b.String(), func(s string) string {
		if p, ok := parents[s]; ok {
			return p
		}
		return s
	})
}

var identifier = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*`)

// docQuery is an example query of docs/audit.md and the index its comment
// promises ("" when it reads the whole range).
type docQuery struct {
	sql, index string
}

var (
	sqlBlock  = regexp.MustCompile("(?s)```sql\n(.*?)```")
	usesIndex = regexp.MustCompile(`(?m)^-- uses index (\w+(?: or \w+)*)`)
)

func docQueries(t *testing.T) []docQuery {
	t.Helper()
	b, err := os.ReadFile("../docs/audit.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []docQuery
	for _, m := range sqlBlock.FindAllStringSubmatch(string(b), -1) {
		q := strings.TrimSpace(m[1])
		if !strings.Contains(q, "audit.issuances") {
			continue // the GRANT example
		}
		var index string
		if m := usesIndex.FindStringSubmatch(q); m != nil {
			index = m[1]
		}
		out = append(out, docQuery{sql: strings.TrimSuffix(q, ";"), index: index})
	}
	return out
}

// fillLedger writes n rows over the last 30 days, in time order as the
// bridge appends them: 200 repositories, 40 mappings, 2% denied, 0.1%
// unknown, the rest issued. Every request named its mapping; half the
// denied ones named one that does not exist (mapping NULL).
func fillLedger(t *testing.T, pool *pgxpool.Pool, n int) {
	t.Helper()
	ctx := context.Background()
	// In statements of 50,000 rows: each stays well within the statement
	// timeout on a busy machine.
	const chunk = 50_000
	for lo := 1; lo <= n; lo += chunk {
		if _, err := pool.Exec(ctx, `
		INSERT INTO issuances (id, requested_at, completed_at, outcome, error_code, issuer, subject, repository,
			repository_id, ref, sha, event_name, actor, run_id, run_attempt, job_id, token_jti, mapping_id, mapping,
			provider, target, credential_id, expires_at, client_ip, user_agent, requested_mapping)
		SELECT gen_random_uuid(), at, at, outcome,
			CASE outcome WHEN 'denied' THEN 'no_matching_mapping' WHEN 'unknown' THEN 'abandoned' END,
			'https://token.actions.githubusercontent.com', 'repo:acme/' || r, 'acme/' || r, (123456 + g % 200)::text,
			'refs/heads/main', md5(g::text), 'push', 'octocat',
			CASE WHEN g % 1000 = 0 THEN '12345678901' ELSE (g / 3)::text END, '1', g::text, 'jti-' || g,
			CASE WHEN NOT missing THEN m END, CASE WHEN missing THEN NULL WHEN m = 0 THEN 'web-prod-deploy' ELSE 'mapping-' || m END,
			'aws', '{"role_arn": "arn:aws:iam::123456789012:role/deploy", "region": "eu-west-1"}',
			CASE outcome WHEN 'issued' THEN 'ASIAEXAMPLE' || lpad(g::text, 9, '0') END, at + interval '15 minutes',
			'203.0.113.7', 'oidc-bridge-action/1.0',
			CASE WHEN missing THEN 'web-prod' WHEN m = 0 THEN 'web-prod-deploy' ELSE 'mapping-' || m END
		FROM (
			SELECT g, now() - (($1 - g) * interval '30 days' / $1) AS at,
				CASE WHEN g % 50 = 0 THEN 'denied' WHEN g % 997 = 0 THEN 'unknown' ELSE 'issued' END AS outcome,
				CASE WHEN g % 200 = 0 THEN 'web' ELSE 'repo' || (g % 200) END AS r,
				g % 40 AS m,
				g % 100 = 50 AS missing
			FROM generate_series($2::int, $3::int) g) s`, n, lo, min(lo+chunk-1, n)); err != nil {
			t.Fatal(err)
		}
	}
	// What autovacuum does to a ledger that grows (PostgreSQL 13+ vacuums
	// on inserts): statistics, and the visibility map index-only scans use.
	if _, err := pool.Exec(ctx, `VACUUM (ANALYZE) issuances`); err != nil {
		t.Fatal(err)
	}
}

// The example queries of docs/audit.md run as the auditor and use the
// indexes their comments name, on a ledger large enough for the planner
// to prefer them.
func TestAuditDocQueries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, pool := newLedger(t)
	fillLedger(t, pool, 200_000)
	queries := docQueries(t)
	if len(queries) < 6 {
		t.Fatalf("docs/audit.md has %d example queries", len(queries))
	}
	for _, q := range queries {
		name := strings.SplitN(q.sql, "\n", 2)[0]
		err := asAuditor(t, pool, func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, q.sql)
			if err != nil {
				return err
			}
			n := 0
			for rows.Next() {
				n++
			}
			if rows.Err() == nil && n == 0 {
				t.Errorf("%s: no rows on the test ledger", name)
			}
			return rows.Err()
		})
		if err != nil {
			t.Errorf("%s: as the auditor role: %v", name, err)
			continue
		}
		plan := explain(t, pool, q.sql)
		if q.index != "" && !regexp.MustCompile(`\b(?:`+strings.ReplaceAll(q.index, " or ", "|")+`)\b`).MatchString(plan) {
			t.Errorf("%s: the plan does not use %s:\n%s", name, q.index, plan)
		}
		if testing.Verbose() {
			t.Logf("%s\n%s", q.sql, plan)
		}
	}
}
