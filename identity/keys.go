package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// issuerState is the per-issuer cache: discovery document and keys. It exists
// only for issuers the IssuerSource returned, so its number is bounded by the
// registry, and unknown kids never add entries to it.
type issuerState struct {
	url string

	mu sync.Mutex
	// name is the registered issuer's name, for Config.OnFetch; refreshed
	// at every lookup, since an issuer may be renamed.
	name string
	// disc is the last good discovery document; discErr the last failure and
	// discErrAt when it happened (failures are cached for KeyRefreshInterval).
	disc      *discovery
	discErr   *Error
	discErrAt time.Time

	// keys are the usable keys of the last good JWKS, by kid.
	keys        map[string][]jose.JSONWebKey
	keysFetched time.Time // last successful fetch
	lastAttempt time.Time // last fetch, successful or not
	fetching    bool      // a JWKS fetch is in flight
	jwksErr     error     // last fetch error, nil after a success

	// source is where the keys come from (useSource): discovery, a
	// jwks_url (sourceURL) or a static set (sourceSet). gen counts its
	// changes, so that a fetch started for an older source does not store
	// its result.
	source    string
	sourceURL string
	sourceSet []byte
	gen       uint64
	// static is true when keys hold the issuer's static set: nothing is
	// fetched, and an unknown kid is refused at once.
	static bool
}

func (v *Verifier) issuerState(iss Issuer) *issuerState {
	v.mu.Lock()
	s := v.issuers[iss.URL]
	if s == nil {
		s = &issuerState{url: iss.URL}
		v.issuers[iss.URL] = s
	}
	v.mu.Unlock()
	s.mu.Lock()
	s.name = iss.Name
	s.mu.Unlock()
	return s
}

// observe reports a finished fetch to Config.OnFetch.
func (v *Verifier) observe(kind string, s *issuerState, start time.Time, err error) {
	if v.cfg.OnFetch == nil {
		return
	}
	s.mu.Lock()
	name := s.name
	s.mu.Unlock()
	v.cfg.OnFetch(Fetch{Kind: kind, Issuer: name, Err: err, Duration: time.Since(start)})
}

// cachedDiscovery returns the cached answer when no fetch is due: a fresh
// document, or a recent failure (with the stale document, if the failure was
// an outage and one is cached).
func (v *Verifier) cachedDiscovery(s *issuerState, now time.Time) (*discovery, *Error, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.disc != nil && now.Sub(s.disc.fetched) < v.cfg.CacheTTL {
		return s.disc, nil, true
	}
	if s.discErr != nil && now.Sub(s.discErrAt) < v.cfg.KeyRefreshInterval {
		if s.disc != nil && errors.Is(s.discErr, ErrUnavailable) {
			return s.disc, nil, true
		}
		return nil, s.discErr, true
	}
	return nil, nil, false
}

type discoveryResult struct {
	d *discovery
	e *Error
}

// discovery returns the issuer's discovery document, fetching it when the
// cache has none or it is older than CacheTTL. Concurrent fetches for one
// issuer are shared. A failed refresh for an outage keeps the stale document;
// a refresh that returns a document we refuse drops it.
func (v *Verifier) discovery(ctx context.Context, s *issuerState) (*discovery, *Error) {
	if d, e, ok := v.cachedDiscovery(s, v.cfg.Now()); ok {
		return d, e
	}
	s.mu.Lock()
	gen := s.gen
	s.mu.Unlock()
	ch := v.flights.DoChan(fmt.Sprintf("discovery\x00%s\x00%d", s.url, gen), func() (any, error) {
		if d, e, ok := v.cachedDiscovery(s, v.cfg.Now()); ok {
			return discoveryResult{d, e}, nil
		}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), v.client.Timeout)
		defer cancel()
		start := time.Now()
		d, e := v.fetchDiscovery(fctx, s.url)
		if e != nil {
			v.observe(FetchDiscovery, s, start, e)
		} else {
			v.observe(FetchDiscovery, s, start, nil)
		}
		now := v.cfg.Now()
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.gen != gen {
			// The issuer's key source changed meanwhile: keep nothing.
			return discoveryResult{d, e}, nil
		}
		if e != nil {
			v.cfg.Logger.Warn("identity: discovery failed", "issuer", s.url, "reason", e.Reason, "error", e.Err)
			s.discErr, s.discErrAt = e, now
			if errors.Is(e, ErrUnavailable) && s.disc != nil {
				return discoveryResult{s.disc, nil}, nil
			}
			s.disc = nil
			return discoveryResult{nil, e}, nil
		}
		v.cfg.Logger.Debug("identity: discovery fetched", "issuer", s.url, "jwks_uri", d.jwksURI, "algs", d.algs)
		d.fetched = now
		s.disc, s.discErr = d, nil
		return discoveryResult{d, nil}, nil
	})
	select {
	case r := <-ch:
		dr := r.Val.(discoveryResult)
		return dr.d, dr.e
	case <-ctx.Done():
		return nil, &Error{Reason: ReasonDiscoveryUnavailable, Err: fmt.Errorf("identity: waiting for discovery: %w", ctx.Err())}
	}
}

// candidates returns the cached keys a token with this alg and kid may be
// verified with. Without a kid every compatible key is a candidate.
func (s *issuerState) candidates(alg, kid string, hasKID bool) []jose.JSONWebKey {
	var out []jose.JSONWebKey
	if hasKID {
		for _, k := range s.keys[kid] {
			if keyFits(alg, k) {
				out = append(out, k)
			}
		}
		return out
	}
	for _, ks := range s.keys {
		for _, k := range ks {
			if keyFits(alg, k) {
				out = append(out, k)
			}
		}
	}
	return out
}

// keysFor returns the keys to try for a token. An unknown kid, or a JWKS
// older than CacheTTL, triggers a fetch, but at most one per
// KeyRefreshInterval per issuer however many tokens ask, and concurrent
// askers share it. Keys survive failed fetches.
func (v *Verifier) keysFor(ctx context.Context, s *issuerState, d *discovery, alg, kid string, hasKID bool) ([]jose.JSONWebKey, *Error) {
	now := v.cfg.Now()
	s.mu.Lock()
	cands := s.candidates(alg, kid, hasKID)
	stale := s.keys == nil || now.Sub(s.keysFetched) >= v.cfg.CacheTTL
	mayFetch := s.lastAttempt.IsZero() || now.Sub(s.lastAttempt) >= v.cfg.KeyRefreshInterval
	fetching := s.fetching
	static, gen := s.static, s.gen
	s.mu.Unlock()

	// Join a fetch in flight rather than fail for want of keys it is about
	// to bring; start one only when the interval allows. A static set is
	// never fetched.
	if static || (len(cands) > 0 && !stale) || (!mayFetch && !fetching) {
		return v.keysResult(s, cands, kid)
	}

	ch := v.flights.DoChan(fmt.Sprintf("jwks\x00%s\x00%d", s.url, gen), func() (any, error) {
		now := v.cfg.Now()
		s.mu.Lock()
		if s.gen != gen {
			s.mu.Unlock()
			return nil, nil // the key source changed: the next token fetches anew
		}
		if !s.lastAttempt.IsZero() && now.Sub(s.lastAttempt) < v.cfg.KeyRefreshInterval {
			s.mu.Unlock()
			return nil, nil // another fetch just finished
		}
		s.lastAttempt = now
		s.fetching = true
		s.mu.Unlock()

		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), v.client.Timeout)
		defer cancel()
		start := time.Now()
		keys, err := v.fetchJWKS(fctx, d.jwksURI)
		v.observe(FetchJWKS, s, start, err)

		s.mu.Lock()
		defer s.mu.Unlock()
		if s.gen != gen {
			return nil, nil // fetched for a source the issuer no longer has
		}
		s.fetching = false
		if err != nil {
			v.cfg.Logger.Warn("identity: JWKS fetch failed; keeping cached keys", "issuer", s.url, "error", err)
			s.jwksErr = err
			return nil, nil
		}
		v.cfg.Logger.Debug("identity: JWKS fetched", "issuer", s.url, "keys", len(keys))
		s.keys, s.keysFetched, s.jwksErr = keys, now, nil
		return nil, nil
	})
	select {
	case <-ch:
	case <-ctx.Done():
		return nil, &Error{Reason: ReasonJWKSUnavailable, Err: fmt.Errorf("identity: waiting for JWKS: %w", ctx.Err())}
	}
	s.mu.Lock()
	cands = s.candidates(alg, kid, hasKID)
	s.mu.Unlock()
	return v.keysResult(s, cands, kid)
}

func (v *Verifier) keysResult(s *issuerState, cands []jose.JSONWebKey, kid string) ([]jose.JSONWebKey, *Error) {
	if len(cands) > 0 {
		return cands, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keys == nil {
		err := s.jwksErr
		if err == nil {
			err = errors.New("identity: no JWKS fetched yet")
		}
		return nil, &Error{Reason: ReasonJWKSUnavailable, Err: err}
	}
	return nil, fail(ReasonUnknownKey, "no usable key with kid %s", quote(kid))
}

// fetchJWKS fetches and parses a JWKS, keeping only keys fit for verifying
// signatures: RSA (2048 bits or more) or ECDSA P-256/384/521 public keys
// whose use, key_ops and alg do not exclude it. Keys go-jose cannot parse are
// skipped rather than failing the set, as RFC 7517 §5 asks.
func (v *Verifier) fetchJWKS(ctx context.Context, u string) (map[string][]jose.JSONWebKey, error) {
	body, ferr := v.get(ctx, u)
	if ferr != nil {
		return nil, ferr
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("identity: JWKS at %s: %w", u, err)
	}
	keys := make(map[string][]jose.JSONWebKey)
	n := 0
	for _, raw := range set.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			v.cfg.Logger.Debug("identity: skipping unparsable JWKS key", "jwks_uri", u, "error", err)
			continue
		}
		var extra struct {
			KeyOps []string `json:"key_ops"`
		}
		_ = json.Unmarshal(raw, &extra)
		if !keyUsable(k, extra.KeyOps) {
			v.cfg.Logger.Debug("identity: skipping unusable JWKS key", "jwks_uri", u, "kid", quote(k.KeyID))
			continue
		}
		keys[k.KeyID] = append(keys[k.KeyID], k)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("identity: JWKS at %s has no usable keys", u)
	}
	return keys, nil
}

func keyUsable(k jose.JSONWebKey, ops []string) bool {
	if k.Use != "" && k.Use != "sig" {
		return false
	}
	if ops != nil && !slices.Contains(ops, "verify") {
		return false
	}
	if k.Algorithm != "" && !asymmetricAlgs[k.Algorithm] {
		return false
	}
	if len(k.KeyID) > maxKIDLen {
		return false
	}
	switch pub := k.Key.(type) {
	case *rsa.PublicKey:
		return pub.N.BitLen() >= 2048
	case *ecdsa.PublicKey:
		return curveAlg(pub.Curve) != ""
	}
	return false // private keys, symmetric keys, Ed25519, ...
}

func curveAlg(c elliptic.Curve) string {
	switch c {
	case elliptic.P256():
		return "ES256"
	case elliptic.P384():
		return "ES384"
	case elliptic.P521():
		return "ES512"
	}
	return ""
}

// keyFits reports whether k may verify a signature made with alg: the key's
// own alg (when it names one) must be alg, and its type must be alg's.
func keyFits(alg string, k jose.JSONWebKey) bool {
	if k.Algorithm != "" && k.Algorithm != alg {
		return false
	}
	switch pub := k.Key.(type) {
	case *rsa.PublicKey:
		return alg[0] == 'R' || alg[0] == 'P'
	case *ecdsa.PublicKey:
		return curveAlg(pub.Curve) == alg
	}
	return false
}

// checkSignature verifies the token's signature against the issuer's JWKS
// only: the keys its alg and kid select (keysFor), never a key the token
// names or carries.
func (v *Verifier) checkSignature(ctx context.Context, s *issuerState, d *discovery, tok *parsedToken) *Error {
	keys, e := v.keysFor(ctx, s, d, tok.alg, tok.kid, tok.hasKID)
	if e != nil {
		return e
	}
	for _, key := range keys {
		if verifySignature(tok.alg, key.Key, tok.signingInput, tok.signature) {
			return nil
		}
	}
	return fail(ReasonBadSignature, "signature does not verify with the issuer's key %s", quote(tok.kid))
}
