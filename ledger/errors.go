package ledger

import (
	"errors"
	"fmt"
	"time"

	"github.com/oidc-bridge/oidc-bridge/internal/dbfail"
)

var (
	// ErrReplayed: the token (its jti, or its SHA-256 without one) was
	// already exchanged: for any mapping, or for this mapping when its
	// issuer's replay_scope is token_mapping. Reserve returns it as a *ReplayError after recording the
	// attempt as denied (error_code token_replayed).
	ErrReplayed = errors.New("ledger: token replayed")
	// ErrQuotaExceeded: a quota of the mapping is spent. Reserve returns it
	// as a *QuotaError after recording the attempt as denied (error_code
	// quota_exceeded).
	ErrQuotaExceeded = errors.New("ledger: quota exceeded")
	// ErrDisabled: the mapping or its issuer was disabled or deleted since
	// the exchange selected it. Reserve returns it as a *DisabledError after
	// recording the attempt as denied.
	ErrDisabled = errors.New("ledger: mapping or issuer disabled")
	// ErrUnavailable: the database could not be reached, timed out, or
	// cannot take the write (disk full, read-only after a failover, a
	// revoked grant). Nothing was recorded, so nothing may be issued: the
	// bridge answers 503.
	ErrUnavailable = errors.New("ledger: database unavailable")
	// ErrNotPending: Complete or Fail found no pending row of the
	// reservation (unknown id, already completed or failed, or swept to
	// unknown).
	ErrNotPending = errors.New("ledger: reservation not pending")
	// ErrRevoked: Complete found the reservation revoked while its
	// credential was being minted. Complete returns it as a *RevokedError
	// after recording the credential (the row is issued, with its
	// credential id, and stays revoked); the credential must not reach the
	// pipeline.
	ErrRevoked = errors.New("ledger: issuance revoked while in flight")
	// ErrInvalid: the caller passed an incomplete or malformed argument
	// (no claims, no jti, no mapping, a non-positive duration, ...).
	ErrInvalid = errors.New("ledger: invalid argument")
)

// The error codes the ledger itself writes into error_code.
const (
	CodeTokenReplayed = "token_replayed"
	CodeQuotaExceeded = "quota_exceeded"
	// CodeNoMatchingMapping and CodeUntrustedIssuer are Reserve's recheck:
	// the mapping, or its issuer, is no longer enabled.
	CodeNoMatchingMapping = "no_matching_mapping"
	CodeUntrustedIssuer   = "untrusted_issuer"
	// CodeAbandoned marks a pending row that Sweep turned unknown: the
	// bridge never recorded the mint's result (a crash, a lost database).
	CodeAbandoned = "abandoned"
	// CodeRevokedInFlight marks an issued row whose credential was minted
	// after an admin revoked the issuance (while it was pending): the
	// credential exists at the cloud but was withheld from the pipeline.
	CodeRevokedInFlight = "revoked_in_flight"
)

// The quotas a QuotaError names.
const (
	QuotaPerHour = "per_hour"
	QuotaPerJob  = "per_job"
)

// ReplayError is Reserve's error for a replayed token. It matches
// ErrReplayed.
type ReplayError struct {
	// IssuanceID is the denied row recorded for this attempt.
	IssuanceID string
}

func (e *ReplayError) Error() string {
	return "ledger: token replayed (issuance " + e.IssuanceID + ")"
}

// Is makes errors.Is(err, ErrReplayed) true.
func (e *ReplayError) Is(target error) bool { return target == ErrReplayed }

func (e *ReplayError) issuanceID() string { return e.IssuanceID }

// DisabledError is Reserve's error for a mapping or issuer found disabled
// (or deleted) at the reservation. It matches ErrDisabled.
type DisabledError struct {
	// Code is CodeNoMatchingMapping (the mapping) or CodeUntrustedIssuer
	// (its issuer): the error_code recorded.
	Code string
	// IssuanceID is the denied row recorded for this attempt.
	IssuanceID string
}

func (e *DisabledError) Error() string {
	return "ledger: " + e.Code + ": the mapping or its issuer is no longer enabled (issuance " + e.IssuanceID + ")"
}

// Is makes errors.Is(err, ErrDisabled) true.
func (e *DisabledError) Is(target error) bool { return target == ErrDisabled }

func (e *DisabledError) issuanceID() string { return e.IssuanceID }

// QuotaError is Reserve's error for a spent quota. It matches
// ErrQuotaExceeded.
type QuotaError struct {
	// Quota is QuotaPerHour or QuotaPerJob.
	Quota string
	// Limit is the quota's configured limit.
	Limit int
	// RetryAfter is when the quota next frees: for per_hour, when the
	// oldest counted issuance of the bucket leaves the sliding hour; for
	// per_job, when the oldest counted issuance of the job leaves JobWindow
	// (in practice: not during this job). At least one second.
	RetryAfter time.Duration
	// IssuanceID is the denied row recorded for this attempt.
	IssuanceID string
}

func (e *QuotaError) Error() string {
	return fmt.Sprintf("ledger: quota %s of %d exceeded, retry after %s (issuance %s)",
		e.Quota, e.Limit, e.RetryAfter.Round(time.Second), e.IssuanceID)
}

// Is makes errors.Is(err, ErrQuotaExceeded) true.
func (e *QuotaError) Is(target error) bool { return target == ErrQuotaExceeded }

func (e *QuotaError) issuanceID() string { return e.IssuanceID }

// RevokedError is Complete's error for a reservation revoked while it was
// being minted. It matches ErrRevoked.
type RevokedError struct {
	// IssuanceID is the row, now issued with its credential id and
	// error_code CodeRevokedInFlight.
	IssuanceID string
	// RevokedAt and RevokedBy are the revocation's time and admin.
	RevokedAt time.Time
	RevokedBy string
}

func (e *RevokedError) Error() string {
	return "ledger: issuance " + e.IssuanceID + " was revoked by " + e.RevokedBy + " at " +
		e.RevokedAt.UTC().Format(time.RFC3339) + " while its credential was minted"
}

// Is makes errors.Is(err, ErrRevoked) true.
func (e *RevokedError) Is(target error) bool { return target == ErrRevoked }

// IssuanceID returns the id of the denied row that a Reserve error carries
// (a *ReplayError or a *QuotaError, possibly wrapped).
func IssuanceID(err error) (string, bool) {
	var d interface{ issuanceID() string }
	if errors.As(err, &d) {
		return d.issuanceID(), true
	}
	return "", false
}

// dbError wraps a database failure of operation op, marking it
// ErrUnavailable when the cause is the database's availability.
func dbError(op string, err error) error {
	return fmt.Errorf("ledger: %s: %w", op, dbfail.Mark(err, ErrUnavailable))
}
