package logtest_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/test/logtest"
)

// Concurrent writers and a reader: every line arrives whole (run with
// -race, which the suite does).
func TestBufferConcurrent(t *testing.T) {
	t.Parallel()
	var b logtest.Buffer
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 100 {
				fmt.Fprintf(&b, "writer %d line %d\n", i, j)
				_ = b.String()
			}
		})
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 800 {
		t.Fatalf("%d lines, want 800", len(lines))
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "writer ") {
			t.Fatalf("torn line %q", l)
		}
	}
}
