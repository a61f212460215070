package identity

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oidc-bridge/oidc-bridge/test/oidctest"
)

// t0 is the fake clock's start: the iat of the sample claim sets.
var t0 = time.Unix(1795712400, 0)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// memSource is an in-memory IssuerSource.
type memSource struct {
	mu      sync.Mutex
	issuers map[string]Issuer
	err     error
	calls   atomic.Int64
}

func (m *memSource) IssuerByURL(_ context.Context, url string) (Issuer, error) {
	m.calls.Add(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return Issuer{}, m.err
	}
	iss, ok := m.issuers[url]
	if !ok {
		return Issuer{}, ErrIssuerNotFound
	}
	return iss, nil
}

func (m *memSource) add(iss Issuer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.issuers == nil {
		m.issuers = make(map[string]Issuer)
	}
	m.issuers[iss.URL] = iss
}

// env is one local issuer registered in a source, and a verifier over it,
// all on one fake clock.
type env struct {
	clock *fakeClock
	iss   *oidctest.Issuer
	src   *memSource
	v     *Verifier
}

type envOpt struct {
	kind Kind
	// kindLimits leaves the issuer's age and lifetime limits to its kind's
	// defaults; otherwise they are the 6h ceiling, the bounds the tests of
	// the time rules probe.
	kindLimits bool
	issuer     []oidctest.Option
	config     func(*Config)
}

func newEnv(t testing.TB, o envOpt) *env {
	t.Helper()
	clk := newClock()
	iss := oidctest.New(t, append([]oidctest.Option{oidctest.WithClock(clk.Now)}, o.issuer...)...)
	kind := o.kind
	if kind == "" {
		kind = KindGitHub
	}
	src := &memSource{}
	is := Issuer{Name: "test-" + string(kind), URL: iss.URL(), Kind: kind, Audiences: []string{oidctest.DefaultAudience}, Enabled: true}
	if !o.kindLimits {
		is.MaxTokenAge, is.MaxTokenLifetime = MaxTokenLimit, MaxTokenLimit
	}
	src.add(is)
	cfg := Config{AllowInsecureIssuers: true, Now: clk.Now, HTTPClient: iss.Client()}
	if o.config != nil {
		o.config(&cfg)
	}
	return &env{clock: clk, iss: iss, src: src, v: NewVerifier(cfg, src)}
}

// sample reads a claim set of oidctest.ClaimSets, as the issuer would send
// it at t0.
func sample(t testing.TB, name string, issuerURL string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(oidctest.ClaimSet(name)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	delete(m, "_about")
	m["iss"] = issuerURL
	return m
}

// rawOf decodes claims the way Claims.Raw holds them.
func rawOf(t testing.TB, claims map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// checkErr asserts err matches sentinel and carries reason.
func checkErr(t testing.TB, err error, sentinel error, reason string) {
	t.Helper()
	if err == nil {
		t.Fatalf("Verify succeeded, want %v (%s)", sentinel, reason)
	}
	if !errors.Is(err, sentinel) {
		t.Errorf("error %v does not match %v", err, sentinel)
	}
	for _, other := range []error{ErrInvalidToken, ErrUntrustedIssuer, ErrUnavailable} {
		if other != sentinel && errors.Is(err, other) {
			t.Errorf("error %v also matches %v", err, other)
		}
	}
	if got := Reason(err); got != reason {
		t.Errorf("reason = %q, want %q (error: %v)", got, reason, err)
	}
}
