package signing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/oidc-bridge/oidc-bridge/internal/dbfail"
)

// Defaults of Options.
const (
	DefaultRotationPeriod   = 30 * 24 * time.Hour
	DefaultPublishLead      = time.Hour
	DefaultRetiredRetention = 24 * time.Hour
)

// Fixed timings of a Manager.
const (
	// KeyCacheTTL is how long a Manager signs with its cached active key
	// before re-reading which key is active: the longest a replica keeps
	// signing with a key another replica has retired. (A Manager's own
	// rotations take effect at once.)
	KeyCacheTTL = 30 * time.Second
	// JWKSCacheTTL is how long JWKS serves its cached key set.
	JWKSCacheTTL = 5 * time.Second
	// LastUseInterval: a Manager records a key's last use at most once per
	// LastUseInterval (one UPDATE per key), never per signature.
	LastUseInterval = time.Minute
	// RetentionMargin is added to RetiredRetention: the recorded last use
	// of a key may trail its real last use by up to about LastUseInterval
	// plus the Maintain period (a replica that died before recording).
	RetentionMargin = 2 * time.Minute
)

const (
	// queryTimeout bounds every single query.
	queryTimeout = 5 * time.Second
	// lockedTimeout bounds a state change: waiting for the advisory lock,
	// generating keys, writing them.
	lockedTimeout = 30 * time.Second
)

// Key states, as stored and as KeyInfo.State shows them.
const (
	StateNext    = "next"
	StateActive  = "active"
	StateRetired = "retired"
)

// algs are the algorithms a Manager keeps keys for.
var algs = [...]string{RS256, ES256}

// markUnavailable marks *err ErrUnavailable when it is the database's
// unavailability (dbfail.Unavailable), as the ledger marks its own.
func markUnavailable(err *error) { *err = dbfail.Mark(*err, ErrUnavailable) }

// Algorithms returns the algorithms a Manager keeps keys for.
func Algorithms() []string { return slices.Clone(algs[:]) }

var (
	// ErrNoActiveKey means no key of the alg is active: Maintain (which New
	// runs) creates one.
	ErrNoActiveKey = errors.New("signing: no active key")
	// ErrUnavailable: the database cannot serve the keys right now (down,
	// unreachable, overloaded, read-only after a failover).
	ErrUnavailable = errors.New("signing: database unavailable")
	// ErrUnsupportedAlg means an alg other than RS256 and ES256.
	ErrUnsupportedAlg = errors.New("signing: unsupported algorithm")
)

// Options configure a Manager. Zero durations take their defaults.
type Options struct {
	// Issuer is the bridge's public URL (BRIDGE_PUBLIC_URL), http or https;
	// a trailing slash is removed. Required.
	Issuer string
	// RotationPeriod is how long a key stays active before Maintain
	// promotes the next one. Default 30 days.
	RotationPeriod time.Duration
	// PublishLead is how long a new key is published in the JWKS before it
	// may sign, so that verifiers caching the JWKS know it first. Default
	// 1 hour; must be shorter than RotationPeriod.
	PublishLead time.Duration
	// RetiredRetention is how long a retired key stays published after its
	// last use (plus RetentionMargin): at least the longest lifetime of a
	// token the bridge signs. Default 24 hours.
	RetiredRetention time.Duration
	// Now is the clock; time.Now by default. Tests inject a fake one.
	Now func() time.Time
	// Logger receives key state changes; discarded when nil.
	Logger *slog.Logger
	// OnRotate, if set, is called with the alg once a promotion of its
	// next key to active (by Maintain or Rotate) has been committed by
	// this Manager, for metrics. It must not block.
	OnRotate func(alg string)
	// OnInvalidKeys, if set, is called with the kids of the stored keys
	// that do not verify (see ErrInvalidKey; empty once all do) each time
	// this Manager checks keys: New, Maintain, Rotate and Keys check all of
	// them, JWKS and Sign the ones they read. For a metric and an alert; it
	// must not block.
	OnInvalidKeys func(kids []string)
	// AllowInvalidKeys lets New return a Manager although stored keys do
	// not verify, so that `oidc-bridge keys` can list them and remove them
	// (Rotate with Revoke). Such keys are never published nor used to sign
	// either way, but a server must not start beside them: someone wrote to
	// the database who should not have. Not for serving.
	AllowInvalidKeys bool
}

// withDefaults returns o with defaults filled in, or why it is invalid.
func (o Options) withDefaults() (Options, error) {
	iss := strings.TrimRight(o.Issuer, "/")
	u, err := url.Parse(iss)
	if iss == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return o, fmt.Errorf("signing: issuer %q must be an http(s) URL without query or fragment", o.Issuer)
	}
	o.Issuer = iss
	if o.RotationPeriod == 0 {
		o.RotationPeriod = DefaultRotationPeriod
	}
	if o.PublishLead == 0 {
		o.PublishLead = DefaultPublishLead
	}
	if o.RetiredRetention == 0 {
		o.RetiredRetention = DefaultRetiredRetention
	}
	if o.RotationPeriod < 0 || o.PublishLead < 0 || o.RetiredRetention < 0 {
		return o, errors.New("signing: RotationPeriod, PublishLead and RetiredRetention must not be negative")
	}
	if o.PublishLead >= o.RotationPeriod {
		return o, fmt.Errorf("signing: PublishLead (%s) must be shorter than RotationPeriod (%s)", o.PublishLead, o.RotationPeriod)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// Manager is the Postgres-backed Signer: it keeps an RS256 and an ES256
// key set in table signing_keys, private parts encrypted with the KEK,
// rotates them on a schedule that never breaks a verifier, and serves the
// JWKS. Any number of replicas may share one database; each runs Maintain
// every minute.
//
// The life of a key, per alg (defaults in brackets):
//
//	next     created and published in the JWKS at once; may be promoted
//	         once published for PublishLead [1h]
//	active   signs; promoted when the previous active key has been active
//	         for RotationPeriod [30d] (Maintain) or on demand (Rotate); a
//	         new next key is created at every promotion
//	retired  the former active key; stays published until its last use +
//	         RetiredRetention [24h] + RetentionMargin [2m], then deleted
//
// On an empty database the first Maintain (New runs one) creates an active
// and a next key per alg at once: no verifier can have cached anything yet.
// Every state change runs in one transaction under a PostgreSQL advisory
// lock, and partial unique indexes keep one active and one next key per
// alg whatever happens.
//
// Sign keeps the decrypted active key in memory and re-reads which key is
// active after KeyCacheTTL [30s], so that a rotation by another replica is
// picked up without a restart; that re-read is the only time it waits on
// the database.
type Manager struct {
	pool *pgxpool.Pool
	kek  KEK
	opts Options
	log  *slog.Logger

	slots map[string]*slot // by alg, fixed by New

	jwksMu sync.Mutex
	jwks   []jose.JSONWebKey
	jwksAt time.Time // zero: not cached

	usesMu sync.Mutex
	uses   map[string]*usage // by kid
	// flushMu serialises the recording of last uses.
	flushMu sync.Mutex

	verMu    sync.Mutex
	verified map[string]verified // by kid: the outcome of verifyKey
	invalid  map[string]struct{} // kids that did not verify when last read
}

var _ Signer = (*Manager)(nil)

// slot holds the active key of one alg.
type slot struct {
	alg string
	mu  sync.Mutex // serialises refreshes and invalidations
	cur atomic.Pointer[cachedKey]
}

// cachedKey is a decrypted active key ready to sign.
type cachedKey struct {
	kid     string
	digest  [32]byte // of the row it was verified from
	signer  jose.Signer
	expires time.Time
	use     *usage
}

// usage is the last use of a key by this Manager.
type usage struct {
	last atomic.Int64 // UnixNano, by Options.Now
	// Guarded by Manager.flushMu:
	recorded   int64     // the last use written to the database
	recordedAt time.Time // when it was written
}

// note records a use at now.
func (u *usage) note(now time.Time) {
	n := now.UnixNano()
	for {
		old := u.last.Load()
		if old >= n || u.last.CompareAndSwap(old, n) {
			return
		}
	}
}

// New returns a Manager on pool, whose schema must include migration
// 00002. It verifies every stored key, retired ones included (ErrWrongKEK
// when kek decrypts none of them, before it could add a key the other
// replicas cannot read; an *InvalidKeyError, errors.Is ErrInvalidKey, for
// each key that does not verify, unless Options.AllowInvalidKeys), runs
// Maintain once (creating the keys of an empty database) and loads the
// active keys. With AllowInvalidKeys and keys that do not verify it does
// neither: it returns a Manager that can list keys and rotate with Revoke.
//
// A binary started without a configured KEK must not make one up when keys
// exist already: they could never be decrypted. It should call KeysExist
// and refuse to start when it reports true; generating a KEK (GenerateKEK)
// is only right for a database without keys, and the KEK must then be kept.
func New(ctx context.Context, pool *pgxpool.Pool, kek KEK, opts Options) (*Manager, error) {
	if pool == nil {
		return nil, errors.New("signing: no database pool")
	}
	if !kek.valid() {
		return nil, fmt.Errorf("signing: no key-encryption key; %s", makeKEK)
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	m := &Manager{
		pool:  pool,
		kek:   kek,
		opts:  opts,
		log:   opts.Logger,
		slots: make(map[string]*slot, len(algs)),
		uses:  map[string]*usage{},

		verified: map[string]verified{},
		invalid:  map[string]struct{}{},
	}
	for _, alg := range algs {
		m.slots[alg] = &slot{alg: alg}
	}
	if err := m.checkKEK(ctx); err != nil {
		if !errors.Is(err, ErrInvalidKey) || errors.Is(err, errNoKeyVerifies) || !opts.AllowInvalidKeys {
			return nil, err
		}
		return m, nil
	}
	if err := m.Maintain(ctx); err != nil {
		return nil, err
	}
	for _, alg := range algs {
		if _, _, err := m.activeKey(ctx, m.slots[alg]); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// KeysExist reports whether the database holds any signing key, so that
// a binary without a configured KEK can refuse to start rather than make
// keys nobody can decrypt (see New).
func KeysExist(ctx context.Context, pool *pgxpool.Pool) (_ bool, err error) {
	defer markUnavailable(&err)
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	// A database not yet migrated this far has no signing_keys table, and
	// so no keys.
	var exist bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('signing_keys') IS NOT NULL`).Scan(&exist); err != nil || !exist {
		if err != nil {
			return false, fmt.Errorf("signing: look for signing keys: %w", err)
		}
		return false, nil
	}
	if err := pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM signing_keys)").Scan(&exist); err != nil {
		return false, fmt.Errorf("signing: look for signing keys: %w", err)
	}
	return exist, nil
}

// Issuer implements Signer.
func (m *Manager) Issuer() string { return m.opts.Issuer }

// now is the clock at PostgreSQL's precision.
func (m *Manager) now() time.Time { return m.opts.Now().UTC().Truncate(time.Microsecond) }

// Sign implements Signer: it signs with the active key of alg ("" means
// RS256), with headers kid and typ JWT, and sets iss and iat, overriding
// the caller's.
func (m *Manager) Sign(ctx context.Context, claims map[string]any, alg string) (_ string, err error) {
	defer markUnavailable(&err)
	if alg == "" {
		alg = RS256
	}
	s, ok := m.slots[alg]
	if !ok {
		return "", fmt.Errorf("signing: sign: %w: %q", ErrUnsupportedAlg, alg)
	}
	k, now, err := m.activeKey(ctx, s)
	if err != nil {
		return "", err
	}
	c := make(map[string]any, len(claims)+2)
	maps.Copy(c, claims)
	c["iss"] = m.opts.Issuer
	c["iat"] = now.Unix()
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("signing: encode claims: %w", err)
	}
	jws, err := k.signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("signing: sign with %s: %w", k.kid, err)
	}
	token, err := jws.CompactSerialize()
	if err != nil {
		return "", fmt.Errorf("signing: serialize: %w", err)
	}
	k.use.note(now)
	return token, nil
}

// activeKey returns the cached active key of s, re-reading it when older
// than KeyCacheTTL, and the time of the check.
func (m *Manager) activeKey(ctx context.Context, s *slot) (*cachedKey, time.Time, error) {
	now := m.now()
	if k := s.cur.Load(); k != nil && now.Before(k.expires) {
		return k, now, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now = m.now()
	old := s.cur.Load()
	if old != nil && now.Before(old.expires) {
		return old, now, nil // refreshed while we waited
	}
	k, err := m.loadActive(ctx, s.alg, old, now)
	if err != nil {
		return nil, now, err
	}
	s.cur.Store(k)
	// The database is being waited on anyway: record last uses now due.
	if err := m.flushUsage(ctx, false); err != nil {
		m.log.WarnContext(ctx, "signing: record last use", "error", err)
	}
	return k, now, nil
}

// loadActive reads the active key of alg; it decrypts it only when it is
// not old's.
func (m *Manager) loadActive(ctx context.Context, alg string, old *cachedKey, now time.Time) (*cachedKey, error) {
	qctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var kid string
	var public, sealed []byte
	err := m.pool.QueryRow(qctx, "SELECT kid, public_jwk, private_key FROM signing_keys WHERE alg = $1 AND state = 'active'",
		alg).Scan(&kid, &public, &sealed)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("signing: %w for %s; Maintain creates one", ErrNoActiveKey, alg)
	}
	if err != nil {
		return nil, fmt.Errorf("signing: read active %s key: %w", alg, err)
	}
	// A row that changed since it was verified is verified again: a key
	// whose row no longer verifies stops signing (fail closed).
	digest := rowDigest(alg, StateActive, public, sealed)
	if old != nil && old.kid == kid && old.digest == digest {
		return &cachedKey{kid: kid, digest: digest, signer: old.signer, expires: now.Add(KeyCacheTTL), use: old.use}, nil
	}
	priv, _, err := m.verify(kid, alg, StateActive, public, sealed)
	if err != nil {
		return nil, err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: priv},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), kid))
	if err != nil {
		return nil, fmt.Errorf("signing: signer for %s: %w", kid, err)
	}
	if old != nil {
		m.log.InfoContext(ctx, "signing: signing with a new key", "alg", alg, "kid", kid, "previous", old.kid)
	}
	return &cachedKey{kid: kid, digest: digest, signer: signer, expires: now.Add(KeyCacheTTL), use: m.usageOf(kid)}, nil
}

func (m *Manager) usageOf(kid string) *usage {
	m.usesMu.Lock()
	defer m.usesMu.Unlock()
	u, ok := m.uses[kid]
	if !ok {
		u = &usage{}
		m.uses[kid] = u
	}
	return u
}

// flushUsage writes the last uses not yet recorded: one UPDATE per key,
// at most once per LastUseInterval unless all is set.
func (m *Manager) flushUsage(ctx context.Context, all bool) error {
	m.flushMu.Lock()
	defer m.flushMu.Unlock()
	now := m.now()
	m.usesMu.Lock()
	uses := maps.Clone(m.uses)
	m.usesMu.Unlock()
	var errs []error
	for kid, u := range uses {
		last := u.last.Load()
		if last <= u.recorded || (!all && !u.recordedAt.IsZero() && now.Sub(u.recordedAt) < LastUseInterval) {
			continue
		}
		qctx, cancel := context.WithTimeout(ctx, queryTimeout)
		// Never a time in the future (see clampFuture), whatever is stored.
		_, err := m.pool.Exec(qctx, "UPDATE signing_keys SET last_used_at = least(greatest(last_used_at, $2), $3) WHERE kid = $1",
			kid, time.Unix(0, last).UTC(), now)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("signing: record last use of %s: %w", kid, err))
			continue
		}
		u.recorded, u.recordedAt = last, now
	}
	return errors.Join(errs...)
}

// Close records the last uses not yet recorded. Call it on shutdown,
// before closing the pool; the Manager holds no goroutine or connection.
func (m *Manager) Close(ctx context.Context) error {
	return m.flushUsage(ctx, true)
}

// invalidate drops the cached active keys and JWKS after a state change by
// this Manager.
func (m *Manager) invalidate() {
	for _, s := range m.slots {
		s.mu.Lock()
		s.cur.Store(nil)
		s.mu.Unlock()
	}
	m.jwksMu.Lock()
	m.jwksAt = time.Time{}
	m.jwksMu.Unlock()
}

// JWKS returns the public keys verifiers may meet: the next and active key
// of each alg and the retired keys still within their retention, never a
// revoked one, and only keys that verify: each published key is derived
// from a private key that decrypts with the KEK, whatever public key the
// row holds (a database writer without the KEK cannot publish a key of
// their own); a row that does not verify is left out and reported
// (InvalidKeys, Options.OnInvalidKeys). It is cached for JWKSCacheTTL,
// cheap enough to serve on every request (decryption is cached per row).
func (m *Manager) JWKS(ctx context.Context) (_ jose.JSONWebKeySet, err error) {
	defer markUnavailable(&err)
	m.jwksMu.Lock()
	defer m.jwksMu.Unlock()
	now := m.now()
	if !m.jwksAt.IsZero() && !now.Before(m.jwksAt) && now.Sub(m.jwksAt) < JWKSCacheTTL {
		return jose.JSONWebKeySet{Keys: append([]jose.JSONWebKey(nil), m.jwks...)}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	rows, err := m.pool.Query(ctx, `
		SELECT kid, alg, state, public_jwk, private_key FROM signing_keys
		WHERE state IN ('next', 'active')
		   OR (state = 'retired' AND revoked_at IS NULL AND greatest(retired_at, last_used_at) > $1)
		ORDER BY CASE state WHEN 'active' THEN 0 WHEN 'next' THEN 1 ELSE 2 END, alg, created_at, kid`,
		m.retentionCutoff(now))
	if err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("signing: read public keys: %w", err)
	}
	var keys []jose.JSONWebKey
	var kid, alg, state string
	var raw, sealed []byte
	_, err = pgx.ForEachRow(rows, []any{&kid, &alg, &state, &raw, &sealed}, func() error {
		if _, k, err := m.verify(kid, alg, state, raw, sealed); err == nil {
			keys = append(keys, k)
		}
		return nil
	})
	if err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("signing: read public keys: %w", err)
	}
	m.jwks, m.jwksAt = keys, now
	return jose.JSONWebKeySet{Keys: append([]jose.JSONWebKey(nil), keys...)}, nil
}

// retentionCutoff is the time before which a retired key's last use (or
// retirement) must lie for it to be unpublished and deleted.
func (m *Manager) retentionCutoff(now time.Time) time.Time {
	return now.Add(-m.opts.RetiredRetention - RetentionMargin)
}

// ActiveSince returns, by alg, when the active key was activated, as
// stored (another replica's rotation included): the age of the key that
// signs, for metrics. An alg without an active key is absent.
func (m *Manager) ActiveSince(ctx context.Context) (_ map[string]time.Time, err error) {
	defer markUnavailable(&err)
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	rows, err := m.pool.Query(ctx, "SELECT alg, activated_at FROM signing_keys WHERE state = 'active' AND activated_at IS NOT NULL")
	if err != nil {
		return nil, fmt.Errorf("signing: read active keys: %w", err)
	}
	out := make(map[string]time.Time, len(algs))
	var alg string
	var at time.Time
	if _, err := pgx.ForEachRow(rows, []any{&alg, &at}, func() error {
		out[alg] = at.UTC()
		return nil
	}); err != nil {
		return nil, fmt.Errorf("signing: read active keys: %w", err)
	}
	return out, nil
}

// KeyInfo describes a stored key, for `oidc-bridge keys list`. Zero times
// mean "not (yet)".
type KeyInfo struct {
	KID   string
	Alg   string
	State string // StateNext, StateActive or StateRetired
	// CreatedAt is also when the key was first published.
	CreatedAt   time.Time
	ActivatedAt time.Time
	RetiredAt   time.Time
	// RevokedAt is set when an emergency rotation unpublished the key.
	RevokedAt  time.Time
	LastUsedAt time.Time
	// PromotableAt, for a next key, is when it has been published for
	// PublishLead and may sign.
	PromotableAt time.Time
	// PublishedUntil, for a retired key, is when it leaves the JWKS and is
	// deleted (later if it is used again); for a revoked key, when it left
	// the JWKS. Zero for next and active keys, which stay published, and
	// for keys that do not verify, which are never published.
	PublishedUntil time.Time
	// Invalid, when not empty, says why the key does not verify (see
	// ErrInvalidKey): it is neither published nor used to sign, and
	// `keys rotate --force --revoke` deletes it.
	Invalid string `json:",omitempty"`
}

// Keys lists the stored keys by alg, then newest first.
func (m *Manager) Keys(ctx context.Context) (_ []KeyInfo, err error) {
	defer markUnavailable(&err)
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	rows, err := loadKeys(ctx, m.pool, true)
	if err != nil {
		return nil, err
	}
	m.checkRows(rows, true)
	now := m.now()
	out := make([]KeyInfo, 0, len(rows))
	for _, r := range rows {
		ki := KeyInfo{
			KID: r.kid, Alg: r.alg, State: r.state, CreatedAt: r.created,
			ActivatedAt: r.activated, RetiredAt: r.retired, RevokedAt: r.revoked, LastUsedAt: r.lastUsed,
		}
		switch r.state {
		case StateNext:
			ki.PromotableAt = r.created.Add(m.opts.PublishLead)
		case StateRetired:
			ki.PublishedUntil = r.lastUse(now).Add(m.opts.RetiredRetention + RetentionMargin)
			if !r.revoked.IsZero() {
				ki.PublishedUntil = r.revoked
			}
		}
		if r.invalid != nil {
			ki.Invalid = r.invalid.Error()
			var ie *InvalidKeyError
			if errors.As(r.invalid, &ie) {
				ki.Invalid = ie.Err.Error()
			}
			ki.PromotableAt, ki.PublishedUntil = time.Time{}, time.Time{}
		}
		out = append(out, ki)
	}
	return out, nil
}
