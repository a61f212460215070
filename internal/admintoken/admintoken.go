// Package admintoken issues, lists, revokes and checks the bearer tokens of
// the admin API. Only a SHA-256 digest of each token is stored; the token
// itself is shown once, when it is created. The bootstrap token from the
// environment (BRIDGE_ADMIN_TOKEN) is checked in constant time against its
// digest and never stored.
//
// A token has scopes: read (GET and HEAD of the admin API) and write
// (everything else, and reading too); the bootstrap token has both. A token may expire; an
// expired token is refused like a revoked one.
//
// Creating and revoking a token records a row of the admin-change history
// (kind admin_token) in the same transaction: the token's id, name, scopes
// and expiry, never the token or its digest.
//
// It does not rate-limit failed attempts; the HTTP layer does that.
package admintoken

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/oidc-bridge/oidc-bridge/internal/dbfail"
	"github.com/oidc-bridge/oidc-bridge/internal/history"
)

// Prefix starts every token this package creates, so that secret scanners
// can recognise a leaked one.
const Prefix = "obat_"

// MinBootstrapLength is the shortest bootstrap token accepted.
const MinBootstrapLength = 32

// BootstrapName is the name reported for the bootstrap token; with a
// label, BootstrapName + ":" + label.
const BootstrapName = "bootstrap"

var (
	// ErrUnauthorized: the token is unknown, revoked or malformed.
	ErrUnauthorized = errors.New("admintoken: invalid admin token")
	// ErrUnavailable: the database could not be asked (dbfail.Unavailable).
	ErrUnavailable = errors.New("admintoken: database unavailable")
	// ErrNotFound: no token of that id or name.
	ErrNotFound = errors.New("admintoken: no such token")
	// ErrExists: a token of that name exists already and is not revoked
	// (a revoked token's name may be reused).
	ErrExists = errors.New("admintoken: a token of that name exists and is not revoked")
	// ErrInvalidName: the name breaks the naming rules.
	ErrInvalidName = errors.New("admintoken: a name is 1-64 characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit")
)

// Scopes of a token.
const (
	// ScopeRead allows the admin API's GET and HEAD requests.
	ScopeRead = "read"
	// ScopeWrite allows every other method: creating, changing and
	// deleting issuers and mappings.
	ScopeWrite = "write"
)

// AllScopes returns every scope, in canonical order: the default of a new
// token and the scopes of the bootstrap token.
func AllScopes() []string { return []string{ScopeRead, ScopeWrite} }

// ScopeError is returned by Create when the scopes are not valid: Scope is
// the unknown scope, or "" when none was given.
type ScopeError struct {
	Scope string
}

func (e *ScopeError) Error() string {
	if e.Scope == "" {
		return "admintoken: a token needs at least one scope: read, write"
	}
	return fmt.Sprintf("admintoken: unknown scope %q: the scopes are read and write", e.Scope)
}

// ErrExpiryInPast: Create was asked for a token that would expire at once.
var ErrExpiryInPast = errors.New("admintoken: the expiry must be in the future")

// NormalizeScopes checks scopes and returns them without duplicates in
// canonical order (read before write). It returns a *ScopeError when a
// scope is unknown or none is given.
func NormalizeScopes(scopes []string) ([]string, error) {
	var out []string
	for _, want := range AllScopes() {
		if slices.Contains(scopes, want) {
			out = append(out, want)
		}
	}
	for _, s := range scopes {
		if !slices.Contains(out, s) {
			return nil, &ScopeError{Scope: s}
		}
	}
	if len(out) == 0 {
		return nil, &ScopeError{}
	}
	return out, nil
}

// Principal is an authenticated token: its name and scopes.
type Principal struct {
	Name   string
	Scopes []string
}

// Can reports whether the principal holds scope. write implies read: a
// write's response shows the object it wrote anyway.
func (p Principal) Can(scope string) bool {
	return slices.Contains(p.Scopes, scope) || (scope == ScopeRead && slices.Contains(p.Scopes, ScopeWrite))
}

// Info describes a token without revealing it.
type Info struct {
	ID     uuid.UUID `json:"id"`
	Name   string    `json:"name"`
	Scopes []string  `json:"scopes"`
	// ExpiresAt is when the token stops working; nil: never.
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
}

// Expired reports whether the token had expired at now.
func (i Info) Expired(now time.Time) bool { return i.ExpiresAt != nil && !now.Before(*i.ExpiresAt) }

// Store keeps admin tokens in Postgres.
type Store struct {
	pool          *pgxpool.Pool
	bootstrap     []byte // digest of the bootstrap token, or nil
	bootstrapName string
	timeout       time.Duration
}

// ErrInvalidLabel: a bootstrap label that history.ValidLabel refuses.
var ErrInvalidLabel = errors.New("admintoken: a bootstrap label is " + history.LabelRule)

// New returns a Store. bootstrap is the bootstrap token, or "" for none;
// label names its holder (BRIDGE_ADMIN_TOKEN_LABEL) for the admin-change
// history and the logs: its principal is "bootstrap:LABEL", or "bootstrap"
// without one. A label history.ValidLabel refuses is an error.
func New(pool *pgxpool.Pool, bootstrap, label string) (*Store, error) {
	s := &Store{pool: pool, timeout: 5 * time.Second, bootstrapName: BootstrapName}
	if label != "" {
		if !history.ValidLabel(label) {
			return nil, ErrInvalidLabel
		}
		s.bootstrapName = BootstrapName + ":" + label
	}
	if bootstrap != "" {
		d := digest(bootstrap)
		s.bootstrap = d[:]
	}
	return s, nil
}

func digest(token string) [32]byte { return sha256.Sum256([]byte(token)) }

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// Create makes a new token called name (unique among the tokens not
// revoked: a revoked token's name may be reused) with scopes (nil or empty: an error;
// AllScopes for both), expiring at expiresAt (nil: never), and returns it
// with its Info. The token is not kept: this is the only time it can be
// seen. by is recorded in the admin-change history.
func (s *Store) Create(ctx context.Context, by history.Actor, name string, scopes []string, expiresAt *time.Time) (string, Info, error) {
	if err := by.Check(); err != nil {
		return "", Info{}, fmt.Errorf("admintoken: create %q: %w", name, err)
	}
	if !nameRE.MatchString(name) || name == BootstrapName {
		return "", Info{}, ErrInvalidName
	}
	scopes, err := NormalizeScopes(scopes)
	if err != nil {
		return "", Info{}, err
	}
	if expiresAt != nil {
		if !expiresAt.After(time.Now()) {
			return "", Info{}, ErrExpiryInPast
		}
		t := expiresAt.UTC().Truncate(time.Microsecond) // what Postgres keeps
		expiresAt = &t
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", Info{}, fmt.Errorf("admintoken: random: %w", err)
	}
	token := Prefix + base64.RawURLEncoding.EncodeToString(raw[:])
	d := digest(token)
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	info := Info{ID: uuid.New(), Name: name, Scopes: scopes, ExpiresAt: expiresAt}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx,
			`INSERT INTO admin_tokens (id, name, token_hash, scopes, expires_at) VALUES ($1, $2, $3, $4, $5) RETURNING created_at`,
			info.ID, name, d[:], scopes, expiresAt).Scan(&info.CreatedAt)
		if err != nil {
			return err
		}
		return history.Record(ctx, tx, history.Change{Actor: by, Action: history.ActionCreate,
			Kind: history.KindAdminToken, Name: name, After: info})
	})
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" {
			return "", Info{}, fmt.Errorf("%w: %q", ErrExists, name)
		}
		return "", Info{}, fmt.Errorf("admintoken: create: %w", err)
	}
	return token, info, nil
}

const infoColumns = `id, name, scopes, expires_at, created_at, last_used_at, revoked_at`

func scanInfo(row pgx.Row) (Info, error) {
	var i Info
	err := row.Scan(&i.ID, &i.Name, &i.Scopes, &i.ExpiresAt, &i.CreatedAt, &i.LastUsedAt, &i.RevokedAt)
	return i, err
}

// List returns every token, revoked ones included, oldest first.
func (s *Store) List(ctx context.Context) ([]Info, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	rows, err := s.pool.Query(ctx,
		`SELECT `+infoColumns+` FROM admin_tokens ORDER BY created_at, name`)
	if err != nil {
		return nil, fmt.Errorf("admintoken: list: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Info, error) { return scanInfo(r) })
	if err != nil {
		return nil, fmt.Errorf("admintoken: list: %w", err)
	}
	return out, nil
}

// Revoke revokes the token whose id or name is ref, recording by in the
// admin-change history. A name means its token that is not revoked, if
// any (a revoked token's name may have been reused). Revoking a revoked token is not an error, and
// records nothing: nothing changes.
func (s *Store) Revoke(ctx context.Context, by history.Actor, ref string) (Info, error) {
	if err := by.Check(); err != nil {
		return Info{}, fmt.Errorf("admintoken: revoke %q: %w", ref, err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var id *uuid.UUID
	if u, err := uuid.Parse(ref); err == nil {
		id = &u
	}
	var i Info
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// A name may belong to revoked tokens and one that is not: that
		// one, else the newest.
		before, err := scanInfo(tx.QueryRow(ctx, `SELECT `+infoColumns+` FROM admin_tokens
			WHERE name = $1 OR id = $2
			ORDER BY (id = $2) IS TRUE DESC, revoked_at IS NULL DESC, created_at DESC, id DESC
			LIMIT 1 FOR UPDATE`, ref, id))
		if err != nil {
			return err
		}
		if i = before; before.RevokedAt != nil {
			return nil
		}
		i, err = scanInfo(tx.QueryRow(ctx, `
			UPDATE admin_tokens SET revoked_at = now() WHERE id = $1
			RETURNING `+infoColumns, before.ID))
		if err != nil {
			return err
		}
		// last_used_at is bookkeeping, not part of the change.
		after := i
		before.LastUsedAt, after.LastUsedAt = nil, nil
		return history.Record(ctx, tx, history.Change{Actor: by, Action: history.ActionRevoke,
			Kind: history.KindAdminToken, Name: i.Name, Before: before, After: after})
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return Info{}, fmt.Errorf("%w: %q", ErrNotFound, ref)
	}
	if err != nil {
		return Info{}, fmt.Errorf("admintoken: revoke: %w", err)
	}
	return i, nil
}

// BootstrapStoredError is CheckBootstrap's error: the bootstrap token is
// also a token made with Create (the admin token Name).
type BootstrapStoredError struct {
	Name    string
	ID      uuid.UUID
	Revoked bool
}

func (e *BootstrapStoredError) Error() string {
	state := "active"
	if e.Revoked {
		state = "revoked"
	}
	return fmt.Sprintf("admintoken: the bootstrap token is the stored admin token %q (id %s, %s)", e.Name, e.ID, state)
}

// CheckBootstrap returns a *BootstrapStoredError when the bootstrap token
// is also a stored token, revoked or not: its uses would then be recorded
// as the bootstrap's, and revoking the stored token would not stop it. A
// schema without admin_tokens yet (serve --no-migrate before migrate) holds
// no token: nil.
func (s *Store) CheckBootstrap(ctx context.Context) error {
	if s.bootstrap == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var e BootstrapStoredError
	var revokedAt *time.Time
	err := s.pool.QueryRow(ctx, `SELECT id, name, revoked_at FROM admin_tokens WHERE token_hash = $1
		ORDER BY created_at DESC LIMIT 1`, s.bootstrap).Scan(&e.ID, &e.Name, &revokedAt)
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(err, pgx.ErrNoRows), errors.As(err, &pgErr) && pgErr.Code == "42P01":
		return nil
	case err != nil:
		return fmt.Errorf("admintoken: check the bootstrap token: %w", err)
	}
	e.Revoked = revokedAt != nil
	return &e
}

// Authenticate returns the token's Principal, or ErrUnauthorized for an
// unknown, revoked or expired token. The bootstrap token is compared in
// constant time over digests, which also hides its length; stored tokens
// are found by their digest, so the lookup reveals nothing about a token's
// bytes. Expiry is judged by the database's clock, which every replica
// shares.
func (s *Store) Authenticate(ctx context.Context, token string) (Principal, error) {
	if token == "" || len(token) > 512 {
		return Principal{}, ErrUnauthorized
	}
	d := digest(token)
	if s.bootstrap != nil && subtle.ConstantTimeCompare(d[:], s.bootstrap) == 1 {
		return Principal{Name: s.bootstrapName, Scopes: AllScopes()}, nil
	}
	if !strings.HasPrefix(token, Prefix) {
		return Principal{}, ErrUnauthorized
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var p Principal
	err := s.pool.QueryRow(ctx, `
		UPDATE admin_tokens SET last_used_at = now()
		WHERE token_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
		RETURNING name, scopes`, d[:]).Scan(&p.Name, &p.Scopes)
	if errors.Is(err, pgx.ErrNoRows) {
		return Principal{}, ErrUnauthorized
	}
	if err != nil {
		return Principal{}, fmt.Errorf("admintoken: authenticate: %w", dbfail.Mark(err, ErrUnavailable))
	}
	return p, nil
}
