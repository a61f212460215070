package database_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/oidc-bridge/oidc-bridge/internal/database"
	"github.com/oidc-bridge/oidc-bridge/migrations"
	"github.com/oidc-bridge/oidc-bridge/test/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// migrationCount is the number of embedded migrations.
func migrationCount(t *testing.T) int {
	t.Helper()
	files, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("embedded migrations: %v, %d files", err, len(files))
	}
	return len(files)
}

// latestMigration is the highest version among the embedded migrations
// (numbers may have gaps while parallel branches each take their own).
func latestMigration(t *testing.T) int64 {
	t.Helper()
	files, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	var latest int64
	for _, f := range files {
		v, err := strconv.ParseInt(strings.SplitN(f, "_", 2)[0], 10, 64)
		if err != nil {
			t.Fatalf("migration %s: %v", f, err)
		}
		latest = max(latest, v)
	}
	return latest
}

// open opens a pool on url, closed when the test ends.
func open(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := database.Open(context.Background(), url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func migrate(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	n, err := database.Migrate(context.Background(), pool, nil)
	if err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return n
}

func TestOpenPoolSettings(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	for _, tt := range []struct {
		name                 string
		suffix               string
		want                 int32
		statement, idleInTxn string
	}{
		{name: "default", want: 16, statement: "30s", idleInTxn: "1min"},
		{name: "from URL", suffix: "&pool_max_conns=3&statement_timeout=5000&idle_in_transaction_session_timeout=0", want: 3,
			statement: "5s", idleInTxn: "0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pool := open(t, url+tt.suffix)
			if got := pool.Config().MaxConns; got != tt.want {
				t.Errorf("MaxConns = %d, want %d", got, tt.want)
			}
			var app, statement, idle string
			if err := pool.QueryRow(context.Background(), `SELECT current_setting('application_name'),
				current_setting('statement_timeout'), current_setting('idle_in_transaction_session_timeout')`).Scan(&app, &statement, &idle); err != nil {
				t.Fatal(err)
			}
			if app != "oidc-bridge" || statement != tt.statement || idle != tt.idleInTxn {
				t.Errorf("settings: application_name %q, statement_timeout %q, idle_in_transaction_session_timeout %q; want oidc-bridge, %s, %s",
					app, statement, idle, tt.statement, tt.idleInTxn)
			}
		})
	}
	// The server, not only the client, ends a statement that runs too long.
	pool := open(t, url+"&statement_timeout=200")
	_, err := pool.Exec(context.Background(), "SELECT pg_sleep(5)")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "57014" {
		t.Fatalf("a statement over statement_timeout: %v, want query_canceled (57014)", err)
	}
}

func TestOpenErrorsHideThePassword(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t-Pw"
	for _, tt := range []struct {
		name string
		url  string
	}{
		{name: "unreachable", url: "postgres://bridge:" + secret + "@/db?host=/nonexistent&port=1"},
		{name: "bad port", url: "postgres://bridge:" + secret + "@localhost:port/db"},
		{name: "bad option", url: "postgres://bridge:" + secret + "@localhost/db?pool_max_conns=many"},
		{name: "keyword value", url: "host=/nonexistent port=1 user=bridge password=" + secret + " dbname=db"},
		{name: "keyword value bad", url: "host=/nonexistent port=x user=bridge password='" + secret + "' dbname=db"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			pool, err := database.Open(ctx, tt.url)
			if err == nil {
				pool.Close()
				t.Fatal("Open succeeded")
			}
			t.Log(err)
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error shows the password: %v", err)
			}
			if !strings.HasPrefix(err.Error(), "database: ") {
				t.Errorf("error lacks the package prefix: %v", err)
			}
		})
	}
}

func TestMigrateFreshDatabase(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	pool := open(t, pgtest.NewEmptyDatabase(t))
	ctx := context.Background()

	n, err := database.Migrate(ctx, pool, logger)
	if err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if want := migrationCount(t); n != want {
		t.Errorf("Migrate applied %d, want %d", n, want)
	}
	if !strings.Contains(logs.String(), "version=1 ") {
		t.Errorf("applied versions not logged:\n%s", logs.String())
	}
	if err := database.CheckCurrent(ctx, pool); err != nil {
		t.Errorf("CheckCurrent after Migrate: %v", err)
	}
	if n := migrate(t, pool); n != 0 {
		t.Errorf("second Migrate applied %d, want 0", n)
	}
}

func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	url := pgtest.NewEmptyDatabase(t)
	const replicas = 4
	pools := make([]*pgxpool.Pool, replicas)
	for i := range pools {
		pools[i] = open(t, url)
	}
	var wg sync.WaitGroup
	applied := make([]int, replicas)
	errs := make([]error, replicas)
	for i, pool := range pools {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			applied[i], errs[i] = database.Migrate(ctx, pool, nil)
		})
	}
	wg.Wait()
	total := 0
	for i := range replicas {
		if errs[i] != nil {
			t.Errorf("replica %d: Migrate: %v", i, errs[i])
		}
		total += applied[i]
	}
	if want := migrationCount(t); total != want {
		t.Errorf("replicas applied %v migrations in all, want %d once", applied, want)
	}
	if err := database.CheckCurrent(context.Background(), pools[0]); err != nil {
		t.Errorf("CheckCurrent: %v", err)
	}
}

func TestStatusAndCheckCurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("empty database is behind", func(t *testing.T) {
		t.Parallel()
		pool := open(t, pgtest.NewEmptyDatabase(t))
		current, latest, err := database.Status(ctx, pool)
		if err != nil || current != 0 || latest != latestMigration(t) {
			t.Errorf("Status = %d, %d, %v; want 0, %d, nil", current, latest, err, latestMigration(t))
		}
		err = database.CheckCurrent(ctx, pool)
		if !errors.Is(err, database.ErrSchemaBehind) {
			t.Errorf("CheckCurrent = %v, want ErrSchemaBehind", err)
		}
	})

	t.Run("migrated database is current", func(t *testing.T) {
		t.Parallel()
		pool := pgtest.NewPool(t)
		current, latest, err := database.Status(ctx, pool)
		if err != nil || current != latest {
			t.Errorf("Status = %d, %d, %v; want equal versions", current, latest, err)
		}
		if err := database.CheckCurrent(ctx, pool); err != nil {
			t.Errorf("CheckCurrent = %v", err)
		}
	})

	t.Run("newer database is ahead", func(t *testing.T) {
		t.Parallel()
		pool := pgtest.NewPool(t)
		if _, err := pool.Exec(ctx, "INSERT INTO goose_db_version (version_id, is_applied) VALUES (99990101000000, true)"); err != nil {
			t.Fatal(err)
		}
		err := database.CheckCurrent(ctx, pool)
		if !errors.Is(err, database.ErrSchemaAhead) || errors.Is(err, database.ErrSchemaBehind) {
			t.Errorf("CheckCurrent = %v, want ErrSchemaAhead", err)
		}
		if n := migrate(t, pool); n != 0 {
			t.Errorf("Migrate on a newer schema applied %d, want 0", n)
		}
	})

	t.Run("cancelled context", func(t *testing.T) {
		t.Parallel()
		pool := pgtest.NewPool(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		err := database.CheckCurrent(cctx, pool)
		if err == nil || errors.Is(err, database.ErrSchemaBehind) || errors.Is(err, database.ErrSchemaAhead) {
			t.Errorf("CheckCurrent with a cancelled context = %v, want the cancellation", err)
		}
	})
}

func TestAuditorRole(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	ctx := context.Background()

	if _, err := pool.Exec(ctx, "SELECT * FROM audit.issuances"); err != nil {
		t.Fatalf("SELECT * FROM audit.issuances: %v", err)
	}
	// The unsorted view is the ordered one without its order: the same
	// columns, in the same order, of the same types.
	var same bool
	if err := pool.QueryRow(ctx, `
		WITH c AS (SELECT table_name, ordinal_position, column_name, data_type FROM information_schema.columns
			WHERE table_schema = 'audit' AND table_name IN ('issuances', 'issuances_unsorted'))
		SELECT count(*) > 20 AND NOT EXISTS (
			(SELECT ordinal_position, column_name, data_type FROM c WHERE table_name = 'issuances'
			 EXCEPT SELECT ordinal_position, column_name, data_type FROM c WHERE table_name = 'issuances_unsorted')
			UNION ALL
			(SELECT ordinal_position, column_name, data_type FROM c WHERE table_name = 'issuances_unsorted'
			 EXCEPT SELECT ordinal_position, column_name, data_type FROM c WHERE table_name = 'issuances'))
		FROM c`).Scan(&same); err != nil || !same {
		t.Errorf("audit.issuances_unsorted has the columns of audit.issuances: %v, %v", same, err)
	}
	var canLogin bool
	if err := pool.QueryRow(ctx, "SELECT rolcanlogin FROM pg_roles WHERE rolname = oidc_bridge_auditor_role()").Scan(&canLogin); err != nil {
		t.Fatalf("the auditor role: %v", err)
	}
	if canLogin {
		t.Error("the auditor role can log in")
	}

	for _, tt := range []struct {
		query      string
		wantDenied bool
	}{
		{query: "SELECT * FROM audit.issuances"},
		{query: "SELECT * FROM audit.issuances_unsorted"},
		{query: "SELECT * FROM public.mappings", wantDenied: true},
		{query: "SELECT * FROM public.issuances", wantDenied: true},
	} {
		t.Run(tt.query, func(t *testing.T) {
			err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, "SELECT set_config('role', oidc_bridge_auditor_role(), true)"); err != nil {
					t.Fatalf("SET ROLE: %v", err)
				}
				_, err := tx.Exec(ctx, tt.query)
				return err
			})
			var pgErr *pgconn.PgError
			denied := errors.As(err, &pgErr) && pgErr.Code == "42501" // insufficient_privilege
			if denied != tt.wantDenied || (err != nil && !denied) {
				t.Errorf("as the auditor role: %s: %v; want denied: %v", tt.query, err, tt.wantDenied)
			}
		})
	}
}

func TestDownToZeroThenUp(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	ctx := context.Background()
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	provider, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	down, err := provider.DownTo(ctx, 0)
	if err != nil {
		t.Fatalf("DownTo(0): %v", err)
	}
	if want := migrationCount(t); len(down) != want {
		t.Errorf("DownTo(0) reverted %d, want %d", len(down), want)
	}
	var tables int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname IN ('public', 'audit') AND tablename <> 'goose_db_version'").Scan(&tables); err != nil || tables != 0 {
		t.Errorf("%d tables left after DownTo(0), %v", tables, err)
	}
	if err := database.CheckCurrent(ctx, pool); !errors.Is(err, database.ErrSchemaBehind) {
		t.Errorf("CheckCurrent after DownTo(0) = %v, want ErrSchemaBehind", err)
	}
	if n := migrate(t, pool); n != migrationCount(t) {
		t.Errorf("Migrate after DownTo(0) applied %d, want %d", n, migrationCount(t))
	}
	if err := database.CheckCurrent(ctx, pool); err != nil {
		t.Errorf("CheckCurrent: %v", err)
	}
	if _, err := pool.Exec(ctx, "SELECT * FROM audit.issuances"); err != nil {
		t.Errorf("audit view after Up: %v", err)
	}
}

// TestAdminTokenNameReuseDown: migration 00009 lets a revoked token's name
// be reused; its Down gives the older holders of a shared name their id as
// a suffix, so that the unique constraint it restores holds.
func TestAdminTokenNameReuseDown(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	ctx := context.Background()
	insert := `INSERT INTO admin_tokens (id, name, token_hash, created_at, revoked_at)
		VALUES (gen_random_uuid(), $1, sha256($2::bytea), now() - make_interval(mins => $3), CASE WHEN $4 THEN now() END)`
	for _, r := range []struct {
		name, seed string
		ago        int
		revoked    bool
	}{{"alice", "a1", 30, true}, {"alice", "a2", 20, true}, {"alice", "a3", 10, false}, {"bob", "b1", 20, true}, {"bob", "b2", 10, true}} {
		if _, err := pool.Exec(ctx, insert, r.name, r.seed, r.ago, r.revoked); err != nil {
			t.Fatalf("insert %v: %v", r, err)
		}
	}
	if _, err := pool.Exec(ctx, insert, "alice", "a4", 1, false); err == nil {
		t.Fatal("two alice tokens not revoked")
	}
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	provider, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := provider.DownTo(ctx, 8); err != nil {
		t.Fatalf("DownTo(8): %v", err)
	}
	rows, err := pool.Query(ctx, `SELECT name FROM admin_tokens WHERE name IN ('alice', 'bob') ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	kept, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || !slices.Equal(kept, []string{"alice", "bob"}) {
		t.Fatalf("names kept after Down: %v %v", kept, err)
	}
	var renamed int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM admin_tokens WHERE name = 'alice~' || id::text OR name = 'bob~' || id::text`).Scan(&renamed); err != nil || renamed != 3 {
		t.Fatalf("renamed %d, %v", renamed, err)
	}
	if _, err := pool.Exec(ctx, insert, "bob", "b3", 0, false); err == nil {
		t.Fatal("Down did not restore the unique name")
	}
	if n, want := migrate(t, pool), int(latestMigration(t))-8; n != want {
		t.Errorf("Migrate after DownTo(8) applied %d, want %d (9 up to the latest)", n, want)
	}
}

// TestIssuerKeysMigration: migration 00012 adds an issuer's own key source
// (jwks or jwks_url, not both) to rows already present; its Down drops them,
// disabling the issuers that had one (an older bridge would fetch their
// discovery, which may not exist), and Up again takes the rows back.
func TestIssuerKeysMigration(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	ctx := context.Background()
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	provider, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := provider.DownTo(ctx, 11); err != nil {
		t.Fatalf("DownTo(11): %v", err)
	}
	insert := `INSERT INTO issuers (name, url, kind, audiences, enabled) VALUES ($1, $2, 'generic', '{a}', true)`
	for _, name := range []string{"static", "byurl", "plain"} {
		if _, err := pool.Exec(ctx, insert, name, "https://"+name+".example.com"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := provider.UpTo(ctx, 12); err != nil {
		t.Fatalf("UpTo(12): %v", err)
	}
	const set = `{"keys":[{"kty":"EC","crv":"P-256","x":"a","y":"b"}]}`
	for _, q := range []string{
		`UPDATE issuers SET jwks = '` + set + `' WHERE name = 'static'`,
		`UPDATE issuers SET jwks_url = 'https://keys.example.com/jwks' WHERE name = 'byurl'`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var got string
	if err := pool.QueryRow(ctx, `SELECT jwks FROM issuers WHERE name = 'static'`).Scan(&got); err != nil || got != set {
		t.Fatalf("jwks reads back %q, %v", got, err)
	}
	for _, bad := range []string{
		`UPDATE issuers SET jwks_url = 'https://k.example.com/' WHERE name = 'static'`,
		`UPDATE issuers SET jwks = '{"no":"keys"}' WHERE name = 'plain'`,
		`UPDATE issuers SET jwks_url = 'file:///etc/keys' WHERE name = 'plain'`,
	} {
		if _, err := pool.Exec(ctx, bad); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
	if _, err := provider.DownTo(ctx, 11); err != nil {
		t.Fatalf("DownTo(11) with rows: %v", err)
	}
	rows, err := pool.Query(ctx, `SELECT name || ':' || enabled FROM issuers ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	states, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || !slices.Equal(states, []string{"byurl:false", "plain:true", "static:false"}) {
		t.Fatalf("after Down: %v %v", states, err)
	}
	var cols int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.columns
		WHERE table_name = 'issuers' AND column_name IN ('jwks', 'jwks_url')`).Scan(&cols); err != nil || cols != 0 {
		t.Fatalf("columns left after Down: %d %v", cols, err)
	}
	if n, want := migrate(t, pool), int(latestMigration(t))-11; n != want {
		t.Errorf("Migrate after DownTo(11) applied %d, want %d", n, want)
	}
}

// CheckWritable refuses a database that accepts no writes (here a
// read-only session; a standby answers the same through
// pg_is_in_recovery, which test/e2e's TestFailover exercises) and accepts
// a writable one.
func TestCheckWritable(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	if err := database.CheckWritable(context.Background(), open(t, url)); err != nil {
		t.Errorf("a writable database: %v", err)
	}
	if err := database.CheckWritable(context.Background(), open(t, url+"&default_transaction_read_only=on")); !errors.Is(err, database.ErrReadOnly) {
		t.Errorf("a read-only session: %v, want ErrReadOnly", err)
	}
}
