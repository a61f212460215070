package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	neturl "net/url"
	"path/filepath"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/oidc-bridge/oidc-bridge/internal/config"
	"github.com/oidc-bridge/oidc-bridge/internal/database"
	"github.com/oidc-bridge/oidc-bridge/internal/pgcluster"
)

// embeddedDatabase is the database of the embedded default.
const embeddedDatabase = "oidc_bridge"

// clusterRoot is where, running as root, the embedded default keeps the
// cluster of a BRIDGE_DATA_DIR that the postgres OS user cannot reach (a
// checkout under /root): one folder per data folder, see
// [pgcluster.Options.FallbackRoot]. A variable only so that the end-to-end
// tests can build the binary with another one (-ldflags -X).
var clusterRoot = "/var/lib/oidc-bridge"

// embeddedLogin is the service's login role in the embedded cluster: a
// member of the database's runtime role (oidc_bridge_runtime_role(),
// migrations/00007_roles.sql), so that the embedded default runs with the
// same privileges as a deployment on a managed PostgreSQL. The superuser
// postgres migrates and owns the schema. Both connect over the private
// unix socket (trust authentication, a folder only the cluster's user can
// enter): the role keeps the service's SQL within the runtime's rights; it
// does not protect the database from a process that owns its data folder.
const embeddedLogin = "oidc_bridge_service"

// embeddedAuditorLogin is the auditors' login in the embedded cluster
// (`oidc-bridge psql --auditor`): a member of the database's auditor role
// (oidc_bridge_auditor_role()) and of nothing else, so that a session of it
// cannot RESET ROLE or SET ROLE its way to more than the audit views, as a
// superuser's session could.
const embeddedAuditorLogin = "oidc_bridge_auditor_login"

// embeddedRoles creates the embedded logins and grants each its role once
// migration 00007 has made them. Concurrent commands on one cluster may run
// it at once.
const embeddedRoles = `DO $$
DECLARE
    l text;
BEGIN
    FOREACH l IN ARRAY ARRAY['oidc_bridge_service', 'oidc_bridge_auditor_login'] LOOP
        BEGIN
            EXECUTE format('CREATE ROLE %I LOGIN', l);
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END LOOP;
    IF to_regprocedure('public.oidc_bridge_runtime_role()') IS NOT NULL THEN
        EXECUTE format('GRANT %I TO oidc_bridge_service', public.oidc_bridge_runtime_role());
        EXECUTE format('GRANT %I TO oidc_bridge_auditor_login', public.oidc_bridge_auditor_role());
    END IF;
END
$$`

// dbHandle is an open database, and the embedded cluster behind it if any.
type dbHandle struct {
	// pool connects as the service's runtime login.
	pool     *pgxpool.Pool
	cluster  *pgcluster.Cluster
	embedded bool
	// applied is how many migrations openDB applied.
	applied int
}

// Close closes the pool and stops the embedded cluster if this process
// started it.
func (h *dbHandle) Close(ctx context.Context) error {
	if h.pool != nil {
		h.pool.Close()
	}
	if h.cluster != nil {
		return h.cluster.Stop(ctx)
	}
	return nil
}

// openDB opens the service's pool on BRIDGE_DATABASE_URL or, when it is
// unset, creates (first run) or reuses the private cluster under
// BRIDGE_DATA_DIR and connects as its runtime login. With migrate, it
// first applies the pending migrations as the migrator: the embedded
// cluster's superuser, or BRIDGE_MIGRATION_DATABASE_URL; without that
// variable nothing is migrated (the schema's owner runs `oidc-bridge
// migrate`).
func openDB(ctx context.Context, cfg config.Config, log *slog.Logger, migrate bool) (*dbHandle, error) {
	return openDBIn(ctx, cfg, log, migrate, false)
}

// openDBIn is openDB; with existing, the embedded default uses only a
// cluster that exists (which it starts if stopped), and fails with
// [errNoEmbeddedDatabase] when there is none.
func openDBIn(ctx context.Context, cfg config.Config, log *slog.Logger, migrate, existing bool) (*dbHandle, error) {
	h := &dbHandle{}
	url, migrationURL := cfg.DatabaseURL, cfg.MigrationDatabaseURL
	if url == "" {
		h.embedded = true
		dir := filepath.Join(cfg.DataDir, "postgres")
		log.Info("no BRIDGE_DATABASE_URL: using the embedded PostgreSQL cluster", "dir", dir)
		c, err := pgcluster.Start(ctx, pgcluster.Options{DataDir: dir, FallbackRoot: clusterRoot, Logger: log, MustExist: existing})
		if errors.Is(err, pgcluster.ErrNoCluster) {
			return nil, errNoEmbeddedDatabase(cfg.DataDir)
		}
		if err != nil {
			return nil, fmt.Errorf("embedded database: %w", err)
		}
		h.cluster = c
		if err := c.EnsureDatabase(ctx, embeddedDatabase); err != nil {
			return nil, errors.Join(fmt.Errorf("embedded database in %s: %w", c.Dir(), err), h.Close(context.WithoutCancel(ctx)))
		}
		migrationURL = c.URL(embeddedDatabase)
		if url, err = withUser(migrationURL, embeddedLogin); err != nil {
			return nil, errors.Join(err, h.Close(context.WithoutCancel(ctx)))
		}
	}
	if h.embedded || (migrate && migrationURL != "") {
		n, err := runMigrations(ctx, migrationURL, log, migrate, h.embedded)
		if err != nil {
			return nil, errors.Join(err, h.Close(context.WithoutCancel(ctx)))
		}
		h.applied = n
	} else if migrate {
		log.Info("BRIDGE_MIGRATION_DATABASE_URL is unset: not migrating; /readyz answers 503 until the schema is current (`oidc-bridge migrate`)")
	}
	pool, err := database.Open(ctx, url)
	if err != nil {
		return nil, errors.Join(err, h.Close(context.WithoutCancel(ctx)))
	}
	h.pool = pool
	return h, nil
}

// runMigrations connects as the migrator on url, applies the pending
// migrations when migrate is set and, in the embedded cluster, sets up the
// service's login (embeddedRoles).
func runMigrations(ctx context.Context, url string, log *slog.Logger, migrate, embedded bool) (applied int, err error) {
	pool, err := database.Open(ctx, url)
	if err != nil {
		return 0, fmt.Errorf("migrator: %w", err)
	}
	defer pool.Close()
	if migrate {
		if applied, err = database.Migrate(ctx, pool, log); err != nil {
			return applied, err
		}
		log.Info("migrations applied", "count", applied)
	}
	if embedded {
		if _, err := pool.Exec(ctx, embeddedRoles); err != nil {
			return applied, fmt.Errorf("embedded database: the service's login role: %w", err)
		}
	}
	return applied, nil
}

// withUser returns the connection URL rawURL with user instead of its own.
func withUser(rawURL, user string) (string, error) {
	u, err := neturl.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("embedded database: URL: %w", err)
	}
	u.User = neturl.User(user)
	return u.String(), nil
}

// openCurrentDB opens the database for a tool command (everything but
// serve and migrate): it migrates the embedded default (which this binary
// owns) and otherwise requires that the schema is current. The embedded
// default must exist: a tool command reaches the cluster the service uses,
// starting it for its own duration when it is stopped, and never makes a
// new one (which would hold none of the service's tokens, keys or
// history). It notes on stderr which data folder it uses.
func openCurrentDB(ctx context.Context, cfg config.Config, log *slog.Logger, stderr io.Writer) (*dbHandle, error) {
	h, err := openDBIn(ctx, cfg, log, cfg.DatabaseURL == "", true)
	if err != nil {
		return nil, err
	}
	if h.embedded {
		fmt.Fprintf(stderr, "oidc-bridge: using the embedded database in %s (BRIDGE_DATA_DIR %s)\n", h.cluster.Dir(), cfg.DataDir)
	}
	if !h.embedded {
		if err = database.CheckCurrent(ctx, h.pool); err != nil {
			err = fmt.Errorf("%w (run `oidc-bridge migrate` first)", err)
			return nil, errors.Join(err, h.Close(context.WithoutCancel(ctx)))
		}
	}
	return h, nil
}

// errNoEmbeddedDatabase is a tool command's refusal to make an embedded
// cluster in dataDir (an absolute path).
func errNoEmbeddedDatabase(dataDir string) error {
	return fmt.Errorf("no embedded database in %s: start the service first (`make run` in the checkout, or `oidc-bridge serve`), "+
		"run this command from the folder the service runs in, or set BRIDGE_DATA_DIR to the service's data folder "+
		"or BRIDGE_DATABASE_URL to its database; a tool command never creates a database", dataDir)
}

// schemaUsable reports whether this binary can serve on the database's
// schema: the current one, or a newer one. Migrations only add (expand
// before contract), so while a rollout replaces the replicas, the old ones
// keep serving on the schema the migration Job has just moved forward.
func schemaUsable(ctx context.Context, pool *pgxpool.Pool) error {
	err := database.CheckCurrent(ctx, pool)
	if errors.Is(err, database.ErrSchemaAhead) {
		return nil
	}
	return err
}
