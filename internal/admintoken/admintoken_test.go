package admintoken_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/internal/admintoken"
	"github.com/oidc-bridge/oidc-bridge/test/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

const bootstrap = "0123456789abcdef0123456789abcdef-boot"

func TestLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	s := admintoken.New(pool, bootstrap)

	token, info, err := s.Create(ctx, "ops")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(token, admintoken.Prefix) || len(token) < 40 || info.Name != "ops" {
		t.Fatalf("token %q info %+v", token, info)
	}
	// Only the digest is stored: the token appears nowhere in the table.
	var stored int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM admin_tokens WHERE token_hash::text LIKE '%' || $1 || '%' OR name = $1`, token).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != 0 {
		t.Fatal("the token is stored in clear")
	}
	if name, err := s.Authenticate(ctx, token); err != nil || name != "ops" {
		t.Fatalf("authenticate: %q %v", name, err)
	}
	if name, err := s.Authenticate(ctx, bootstrap); err != nil || name != admintoken.BootstrapName {
		t.Fatalf("bootstrap: %q %v", name, err)
	}
	if _, _, err := s.Create(ctx, "ops"); !errors.Is(err, admintoken.ErrExists) {
		t.Fatalf("duplicate: %v", err)
	}
	for _, bad := range []string{"", "Ops", "bootstrap", "a b", strings.Repeat("a", 65), "-x", "ä"} {
		if _, _, err := s.Create(ctx, bad); !errors.Is(err, admintoken.ErrInvalidName) {
			t.Errorf("name %q: %v", bad, err)
		}
	}
	list, err := s.List(ctx)
	if err != nil || len(list) != 1 || list[0].LastUsedAt == nil || list[0].RevokedAt != nil {
		t.Fatalf("list: %+v %v", list, err)
	}
	// Revoke by id; revoking again is fine; by name works too.
	if _, err := s.Revoke(ctx, info.ID.String()); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Revoke(ctx, "ops"); err != nil || r.RevokedAt == nil {
		t.Fatalf("revoke again: %+v %v", r, err)
	}
	if _, err := s.Authenticate(ctx, token); !errors.Is(err, admintoken.ErrUnauthorized) {
		t.Fatalf("revoked token: %v", err)
	}
	if _, err := s.Revoke(ctx, "nobody"); !errors.Is(err, admintoken.ErrNotFound) {
		t.Fatalf("revoke unknown: %v", err)
	}
}

func TestAuthenticateRefuses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	s := admintoken.New(pool, bootstrap)
	token, _, err := s.Create(ctx, "ci")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", bootstrap[:len(bootstrap)-1], bootstrap + "x", strings.ToUpper(bootstrap),
		token[:len(token)-1], token + "A", admintoken.Prefix, strings.Repeat("a", 10000)} {
		if _, err := s.Authenticate(ctx, bad); !errors.Is(err, admintoken.ErrUnauthorized) {
			t.Errorf("token %.40q: %v", bad, err)
		}
	}
	// Without a bootstrap token configured, nothing is the bootstrap.
	none := admintoken.New(pool, "")
	if _, err := none.Authenticate(ctx, bootstrap); !errors.Is(err, admintoken.ErrUnauthorized) {
		t.Errorf("bootstrap accepted without being configured: %v", err)
	}
}
