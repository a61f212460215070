package admintoken_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/oidc-bridge/oidc-bridge/internal/admintoken"
	"github.com/oidc-bridge/oidc-bridge/test/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

const bootstrap = "0123456789abcdef0123456789abcdef-boot"

func TestLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// The store runs as the service's runtime role; pool is the owner's.
	runtime, pool := pgtest.NewRuntimePool(t)
	s := newStore(t, runtime, bootstrap, "")

	token, info, err := s.Create(ctx, cli, "ops", admintoken.AllScopes(), nil)
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
	if p, err := s.Authenticate(ctx, token); err != nil || p.Name != "ops" || !p.Can(admintoken.ScopeRead) || !p.Can(admintoken.ScopeWrite) {
		t.Fatalf("authenticate: %+v %v", p, err)
	}
	if p, err := s.Authenticate(ctx, bootstrap); err != nil || p.Name != admintoken.BootstrapName ||
		!p.Can(admintoken.ScopeRead) || !p.Can(admintoken.ScopeWrite) {
		t.Fatalf("bootstrap: %+v %v", p, err)
	}
	if _, _, err := s.Create(ctx, cli, "ops", admintoken.AllScopes(), nil); !errors.Is(err, admintoken.ErrExists) {
		t.Fatalf("duplicate: %v", err)
	}
	for _, bad := range []string{"", "Ops", "bootstrap", "a b", strings.Repeat("a", 65), "-x", "ä"} {
		if _, _, err := s.Create(ctx, cli, bad, admintoken.AllScopes(), nil); !errors.Is(err, admintoken.ErrInvalidName) {
			t.Errorf("name %q: %v", bad, err)
		}
	}
	list, err := s.List(ctx)
	if err != nil || len(list) != 1 || list[0].LastUsedAt == nil || list[0].RevokedAt != nil ||
		list[0].ExpiresAt != nil || !slices.Equal(list[0].Scopes, []string{"read", "write"}) {
		t.Fatalf("list: %+v %v", list, err)
	}
	// Revoke by id; revoking again is fine; by name works too.
	if _, err := s.Revoke(ctx, cli, info.ID.String()); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Revoke(ctx, cli, "ops"); err != nil || r.RevokedAt == nil {
		t.Fatalf("revoke again: %+v %v", r, err)
	}
	if _, err := s.Authenticate(ctx, token); !errors.Is(err, admintoken.ErrUnauthorized) {
		t.Fatalf("revoked token: %v", err)
	}
	if _, err := s.Revoke(ctx, cli, "nobody"); !errors.Is(err, admintoken.ErrNotFound) {
		t.Fatalf("revoke unknown: %v", err)
	}
}

// TestReuseRevokedName: a revoked token's name may be given to a new token;
// the name then means the new token (revoke, not the old one), and a name
// held by a token not revoked stays refused.
func TestReuseRevokedName(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	runtime, _ := pgtest.NewRuntimePool(t)
	s := newStore(t, runtime, "", "")

	old, oldInfo, err := s.Create(ctx, cli, "alice", admintoken.AllScopes(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Revoke(ctx, cli, "alice"); err != nil {
		t.Fatal(err)
	}
	tok, info, err := s.Create(ctx, cli, "alice", []string{admintoken.ScopeRead}, nil)
	if err != nil {
		t.Fatalf("create with a revoked token's name: %v", err)
	}
	if info.ID == oldInfo.ID {
		t.Fatal("the same id")
	}
	if _, _, err := s.Create(ctx, cli, "alice", admintoken.AllScopes(), nil); !errors.Is(err, admintoken.ErrExists) ||
		!strings.Contains(err.Error(), "not revoked") {
		t.Fatalf("a third alice while one is active: %v", err)
	}
	if p, err := s.Authenticate(ctx, tok); err != nil || p.Name != "alice" || p.Can(admintoken.ScopeWrite) {
		t.Fatalf("new alice: %+v %v", p, err)
	}
	if _, err := s.Authenticate(ctx, old); !errors.Is(err, admintoken.ErrUnauthorized) {
		t.Fatalf("old alice: %v", err)
	}
	// By name, revoke finds the token that is not revoked.
	r, err := s.Revoke(ctx, cli, "alice")
	if err != nil || r.ID != info.ID || r.RevokedAt == nil {
		t.Fatalf("revoke alice: %+v %v", r, err)
	}
	if _, err := s.Authenticate(ctx, tok); !errors.Is(err, admintoken.ErrUnauthorized) {
		t.Fatalf("revoked new alice: %v", err)
	}
	// Both revoked: by name, the newest; by id, that one.
	if r, err := s.Revoke(ctx, cli, "alice"); err != nil || r.ID != info.ID {
		t.Fatalf("revoke alice again: %+v %v", r, err)
	}
	if r, err := s.Revoke(ctx, cli, oldInfo.ID.String()); err != nil || r.ID != oldInfo.ID {
		t.Fatalf("revoke by id: %+v %v", r, err)
	}
	list, err := s.List(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "alice" || list[1].Name != "alice" {
		t.Fatalf("list: %+v %v", list, err)
	}
}

func TestAuthenticateRefuses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// The store runs as the service's runtime role.
	runtime, _ := pgtest.NewRuntimePool(t)
	s := newStore(t, runtime, bootstrap, "")
	token, _, err := s.Create(ctx, cli, "ci", admintoken.AllScopes(), nil)
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
	none := newStore(t, runtime, "", "")
	if _, err := none.Authenticate(ctx, bootstrap); !errors.Is(err, admintoken.ErrUnauthorized) {
		t.Errorf("bootstrap accepted without being configured: %v", err)
	}
}

func TestScopes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// The store runs as the service's runtime role; pool is the owner's.
	runtime, pool := pgtest.NewRuntimePool(t)
	s := newStore(t, runtime, "", "")
	tests := []struct {
		name    string
		scopes  []string
		want    []string
		wantErr string // the ScopeError's Scope; "-" for none
	}{
		{"read", []string{"read"}, []string{"read"}, "-"},
		{"write", []string{"write"}, []string{"write"}, "-"},
		{"both, canonical order, no duplicates", []string{"write", "read", "write"}, []string{"read", "write"}, "-"},
		{"none", nil, nil, ""},
		{"empty list", []string{}, nil, ""},
		{"unknown", []string{"read", "admin"}, nil, "admin"},
		{"case matters", []string{"Read"}, nil, "Read"},
		{"empty scope", []string{""}, nil, ""},
	}
	for i, tt := range tests {
		name := "t" + string(rune('a'+i))
		_, info, err := s.Create(ctx, cli, name, tt.scopes, nil)
		if tt.wantErr != "-" {
			var se *admintoken.ScopeError
			if !errors.As(err, &se) || se.Scope != tt.wantErr {
				t.Errorf("%s: error %v, want a ScopeError on %q", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if diff := cmp.Diff(tt.want, info.Scopes); diff != "" {
			t.Errorf("%s: scopes (-want +got):\n%s", tt.name, diff)
		}
	}
	// Only the valid ones were stored, with the scopes read back as made.
	list, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, i := range list {
		got[i.Name] = i.Scopes
	}
	if diff := cmp.Diff(map[string][]string{"ta": {"read"}, "tb": {"write"}, "tc": {"read", "write"}}, got); diff != "" {
		t.Fatalf("stored scopes (-want +got):\n%s", diff)
	}

	read, _, err := s.Create(ctx, cli, "reader", []string{"read"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Authenticate(ctx, read)
	if err != nil || p.Name != "reader" || !p.Can(admintoken.ScopeRead) || p.Can(admintoken.ScopeWrite) || p.Can("") {
		t.Fatalf("read token: %+v %v", p, err)
	}
	// The database refuses scopes the package would refuse.
	for _, bad := range []string{`{}`, `{admin}`, `{read,admin}`} {
		if _, err := pool.Exec(ctx, `UPDATE admin_tokens SET scopes = $1::text[] WHERE name = 'reader'`, bad); err == nil {
			t.Errorf("database accepted scopes %s", bad)
		}
	}
}

func TestExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// The store runs as the service's runtime role; pool is the owner's.
	runtime, pool := pgtest.NewRuntimePool(t)
	s := newStore(t, runtime, "", "")
	for _, past := range []time.Time{time.Now().Add(-time.Second), time.Now().Add(-24 * time.Hour)} {
		if _, _, err := s.Create(ctx, cli, "old", admintoken.AllScopes(), &past); !errors.Is(err, admintoken.ErrExpiryInPast) {
			t.Fatalf("expiry %v: %v", past, err)
		}
	}
	exp := time.Now().Add(time.Hour)
	token, info, err := s.Create(ctx, cli, "temp", []string{"write"}, &exp)
	if err != nil {
		t.Fatal(err)
	}
	if info.ExpiresAt == nil || !info.ExpiresAt.Equal(exp.Truncate(time.Microsecond)) || info.Expired(time.Now()) || !info.Expired(exp) {
		t.Fatalf("info %+v", info)
	}
	if p, err := s.Authenticate(ctx, token); err != nil || p.Name != "temp" {
		t.Fatalf("unexpired token: %+v %v", p, err)
	}
	list, err := s.List(ctx)
	if err != nil || len(list) != 1 || list[0].ExpiresAt == nil || !list[0].ExpiresAt.Equal(*info.ExpiresAt) {
		t.Fatalf("list: %+v %v", list, err)
	}
	// Expiry is judged by the database's clock.
	if _, err := pool.Exec(ctx, `UPDATE admin_tokens SET expires_at = now() - interval '1 second' WHERE name = 'temp'`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, token); !errors.Is(err, admintoken.ErrUnauthorized) {
		t.Fatalf("expired token: %v", err)
	}
	// The bootstrap token never expires.
	boot := newStore(t, runtime, bootstrap, "")
	if p, err := boot.Authenticate(ctx, bootstrap); err != nil || p.Name != admintoken.BootstrapName {
		t.Fatalf("bootstrap: %+v %v", p, err)
	}
}

func TestPrincipalCan(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		scopes []string
		scope  string
		want   bool
	}{
		{"read holds read", []string{"read"}, "read", true},
		{"read lacks write", []string{"read"}, "write", false},
		{"write implies read", []string{"write"}, "read", true},
		{"write holds write", []string{"write"}, "write", true},
		{"both", admintoken.AllScopes(), "write", true},
		{"none", nil, "read", false},
		{"empty scope", admintoken.AllScopes(), "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := (admintoken.Principal{Name: "x", Scopes: tt.scopes}).Can(tt.scope); got != tt.want {
				t.Fatalf("Can(%q) = %v", tt.scope, got)
			}
		})
	}
}

// TestAuthenticateUnavailable: with the database down a token cannot be
// checked; that is ErrUnavailable (the bridge's 503), not ErrUnauthorized.
func TestAuthenticateUnavailable(t *testing.T) {
	s, err := admintoken.New(pgtest.RefusingPool(t), "", "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Authenticate(context.Background(), admintoken.Prefix+"abcdefghijklmnopqrstuvwxyz0123456789")
	if !errors.Is(err, admintoken.ErrUnavailable) || errors.Is(err, admintoken.ErrUnauthorized) {
		t.Errorf("Authenticate with the database down: %v, want ErrUnavailable", err)
	}
}
