// Package faulttest is the fault injection the cloud fakes share (test/ststest,
// test/gcptest, test/entratest): the next n requests fail with a status,
// the next n are dropped without an answer, every later request hangs. Each
// fake keeps its own setters (their documentation says what a failure
// looks like there) and its own order of precedence between the faults;
// Faults holds the counters and spends them, and Calls records the calls,
// a dropped one before its connection closes. It is a test helper: nothing
// of the service imports it.
package faulttest

import (
	"net/http"
	"sync"
)

// Faults is one endpoint's injected faults. The zero value injects none; it
// is safe for concurrent use and must not be copied.
type Faults struct {
	mu     sync.Mutex
	fail   int
	status int
	drop   int
	hang   bool
}

// Fail makes the next n requests fail with status (not 0, which is none).
func (f *Faults) Fail(n, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail, f.status = n, status
}

// Drop makes the next n requests go unanswered, their connections closed
// (DropConnection).
func (f *Faults) Drop(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.drop = n
}

// Hang makes every later request hang, until Reset.
func (f *Faults) Hang() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hang = true
}

// Reset clears every fault.
func (f *Faults) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail, f.status, f.drop, f.hang = 0, 0, 0, false
}

// Hanging reports whether requests hang.
func (f *Faults) Hanging() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hang
}

// TakeFail spends one of Fail's requests: its status, or 0 when none is
// left.
func (f *Faults) TakeFail() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail == 0 {
		return 0
	}
	f.fail--
	return f.status
}

// TakeDrop spends one of Drop's requests: whether this one is dropped.
func (f *Faults) TakeDrop() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.drop == 0 {
		return false
	}
	f.drop--
	return true
}

// Next decides one request's fate, Hang first, then Fail, then Drop: it
// hangs, or fails with status, or is dropped, or none of these. A fault's
// count is spent only by a request it applies to.
func (f *Faults) Next() (hang bool, status int, drop bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.hang:
		return true, 0, false
	case f.fail > 0:
		f.fail--
		return false, f.status, false
	case f.drop > 0:
		f.drop--
		return false, 0, true
	}
	return false, 0, false
}

// DropConnection closes the request's connection without an answer, as a
// network that loses the response; under HTTP/2 it aborts the stream.
func DropConnection(w http.ResponseWriter) {
	if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
		_ = conn.Close()
		return
	}
	panic(http.ErrAbortHandler)
}
