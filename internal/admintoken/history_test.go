package admintoken_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/oidc-bridge/oidc-bridge/internal/admintoken"
	"github.com/oidc-bridge/oidc-bridge/internal/history"
	"github.com/oidc-bridge/oidc-bridge/test/pgtest"
)

var cli = history.Actor{Name: "cli:tester", Source: history.SourceCLI}

func newStore(t *testing.T, pool *pgxpool.Pool, bootstrap, label string) *admintoken.Store {
	t.Helper()
	s, err := admintoken.New(pool, bootstrap, label)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// change is a row of audit.admin_changes.
type change struct {
	Actor, Action, Kind, Name, Source, DBUser string
	Before, After                             map[string]any
	Row                                       string // the whole row as text
}

func changes(t *testing.T, pool *pgxpool.Pool, kind string) []change {
	t.Helper()
	rows, err := pool.Query(context.Background(), `
		SELECT actor, action, kind, name, source, db_user, before, after, c::text
		FROM audit.admin_changes c WHERE kind = $1 ORDER BY id`, kind)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []change
	for rows.Next() {
		var c change
		var b, a []byte
		if err := rows.Scan(&c.Actor, &c.Action, &c.Kind, &c.Name, &c.Source, &c.DBUser, &b, &a, &c.Row); err != nil {
			t.Fatal(err)
		}
		for _, p := range []struct {
			raw []byte
			m   *map[string]any
		}{{b, &c.Before}, {a, &c.After}} {
			if p.raw != nil {
				if err := json.Unmarshal(p.raw, p.m); err != nil {
					t.Fatal(err)
				}
			}
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func dbUser(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var u string
	if err := pool.QueryRow(context.Background(), "SELECT session_user").Scan(&u); err != nil {
		t.Fatal(err)
	}
	return u
}

// Creating and revoking a token each records one history row, in the
// same transaction, naming the actor and the database login, with the
// token's id, name and scopes but never the token or its digest; uses and
// a second revocation record nothing.
func TestHistoryCreateRevoke(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	s := newStore(t, pool, "", "")
	alice := history.Actor{Name: "cli:alice", Source: history.SourceCLI}
	token, info, err := s.Create(ctx, alice, "deploy", []string{"read"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, token); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Revoke(ctx, history.Actor{Name: "cli:bob", Source: history.SourceCLI}, "deploy"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Revoke(ctx, alice, info.ID.String()); err != nil {
		t.Fatal(err)
	}
	got := changes(t, pool, history.KindAdminToken)
	if len(got) != 2 {
		t.Fatalf("%d rows, want create and revoke: %+v", len(got), got)
	}
	user := dbUser(t, pool)
	c, r := got[0], got[1]
	if c.Actor != "cli:alice" || c.Action != "create" || c.Name != "deploy" || c.Source != "cli" || c.DBUser != user ||
		c.Before != nil || c.After["id"] != info.ID.String() || c.After["name"] != "deploy" ||
		len(c.After["scopes"].([]any)) != 1 || c.After["scopes"].([]any)[0] != "read" {
		t.Errorf("create row: %+v", c)
	}
	if r.Actor != "cli:bob" || r.Action != "revoke" || r.Name != "deploy" || r.Source != "cli" || r.DBUser != user ||
		r.Before["revoked_at"] != nil || r.After["revoked_at"] == nil || r.After["id"] != info.ID.String() {
		t.Errorf("revoke row: %+v", r)
	}
	sum := sha256.Sum256([]byte(token))
	for _, row := range got {
		if strings.Contains(row.Row, token) || strings.Contains(row.Row, hex.EncodeToString(sum[:])) ||
			strings.Contains(row.Row, strings.TrimPrefix(token, admintoken.Prefix)) {
			t.Errorf("the token or its digest is in the history: %s", row.Row)
		}
	}
}

// A refused or failed change records nothing, and a change without an
// actor is refused before anything is written.
func TestHistoryNothingOnFailure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	s := newStore(t, pool, "", "")
	if _, _, err := s.Create(ctx, cli, "ops", nil, nil); err == nil {
		t.Fatal("created without scopes")
	}
	if _, _, err := s.Create(ctx, cli, "ops", admintoken.AllScopes(), nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Create(ctx, cli, "ops", admintoken.AllScopes(), nil); !errors.Is(err, admintoken.ErrExists) {
		t.Fatalf("duplicate: %v", err)
	}
	for _, by := range []history.Actor{{}, {Name: "x"}, {Name: "x", Source: "sql"}, {Source: history.SourceCLI}} {
		if _, _, err := s.Create(ctx, by, "other", admintoken.AllScopes(), nil); !errors.Is(err, history.ErrNoActor) {
			t.Errorf("create by %+v: %v", by, err)
		}
		if _, err := s.Revoke(ctx, by, "ops"); !errors.Is(err, history.ErrNoActor) {
			t.Errorf("revoke by %+v: %v", by, err)
		}
	}
	if _, err := s.Revoke(ctx, cli, "nobody"); !errors.Is(err, admintoken.ErrNotFound) {
		t.Fatal(err)
	}
	list, err := s.List(ctx)
	if err != nil || len(list) != 1 || list[0].RevokedAt != nil {
		t.Fatalf("list: %+v %v", list, err)
	}
	if got := changes(t, pool, history.KindAdminToken); len(got) != 1 || got[0].Action != "create" {
		t.Fatalf("rows: %+v", got)
	}
}

// The bootstrap token's principal carries its holder's label.
func TestBootstrapLabel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	p, err := newStore(t, pool, bootstrap, "ops-team@example").Authenticate(ctx, bootstrap)
	if err != nil || p.Name != "bootstrap:ops-team@example" {
		t.Fatalf("labelled: %+v %v", p, err)
	}
	if p, err := newStore(t, pool, bootstrap, "").Authenticate(ctx, bootstrap); err != nil || p.Name != admintoken.BootstrapName {
		t.Fatalf("unlabelled: %+v %v", p, err)
	}
	for _, bad := range []string{"a b", "-x", "x:y", "ä", strings.Repeat("a", 65), "x\n"} {
		if _, err := admintoken.New(pool, bootstrap, bad); !errors.Is(err, admintoken.ErrInvalidLabel) {
			t.Errorf("label %q: %v", bad, err)
		}
	}
}
