package ledger_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/oidc-bridge/oidc-bridge/identity"

	"github.com/oidc-bridge/oidc-bridge/ledger"
	"github.com/oidc-bridge/oidc-bridge/test/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func TestEnsurePartitions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// The ledger runs as the service's runtime role; pool is the owner's.
	runtime, pool := pgtest.NewRuntimePool(t)
	l := ledger.New(runtime)
	months := func() map[string]bool {
		t.Helper()
		rows, err := pool.Query(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
			WHERE i.inhparent = 'issuances'::regclass`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string]bool{}
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
			out[n] = true
		}
		return out
	}
	now := time.Now().UTC()
	name := func(ahead int) string {
		m := time.Date(now.Year(), now.Month()+time.Month(ahead), 1, 0, 0, 0, 0, time.UTC)
		return "issuances_" + m.Format("2006_01")
	}
	got := months()
	for i := 0; i <= 3; i++ {
		if !got[name(i)] {
			t.Errorf("migration did not create %s (have %v)", name(i), got)
		}
	}
	if !got["issuances_default"] {
		t.Error("no default partition")
	}
	for range 2 { // idempotent
		if err := l.EnsurePartitions(ctx, 6); err != nil {
			t.Fatal(err)
		}
	}
	got = months()
	if !got[name(6)] || len(got) != 8 {
		t.Errorf("after EnsurePartitions(6): %v", got)
	}
	// A row of now lands in its month, not in the default partition.
	if _, err := pool.Exec(ctx, `INSERT INTO issuances (id, requested_at, outcome, issuer) VALUES (gen_random_uuid(), now(), 'pending', 'x')`); err != nil {
		t.Fatal(err)
	}
	var part string
	if err := pool.QueryRow(ctx, `SELECT tableoid::regclass::text FROM issuances`).Scan(&part); err != nil {
		t.Fatal(err)
	}
	if part != name(0) {
		t.Errorf("row stored in %s, want %s", part, name(0))
	}
}

func TestRecordAudit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// The ledger runs as the service's runtime role; pool is the owner's.
	runtime, pool := pgtest.NewRuntimePool(t)
	l := ledger.New(runtime)
	a := ledger.Attempt{Claims: &identity.Claims{Issuer: "https://token.actions.githubusercontent.com", JTI: "j1",
		Repository: "acme/web"}, MappingID: 7, Mapping: "shadow", Provider: "aws", Target: json.RawMessage(`{"role_arn":"x"}`)}
	if _, err := l.RecordAudit(ctx, a, true, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := l.RecordAudit(ctx, a, false, "ref"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.RecordAudit(ctx, a, false, ""); !errors.Is(err, ledger.ErrInvalid) {
		t.Fatalf("no reason: %v", err)
	}
	noMapping := a
	noMapping.MappingID = 0
	if _, err := l.RecordAudit(ctx, noMapping, true, ""); !errors.Is(err, ledger.ErrInvalid) {
		t.Fatalf("no mapping: %v", err)
	}
	var rows []string
	r, err := pool.Query(ctx, `SELECT outcome || '/' || coalesce(error_code, '') || '/' || (completed_at IS NOT NULL)::text FROM audit.issuances ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for r.Next() {
		var s string
		if err := r.Scan(&s); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, s)
	}
	if strings.Join(rows, " ") != "would_issue//true would_deny/ref/true" {
		t.Fatalf("rows %v", rows)
	}
	// Neither counts towards a quota.
	u, err := l.Usage(ctx, 7, "shadow", 1, 1)
	if err != nil || u.Issued != 0 {
		t.Fatalf("usage %+v %v", u, err)
	}
}
