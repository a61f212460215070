package ledger

import (
	"context"
	"fmt"
)

// CodeIndeterminate marks a row that the bridge itself turned unknown: the
// cloud call ended without a clear answer (a timeout or a connection lost
// after the request was sent), so the cloud may have issued a credential
// that never reached the bridge.
const CodeIndeterminate = "indeterminate"

// Indeterminate records that the mint of the reservation may or may not
// have issued (the cloud call ended without an answer after the request was
// sent): pending becomes unknown with error_code indeterminate, at once, so
// auditors see the doubt without waiting for Sweep. The replay guard stays
// claimed (the token is spent: a retry with it could mint a second
// credential), expires_at stays the latest a credential minted for it could
// live, and the row keeps counting against the quotas. If this write fails
// the row stays pending and Sweep marks it unknown (abandoned) later:
// either way it never becomes failed.
func (l *Ledger) Indeterminate(ctx context.Context, r Reservation) error {
	if err := r.validate(); err != nil {
		return fmt.Errorf("ledger: indeterminate: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	tag, err := l.pool.Exec(ctx, `
		UPDATE issuances SET outcome = 'unknown', completed_at = clock_timestamp(), error_code = $3
		WHERE id = $1::uuid AND requested_at = $2 AND outcome = 'pending'`,
		r.ID, r.RequestedAt, CodeIndeterminate)
	if err != nil {
		return dbError("indeterminate "+r.ID, err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("ledger: indeterminate %s: %w", r.ID, ErrNotPending)
	}
	return nil
}
