package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrCredentialNotFound: no issued credential has that id.
var ErrCredentialNotFound = errors.New("ledger: no issued credential with that id")

// IssuedCredential is the ledger row of an issued credential, found by its
// credential id (a bearer token's providers.TokenID) when its holder hands
// it back at the job's end.
type IssuedCredential struct {
	IssuanceID string
	Mapping    string
	Provider   string
	Target     json.RawMessage
	ExpiresAt  time.Time
	// RevokedAt is the zero time while the row is not revoked.
	RevokedAt time.Time
}

// FindCredential returns the issued row of credentialID, of provider,
// requested within the longest credential life (the recent partitions
// only). A token's id names one row: a collision of 64-bit hash prefixes
// between two live tokens of one provider is not expected, and the newest
// row wins.
func (l *Ledger) FindCredential(ctx context.Context, provider, credentialID string) (IssuedCredential, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	var (
		c       IssuedCredential
		revoked *time.Time
	)
	err := l.pool.QueryRow(ctx, `
		SELECT id::text, coalesce(mapping, ''), coalesce(provider, ''), target, expires_at, revoked_at
		FROM issuances
		WHERE credential_id = $1 AND provider = $2 AND outcome = 'issued'
			AND requested_at > clock_timestamp() - make_interval(secs => $3::float8)
		ORDER BY requested_at DESC LIMIT 1`, credentialID, provider, maxCredentialLife.Seconds()).
		Scan(&c.IssuanceID, &c.Mapping, &c.Provider, &c.Target, &c.ExpiresAt, &revoked)
	if errors.Is(err, pgx.ErrNoRows) {
		return IssuedCredential{}, fmt.Errorf("%w: %s", ErrCredentialNotFound, credentialID)
	}
	if err != nil {
		return IssuedCredential{}, dbError("find credential", err)
	}
	if revoked != nil {
		c.RevokedAt = revoked.UTC()
	}
	c.ExpiresAt = c.ExpiresAt.UTC()
	return c, nil
}

// MarkCredentialRevoked records the revocation of the issued row
// issuanceID by by for reason, unless it is revoked already, and returns
// its revoked_at: the first revocation's time either way.
func (l *Ledger) MarkCredentialRevoked(ctx context.Context, issuanceID, by, reason string) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	var at time.Time
	err := l.pool.QueryRow(ctx, `
		WITH u AS (
			UPDATE issuances SET revoked_at = clock_timestamp(), revoked_by = $2, revocation_reason = $3
			WHERE id = $1::uuid AND revoked_at IS NULL
				AND requested_at > clock_timestamp() - make_interval(secs => $4::float8)
			RETURNING revoked_at)
		SELECT revoked_at FROM u
		UNION ALL
		SELECT revoked_at FROM issuances WHERE id = $1::uuid AND revoked_at IS NOT NULL
			AND requested_at > clock_timestamp() - make_interval(secs => $4::float8)
		LIMIT 1`, issuanceID, clean(by, maxClaim), clean(reason, maxReason), maxCredentialLife.Seconds()).Scan(&at)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, fmt.Errorf("%w: issuance %s", ErrCredentialNotFound, issuanceID)
	}
	if err != nil {
		return time.Time{}, dbError("mark credential revoked", err)
	}
	return at.UTC(), nil
}
