package mapping

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/oidc-bridge/oidc-bridge/identity"
	"github.com/oidc-bridge/oidc-bridge/internal/dbfail"
	"github.com/oidc-bridge/oidc-bridge/internal/history"
)

// Store errors. The bridge maps them to the admin API's codes.
var (
	// ErrNotFound: no issuer or mapping of that name.
	ErrNotFound = errors.New("mapping: not found")
	// ErrConflict: the name (or an issuer's URL) is already taken, or the
	// object is still referenced.
	ErrConflict = errors.New("mapping: conflict")
)

// ErrUnavailable: the database cannot serve the store right now (down,
// unreachable, overloaded, read-only after a failover). The bridge answers
// 503 and changes nothing.
var ErrUnavailable = errors.New("mapping: database unavailable")

// markUnavailable marks *err ErrUnavailable when it is the database's
// unavailability (dbfail.Unavailable), as the ledger marks its own.
func markUnavailable(err *error) { *err = dbfail.Mark(*err, ErrUnavailable) }

// ErrNoActor: a write was attempted without naming who makes it.
var ErrNoActor = errors.New("mapping: a write needs an actor")

// Store reads and writes issuers and mappings. The Postgres implementation
// is the only one; handlers' unit tests may fake it.
//
// Every write is made by an Actor and records, in the same transaction, one
// row of the admin-change history (table admin_changes, the auditors' view
// audit.admin_changes) with the object's API JSON before and after; a write
// that fails or is refused records nothing.
type Store interface {
	identity.IssuerSource

	ListIssuers(ctx context.Context) ([]Issuer, error)
	GetIssuer(ctx context.Context, name string) (Issuer, error)
	CreateIssuer(ctx context.Context, by Actor, is Issuer) (Issuer, error)
	// UpdateIssuer replaces the issuer called name. check is called inside
	// the transaction with every mapping of the issuer, so that a change of
	// kind cannot leave a mapping that the new kind would refuse.
	UpdateIssuer(ctx context.Context, by Actor, name string, is Issuer, check func(Mapping) error) (Issuer, error)
	DeleteIssuer(ctx context.Context, by Actor, name string) error

	ListMappings(ctx context.Context, f Filter) ([]Mapping, error)
	GetMapping(ctx context.Context, name string) (Mapping, error)
	// CreateMapping and UpdateMapping call check with the kind of the
	// mapping's issuer, inside the transaction that writes the mapping.
	CreateMapping(ctx context.Context, by Actor, m Mapping, check func(identity.Kind) error) (Mapping, error)
	UpdateMapping(ctx context.Context, by Actor, name string, m Mapping, check func(identity.Kind) error) (Mapping, error)
	DeleteMapping(ctx context.Context, by Actor, name string) error
}

// Actor is who makes a write, as the admin-change history records it.
type Actor struct {
	// Name is the admin token's name ("bootstrap", or "bootstrap:LABEL"
	// with BRIDGE_ADMIN_TOKEN_LABEL, for the bootstrap token); required.
	Name string
	// RequestID is the HTTP request's id (its X-Request-ID), if any.
	RequestID string
}

// Admin-change actions and kinds, as admin_changes records them.
const (
	ActionCreate = "create"
	ActionUpdate = "update"
	ActionDelete = "delete"

	KindIssuer  = "issuer"
	KindMapping = "mapping"
)

// recordChange writes the admin-change row of a write inside its
// transaction. before is nil for a create, after for a delete; name is the
// object's name before the change (after it, for a create).
func recordChange(ctx context.Context, tx pgx.Tx, by Actor, action, kind, name string, before, after any) error {
	strip := func(v any) any {
		if m, ok := v.(Mapping); ok {
			m.Warnings = nil // computed on read, not part of the change
			return m
		}
		return v
	}
	err := history.Record(ctx, tx, history.Change{
		Actor:  history.Actor{Name: by.Name, Source: history.SourceAPI, RequestID: by.RequestID},
		Action: action, Kind: kind, Name: name, Before: strip(before), After: strip(after),
	})
	if err != nil {
		return fmt.Errorf("record admin change: %w", err)
	}
	return nil
}

// checkActor refuses a write by nobody: the history must say who.
func checkActor(by Actor, op, name string) error {
	if by.Name == "" {
		return fmt.Errorf("%w: %s %q", ErrNoActor, op, name)
	}
	return nil
}

// Filter narrows ListMappings. Empty fields match everything.
type Filter struct {
	Issuer      string // issuer name
	Provider    string
	EnabledOnly bool
}

// ErrUnknownIssuer is returned when a mapping names an issuer that does not
// exist. It is a ValidationError on the field "issuer".
var ErrUnknownIssuer = &ValidationError{Field: "issuer", Message: "no issuer of that name is registered"}

// PGStore is the Store over Postgres. Every query runs under its own
// deadline, so a stuck database fails the request rather than hanging it.
type PGStore struct {
	pool    *pgxpool.Pool
	timeout time.Duration
}

// NewPGStore returns a store on pool; timeout bounds each operation
// (default 5 s).
func NewPGStore(pool *pgxpool.Pool, timeout time.Duration) *PGStore {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	return &PGStore{pool: pool, timeout: timeout}
}

var _ Store = (*PGStore)(nil)

func (s *PGStore) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

const issuerColumns = `name, url, kind, audiences, enabled, replay_scope, max_token_age_seconds,
	max_token_lifetime_seconds, jwks, coalesce(jwks_url, ''), created_at, updated_at`

func scanIssuer(row pgx.Row) (Issuer, error) {
	var is Issuer
	var jwks *string
	err := row.Scan(&is.Name, &is.URL, &is.Kind, &is.Audiences, &is.Enabled, &is.ReplayScope,
		&is.MaxTokenAgeSeconds, &is.MaxTokenLifetimeSeconds, &jwks, &is.JWKSURL, &is.CreatedAt, &is.UpdatedAt)
	if jwks != nil {
		is.JWKS = json.RawMessage(*jwks)
	}
	return is, err
}

// jwksArg is an issuer's jwks as its column holds it: the compacted JSON
// text as written (text, not jsonb, so that it reads back byte for byte),
// NULL when it has none.
func jwksArg(is Issuer) *string {
	if len(is.JWKS) == 0 {
		return nil
	}
	s := string(is.JWKS)
	return &s
}

// IssuerByURL implements identity.IssuerSource: a byte-exact lookup.
func (s *PGStore) IssuerByURL(ctx context.Context, url string) (_ identity.Issuer, err error) {
	defer markUnavailable(&err)
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	is, err := scanIssuer(s.pool.QueryRow(ctx, `SELECT `+issuerColumns+` FROM issuers WHERE url = $1`, url))
	if errors.Is(err, pgx.ErrNoRows) {
		return identity.Issuer{}, identity.ErrIssuerNotFound
	}
	if err != nil {
		return identity.Issuer{}, fmt.Errorf("mapping: issuer by url: %w", err)
	}
	return IdentityIssuer(is), nil
}

// ListIssuers returns all issuers ordered by name.
func (s *PGStore) ListIssuers(ctx context.Context) (_ []Issuer, err error) {
	defer markUnavailable(&err)
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT `+issuerColumns+` FROM issuers ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("mapping: list issuers: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Issuer, error) { return scanIssuer(r) })
	if err != nil {
		return nil, fmt.Errorf("mapping: list issuers: %w", err)
	}
	return out, nil
}

// GetIssuer returns the issuer called name.
func (s *PGStore) GetIssuer(ctx context.Context, name string) (_ Issuer, err error) {
	defer markUnavailable(&err)
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	is, err := scanIssuer(s.pool.QueryRow(ctx, `SELECT `+issuerColumns+` FROM issuers WHERE name = $1`, name))
	if err != nil {
		return Issuer{}, notFound(err, "get issuer", name)
	}
	return is, nil
}

// CreateIssuer inserts is.
func (s *PGStore) CreateIssuer(ctx context.Context, by Actor, is Issuer) (_ Issuer, err error) {
	defer markUnavailable(&err)
	if err := checkActor(by, "create issuer", is.Name); err != nil {
		return Issuer{}, err
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	var out Issuer
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		out, err = scanIssuer(tx.QueryRow(ctx, `
			INSERT INTO issuers (name, url, kind, audiences, enabled, replay_scope, max_token_age_seconds,
				max_token_lifetime_seconds, jwks, jwks_url)
			VALUES ($1, $2, $3, $4, $5, coalesce(nullif($6, ''), 'token'), $7, $8, $9, nullif($10, ''))
			RETURNING `+issuerColumns, is.Name, is.URL, is.Kind, is.Audiences, is.Enabled, is.ReplayScope,
			is.MaxTokenAgeSeconds, is.MaxTokenLifetimeSeconds, jwksArg(is), is.JWKSURL))
		if err != nil {
			return err
		}
		return recordChange(ctx, tx, by, ActionCreate, KindIssuer, out.Name, nil, out)
	})
	if err != nil {
		return Issuer{}, writeErr(err, "create issuer", is.Name)
	}
	return out, nil
}

// UpdateIssuer replaces the issuer called name with is (its name included).
func (s *PGStore) UpdateIssuer(ctx context.Context, by Actor, name string, is Issuer, check func(Mapping) error) (_ Issuer, err error) {
	defer markUnavailable(&err)
	if err := checkActor(by, "update issuer", name); err != nil {
		return Issuer{}, err
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	var out Issuer
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		before, err := scanIssuer(tx.QueryRow(ctx, `SELECT `+issuerColumns+` FROM issuers WHERE name = $1 FOR UPDATE`, name))
		if err != nil {
			return err
		}
		out, err = scanIssuer(tx.QueryRow(ctx, `
			UPDATE issuers SET name = $2, url = $3, kind = $4, audiences = $5, enabled = $6,
				replay_scope = coalesce(nullif($7, ''), 'token'), max_token_age_seconds = $8,
				max_token_lifetime_seconds = $9, jwks = $10, jwks_url = nullif($11, ''), updated_at = now()
			WHERE name = $1
			RETURNING `+issuerColumns, name, is.Name, is.URL, is.Kind, is.Audiences, is.Enabled, is.ReplayScope,
			is.MaxTokenAgeSeconds, is.MaxTokenLifetimeSeconds, jwksArg(is), is.JWKSURL))
		if err != nil {
			return err
		}
		if check != nil {
			ms, err := listMappings(ctx, tx, Filter{Issuer: out.Name})
			if err != nil {
				return err
			}
			for _, m := range ms {
				if err := check(m); err != nil {
					// A conflict, not a fault of the request's fields.
					return fmt.Errorf("%w: mapping %q would no longer be valid: %v", ErrConflict, m.Name, err)
				}
			}
		}
		return recordChange(ctx, tx, by, ActionUpdate, KindIssuer, name, before, out)
	})
	if err != nil {
		return Issuer{}, writeErr(err, "update issuer", name)
	}
	return out, nil
}

// DeleteIssuer removes the issuer called name. An issuer that mappings
// still use is not removed (ErrConflict).
func (s *PGStore) DeleteIssuer(ctx context.Context, by Actor, name string) (err error) {
	defer markUnavailable(&err)
	if err := checkActor(by, "delete issuer", name); err != nil {
		return err
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		before, err := scanIssuer(tx.QueryRow(ctx, `DELETE FROM issuers WHERE name = $1 RETURNING `+issuerColumns, name))
		if err != nil {
			return err
		}
		return recordChange(ctx, tx, by, ActionDelete, KindIssuer, name, before, nil)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: issuer %q", ErrNotFound, name)
	}
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23503" {
			return fmt.Errorf("%w: issuer %q is used by mappings; delete or move them first", ErrConflict, name)
		}
		return fmt.Errorf("mapping: delete issuer %q: %w", name, err)
	}
	return nil
}

const mappingSelect = `
	SELECT m.id, m.name, i.name, m.enabled, m.conditions, m.provider, m.target, m.max_duration_seconds,
	       m.quota_per_hour, m.quota_per_job, m.mode, m.created_at, m.updated_at
	FROM mappings m JOIN issuers i ON i.id = m.issuer_id`

func scanMapping(row pgx.Row) (Mapping, error) {
	var (
		m               Mapping
		cond, target    []byte
		perHour, perJob *int
	)
	if err := row.Scan(&m.ID, &m.Name, &m.Issuer, &m.Enabled, &cond, &m.Provider, &target, &m.MaxDurationSeconds,
		&perHour, &perJob, &m.Mode, &m.CreatedAt, &m.UpdatedAt); err != nil {
		return Mapping{}, err
	}
	if err := json.Unmarshal(cond, &m.Conditions); err != nil {
		return Mapping{}, fmt.Errorf("mapping: stored conditions of %q: %w", m.Name, err)
	}
	m.Target = json.RawMessage(target)
	if perHour != nil || perJob != nil {
		m.Quota = &Quota{}
		if perHour != nil {
			m.Quota.PerHour = *perHour
		}
		if perJob != nil {
			m.Quota.PerJob = *perJob
		}
	}
	return m, nil
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func listMappings(ctx context.Context, q querier, f Filter) ([]Mapping, error) {
	rows, err := q.Query(ctx, mappingSelect+`
		WHERE ($1 = '' OR i.name = $1) AND ($2 = '' OR m.provider = $2) AND (NOT $3 OR m.enabled)
		ORDER BY m.name`, f.Issuer, f.Provider, f.EnabledOnly)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Mapping, error) { return scanMapping(r) })
}

// ListMappings returns the mappings that f selects, ordered by name. The
// exchange reads them afresh for every request, so a change made on any
// replica holds for the next exchange everywhere.
func (s *PGStore) ListMappings(ctx context.Context, f Filter) (_ []Mapping, err error) {
	defer markUnavailable(&err)
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	ms, err := listMappings(ctx, s.pool, f)
	if err != nil {
		return nil, fmt.Errorf("mapping: list mappings: %w", err)
	}
	return ms, nil
}

// GetMapping returns the mapping called name.
func (s *PGStore) GetMapping(ctx context.Context, name string) (_ Mapping, err error) {
	defer markUnavailable(&err)
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	m, err := scanMapping(s.pool.QueryRow(ctx, mappingSelect+` WHERE m.name = $1`, name))
	if err != nil {
		return Mapping{}, notFound(err, "get mapping", name)
	}
	return m, nil
}

// issuerForMapping locks the named issuer's row (so its kind cannot change
// under the write) and checks the mapping against its kind.
func issuerForMapping(ctx context.Context, tx pgx.Tx, issuer string, check func(identity.Kind) error) (int64, error) {
	var (
		id   int64
		kind string
	)
	err := tx.QueryRow(ctx, `SELECT id, kind FROM issuers WHERE name = $1 FOR SHARE`, issuer).Scan(&id, &kind)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, ErrUnknownIssuer
	}
	if err != nil {
		return 0, err
	}
	if check != nil {
		if err := check(identity.Kind(kind)); err != nil {
			return 0, err
		}
	}
	return id, nil
}

// mappingMode is the mode column's value: enforce unless m says audit.
func mappingMode(m Mapping) string {
	if m.Mode == "" {
		return ModeEnforce
	}
	return m.Mode
}

func mappingArgs(m Mapping) (cond []byte, perHour, perJob *int, err error) {
	cond, err = json.Marshal(m.Conditions)
	if err != nil {
		return nil, nil, nil, err
	}
	if m.Quota != nil {
		if m.Quota.PerHour > 0 {
			perHour = &m.Quota.PerHour
		}
		if m.Quota.PerJob > 0 {
			perJob = &m.Quota.PerJob
		}
	}
	return cond, perHour, perJob, nil
}

// CreateMapping inserts m.
func (s *PGStore) CreateMapping(ctx context.Context, by Actor, m Mapping, check func(identity.Kind) error) (_ Mapping, err error) {
	defer markUnavailable(&err)
	return s.writeMapping(ctx, by, "create mapping", m.Name, false, m, check, `
		INSERT INTO mappings (name, issuer_id, enabled, conditions, provider, target, max_duration_seconds,
		                      quota_per_hour, quota_per_job, mode)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		RETURNING name`)
}

// UpdateMapping replaces the mapping called name with m (its name included).
func (s *PGStore) UpdateMapping(ctx context.Context, by Actor, name string, m Mapping, check func(identity.Kind) error) (_ Mapping, err error) {
	defer markUnavailable(&err)
	return s.writeMapping(ctx, by, "update mapping", name, true, m, check, `
		UPDATE mappings SET name = $1, issuer_id = $2, enabled = $3, conditions = $4, provider = $5,
		       target = $6, max_duration_seconds = $7, quota_per_hour = $8, quota_per_job = $9,
		       mode = $10, updated_at = now()
		WHERE name = $11
		RETURNING name`)
}

// writeMapping runs sql, an INSERT or (update) an UPDATE of the mapping
// called name, whose parameters are the mapping's columns, then name, and
// records the change.
func (s *PGStore) writeMapping(ctx context.Context, by Actor, op, name string, update bool, m Mapping, check func(identity.Kind) error, sql string) (Mapping, error) {
	if err := checkActor(by, op, name); err != nil {
		return Mapping{}, err
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	var out Mapping
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var before any // nil for a create
		if update {
			// Lock the row first, so that before is what this write replaces.
			b, err := scanMapping(tx.QueryRow(ctx, mappingSelect+` WHERE m.name = $1 FOR UPDATE OF m`, name))
			if err != nil {
				return err
			}
			before = b
		}
		issuerID, err := issuerForMapping(ctx, tx, m.Issuer, check)
		if err != nil {
			return err
		}
		// Encoded only once check has validated m: a condition value that
		// cannot be one (null, a list mixing types) is check's 400, not an
		// encoding failure.
		cond, perHour, perJob, err := mappingArgs(m)
		if err != nil {
			return fmt.Errorf("mapping: %s %q: %w", op, name, err)
		}
		var written string
		args := []any{m.Name, issuerID, m.Enabled, cond, m.Provider, []byte(m.Target), m.MaxDurationSeconds, perHour, perJob, mappingMode(m)}
		if update {
			args = append(args, name)
		}
		if err := tx.QueryRow(ctx, sql, args...).Scan(&written); err != nil {
			return err
		}
		out, err = scanMapping(tx.QueryRow(ctx, mappingSelect+` WHERE m.name = $1`, written))
		if err != nil {
			return err
		}
		if update {
			return recordChange(ctx, tx, by, ActionUpdate, KindMapping, name, before, out)
		}
		return recordChange(ctx, tx, by, ActionCreate, KindMapping, out.Name, nil, out)
	})
	if err != nil {
		return Mapping{}, writeErr(err, op, name)
	}
	return out, nil
}

// DeleteMapping removes the mapping called name. Its ledger rows stay: the
// ledger keeps the mapping's name and target as they were.
func (s *PGStore) DeleteMapping(ctx context.Context, by Actor, name string) (err error) {
	defer markUnavailable(&err)
	if err := checkActor(by, "delete mapping", name); err != nil {
		return err
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		before, err := scanMapping(tx.QueryRow(ctx, mappingSelect+` WHERE m.name = $1 FOR UPDATE OF m`, name))
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM mappings WHERE id = $1`, before.ID); err != nil {
			return err
		}
		return recordChange(ctx, tx, by, ActionDelete, KindMapping, name, before, nil)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: mapping %q", ErrNotFound, name)
	}
	if err != nil {
		return fmt.Errorf("mapping: delete mapping %q: %w", name, err)
	}
	return nil
}

func notFound(err error, op, name string) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	return fmt.Errorf("mapping: %s %q: %w", op, name, err)
}

// writeErr turns a write's error into ErrNotFound, ErrConflict or a
// ValidationError where the database says so.
func writeErr(err error, op, name string) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	if errors.Is(err, ErrConflict) || errors.Is(err, ErrInvalid) {
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		what := "name"
		if pgErr.ConstraintName == "issuers_url_key" {
			what = "url"
		}
		return fmt.Errorf("%w: an object with that %s already exists", ErrConflict, what)
	}
	return fmt.Errorf("mapping: %s %q: %w", op, name, err)
}
