// Package admintoken issues, lists, revokes and checks the bearer tokens of
// the admin API. Only a SHA-256 digest of each token is stored; the token
// itself is shown once, when it is created. The bootstrap token from the
// environment (BRIDGE_ADMIN_TOKEN) is checked in constant time against its
// digest and never stored.
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
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Prefix starts every token this package creates, so that secret scanners
// can recognise a leaked one.
const Prefix = "obat_"

// MinBootstrapLength is the shortest bootstrap token accepted.
const MinBootstrapLength = 32

// BootstrapName is the name reported for the bootstrap token.
const BootstrapName = "bootstrap"

var (
	// ErrUnauthorized: the token is unknown, revoked or malformed.
	ErrUnauthorized = errors.New("admintoken: invalid admin token")
	// ErrNotFound: no token of that id or name.
	ErrNotFound = errors.New("admintoken: no such token")
	// ErrExists: a token of that name exists already.
	ErrExists = errors.New("admintoken: a token of that name exists")
	// ErrInvalidName: the name breaks the naming rules.
	ErrInvalidName = errors.New("admintoken: a name is 1-64 characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit")
)

// Info describes a token without revealing it.
type Info struct {
	ID         uuid.UUID  `json:"id"`
	Name       string     `json:"name"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
}

// Store keeps admin tokens in Postgres.
type Store struct {
	pool      *pgxpool.Pool
	bootstrap []byte // digest of the bootstrap token, or nil
	timeout   time.Duration
}

// New returns a Store. bootstrap is the bootstrap token, or "" for none.
func New(pool *pgxpool.Pool, bootstrap string) *Store {
	s := &Store{pool: pool, timeout: 5 * time.Second}
	if bootstrap != "" {
		d := digest(bootstrap)
		s.bootstrap = d[:]
	}
	return s
}

func digest(token string) [32]byte { return sha256.Sum256([]byte(token)) }

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// Create makes a new token called name and returns it with its Info. The
// token is not kept: this is the only time it can be seen.
func (s *Store) Create(ctx context.Context, name string) (string, Info, error) {
	if !nameRE.MatchString(name) || name == BootstrapName {
		return "", Info{}, ErrInvalidName
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", Info{}, fmt.Errorf("admintoken: random: %w", err)
	}
	token := Prefix + base64.RawURLEncoding.EncodeToString(raw[:])
	d := digest(token)
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	info := Info{ID: uuid.New(), Name: name}
	err := s.pool.QueryRow(ctx,
		`INSERT INTO admin_tokens (id, name, token_hash) VALUES ($1, $2, $3) RETURNING created_at`,
		info.ID, name, d[:]).Scan(&info.CreatedAt)
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" {
			return "", Info{}, fmt.Errorf("%w: %q", ErrExists, name)
		}
		return "", Info{}, fmt.Errorf("admintoken: create: %w", err)
	}
	return token, info, nil
}

// List returns every token, revoked ones included, oldest first.
func (s *Store) List(ctx context.Context) ([]Info, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	rows, err := s.pool.Query(ctx,
		`SELECT id, name, created_at, last_used_at, revoked_at FROM admin_tokens ORDER BY created_at, name`)
	if err != nil {
		return nil, fmt.Errorf("admintoken: list: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Info, error) {
		var i Info
		err := r.Scan(&i.ID, &i.Name, &i.CreatedAt, &i.LastUsedAt, &i.RevokedAt)
		return i, err
	})
	if err != nil {
		return nil, fmt.Errorf("admintoken: list: %w", err)
	}
	return out, nil
}

// Revoke revokes the token whose id or name is ref. Revoking a revoked
// token is not an error.
func (s *Store) Revoke(ctx context.Context, ref string) (Info, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var id *uuid.UUID
	if u, err := uuid.Parse(ref); err == nil {
		id = &u
	}
	var i Info
	err := s.pool.QueryRow(ctx, `
		UPDATE admin_tokens SET revoked_at = coalesce(revoked_at, now())
		WHERE name = $1 OR id = $2
		RETURNING id, name, created_at, last_used_at, revoked_at`, ref, id).
		Scan(&i.ID, &i.Name, &i.CreatedAt, &i.LastUsedAt, &i.RevokedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Info{}, fmt.Errorf("%w: %q", ErrNotFound, ref)
	}
	if err != nil {
		return Info{}, fmt.Errorf("admintoken: revoke: %w", err)
	}
	return i, nil
}

// Authenticate returns the name of the token, or ErrUnauthorized. The
// bootstrap token is compared in constant time over digests, which also
// hides its length; stored tokens are found by their digest, so the lookup
// reveals nothing about a token's bytes.
func (s *Store) Authenticate(ctx context.Context, token string) (string, error) {
	if token == "" || len(token) > 512 {
		return "", ErrUnauthorized
	}
	d := digest(token)
	if s.bootstrap != nil && subtle.ConstantTimeCompare(d[:], s.bootstrap) == 1 {
		return BootstrapName, nil
	}
	if !strings.HasPrefix(token, Prefix) {
		return "", ErrUnauthorized
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var name string
	err := s.pool.QueryRow(ctx, `
		UPDATE admin_tokens SET last_used_at = now()
		WHERE token_hash = $1 AND revoked_at IS NULL
		RETURNING name`, d[:]).Scan(&name)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrUnauthorized
	}
	if err != nil {
		return "", fmt.Errorf("admintoken: authenticate: %w", err)
	}
	return name, nil
}
