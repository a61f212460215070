package admintoken_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/oidc-bridge/oidc-bridge/internal/admintoken"
	"github.com/oidc-bridge/oidc-bridge/test/pgtest"
)

// TestCheck: a console session's recheck by fingerprint admits a live
// token with its scopes and the bootstrap token, refuses a revoked, an
// expired and an unknown one, and writes nothing (last_used_at stays).
func TestCheck(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	runtime, pool := pgtest.NewRuntimePool(t)
	s := newStore(t, runtime, bootstrap, "")
	token, info, err := s.Create(ctx, cli, "reader", []string{admintoken.ScopeRead}, nil)
	if err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-time.Minute)
	expired, _, err := s.Create(ctx, cli, "old", []string{admintoken.ScopeRead}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE admin_tokens SET expires_at = $1 WHERE name = 'old'`, past); err != nil {
		t.Fatal(err)
	}
	p, err := s.Check(ctx, admintoken.FingerprintOf(token))
	if err != nil || p.Name != "reader" || !p.Can(admintoken.ScopeRead) || p.Can(admintoken.ScopeWrite) {
		t.Fatalf("Check: %+v %v", p, err)
	}
	var used *time.Time
	if err := pool.QueryRow(ctx, `SELECT last_used_at FROM admin_tokens WHERE id = $1`, info.ID).Scan(&used); err != nil || used != nil {
		t.Errorf("Check wrote last_used_at %v (%v)", used, err)
	}
	if p, err := s.Check(ctx, admintoken.FingerprintOf(bootstrap)); err != nil || p.Name != admintoken.BootstrapName {
		t.Errorf("bootstrap: %+v %v", p, err)
	}
	for name, tok := range map[string]string{"expired": expired, "unknown": admintoken.Prefix + "nope", "empty": ""} {
		if _, err := s.Check(ctx, admintoken.FingerprintOf(tok)); !errors.Is(err, admintoken.ErrUnauthorized) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := s.Revoke(ctx, cli, "reader"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Check(ctx, admintoken.FingerprintOf(token)); !errors.Is(err, admintoken.ErrUnauthorized) {
		t.Errorf("revoked: %v", err)
	}
}
