package bridge

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"

	"github.com/oidc-bridge/oidc-bridge/providers"
)

// Circuit breaker defaults: after breakerFailures consecutive failures of a
// cloud (not refusals: it answered), its mints fail fast for breakerCooldown,
// then one probe decides whether it is back.
const (
	defaultBreakerFailures = 5
	defaultBreakerCooldown = 30 * time.Second
)

// breakers holds a circuit breaker per provider, so that a dead cloud makes
// exchanges fail fast with 502 provider_error (CircuitOpen, with
// Retry-After: the cooldown's remaining time) instead of each one holding
// a request, a database reservation and a connection for the whole mint
// deadline.
type breakers map[string]*breaker

type breaker struct {
	cb       *gobreaker.CircuitBreaker[providers.Credential]
	cooldown time.Duration
	opened   atomic.Int64 // when the circuit last opened, Unix nanoseconds
}

func newBreakers(names []string, failures int, cooldown time.Duration, open *prometheus.GaugeVec) breakers {
	b := make(breakers, len(names))
	for _, name := range names {
		open.WithLabelValues(name).Set(0)
		br := &breaker{cooldown: cooldown}
		br.cb = gobreaker.NewCircuitBreaker[providers.Credential](gobreaker.Settings{
			Name:        name,
			MaxRequests: 1,
			Interval:    time.Minute,
			Timeout:     cooldown,
			ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= uint32(failures) },
			IsSuccessful: func(err error) bool {
				// Only a failing cloud counts: a refusal is an answer, and a
				// request the client gave up on says nothing about the cloud.
				return err == nil || !errors.Is(err, providers.ErrUnavailable) || errors.Is(err, context.Canceled)
			},
			OnStateChange: func(name string, _, to gobreaker.State) {
				v := 0.0
				if to == gobreaker.StateOpen {
					v = 1
					br.opened.Store(time.Now().UnixNano())
				}
				open.WithLabelValues(name).Set(v)
			},
		})
		b[name] = br
	}
	return b
}

// mint runs f through the provider's breaker; while it is open, f is not
// called and the answer is a definite (not indeterminate) failure whose
// RetryAfter is what remains of the cooldown (at least a second: the probe
// is let through once it has passed, and only one at a time).
func (b breakers) mint(provider string, f func() (providers.Credential, error)) (providers.Credential, error) {
	br, ok := b[provider]
	if !ok {
		return f()
	}
	cred, err := br.cb.Execute(f)
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		wait := time.Until(time.Unix(0, br.opened.Load()).Add(br.cooldown))
		return providers.Credential{}, &providers.Error{Provider: provider, Code: "CircuitOpen", Err: providers.ErrUnavailable,
			RetryAfter: max(wait, time.Second)}
	}
	return cred, err
}
