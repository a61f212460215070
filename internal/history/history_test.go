package history_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/oidc-bridge/oidc-bridge/internal/history"
	"github.com/oidc-bridge/oidc-bridge/test/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

type row struct {
	Actor, Action, Kind, Name, Source, DBUser, Reason string
	Before, After                                     map[string]any
}

func rows(t *testing.T, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}) []row {
	t.Helper()
	rs, err := q.Query(context.Background(), `
		SELECT actor, action, kind, name, source, coalesce(db_user, ''), coalesce(reason, ''), before, after
		FROM audit.admin_changes ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var out []row
	var r row
	var b, a []byte
	_, err = pgx.ForEachRow(rs, []any{&r.Actor, &r.Action, &r.Kind, &r.Name, &r.Source, &r.DBUser, &r.Reason, &b, &a}, func() error {
		x := r
		x.Before, x.After = nil, nil
		if b != nil {
			if err := json.Unmarshal(b, &x.Before); err != nil {
				return err
			}
		}
		if a != nil {
			if err := json.Unmarshal(a, &x.After); err != nil {
				return err
			}
		}
		out = append(out, x)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// loginAs returns a connection whose session user is a new login role
// allowed to write the catalog and the admin tokens and signing keys but
// holding no privilege at all on admin_changes.
func loginAs(t *testing.T, pool *pgxpool.Pool) (*pgx.Conn, string) {
	t.Helper()
	ctx := context.Background()
	role := fmt.Sprintf("history_test_%d", time.Now().UnixNano())
	for _, q := range []string{
		`CREATE ROLE ` + role + ` LOGIN`,
		`GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON issuers, mappings, admin_tokens, signing_keys TO ` + role,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	pc, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Taken out of the pool for good: it never serves anyone else.
	conn := pc.Hijack()
	t.Cleanup(func() {
		_ = conn.Close(context.Background())
		_, _ = pool.Exec(context.Background(), `DROP OWNED BY `+role)
		_, _ = pool.Exec(context.Background(), `DROP ROLE `+role)
	})
	if _, err := conn.Exec(ctx, `SET SESSION AUTHORIZATION `+role); err != nil {
		t.Fatal(err)
	}
	return conn, role
}

func must(t *testing.T, c interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}, sql string, args ...any) {
	t.Helper()
	if _, err := c.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

const issuerSQL = `INSERT INTO issuers (name, url, kind, audiences) VALUES ('gh', 'https://token.actions.githubusercontent.com', 'github', '{sts}')`

// A write made directly in SQL, by a login with no privilege on the
// history, records a row naming that login, with the table's row before
// and after; an UPDATE, a DELETE, and several rows in one statement each
// record theirs.
func TestDirectSQLIsRecorded(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	conn, role := loginAs(t, pool)
	must(t, conn, issuerSQL)
	must(t, conn, `INSERT INTO mappings (name, issuer_id, conditions, provider, target, max_duration_seconds)
		SELECT 'deploy', id, '{}', 'aws', '{"role_arn": "arn:aws:iam::123456789012:role/x"}', 900 FROM issuers`)
	must(t, conn, `UPDATE mappings SET enabled = false`)
	must(t, conn, `UPDATE issuers SET audiences = '{sts,other}'`)
	must(t, conn, `DELETE FROM mappings`)
	got := rows(t, pool)
	want := []struct{ action, kind, name string }{
		{"create", "issuer", "gh"}, {"create", "mapping", "deploy"}, {"update", "mapping", "deploy"},
		{"update", "issuer", "gh"}, {"delete", "mapping", "deploy"},
	}
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		r := got[i]
		if r.Action != w.action || r.Kind != w.kind || r.Name != w.name || r.Source != "sql" ||
			r.Actor != "sql:"+role || r.DBUser != role {
			t.Errorf("row %d: %+v, want %v by %s", i, r, w, role)
		}
	}
	if got[2].Before["enabled"] != true || got[2].After["enabled"] != false {
		t.Errorf("update row: before %v after %v", got[2].Before, got[2].After)
	}
	if got[4].After != nil || got[4].Before["name"] != "deploy" {
		t.Errorf("delete row: %+v", got[4])
	}
	// The same write by the migrating (or any other) login names it.
	must(t, pool, `UPDATE issuers SET enabled = false`)
	var owner string
	if err := pool.QueryRow(context.Background(), `SELECT session_user`).Scan(&owner); err != nil {
		t.Fatal(err)
	}
	if last := rows(t, pool)[len(want)]; last.DBUser != owner || last.Actor != "sql:"+owner || last.Action != "update" {
		t.Errorf("owner's write: %+v", last)
	}
}

// Admin tokens and signing keys written in SQL are recorded without the
// token's digest or the encrypted private key; the bridge's own
// bookkeeping (last_used_at) is not, unless it is set in the future, as a
// key kept published by a forged last use would be. A TRUNCATE records a
// delete of every row.
func TestDirectSQLTokensAndKeys(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	conn, role := loginAs(t, pool)
	must(t, conn, `INSERT INTO admin_tokens (id, name, token_hash) VALUES (gen_random_uuid(), 'sneaky', sha256('x'))`)
	must(t, conn, `UPDATE admin_tokens SET last_used_at = now()`)
	must(t, conn, `UPDATE admin_tokens SET last_used_at = now() + interval '1 day'`)
	must(t, conn, `INSERT INTO signing_keys (kid, alg, state, public_jwk, private_key, created_at)
		VALUES ('kid_0123456789abcdef', 'ES256', 'next', '{"kid": "kid_0123456789abcdef", "alg": "ES256", "kty": "EC"}',
		        decode(repeat('ab', 40), 'hex'), now())`)
	must(t, conn, `UPDATE signing_keys SET last_used_at = now()`)
	must(t, conn, `UPDATE signing_keys SET last_used_at = '9999-01-01'`)
	must(t, conn, `TRUNCATE admin_tokens`)
	got := rows(t, pool)
	want := []struct{ action, kind, name, reason string }{
		{"create", "admin_token", "sneaky", ""}, {"update", "admin_token", "sneaky", ""},
		{"create", "signing_key", "kid_0123456789abcdef", ""}, {"update", "signing_key", "kid_0123456789abcdef", ""},
		{"delete", "admin_token", "sneaky", "truncate"},
	}
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		r := got[i]
		if r.Action != w.action || r.Kind != w.kind || r.Name != w.name || r.Reason != w.reason || r.Source != "sql" ||
			r.Actor != "sql:"+role || r.DBUser != role {
			t.Errorf("row %d: %+v, want %v by %s", i, r, w, role)
		}
		for _, j := range []map[string]any{r.Before, r.After} {
			if _, ok := j["token_hash"]; ok {
				t.Errorf("row %d holds the token's digest", i)
			}
			if _, ok := j["private_key"]; ok {
				t.Errorf("row %d holds the private key", i)
			}
		}
	}
	if got[2].After["public_jwk"] == nil || got[3].After["last_used_at"] == nil {
		t.Errorf("key rows: %+v %+v", got[2], got[3])
	}
}

// The bridge's own rows (history.Record in the transaction of its write)
// need only INSERT on admin_changes, and the trigger then adds no row of
// its own. A login that forges such a row to hide a write in SQL is named
// by it all the same: the database stamps db_user, the transaction and
// the time over whatever the insert says.
func TestBridgeRowsAndForgery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	conn, role := loginAs(t, pool)
	must(t, pool, `GRANT INSERT ON admin_changes TO `+role)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	must(t, tx, issuerSQL)
	err = history.Record(ctx, tx, history.Change{Actor: history.Actor{Name: "alice", Source: history.SourceAPI, RequestID: "r1"},
		Action: history.ActionCreate, Kind: history.KindIssuer, Name: "gh", After: map[string]string{"name": "gh"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// A forged row, then the write it is meant to cover.
	tx, err = conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	must(t, tx, `INSERT INTO admin_changes (actor, action, kind, name, before, after, source, db_user, changed_at, xact_id)
		VALUES ('bob', 'update', 'issuer', 'gh', '{}', '{}', 'api', 'bob', '2000-01-01', '1')`)
	must(t, tx, `UPDATE issuers SET enabled = false`)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// The runtime role cannot read the history it writes.
	if _, err := conn.Exec(ctx, `SELECT 1 FROM admin_changes`); err == nil {
		t.Fatal("the login reads admin_changes without a grant")
	}
	got := rows(t, pool)
	if len(got) != 2 {
		t.Fatalf("%d rows, want 2: %+v", len(got), got)
	}
	if r := got[0]; r.Actor != "alice" || r.Source != "api" || r.DBUser != role || r.Action != "create" {
		t.Errorf("bridge row: %+v", r)
	}
	if r := got[1]; r.Actor != "bob" || r.DBUser != role {
		t.Errorf("forged row: %+v, want db_user %s", r, role)
	}
	var old int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM admin_changes
		WHERE changed_at < now() - interval '1 hour' OR xact_id = '1'`).Scan(&old); err != nil || old != 0 {
		t.Errorf("forged time or transaction kept: %d %v", old, err)
	}
}

// Record refuses a change by nobody, or from a source of the triggers'.
func TestRecordNeedsActor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	for _, a := range []history.Actor{{}, {Name: "x"}, {Source: history.SourceAPI}, {Name: "x", Source: "sql"}} {
		err := history.Record(ctx, pool, history.Change{Actor: a, Action: history.ActionCreate, Kind: history.KindIssuer, Name: "x", After: 1})
		if !errors.Is(err, history.ErrNoActor) {
			t.Errorf("%+v: %v", a, err)
		}
	}
	if got := rows(t, pool); len(got) != 0 {
		t.Errorf("rows: %+v", got)
	}
}

func TestValidLabel(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"alice": true, "ops-team@example.com": true, "A_1.b": true, strings.Repeat("a", 64): true,
		"": false, "-a": false, "a b": false, "a:b": false, "ä": false, strings.Repeat("a", 65): false, "a\n": false, "a'": false,
	} {
		if got := history.ValidLabel(s); got != want {
			t.Errorf("ValidLabel(%q) = %v", s, got)
		}
	}
}
