package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	// MinRetention is the shortest retention DropPartitionsBefore accepts:
	// a cutoff later than MinRetention before the database's clock is
	// refused, so that a mistake never drops the current months.
	MinRetention = 31 * 24 * time.Hour
	// retentionLockID is the transaction-level advisory lock under which
	// DropPartitionsBefore runs, so that replicas never race on it.
	retentionLockID int64 = 0x6f69_6463_7265_746e // "oidcretn"
	// retentionTimeout bounds one DropPartitionsBefore.
	retentionTimeout = 30 * time.Second
	// retentionLockTimeout bounds the wait for the ledger's table locks:
	// detaching and dropping a partition takes an exclusive lock on
	// issuances, and a long wait would queue the exchanges' inserts behind
	// it. On timeout nothing is dropped; the next run tries again.
	retentionLockTimeout = "3s"
)

// ErrRetentionTooShort is returned for a cutoff later than MinRetention
// before now.
var ErrRetentionTooShort = errors.New("ledger: retention cutoff is less than the minimum retention in the past")

// DropPartitionsBefore detaches and drops the ledger's partitions whose
// whole range ends at or before cutoff, and returns their names (schema
// qualified). It reads each partition's bounds from the catalog
// (pg_get_expr of relpartbound), not from its name; it never drops the
// default partition, a partition without an upper bound, nor one whose
// range reaches past cutoff (which may still hold a row younger than
// cutoff). A cutoff later than MinRetention before the database's clock
// is refused with ErrRetentionTooShort.
//
// Dropping a partition DELETES THE AUDIT HISTORY IT HOLDS: every issuance
// requested before its upper bound, for good. Auditors who need a longer
// history than the retention must archive the partitions first (for
// example pg_dump --table=issuances_2024_01) or leave the retention unset.
//
// The partitions are detached and dropped by ledger_drop_partitions_before,
// a SECURITY DEFINER function of the schema's owner, so that the service's
// database role needs no ownership of the ledger.
//
// All partitions are dropped in one transaction under an advisory lock:
// a replica that finds the lock held returns at once with nothing dropped,
// and the statement's lock waits are bounded (retentionLockTimeout), so a
// long audit query makes the run fail (nothing dropped) rather than block
// the exchanges. It is idempotent.
func (l *Ledger) DropPartitionsBefore(ctx context.Context, cutoff time.Time) (dropped []string, err error) {
	if cutoff.IsZero() {
		return nil, fmt.Errorf("%w: no cutoff", ErrRetentionTooShort)
	}
	ctx, cancel := context.WithTimeout(ctx, retentionTimeout)
	defer cancel()
	err = pgx.BeginFunc(ctx, l.pool, func(tx pgx.Tx) error {
		dropped = nil // a retry of the function starts over
		var got, tooRecent bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1), $2::timestamptz > clock_timestamp() - make_interval(secs => $3::float8)`,
			retentionLockID, cutoff, MinRetention.Seconds()).Scan(&got, &tooRecent); err != nil {
			return dbError("retention: lock", err)
		}
		if tooRecent {
			return fmt.Errorf("%w (cutoff %s, minimum %s)", ErrRetentionTooShort, cutoff.UTC().Format(time.RFC3339), MinRetention)
		}
		if !got {
			return nil // another replica is at it
		}
		if _, err := tx.Exec(ctx, `SELECT set_config('lock_timeout', $1, true)`, retentionLockTimeout); err != nil {
			return dbError("retention: lock timeout", err)
		}
		// The owner's function detaches and drops (the runtime role owns
		// no table; migrations/00007_roles.sql): it reads each partition's
		// bounds from the catalog, and refuses a cutoff within 31 days too.
		rows, err := tx.Query(ctx, `SELECT ledger_drop_partitions_before($1::timestamptz)`, cutoff)
		if err != nil {
			return dbError("retention: drop partitions", err)
		}
		dropped, err = pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return dbError("retention: drop partitions", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return dropped, nil
}
