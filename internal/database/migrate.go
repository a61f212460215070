package database

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/oidc-bridge/oidc-bridge/internal/dbfail"
	"github.com/oidc-bridge/oidc-bridge/migrations"
)

var (
	// ErrSchemaBehind means the database lacks migrations this binary has:
	// run Migrate (oidc-bridge serve does at start).
	ErrSchemaBehind = errors.New("database: schema is behind this binary")
	// ErrSchemaAhead means the database has migrations this binary does not
	// know: a newer oidc-bridge migrated it.
	ErrSchemaAhead = errors.New("database: schema is newer than this binary")
	// ErrUnavailable means the database could not be asked: down,
	// unreachable, overloaded (dbfail.Unavailable).
	ErrUnavailable = errors.New("database: unavailable")
	// ErrReadOnly means the database accepts no writes: a standby (after
	// a failover, a URL that names the old primary's standby without
	// target_session_attrs=read-write), or a read-only session.
	ErrReadOnly = errors.New("database: read-only (a standby, or default_transaction_read_only)")
)

// CheckWritable reports whether the database the pool reaches accepts
// writes: the bridge writes a ledger row before any credential, so a
// replica on a standby can serve nothing and must not report ready.
func CheckWritable(ctx context.Context, pool *pgxpool.Pool) error {
	var readOnly bool
	if err := pool.QueryRow(ctx, `SELECT pg_is_in_recovery() OR current_setting('transaction_read_only')::bool`).Scan(&readOnly); err != nil {
		return dbfail.Mark(err, ErrUnavailable)
	}
	if readOnly {
		return ErrReadOnly
	}
	return nil
}

// versionTable is goose's bookkeeping table (goose.DefaultTablename).
const versionTable = "goose_db_version"

// Migrate applies the migrations the database lacks and returns how many it
// applied. Several processes may call it at once on the same database: a
// PostgreSQL advisory lock lets one apply the migrations while the others
// wait and then find nothing to do. It never migrates down; a database newer
// than the binary is left as it is (see [CheckCurrent]).
func Migrate(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger) (applied int, err error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// The common case, a current schema, needs neither the lock nor goose.
	if current, latest, err := Status(ctx, pool); err == nil && current >= latest {
		return 0, nil
	}
	// Migrations have no statement timeout: a schema change of a big
	// ledger may take longer than the service's bound. Their connections
	// are the pool's, made afresh with that one setting changed.
	cfg := pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["statement_timeout"] = "0"
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	provider, err := newProvider(db)
	if err != nil {
		return 0, err
	}
	results, err := provider.Up(ctx)
	var partial *goose.PartialError
	if errors.As(err, &partial) {
		results = partial.Applied
	}
	for _, r := range results {
		logger.InfoContext(ctx, "database: applied migration",
			"version", r.Source.Version, "file", r.Source.Path, "duration", r.Duration)
	}
	if err != nil {
		return len(results), fmt.Errorf("database: migrate: %w", err)
	}
	return len(results), nil
}

// newProvider returns the goose provider of the embedded migrations on db,
// with a session-level advisory lock polled every second (goose's default
// of 5 s would make replicas that start together wait needlessly long).
func newProvider(db *sql.DB) (*goose.Provider, error) {
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300), lock.WithUnlockTimeout(1, 60))
	if err != nil {
		return nil, fmt.Errorf("database: migration lock: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS,
		goose.WithSessionLocker(locker),
		// Only the embedded SQL files, never Go migrations registered
		// globally by some other package.
		goose.WithDisableGlobalRegistry(true),
	)
	if err != nil {
		return nil, fmt.Errorf("database: migrations: %w", err)
	}
	return p, nil
}

// latestVersion is the highest version among the embedded migrations.
func latestVersion() (int64, error) {
	entries, err := fs.ReadDir(migrations.FS, ".")
	if err != nil {
		return 0, fmt.Errorf("database: read migrations: %w", err)
	}
	var latest int64
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".sql" {
			continue
		}
		v, err := goose.NumericComponent(e.Name())
		if err != nil {
			return 0, fmt.Errorf("database: migration %s: %w", e.Name(), err)
		}
		latest = max(latest, v)
	}
	return latest, nil
}

// Status returns the database's schema version (0 when it was never
// migrated) and the latest version this binary knows. It makes one query.
func Status(ctx context.Context, pool *pgxpool.Pool) (current, latest int64, err error) {
	latest, err = latestVersion()
	if err != nil {
		return 0, 0, err
	}
	// goose deletes a version's row when migrating it down, so the highest
	// row is the current version.
	err = pool.QueryRow(ctx, "SELECT coalesce(max(version_id), 0) FROM "+versionTable).Scan(&current)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" {
		// undefined_table: never migrated.
		return 0, latest, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("database: read schema version: %w", err)
	}
	return current, latest, nil
}

// CheckCurrent returns nil when the database's schema is the one this binary
// expects, an error wrapping [ErrSchemaBehind] or [ErrSchemaAhead] when it is
// not, or the error that kept it from telling. It makes one query under ctx,
// cheap enough for a readiness probe.
func CheckCurrent(ctx context.Context, pool *pgxpool.Pool) error {
	current, latest, err := Status(ctx, pool)
	switch {
	case err != nil:
		return dbfail.Mark(err, ErrUnavailable)
	case current < latest:
		return fmt.Errorf("%w: database at version %d, binary needs %d; run migrations", ErrSchemaBehind, current, latest)
	case current > latest:
		return fmt.Errorf("%w: database at version %d, binary knows up to %d; upgrade oidc-bridge", ErrSchemaAhead, current, latest)
	}
	return nil
}
