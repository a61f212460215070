package ledger_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/oidc-bridge/oidc-bridge/ledger"
	"github.com/oidc-bridge/oidc-bridge/migrations"
	"github.com/oidc-bridge/oidc-bridge/test/pgtest"
)

// guardRows lists replay_guard as (issuer, key, mapping) triples.
func guardRows(t *testing.T, pool *pgxpool.Pool, keyColumn string) [][3]string {
	t.Helper()
	rows, err := pool.Query(context.Background(),
		`SELECT issuer, `+keyColumn+`, mapping_id::text FROM replay_guard ORDER BY 1, 2, 3`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out [][3]string
	for rows.Next() {
		var r [3]string
		if err := rows.Scan(&r[0], &r[1], &r[2]); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// migrator runs the embedded migrations on pool, up or down.
func migrator(t *testing.T, pool *pgxpool.Pool) *goose.Provider {
	t.Helper()
	db := stdlib.OpenDBFromPool(pool)
	t.Cleanup(func() { db.Close() })
	provider, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	return provider
}

// Migration 00006 moves the replay guard's rows written under the old
// contract (once per mapping) without losing any, and makes every token
// already exchanged refused for every mapping; its Down restores them.
func TestMigrationReplayScope(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	provider := migrator(t, pool)
	if _, err := provider.DownTo(ctx, 5); err != nil {
		t.Fatalf("DownTo(5): %v", err)
	}
	// Under the old contract, token a was exchanged for mappings 1 and 2,
	// token b for mapping 1.
	exp := time.Now().Add(5 * time.Minute)
	if _, err := pool.Exec(ctx, `
		INSERT INTO replay_guard (issuer, token_jti, mapping_id, issuance_id, token_exp) VALUES
			($1, 'jti-a', 1, gen_random_uuid(), $2),
			($1, 'jti-a', 2, gen_random_uuid(), $2 + interval '1 minute'),
			($1, 'jti-b', 1, gen_random_uuid(), $2)`, ghIssuer, exp); err != nil {
		t.Fatal(err)
	}
	if _, err := provider.UpTo(ctx, 6); err != nil {
		t.Fatalf("UpTo(6): %v", err)
	}
	want := [][3]string{
		{ghIssuer, "jti:jti-a", "0"}, {ghIssuer, "jti:jti-a", "1"}, {ghIssuer, "jti:jti-a", "2"},
		{ghIssuer, "jti:jti-b", "0"}, {ghIssuer, "jti:jti-b", "1"},
	}
	if diff := cmp.Diff(want, guardRows(t, pool, "replay_key")); diff != "" {
		t.Errorf("replay_guard after Up (-want +got):\n%s", diff)
	}
	var latest time.Time
	if err := pool.QueryRow(ctx, `SELECT token_exp FROM replay_guard WHERE replay_key = 'jti:jti-a' AND mapping_id = 0`).Scan(&latest); err != nil ||
		!latest.Equal(exp.Add(time.Minute).Truncate(time.Microsecond)) {
		t.Errorf("token row of jti-a expires %v, %v; want the latest of its rows, %v", latest, err, exp.Add(time.Minute))
	}
	if _, err := provider.Up(ctx); err != nil {
		t.Fatalf("Up: %v", err)
	}

	// Both tokens are now refused for every mapping, under either scope
	// for the mappings they were spent for.
	seedCatalog(t, pool)
	l := ledger.New(pool)
	for _, jti := range []string{"jti-a", "jti-b"} {
		c := claims()
		c.JTI = jti
		if err := reserveOn(t, l, attempt(c), 3, 0); !errors.Is(err, ledger.ErrReplayed) {
			t.Errorf("%s on mapping 3 after the migration: %v; want ErrReplayed", jti, err)
		}
	}
	setScope(t, pool, "token_mapping")
	c := claims()
	c.JTI = "jti-b"
	if err := reserveOn(t, l, attempt(c), 1, 0); !errors.Is(err, ledger.ErrReplayed) {
		t.Errorf("jti-b on mapping 1 under token_mapping: %v; want ErrReplayed", err)
	}
	if err := reserveOn(t, l, attempt(c), 2, 0); err != nil {
		t.Errorf("jti-b on mapping 2 under token_mapping: %v", err)
	}
	// A token without jti cannot be written by the old schema: Down drops
	// it with the token rows and keeps every per-mapping row of a jti.
	h := claims()
	h.JTI, h.TokenSHA256 = "", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	if err := reserveOn(t, l, attempt(h), 4, 0); err != nil {
		t.Fatal(err)
	}

	if _, err := provider.DownTo(ctx, 5); err != nil {
		t.Fatalf("DownTo(5): %v", err)
	}
	want = [][3]string{{ghIssuer, "jti-a", "1"}, {ghIssuer, "jti-a", "2"}, {ghIssuer, "jti-b", "1"}, {ghIssuer, "jti-b", "2"}}
	if diff := cmp.Diff(want, guardRows(t, pool, "token_jti")); diff != "" {
		t.Errorf("replay_guard after Down (-want +got):\n%s", diff)
	}
	if _, err := provider.Up(ctx); err != nil {
		t.Fatalf("Up again: %v", err)
	}
}

// Migration 00010 adds requested_mapping to the ledger and, at the end, to
// audit.issuances, which keeps the auditor role's grant; its Down removes
// both and keeps the grant too.
func TestMigrationRequestedMapping(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	provider := migrator(t, pool)
	lastColumn := func() string {
		t.Helper()
		var col string
		if err := pool.QueryRow(ctx, `SELECT attname FROM pg_attribute WHERE attrelid = 'audit.issuances'::regclass
			AND attnum > 0 ORDER BY attnum DESC LIMIT 1`).Scan(&col); err != nil {
			t.Fatal(err)
		}
		return col
	}
	auditorReads := func(query string) error {
		t.Helper()
		return asAuditor(t, pool, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, query)
			return err
		})
	}
	if cols := ledger.AuditViewColumns(); lastColumn() != cols[len(cols)-1] {
		t.Errorf("last column of audit.issuances: %s, want %s", lastColumn(), cols[len(cols)-1])
	}
	if err := auditorReads(`SELECT requested_mapping FROM audit.issuances`); err != nil {
		t.Errorf("auditor reads requested_mapping: %v", err)
	}
	if _, err := provider.DownTo(ctx, 8); err != nil {
		t.Fatalf("DownTo(8): %v", err)
	}
	if got := lastColumn(); got != "revocation_reason" {
		t.Errorf("last column after Down: %s, want revocation_reason", got)
	}
	if err := auditorReads(`SELECT * FROM audit.issuances`); err != nil {
		t.Errorf("auditor reads the view after Down: %v", err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_attribute WHERE attrelid = 'public.issuances'::regclass
		AND attname = 'requested_mapping' AND NOT attisdropped`).Scan(&n); err != nil || n != 0 {
		t.Errorf("issuances.requested_mapping after Down: %d, %v", n, err)
	}
	if _, err := provider.Up(ctx); err != nil {
		t.Fatalf("Up: %v", err)
	}
	if err := auditorReads(`SELECT requested_mapping FROM audit.issuances`); err != nil {
		t.Errorf("auditor reads requested_mapping after Up again: %v", err)
	}
	// The runtime role writes it through its table-level INSERT grant.
	var priv bool
	if err := pool.QueryRow(ctx, `SELECT has_column_privilege(oidc_bridge_runtime_role(), 'public.issuances', 'requested_mapping', 'INSERT')
		AND NOT has_column_privilege(oidc_bridge_runtime_role(), 'public.issuances', 'requested_mapping', 'UPDATE')`).Scan(&priv); err != nil || !priv {
		t.Errorf("runtime role: INSERT but no UPDATE of requested_mapping: %v, %v", priv, err)
	}
}

// Migration 00014 adds downscope to the ledger and, at the end, to
// audit.issuances, keeping the auditor role's grant; its Down removes both
// and keeps the grant too.
func TestMigrationDownscope(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	provider := migrator(t, pool)
	lastColumn := func() string {
		t.Helper()
		var col string
		if err := pool.QueryRow(ctx, `SELECT attname FROM pg_attribute WHERE attrelid = 'audit.issuances'::regclass
			AND attnum > 0 ORDER BY attnum DESC LIMIT 1`).Scan(&col); err != nil {
			t.Fatal(err)
		}
		return col
	}
	auditorReads := func(query string) error {
		t.Helper()
		return asAuditor(t, pool, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, query)
			return err
		})
	}
	if err := auditorReads(`SELECT downscope FROM audit.issuances`); err != nil {
		t.Errorf("auditor reads downscope: %v", err)
	}
	if _, err := provider.DownTo(ctx, 12); err != nil {
		t.Fatalf("DownTo(12): %v", err)
	}
	if got := lastColumn(); got != "requested_mapping" {
		t.Errorf("last column after Down: %s, want requested_mapping", got)
	}
	if err := auditorReads(`SELECT * FROM audit.issuances`); err != nil {
		t.Errorf("auditor reads the view after Down: %v", err)
	}
	if _, err := provider.Up(ctx); err != nil {
		t.Fatalf("Up: %v", err)
	}
	if err := auditorReads(`SELECT downscope FROM audit.issuances`); err != nil {
		t.Errorf("auditor reads downscope after Up again: %v", err)
	}
	var priv bool
	if err := pool.QueryRow(ctx, `SELECT has_column_privilege(oidc_bridge_runtime_role(), 'public.issuances', 'downscope', 'INSERT')
		AND NOT has_column_privilege(oidc_bridge_runtime_role(), 'public.issuances', 'downscope', 'UPDATE')`).Scan(&priv); err != nil || !priv {
		t.Errorf("runtime role: INSERT but no UPDATE of downscope: %v, %v", priv, err)
	}
}
