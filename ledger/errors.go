package ledger

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
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

// unavailableError marks a database failure that is the database's state,
// not the request's: it matches both ErrUnavailable and its cause.
type unavailableError struct{ err error }

func (e *unavailableError) Error() string   { return "database unavailable: " + e.err.Error() }
func (e *unavailableError) Unwrap() []error { return []error{ErrUnavailable, e.err} }

// dbError wraps a database failure of operation op, marking it
// ErrUnavailable when the cause is the database's availability.
func dbError(op string, err error) error {
	if unavailable(err) {
		err = &unavailableError{err: err}
	}
	return fmt.Errorf("ledger: %s: %w", op, err)
}

// unavailable reports whether err means the database cannot serve the
// ledger right now, as opposed to a bug or a cancelled request.
func unavailable(err error) bool {
	if errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return false // the caller gave up; nobody is waiting for a 503
	}
	if errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		if len(pgErr.Code) != 5 {
			return false
		}
		switch pgErr.Code[:2] {
		case "08", // connection exception
			"40", // serialization failure, deadlock: transient
			"53", // insufficient resources: disk full, out of memory, too many connections
			"57", // operator intervention: shutdown, cannot connect now, query cancelled
			"58": // system error: I/O
			return true
		}
		switch pgErr.Code {
		case "25006", // read-only transaction: a failover left us on a standby
			"42501", // insufficient privilege: the ledger cannot write, so nothing may be issued
			"55P03": // lock not available (lock_timeout)
			return true
		}
		return false
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	if errors.As(err, &connectErr) || errors.As(err, &netErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return true
	}
	// pgxpool reports a closed pool and pgconn a dead connection with
	// unexported errors; SafeToRetry marks errors raised before anything
	// reached the server.
	if pgconn.SafeToRetry(err) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "closed pool") || strings.Contains(msg, "conn closed")
}
