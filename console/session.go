package console

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/oidc-bridge/oidc-bridge/internal/admintoken"
)

// CookieName is the console's session cookie.
const CookieName = "oidc_bridge_console"

// DefaultSessionTTL is a session's lifetime from sign-in: short, since a
// session outlives nothing but its token's revocation.
const DefaultSessionTTL = 30 * time.Minute

// maxSessions bounds the sessions a replica keeps; the oldest go first.
const maxSessions = 10_000

// session is what the server keeps of a signed-in person: the name of
// their admin token and its fingerprint, to recheck it on every request.
type session struct {
	name        string
	fingerprint admintoken.Fingerprint
	expires     time.Time
}

// sessions is this replica's session table, keyed by the SHA-256 of the
// cookie's random id (a memory dump shows no usable id).
type sessions struct {
	mu sync.Mutex
	m  map[[32]byte]session
}

func newSessions() *sessions { return &sessions{m: map[[32]byte]session{}} }

func sessionKey(id string) [32]byte { return sha256.Sum256([]byte(id)) }

// open stores s and returns the cookie's value: 32 random bytes.
func (ss *sessions) open(s session, now time.Time) string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	id := base64.RawURLEncoding.EncodeToString(b[:])
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(ss.m) >= maxSessions {
		for k, v := range ss.m {
			if !now.Before(v.expires) {
				delete(ss.m, k)
			}
		}
		for k := range ss.m { // still full: drop any
			if len(ss.m) < maxSessions {
				break
			}
			delete(ss.m, k)
		}
	}
	ss.m[sessionKey(id)] = s
	return id
}

// get returns the live session of id.
func (ss *sessions) get(id string, now time.Time) (session, bool) {
	if id == "" {
		return session{}, false
	}
	k := sessionKey(id)
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.m[k]
	if ok && !now.Before(s.expires) {
		delete(ss.m, k)
		return session{}, false
	}
	return s, ok
}

func (ss *sessions) end(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, sessionKey(id))
}

// failures limits failed sign-ins per client address, as the admin API
// limits failed authentications: a burst, then one every few seconds.
type failures struct {
	mu sync.Mutex
	m  map[string]*rate.Limiter
}

const (
	failureRate  = 0.2
	failureBurst = 10
	maxClients   = 100_000
)

func clientOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (f *failures) limiter(client string) *rate.Limiter {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil || len(f.m) >= maxClients {
		f.m = map[string]*rate.Limiter{}
	}
	l := f.m[client]
	if l == nil {
		l = rate.NewLimiter(failureRate, failureBurst)
		f.m[client] = l
	}
	return l
}

// blocked reports whether client has no failure left to spend.
func (f *failures) blocked(client string) bool { return f.limiter(client).Tokens() < 1 }

// failed spends one of client's failures.
func (f *failures) failed(client string) { f.limiter(client).Allow() }
