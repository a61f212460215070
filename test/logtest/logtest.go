// Package logtest holds Buffer, the writer that tests (and the demo) give
// to a logger or a child process and read while it still writes. It is a
// test helper: nothing of the service imports it.
package logtest

import (
	"bytes"
	"sync"
)

// Buffer collects what concurrent writers write; String reads it at any
// time. The zero value is ready to use; a Buffer must not be copied.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p; it never fails.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
