package ledger

import (
	"context"
	"time"
)

const (
	// GuardRetention is how long a replay_guard row outlives its token's
	// expiry before Sweep prunes it. Verification refuses expired tokens
	// (within a leeway of minutes), so an expired token's guard protects
	// nothing; the margin absorbs clock skew.
	GuardRetention = time.Hour
	// sweepBatch bounds the rows one statement of Sweep touches, so that a
	// backlog (after an outage) never makes one long transaction.
	sweepBatch = 1000
	// HourRetention is how long the mappings page's hourly counters
	// (mapping_hours) are kept; it reads the last OutcomeHours.
	HourRetention = 48 * time.Hour
)

// Sweep marks unknown (error_code abandoned) the pending issuances whose
// expires_at has passed: the bridge reserved them and perhaps minted, but
// never recorded the result (a crash between mint and record), so any
// credential minted for them has expired by now. The ledger thus never
// hides an issuance behind a row that stays pending. Sweep also prunes the
// replay guard of tokens expired more than GuardRetention ago, and the
// per_hour quota's per-minute buckets older than two windows (no count
// reads them after one), and the hourly outcome counters older than
// HourRetention.
//
// It reads the small partial index of pending rows and the guard's expiry
// index. Several replicas may run it at once: each row is marked by one of
// them (SKIP LOCKED, and the update rechecks that the row is still
// pending), and a concurrent Complete or Fail either wins or finds the row
// no longer pending. It returns the number of rows it marked.
func (l *Ledger) Sweep(ctx context.Context) (marked int, err error) {
	for {
		n, err := l.sweepBatch(ctx, `
			WITH s AS (
				SELECT id, requested_at FROM issuances
				WHERE outcome = 'pending' AND expires_at < clock_timestamp()
				LIMIT $1
				FOR UPDATE SKIP LOCKED)
			UPDATE issuances i SET outcome = 'unknown', completed_at = clock_timestamp(), error_code = $2
			FROM s
			WHERE i.id = s.id AND i.requested_at = s.requested_at AND i.outcome = 'pending'`,
			sweepBatch, CodeAbandoned)
		if err != nil {
			return marked, dbError("sweep pending", err)
		}
		marked += n
		if n < sweepBatch {
			break
		}
	}
	for {
		n, err := l.sweepBatch(ctx, `
			DELETE FROM replay_guard WHERE ctid = ANY (ARRAY(
				SELECT ctid FROM replay_guard
				WHERE token_exp < clock_timestamp() - make_interval(secs => $2::float8)
				LIMIT $1))
			AND token_exp < clock_timestamp() - make_interval(secs => $2::float8)`,
			sweepBatch*10, GuardRetention.Seconds())
		if err != nil {
			return marked, dbError("prune replay guard", err)
		}
		if n < sweepBatch*10 {
			break
		}
	}
	for {
		n, err := l.sweepBatch(ctx, `
			DELETE FROM quota_minutes WHERE ctid = ANY (ARRAY(
				SELECT ctid FROM quota_minutes
				WHERE minute < clock_timestamp() - make_interval(secs => $2::float8)
				LIMIT $1))
			AND minute < clock_timestamp() - make_interval(secs => $2::float8)`,
			sweepBatch*10, 2*Window.Seconds())
		if err != nil {
			return marked, dbError("prune quota buckets", err)
		}
		if n < sweepBatch*10 {
			break
		}
	}
	for {
		n, err := l.sweepBatch(ctx, `
			DELETE FROM mapping_hours WHERE ctid = ANY (ARRAY(
				SELECT ctid FROM mapping_hours
				WHERE hour < clock_timestamp() - make_interval(secs => $2::float8)
				LIMIT $1))
			AND hour < clock_timestamp() - make_interval(secs => $2::float8)`,
			sweepBatch*10, HourRetention.Seconds())
		if err != nil {
			return marked, dbError("prune hourly counters", err)
		}
		if n < sweepBatch*10 {
			return marked, nil
		}
	}
}

// sweepBatch runs one statement of Sweep under its own deadline.
func (l *Ledger) sweepBatch(ctx context.Context, sql string, args ...any) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	tag, err := l.pool.Exec(ctx, sql, args...)
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}
