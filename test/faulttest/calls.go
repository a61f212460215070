package faulttest

import "sync"

// Calls is a fake's record of the calls it received, in the order of their
// answers. A handler records its call when it returns (Record, deferred);
// a dropped request is recorded before its connection closes
// (RecordEarly), so that a client that sees the close finds its call
// there, and the deferred Record then does nothing. The zero value is
// ready to use; it is safe for concurrent use and must not be copied.
type Calls[C any] struct {
	mu    sync.Mutex
	calls []C
	early map[*C]bool // recorded before their handler returned
}

// Record records *c, unless RecordEarly did.
func (l *Calls[C]) Record(c *C) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.early[c] {
		delete(l.early, c)
		return
	}
	l.calls = append(l.calls, *c)
}

// RecordEarly records *c before its handler returns; the handler's Record
// then does nothing.
func (l *Calls[C]) RecordEarly(c *C) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, *c)
	if l.early == nil {
		l.early = map[*C]bool{}
	}
	l.early[c] = true
}

// All returns the calls so far, each copied with clone.
func (l *Calls[C]) All(clone func(C) C) []C {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]C, len(l.calls))
	for i, c := range l.calls {
		out[i] = clone(c)
	}
	return out
}

// Reset forgets the calls so far (a call in flight is still recorded when
// its handler returns).
func (l *Calls[C]) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = nil
}
