package pgtest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/oidc-bridge/oidc-bridge/internal/database"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func TestNewPoolHasCurrentSchema(t *testing.T) {
	t.Parallel()
	pool := NewPool(t)
	ctx := context.Background()
	if err := database.CheckCurrent(ctx, pool); err != nil {
		t.Fatalf("CheckCurrent: %v", err)
	}
	if _, err := pool.Exec(ctx, "SELECT count(*) FROM mappings"); err != nil {
		t.Fatalf("query mappings: %v", err)
	}
}

func TestDatabasesAreIsolated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := NewPool(t), NewPool(t)
	if _, err := a.Exec(ctx, "INSERT INTO issuers (name, url, kind, audiences) VALUES ('x', 'https://x', 'github', '{a}')"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := b.QueryRow(ctx, "SELECT count(*) FROM issuers").Scan(&n); err != nil || n != 0 {
		t.Fatalf("other database has %d issuers, %v; want 0", n, err)
	}
}

func TestNewEmptyDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, NewEmptyDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var tables int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&tables); err != nil || tables != 0 {
		t.Fatalf("empty database has %d tables, %v; want 0", tables, err)
	}
}

func TestDatabaseDroppedAfterTest(t *testing.T) {
	t.Parallel()
	var url string
	t.Run("user", func(t *testing.T) { url = NewDatabase(t) })
	ctx := context.Background()
	_, err := pgx.Connect(ctx, url)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "3D000" { // invalid_catalog_name
		t.Fatalf("connect to the database of a finished test: %v; want it dropped", err)
	}
}

func TestManyDatabases(t *testing.T) {
	t.Parallel()
	for i := range 20 {
		t.Run("db", func(t *testing.T) {
			t.Parallel()
			pool := NewPool(t)
			if _, err := pool.Exec(context.Background(), "INSERT INTO admin_tokens (id, name, token_hash) VALUES (gen_random_uuid(), 'n', sha256('x'))"); err != nil {
				t.Fatalf("database %d: %v", i, err)
			}
		})
	}
}

func TestDatabaseName(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, test string
		n          int64
		want       string
	}{
		{name: "plain", test: "TestX", n: 1, want: "t1_testx"},
		{name: "subtest", test: "TestX/Sub_Case#01", n: 12, want: "t12_testx_sub_case_01"},
		{name: "long", test: strings.Repeat("A", 100), n: 3, want: "t3_" + strings.Repeat("a", 60)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := databaseName(tt.test, tt.n); got != tt.want {
				t.Errorf("databaseName(%q, %d) = %q, want %q", tt.test, tt.n, got, tt.want)
			}
		})
	}
}

func TestMainCleansUpWhenTestsFail(t *testing.T) {
	if os.Getenv("PGTEST_FAILING_CHILD") == "1" {
		NewDatabase(t)
		t.Fatalf("cluster folder: %s: failing on purpose", get(t).dir)
	}
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-test.run=^TestMainCleansUpWhenTestsFail$")
	cmd.Env = append(os.Environ(), "PGTEST_FAILING_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the failing child passed:\n%s", out)
	}
	m := regexp.MustCompile(`cluster folder: (\S+): failing on purpose`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("the child did not fail as planned: %v\n%s", err, out)
	}
	if _, err := os.Stat(string(m[1])); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cluster folder %s still there after the failing run: %v", m[1], err)
	}
}
