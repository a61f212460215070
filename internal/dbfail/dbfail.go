// Package dbfail tells a database's unavailability (down, unreachable,
// overloaded, read-only after a failover, out of privileges) from other
// failures, for the packages that own a Postgres store (ledger, mapping,
// signing, admintoken): each marks such failures with its own
// ErrUnavailable sentinel, so that callers (the bridge's error table) branch
// on sentinels and never on pgx's error types.
package dbfail

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// Mark returns err marked with sentinel when err is the database's
// unavailability: the result matches both sentinel and err with errors.Is.
// Any other error (nil included) is returned as it is.
func Mark(err, sentinel error) error {
	if err == nil || !Unavailable(err) {
		return err
	}
	return &unavailableError{sentinel: sentinel, err: err}
}

type unavailableError struct{ sentinel, err error }

func (e *unavailableError) Error() string   { return "database unavailable: " + e.err.Error() }
func (e *unavailableError) Unwrap() []error { return []error{e.sentinel, e.err} }

// Unavailable reports whether err means the database cannot serve right
// now, as opposed to a bug, a refused statement or a cancelled request.
func Unavailable(err error) bool {
	if errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return false // the caller gave up; nobody is waiting for a 503
	}
	// A connection that could not be made is unavailability whatever the
	// server said (a database not accepting connections answers 55000).
	var connectErr *pgconn.ConnectError
	if errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) || errors.As(err, &connectErr) {
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
	var netErr net.Error
	if errors.As(err, &netErr) ||
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
