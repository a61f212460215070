package bridge

import (
	"fmt"
	"testing"
	"time"

	"github.com/oidc-bridge/oidc-bridge/identity"
)

// fakeClock is a settable clock for the limiters.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func testLimiter(perSecond float64, burst, size int) (*clientLimiter, *fakeClock) {
	clk := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := newClientLimiter(perSecond, burst, size)
	l.now = clk.now
	return l, clk
}

// TestLimiterFullTableBlocksNewcomers: once the failure table is full,
// a client that is not in it is blocked (it used to pass: filling the table
// exempted everyone new), until a bucket has refilled and can be evicted.
func TestLimiterFullTableBlocksNewcomers(t *testing.T) {
	// The admin limiter's shape: burst 10, one token per 5 s.
	l, clk := testLimiter(adminFailureRate, adminFailureBurst, 3)
	for i := range 3 {
		l.allow(fmt.Sprintf("198.51.100.%d", i)) // one failure each
	}
	if b, _ := l.blocked("198.51.100.0"); b {
		t.Fatal("a client with budget left is blocked")
	}
	b, wait := l.blocked("203.0.113.7")
	if !b {
		t.Fatal("a newcomer passed a full table")
	}
	if wait < time.Second || wait > 5*time.Second {
		t.Errorf("Retry-After %v, want up to the first refill (5 s)", wait)
	}
	// A newcomer's failure goes to the shared overflow bucket, never into
	// the table.
	for range 20 {
		l.allow("203.0.113.7")
	}
	if len(l.buckets) != 3 {
		t.Fatalf("table grew to %d", len(l.buckets))
	}
	// Once a bucket has refilled it carries nothing and is evicted: the
	// newcomer gets a slot.
	clk.advance(5*time.Second + time.Millisecond)
	if b, _ := l.blocked("203.0.113.7"); b {
		t.Fatal("still blocked after the table's buckets refilled")
	}
	// A flood that keeps every slot busy keeps newcomers out only while it
	// keeps failing: each entry must fail again within 5 s.
	l2, clk2 := testLimiter(adminFailureRate, adminFailureBurst, 2)
	l2.allow("a")
	clk2.advance(3 * time.Second)
	l2.allow("b")
	if b, _ := l2.blocked("c"); !b {
		t.Fatal("newcomer passed a full table")
	}
	clk2.advance(2*time.Second + time.Millisecond) // a has refilled, b not
	if b, _ := l2.blocked("c"); b {
		t.Fatal("newcomer blocked though a slot could be freed")
	}
}

// TestLimiterAllowOverflow: the per-client limiter never grows beyond its
// size; newcomers to a full table share one bucket.
func TestLimiterAllowOverflow(t *testing.T) {
	l, _ := testLimiter(1, 2, 2)
	l.allow("a")
	l.allow("b")
	ok1, _ := l.allow("c")
	ok2, _ := l.allow("d")
	ok3, _ := l.allow("e")
	if !ok1 || !ok2 || ok3 {
		t.Fatalf("overflow bucket: %v %v %v, want true true false", ok1, ok2, ok3)
	}
	if len(l.buckets) != 2 {
		t.Fatalf("table grew to %d", len(l.buckets))
	}
}

func TestClientKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"192.0.2.1", "192.0.2.1"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", "2001:db8:1:3::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"not an address", "not an address"},
	} {
		if got := clientKey(tc.in); got != tc.want {
			t.Errorf("clientKey(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestOwnerKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		c    identity.Claims
		want string
	}{
		{"github by owner id", identity.Claims{IssuerName: "gh", Kind: identity.KindGitHub, RepositoryOwner: "acme", RepositoryOwnerID: "42", Subject: "repo:acme/web:ref:refs/heads/main"}, "gh\x00id:42"},
		{"gitlab by namespace id", identity.Claims{IssuerName: "gl", Kind: identity.KindGitLab, RepositoryOwner: "grp/sub", RepositoryOwnerID: "7"}, "gl\x00id:7"},
		{"gitlab without namespace id", identity.Claims{IssuerName: "gl", Kind: identity.KindGitLab, RepositoryOwner: "grp/sub"}, "gl\x00name:grp/sub"},
		{"generic by subject", identity.Claims{IssuerName: "k8s", Kind: identity.KindGeneric, Subject: "system:serviceaccount:ci:deployer"}, "k8s\x00sub:system:serviceaccount:ci:deployer"},
	} {
		if got := ownerKey(&tc.c); got != tc.want {
			t.Errorf("%s: ownerKey = %q, want %q", tc.name, got, tc.want)
		}
	}
}
