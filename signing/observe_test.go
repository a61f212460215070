package signing_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/signing"
)

// TestOnRotateAndActiveSince: OnRotate hears every committed promotion,
// by Maintain and by Rotate, and not the bootstrap or a refused Rotate;
// ActiveSince follows the active keys.
func TestOnRotateAndActiveSince(t *testing.T) {
	t.Parallel()
	var (
		mu      sync.Mutex
		rotated []string
	)
	opts := testOptions()
	opts.OnRotate = func(alg string) {
		mu.Lock()
		defer mu.Unlock()
		rotated = append(rotated, alg)
	}
	e := newEnvWith(t, opts)
	ctx := context.Background()
	got := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(rotated)
	}
	start := e.clock.Now().UTC()
	since, err := e.m.ActiveSince(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(since) != 2 || !since[signing.RS256].Equal(start) || !since[signing.ES256].Equal(start) {
		t.Fatalf("ActiveSince after bootstrap = %v, want both at %s", since, start)
	}
	if err := e.m.Rotate(ctx, signing.RotateOptions{Actor: tester}); err == nil || len(got()) != 0 {
		t.Fatalf("a refused Rotate: err %v, OnRotate %v", err, got())
	}
	later := e.clock.Advance(opts.PublishLead).UTC()
	if err := e.m.Rotate(ctx, signing.RotateOptions{Actor: tester, Alg: signing.ES256}); err != nil {
		t.Fatal(err)
	}
	if r := got(); !slices.Equal(r, []string{signing.ES256}) {
		t.Fatalf("OnRotate after Rotate ES256: %v", r)
	}
	since, err = e.m.ActiveSince(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !since[signing.RS256].Equal(start) || !since[signing.ES256].Equal(later) {
		t.Fatalf("ActiveSince after Rotate ES256 = %v", since)
	}
	e.clock.Advance(opts.RotationPeriod)
	maintain(t, e.m)
	r := got()
	slices.Sort(r)
	if !slices.Equal(r, []string{signing.ES256, signing.ES256, signing.RS256}) {
		t.Fatalf("OnRotate after Maintain's scheduled rotation: %v", r)
	}
}
