package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Selector chooses the issuances Revoke marks. Every field given must
// match (they are ANDed); at least one of Repository, RunID and Mapping is
// required, so that a revocation never reaches the whole ledger by
// accident.
type Selector struct {
	// Repository matches the token's repository (owner/name),
	// case-insensitively as GitHub and GitLab treat names.
	Repository string
	// RunID matches the token's run id (GitHub run_id, GitLab pipeline_id):
	// every job and attempt of the run.
	RunID string
	// Mapping matches the mapping the issuance was made under: the name
	// recorded then, or the current name of that mapping (so that a renamed
	// mapping still reaches its older issuances).
	Mapping string
	// Before, when not zero, keeps to issuances requested before it.
	Before time.Time
}

// RevokedTarget is one distinct target (mapping, provider, target) whose
// credentials Revoke marked.
type RevokedTarget struct {
	Mapping  string
	Provider string
	Target   json.RawMessage
	// Count is the number of rows marked for this target.
	Count int
	// Latest is the latest completed_at of the marked rows (for a pending
	// row, its requested_at): every credential marked for this target was
	// minted at or before it.
	Latest time.Time
}

// RevokeResult is what Revoke marked.
type RevokeResult struct {
	// Count is the number of rows marked.
	Count int
	// RevokedAt is the revocation's time (database clock), recorded in
	// every marked row; the zero time when nothing was marked.
	RevokedAt time.Time
	// Targets are the distinct targets of the marked rows, ordered by
	// mapping, provider and target.
	Targets []RevokedTarget
}

// maxCredentialLife bounds how long any provider's credential lives (the
// longest, jwt's, is 24 h): rows requested longer ago than this cannot hold
// a credential that is still valid. It keeps Revoke's scan to the recent
// partitions.
const maxCredentialLife = 48 * time.Hour

// maxReason bounds a revocation's recorded reason, in bytes.
const maxReason = maxClaim

// revokeSQL marks, in one statement, the rows that were or may have been
// issued (issued, pending, unknown: the outcomes a quota counts), are not
// revoked yet and whose credential has not expired (for pending and unknown
// rows, expires_at is the latest a credential minted for them could
// expire), and that match every selector given; it returns one row per
// distinct target.
const revokeSQL = `
WITH t AS MATERIALIZED (SELECT clock_timestamp() AS n),
m AS MATERIALIZED (SELECT id FROM mappings WHERE name = @mapping::text),
r AS (
	UPDATE issuances i SET revoked_at = t.n, revoked_by = @by, revocation_reason = @reason
	FROM t
	WHERE i.outcome IN ` + countedOutcomes + `
		AND i.revoked_at IS NULL
		AND i.expires_at > t.n
		AND i.requested_at > t.n - make_interval(secs => @max_life::float8)
		AND (@repository::text IS NULL OR lower(i.repository) = lower(@repository::text))
		AND (@run_id::text IS NULL OR i.run_id = @run_id::text)
		AND (@mapping::text IS NULL OR i.mapping = @mapping::text OR i.mapping_id IN (SELECT id FROM m))
		AND (@before::timestamptz IS NULL OR i.requested_at < @before::timestamptz)
	RETURNING i.mapping, i.provider, i.target, coalesce(i.completed_at, i.requested_at) AS minted, i.revoked_at)
SELECT coalesce(mapping, ''), coalesce(provider, ''), target, count(*), max(minted), max(revoked_at)
FROM r
GROUP BY mapping, provider, target
ORDER BY 1, 2, target::text`

// Revoke marks as revoked, by the admin named by and for reason, the
// unexpired credentials of the issuances sel matches, and returns what it
// marked. Rows already revoked, expired, denied or failed are left alone,
// so that a repeated revocation marks nothing more and the first one's
// record stands. It changes the ledger only: the credentials themselves
// stay valid at the cloud until they expire unless the caller revokes them
// there (for AWS, aws.Provider.RevokeSessions for each target).
func (l *Ledger) Revoke(ctx context.Context, sel Selector, by, reason string) (RevokeResult, error) {
	if sel.Repository == "" && sel.RunID == "" && sel.Mapping == "" {
		return RevokeResult{}, fmt.Errorf("%w: revoke needs a repository, run id or mapping", ErrInvalid)
	}
	by, reason = clean(strings.TrimSpace(by), maxClaim), clean(strings.TrimSpace(reason), maxReason)
	if by == "" || reason == "" {
		return RevokeResult{}, fmt.Errorf("%w: revoke needs who and why", ErrInvalid)
	}
	var before any
	if !sel.Before.IsZero() {
		before = sel.Before
	}
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	rows, err := l.pool.Query(ctx, revokeSQL, pgx.NamedArgs{
		"by":         by,
		"reason":     reason,
		"repository": text(sel.Repository, maxClaim),
		"run_id":     text(sel.RunID, maxClaim),
		"mapping":    text(sel.Mapping, maxClaim),
		"before":     before,
		"max_life":   maxCredentialLife.Seconds(),
	})
	if err != nil {
		return RevokeResult{}, dbError("revoke", err)
	}
	var res RevokeResult
	res.Targets, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (RevokedTarget, error) {
		var (
			t      RevokedTarget
			target []byte
			at     time.Time
		)
		if err := r.Scan(&t.Mapping, &t.Provider, &target, &t.Count, &t.Latest, &at); err != nil {
			return t, err
		}
		if target != nil {
			t.Target = json.RawMessage(target)
		}
		res.Count += t.Count
		res.RevokedAt = at
		return t, nil
	})
	if err != nil {
		return RevokeResult{}, dbError("revoke", err)
	}
	return res, nil
}
