package bridge

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// clientLimiter is the pre-authentication limiter: a token bucket per client
// address, checked before any token is parsed, so that floods of junk cost
// little and cannot exhaust another client's budget. Its table is bounded:
// idle buckets are evicted, and when every slot is busy the newcomers share
// one overflow bucket rather than growing memory.
type clientLimiter struct {
	limit rate.Limit
	burst int
	max   int
	idle  time.Duration
	now   func() time.Time

	mu       sync.Mutex
	buckets  map[string]*bucket
	overflow *rate.Limiter
	swept    time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

func newClientLimiter(perSecond float64, burst, maxClients int) *clientLimiter {
	return &clientLimiter{
		limit:    rate.Limit(perSecond),
		burst:    burst,
		max:      maxClients,
		idle:     2 * time.Minute,
		now:      time.Now,
		buckets:  make(map[string]*bucket),
		overflow: rate.NewLimiter(rate.Limit(perSecond), burst),
	}
}

// allow reports whether client may make a request now and, if not, how
// long until it may.
func (l *clientLimiter) allow(client string) (bool, time.Duration) {
	if l == nil || l.limit <= 0 {
		return true, 0
	}
	now := l.now()
	l.mu.Lock()
	b, ok := l.buckets[client]
	if !ok {
		if len(l.buckets) >= l.max && now.Sub(l.swept) > time.Second {
			l.sweep(now)
		}
		if len(l.buckets) < l.max {
			b = &bucket{lim: rate.NewLimiter(l.limit, l.burst)}
			l.buckets[client] = b
		}
	}
	lim := l.overflow
	if b != nil {
		b.seen = now
		lim = b.lim
	}
	l.mu.Unlock()
	r := lim.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Second
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// sweep drops buckets idle for longer than l.idle. Called with l.mu held.
func (l *clientLimiter) sweep(now time.Time) {
	l.swept = now
	for k, b := range l.buckets {
		if now.Sub(b.seen) > l.idle {
			delete(l.buckets, k)
		}
	}
}

// blocked reports, without spending anything, whether client's bucket is
// empty and for how long it stays so. A client without a bucket is not
// blocked.
func (l *clientLimiter) blocked(client string) (bool, time.Duration) {
	if l == nil || l.limit <= 0 {
		return false, 0
	}
	now := l.now()
	l.mu.Lock()
	b, ok := l.buckets[client]
	l.mu.Unlock()
	if !ok {
		return false, 0
	}
	if tokens := b.lim.TokensAt(now); tokens < 1 {
		return true, time.Duration((1 - tokens) / float64(l.limit) * float64(time.Second))
	}
	return false, 0
}
