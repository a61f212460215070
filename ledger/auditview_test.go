package ledger_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/oidc-bridge/oidc-bridge/ledger"
)

// TestAuditView: the migrated database's auditors' view has exactly the
// columns ledger.AuditViewColumns names, in order, and docs/audit.md's
// table of the view documents exactly those, in the same order.
func TestAuditView(t *testing.T) {
	t.Parallel()
	_, pool := newLedger(t)
	schema, name, _ := strings.Cut(ledger.AuditView, ".")
	rows, err := pool.Query(context.Background(), `SELECT column_name::text FROM information_schema.columns
		WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`, schema, name)
	if err != nil {
		t.Fatal(err)
	}
	live, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ledger.AuditViewColumns(), live); diff != "" {
		t.Errorf("%s in the database (-AuditViewColumns +live):\n%s", ledger.AuditView, diff)
	}

	doc, err := os.ReadFile("../docs/audit.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n## `"+ledger.AuditView+"`\n")
	if !ok {
		t.Fatalf("docs/audit.md has no section ## `%s`", ledger.AuditView)
	}
	_, table, ok := strings.Cut(section, "| column | meaning |\n|---|---|\n")
	if !ok {
		t.Fatal("docs/audit.md: the view's section has no table of columns")
	}
	var documented []string
	for line := range strings.Lines(table) {
		if !strings.HasPrefix(line, "| `") {
			break
		}
		col, _, _ := strings.Cut(strings.TrimPrefix(line, "| `"), "`")
		documented = append(documented, col)
	}
	if diff := cmp.Diff(ledger.AuditViewColumns(), documented); diff != "" {
		t.Errorf("docs/audit.md's columns of %s (-AuditViewColumns +documented):\n%s", ledger.AuditView, diff)
	}
}
