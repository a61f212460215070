package database_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/oidc-bridge/oidc-bridge/test/pgtest"
)

// as returns url with user instead of its user.
func as(t *testing.T, rawURL, user string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(user)
	return u.String()
}

// denied reports whether err is PostgreSQL's insufficient_privilege (or,
// for role attributes, the same class).
func denied(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42501"
}

// TestRuntimeRoleCannotRewriteHistory: the service's role (a member of
// oidc_bridge_runtime_role(), owning nothing) appends to the ledger and the
// admin history and completes or revokes a ledger row, and can do nothing
// else to them: no other column, no DELETE, no TRUNCATE, no partition
// reached directly. Nor can it give itself roles, create roles or objects,
// or run programs on the database host.
func TestRuntimeRoleCannotRewriteHistory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	runtime, owner := pgtest.NewRuntimePool(t)

	// Fixtures as the owner: one ledger row, one admin change.
	if _, err := owner.Exec(ctx, `
		INSERT INTO issuances (id, requested_at, outcome, issuer, repository)
			VALUES ('00000000-0000-0000-0000-000000000001', now(), 'pending', 'https://ci.example', 'org/app');
		INSERT INTO admin_changes (actor, action, kind, name, after, source) VALUES ('alice', 'create', 'issuer', 'ci', '{}', 'api');
		INSERT INTO admin_tokens (id, name, token_hash) VALUES (gen_random_uuid(), 'ops', sha256('x'));`); err != nil {
		t.Fatal(err)
	}
	var month string
	if err := owner.QueryRow(ctx, `SELECT tableoid::regclass::text FROM issuances`).Scan(&month); err != nil {
		t.Fatal(err)
	}

	// What the service does is allowed.
	for _, sql := range []string{
		`INSERT INTO issuances (id, requested_at, outcome, issuer) VALUES (gen_random_uuid(), now(), 'pending', 'x')`,
		`UPDATE issuances SET outcome = 'issued', completed_at = clock_timestamp(), credential_id = 'c', expires_at = now()
			WHERE id = '00000000-0000-0000-0000-000000000001'`,
		`UPDATE issuances SET revoked_at = now(), revoked_by = 'ops', revocation_reason = 'leak'
			WHERE id = '00000000-0000-0000-0000-000000000001'`,
		`INSERT INTO admin_changes (actor, action, kind, name, after, source) VALUES ('bob', 'create', 'mapping', 'm', '{}', 'api')`,
		`UPDATE admin_tokens SET last_used_at = now(), revoked_at = now()`,
		`SELECT ledger_ensure_partitions(4)`,
		`SELECT count(*) FROM goose_db_version`,
	} {
		if _, err := runtime.Exec(ctx, sql); err != nil {
			t.Errorf("runtime role: %s: %v, want allowed", strings.Join(strings.Fields(sql), " "), err)
		}
	}

	// A partition made later, through the owner's function on the
	// runtime's behalf, carries no grant either.
	var later string
	if err := owner.QueryRow(ctx, `SELECT max(c.relname) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'issuances'::regclass AND c.relname ~ '^issuances_[0-9]{4}_[0-9]{2}$'`).Scan(&later); err != nil || later == month {
		t.Fatalf("the partition made by ledger_ensure_partitions(4): %q, %v", later, err)
	}
	for _, sql := range []string{
		`INSERT INTO ` + pgx.Identifier{later}.Sanitize() + ` (id, requested_at, outcome, issuer) SELECT gen_random_uuid(), lower_bound, 'pending', 'x'
			FROM (SELECT date_trunc('month', now() + interval '4 months') AS lower_bound) b`,
		`DELETE FROM ` + pgx.Identifier{later}.Sanitize(),
		`TRUNCATE ` + pgx.Identifier{later}.Sanitize(),
		`UPDATE issuances SET issuer = 'forged'`,
		`UPDATE issuances SET repository = 'org/other', requested_at = requested_at - interval '1 day'`,
		`UPDATE issuances SET subject = NULL`,
		`DELETE FROM issuances`,
		`TRUNCATE issuances`,
		`UPDATE ` + pgx.Identifier{month}.Sanitize() + ` SET outcome = 'denied'`,
		`DELETE FROM ` + pgx.Identifier{month}.Sanitize(),
		`SELECT * FROM ` + pgx.Identifier{month}.Sanitize(),
		`ALTER TABLE issuances DETACH PARTITION ` + pgx.Identifier{month}.Sanitize(),
		`DROP TABLE ` + pgx.Identifier{month}.Sanitize(),
		`UPDATE admin_changes SET actor = 'mallory'`,
		`DELETE FROM admin_changes`,
		`TRUNCATE admin_changes`,
		`UPDATE admin_tokens SET token_hash = sha256('y')`,
		`UPDATE admin_tokens SET scopes = '{read,write}', expires_at = NULL`,
		`DELETE FROM admin_tokens`,
		`TRUNCATE replay_guard`,
		`TRUNCATE issuers CASCADE`,
		`ALTER TABLE issuers DISABLE TRIGGER oidc_bridge_catalog_notify`,
		`CREATE TABLE public.x (y int)`,
		`CREATE FUNCTION public.f() RETURNS int LANGUAGE sql AS 'SELECT 1'`,
		`GRANT pg_execute_server_program TO ` + pgtest.RuntimeLogin,
		`GRANT pg_read_server_files TO ` + pgtest.RuntimeLogin,
		`CREATE ROLE intruder LOGIN SUPERUSER`,
		`CREATE ROLE intruder LOGIN`,
		`COPY goose_db_version FROM PROGRAM 'id'`,
		`COPY (SELECT 1) TO PROGRAM 'id'`,
		`SELECT * FROM audit.issuances`,
	} {
		err := pgx.BeginFunc(ctx, runtime, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, sql)
			return err
		})
		if !denied(err) {
			t.Errorf("runtime role: %s: %v, want permission denied", sql, err)
		}
	}
	// GRANT <role> TO itself: the runtime group role has no ADMIN OPTION
	// anywhere and the login no CREATEROLE.
	var createRole, super bool
	if err := runtime.QueryRow(ctx, `SELECT rolcreaterole, rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&createRole, &super); err != nil || createRole || super {
		t.Errorf("runtime login: CREATEROLE %v, SUPERUSER %v, %v", createRole, super, err)
	}
	_, err := runtime.Exec(ctx, `DO $$ BEGIN EXECUTE format('GRANT %I TO %I', oidc_bridge_runtime_role(), oidc_bridge_auditor_role()); END $$`)
	if !denied(err) {
		t.Errorf("runtime role grants its own role on: %v, want permission denied", err)
	}

	// Retention through the owner's function, bounded: never the last 31 days.
	for _, cutoff := range []string{"now()", "now() - interval '30 days'", "NULL"} {
		_, err := runtime.Exec(ctx, `SELECT ledger_drop_partitions_before(`+cutoff+`)`)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "22023" {
			t.Errorf("ledger_drop_partitions_before(%s): %v, want invalid_parameter_value", cutoff, err)
		}
	}
	var rows, partitions int
	if err := owner.QueryRow(ctx, `SELECT (SELECT count(*) FROM issuances WHERE issuer = 'https://ci.example' AND repository = 'org/app'),
		(SELECT count(*) FROM pg_inherits WHERE inhparent = 'issuances'::regclass)`).Scan(&rows, &partitions); err != nil || rows != 1 || partitions < 5 {
		t.Errorf("history changed: %d rows, %d partitions, %v", rows, partitions, err)
	}
}

// TestSecurityDefinerFunctionsNotPublic: a login of the cluster that is not
// the database's runtime role cannot run the retention or partition
// functions, which act with the owner's rights.
func TestSecurityDefinerFunctionsNotPublic(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	admin := open(t, url)
	const login = "oidc_bridge_test_stranger"
	if _, err := admin.Exec(ctx, `DO $$ BEGIN CREATE ROLE `+login+` LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$`); err != nil {
		t.Fatal(err)
	}
	stranger := open(t, as(t, url, login))
	for _, sql := range []string{
		`SELECT ledger_drop_partitions_before(now() - interval '1 year')`,
		`SELECT ledger_ensure_partitions(3)`,
		`SELECT * FROM issuances`,
		`SELECT * FROM audit.issuances`,
		`CREATE TABLE public.x (y int)`,
	} {
		if _, err := stranger.Exec(ctx, sql); !denied(err) {
			t.Errorf("a stranger: %s: %v, want permission denied", sql, err)
		}
	}
}

// migratedDatabase creates an empty database, migrates it and returns its URL.
func migratedDatabase(t *testing.T) string {
	t.Helper()
	u := pgtest.NewEmptyDatabase(t)
	migrate(t, open(t, u))
	return u
}

// roleOf returns the database's role of kind (runtime or auditor).
func roleOf(t *testing.T, pool *pgxpool.Pool, kind string) string {
	t.Helper()
	var name string
	if err := pool.QueryRow(context.Background(), `SELECT CASE $1 WHEN 'runtime' THEN oidc_bridge_runtime_role() ELSE oidc_bridge_auditor_role() END`,
		kind).Scan(&name); err != nil {
		t.Fatal(err)
	}
	return name
}

// TestRolesPerDatabase: two databases of one cluster (staging and
// production) have their own runtime and auditor roles; an auditor granted
// staging's role reads staging's history and not production's, and so does
// the service's login of staging. The old cluster-wide oidc_bridge_auditor
// reads neither.
func TestRolesPerDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	staging, production := migratedDatabase(t), migratedDatabase(t)
	stagingAdmin, productionAdmin := open(t, staging), open(t, production)
	for _, kind := range []string{"runtime", "auditor"} {
		s, p := roleOf(t, stagingAdmin, kind), roleOf(t, productionAdmin, kind)
		if s == p || !strings.HasPrefix(s, "oidc_bridge_"+kind+"_") || len(s) > 63 {
			t.Errorf("%s roles: staging %q, production %q; want distinct oidc_bridge_%s_<db>", kind, s, p, kind)
		}
		var canLogin bool
		if err := stagingAdmin.QueryRow(ctx, `SELECT rolcanlogin OR rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = $1`, s).Scan(&canLogin); err != nil || canLogin {
			t.Errorf("role %s: LOGIN, CREATEROLE or SUPERUSER: %v, %v", s, canLogin, err)
		}
	}
	suffix := strings.ReplaceAll(strings.ToLower(t.Name()), "/", "_")
	auditor, service, old := "aud_"+suffix, "svc_"+suffix, "old_"+suffix
	for _, sql := range []string{
		`CREATE ROLE ` + auditor + ` LOGIN`,
		`CREATE ROLE ` + service + ` LOGIN`,
		`CREATE ROLE ` + old + ` LOGIN IN ROLE oidc_bridge_auditor`,
		`DO $$ BEGIN EXECUTE format('GRANT %I TO ` + auditor + `', oidc_bridge_auditor_role());
			EXECUTE format('GRANT %I TO ` + service + `', oidc_bridge_runtime_role()); END $$`,
		`INSERT INTO issuances (id, requested_at, completed_at, outcome, issuer) VALUES (gen_random_uuid(), now(), now(), 'issued', 'staging')`,
	} {
		if _, err := stagingAdmin.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	if _, err := productionAdmin.Exec(ctx, `INSERT INTO issuances (id, requested_at, completed_at, outcome, issuer) VALUES (gen_random_uuid(), now(), now(), 'issued', 'production')`); err != nil {
		t.Fatal(err)
	}

	read := func(dbURL, login, query string) error {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(cctx, as(t, dbURL, login))
		if err != nil {
			t.Fatalf("connect as %s: %v", login, err)
		}
		defer conn.Close(context.WithoutCancel(cctx))
		var issuer string
		return conn.QueryRow(cctx, query).Scan(&issuer)
	}
	for _, tt := range []struct {
		db, name, login, query string
		allowed                bool
	}{
		{staging, "staging", auditor, `SELECT issuer FROM audit.issuances`, true},
		{staging, "staging", auditor, `SELECT actor FROM audit.admin_changes UNION ALL SELECT 'none'`, true},
		{production, "production", auditor, `SELECT issuer FROM audit.issuances`, false},
		{production, "production", auditor, `SELECT actor FROM audit.admin_changes UNION ALL SELECT 'none'`, false},
		{staging, "staging", service, `SELECT issuer FROM issuances`, true},
		{production, "production", service, `SELECT issuer FROM issuances`, false},
		{production, "production", service, `SELECT ledger_ensure_partitions(3)::text`, false},
		{staging, "staging", old, `SELECT issuer FROM audit.issuances`, false},
		{production, "production", old, `SELECT issuer FROM audit.issuances`, false},
	} {
		err := read(tt.db, tt.login, tt.query)
		if tt.allowed && err != nil || !tt.allowed && !denied(err) {
			t.Errorf("%s on %s: %s: %v; want allowed %v", tt.login, tt.name, tt.query, err, tt.allowed)
		}
	}
}
