package bridge

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/oidc-bridge/oidc-bridge/identity"
)

// clientLimiter is a token bucket per key (a client address, an issuer, an
// issuer's repository owner). Its table is bounded: a bucket that has
// refilled to its burst carries no state (a new bucket would be the same),
// so it may be evicted; when every slot holds a bucket still refilling,
// newcomers share one overflow bucket in allow, and blocked refuses them
// (fail closed) until the first bucket has refilled.
type clientLimiter struct {
	limit rate.Limit
	burst int
	max   int
	now   func() time.Time

	mu       sync.Mutex
	buckets  map[string]*rate.Limiter
	overflow *rate.Limiter
	// swept is when the table was last swept, and freeAt when its first
	// remaining bucket will have refilled (when a sweep can next free a
	// slot).
	swept, freeAt time.Time
}

func newClientLimiter(perSecond float64, burst, maxClients int) *clientLimiter {
	return &clientLimiter{
		limit:    rate.Limit(perSecond),
		burst:    burst,
		max:      max(maxClients, 1),
		now:      time.Now,
		buckets:  make(map[string]*rate.Limiter),
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
	lim, ok := l.buckets[client]
	if !ok {
		if full, _ := l.full(now); full {
			lim = l.overflow
		} else {
			lim = rate.NewLimiter(l.limit, l.burst)
			l.buckets[client] = lim
		}
	}
	l.mu.Unlock()
	return take(lim, now)
}

// take spends one token of lim, or says how long until one is there.
func take(lim *rate.Limiter, now time.Time) (bool, time.Duration) {
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

// full reports whether the table has no slot for a newcomer and, if so,
// how long until a sweep can free one. It sweeps when a slot may have
// freed, at most once a second. Called with l.mu held.
func (l *clientLimiter) full(now time.Time) (bool, time.Duration) {
	if len(l.buckets) < l.max {
		return false, 0
	}
	if !now.Before(l.freeAt) && now.Sub(l.swept) >= time.Second {
		l.sweep(now)
	}
	if len(l.buckets) < l.max {
		return false, 0
	}
	return true, max(l.freeAt.Sub(now), time.Second)
}

// sweep drops the buckets that have refilled to their burst and notes when
// the first of the others will have. Called with l.mu held.
func (l *clientLimiter) sweep(now time.Time) {
	l.swept = now
	first := time.Duration(-1)
	for k, b := range l.buckets {
		missing := float64(l.burst) - b.TokensAt(now)
		if missing <= 0 {
			delete(l.buckets, k)
			continue
		}
		d := time.Duration(missing / float64(l.limit) * float64(time.Second))
		if first < 0 || d < first {
			first = d
		}
	}
	l.freeAt = now.Add(max(first, 0))
}

// blocked reports, without spending anything, whether client's bucket is
// empty and for how long it stays so. A client without a bucket is
// blocked while the table is full: otherwise filling the table would
// exempt every newcomer.
func (l *clientLimiter) blocked(client string) (bool, time.Duration) {
	if l == nil || l.limit <= 0 {
		return false, 0
	}
	now := l.now()
	l.mu.Lock()
	b, ok := l.buckets[client]
	if !ok {
		full, wait := l.full(now)
		l.mu.Unlock()
		return full, wait
	}
	l.mu.Unlock()
	if tokens := b.TokensAt(now); tokens < 1 {
		return true, time.Duration((1 - tokens) / float64(l.limit) * float64(time.Second))
	}
	return false, 0
}

// clientKey is the key of a client address in the per-client limiters: an
// IPv4 address as itself (also when written as IPv4-mapped IPv6), an IPv6
// address by its /64, the smallest block a site is normally given, so that
// one host cannot rotate through its 2^64 addresses to escape its bucket or
// fill the table. An address that does not parse is keyed as written.
func clientKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		return netip.PrefixFrom(a, 64).Masked().String()
	}
	return a.String()
}

// issuerAllow applies the limits on verified exchanges: first the bucket of
// the token's issuer and repository owner, then the issuer's ceiling. A
// refusal is 429 rate_limited, with its reason for the log.
func (s *Server) issuerAllow(claims *identity.Claims) error {
	if ok, wait := s.ownerLimiter.allow(ownerKey(claims)); !ok {
		return because("issuer_owner_rate_limit", rateLimited(wait, "too many exchanges for this repository owner; retry later"))
	}
	if ok, wait := s.issuerLimiter.allow(claims.IssuerName); !ok {
		return because("issuer_rate_limit", rateLimited(wait, "too many exchanges for this token's issuer; retry later"))
	}
	return nil
}

// ownerKey is the key of a verified token in the per-owner limiter: its
// issuer's name and the owner of its repository, by immutable id where the
// kind has one (a renamed or re-registered owner name does not move the
// bucket): GitHub's repository_owner_id, GitLab's namespace_id (else
// namespace_path). A generic issuer's token is keyed by its
// repository_owner_id or repository_owner claim when it has one, else by
// its subject: such issuers (Kubernetes, Jenkins, ...) have no common notion
// of an owner, and the subject is the one identity every token carries.
func ownerKey(c *identity.Claims) string {
	owner := "sub:" + c.Subject
	switch {
	case c.RepositoryOwnerID != "":
		owner = "id:" + c.RepositoryOwnerID
	case c.RepositoryOwner != "":
		owner = "name:" + c.RepositoryOwner
	}
	return c.IssuerName + "\x00" + owner
}
