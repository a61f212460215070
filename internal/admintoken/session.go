package admintoken

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/oidc-bridge/oidc-bridge/internal/dbfail"
)

// Fingerprint identifies an admin token without being it: its SHA-256, what
// the admin_tokens table keeps. A console session holds the fingerprint of
// the token it was opened with (in the server's memory, never in a cookie),
// so that each of its requests can ask whether that token still holds.
type Fingerprint [32]byte

// FingerprintOf returns token's Fingerprint.
func FingerprintOf(token string) Fingerprint { return Fingerprint(digest(token)) }

// Check returns the principal of the token whose fingerprint is f while it
// is neither revoked nor expired (ErrUnauthorized otherwise). Unlike
// Authenticate it only reads: it does not touch last_used_at, so that a
// read-only console that checks its session's token on every page changes
// nothing.
func (s *Store) Check(ctx context.Context, f Fingerprint) (Principal, error) {
	if s.bootstrap != nil && subtle.ConstantTimeCompare(f[:], s.bootstrap) == 1 {
		return Principal{Name: s.bootstrapName, Scopes: AllScopes()}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var p Principal
	err := s.pool.QueryRow(ctx, `
		SELECT name, scopes FROM admin_tokens
		WHERE token_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())`, f[:]).Scan(&p.Name, &p.Scopes)
	if errors.Is(err, pgx.ErrNoRows) {
		return Principal{}, ErrUnauthorized
	}
	if err != nil {
		return Principal{}, fmt.Errorf("admintoken: check: %w", dbfail.Mark(err, ErrUnavailable))
	}
	return p, nil
}
