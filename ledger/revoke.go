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
	// Latest is the latest completed_at of the marked rows that had
	// settled (issued, unknown) at the revocation: each of their
	// credentials was minted at or before it. For a target with only
	// in-flight rows, it is their latest requested_at.
	Latest time.Time
	// InFlight are the marked rows that were pending at the revocation:
	// their credentials may be minted after it (see Settle), and Complete
	// will withhold them from the pipeline.
	InFlight []Reservation
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
	RETURNING i.id, i.outcome, i.requested_at, i.mapping, i.provider, i.target,
		coalesce(i.completed_at, i.requested_at) AS minted, i.revoked_at)
SELECT coalesce(mapping, ''), coalesce(provider, ''), target, count(*),
	coalesce(max(minted) FILTER (WHERE outcome <> 'pending'), max(minted)), max(revoked_at),
	coalesce(array_agg(id::text ORDER BY requested_at, id) FILTER (WHERE outcome = 'pending'), '{}'),
	coalesce(array_agg(requested_at ORDER BY requested_at, id) FILTER (WHERE outcome = 'pending'), '{}')
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
			ids    []string
			times  []time.Time
		)
		if err := r.Scan(&t.Mapping, &t.Provider, &target, &t.Count, &t.Latest, &at, &ids, &times); err != nil {
			return t, err
		}
		if len(ids) != len(times) {
			return t, fmt.Errorf("revoke: %d in-flight ids for %d times", len(ids), len(times))
		}
		for i, id := range ids {
			t.InFlight = append(t.InFlight, Reservation{ID: id, RequestedAt: times[i]})
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

// settlePoll is how often Settle looks at the in-flight rows again.
const settlePoll = 100 * time.Millisecond

// Settle waits for in-flight reservations (RevokedTarget.InFlight) to stop
// minting and returns the latest time at which any of them may have
// obtained its credential at the cloud (database clock). window is the
// longest a mint may last after its reservation: the bridge's whole
// exchange deadline, which starts before Reserve, so that no credential of
// a reservation is minted after requested_at + window.
//
// A row stops minting when it leaves pending (the bridge records issued,
// failed or unknown only after the cloud answered or the call ended, so its
// completed_at is after any credential's issue) or when requested_at +
// window has passed. The bound of a row is its completed_at, at most
// requested_at + window; the result is the latest bound. Settle returns as
// soon as every row has stopped, hence at most window after the newest
// reservation. If ctx ends first, or the database fails, it returns the
// conservative bound, the latest requested_at + window, with the error: a
// caller that revokes sessions older than the result then still covers
// every credential of the rows.
func (l *Ledger) Settle(ctx context.Context, rs []Reservation, window time.Duration) (time.Time, error) {
	if len(rs) == 0 {
		return time.Time{}, nil
	}
	ids := make([]string, len(rs))
	times := make([]time.Time, len(rs))
	var worst time.Time
	for i, r := range rs {
		if err := r.validate(); err != nil {
			return time.Time{}, fmt.Errorf("ledger: settle: %w", err)
		}
		ids[i], times[i] = r.ID, r.RequestedAt
		if b := r.RequestedAt.Add(window); b.After(worst) {
			worst = b
		}
	}
	for {
		var (
			minting int
			bound   *time.Time
		)
		qctx, cancel := context.WithTimeout(ctx, l.timeout)
		err := l.pool.QueryRow(qctx, `
			SELECT count(*) FILTER (WHERE i.outcome = 'pending'
					AND i.requested_at + make_interval(secs => $3::float8) > clock_timestamp()),
				max(least(coalesce(i.completed_at, 'infinity'), i.requested_at + make_interval(secs => $3::float8)))
			FROM unnest($1::uuid[], $2::timestamptz[]) AS r (id, requested_at)
			JOIN issuances i ON i.id = r.id AND i.requested_at = r.requested_at`,
			ids, times, window.Seconds()).Scan(&minting, &bound)
		cancel()
		if err != nil {
			return worst, dbError("settle", err)
		}
		if minting == 0 {
			if bound == nil {
				// None of the rows is left (a dropped partition): the
				// conservative bound.
				return worst, nil
			}
			return *bound, nil
		}
		t := time.NewTimer(settlePoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return worst, fmt.Errorf("ledger: settle: %w", ctx.Err())
		case <-t.C:
		}
	}
}
