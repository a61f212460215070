package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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

// dbHandle is an open database, and the embedded cluster behind it if any.
type dbHandle struct {
	pool     *pgxpool.Pool
	cluster  *pgcluster.Cluster
	embedded bool
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

// openDB connects to BRIDGE_DATABASE_URL or, when it is unset, creates
// (first run) or reuses the private cluster under BRIDGE_DATA_DIR.
func openDB(ctx context.Context, cfg config.Config, log *slog.Logger) (*dbHandle, error) {
	h := &dbHandle{}
	url := cfg.DatabaseURL
	if url == "" {
		h.embedded = true
		dir := filepath.Join(cfg.DataDir, "postgres")
		log.Info("no BRIDGE_DATABASE_URL: using the embedded PostgreSQL cluster", "dir", dir)
		c, err := pgcluster.Start(ctx, pgcluster.Options{DataDir: dir, FallbackRoot: clusterRoot, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("embedded database: %w", err)
		}
		h.cluster = c
		if err := c.EnsureDatabase(ctx, embeddedDatabase); err != nil {
			return nil, errors.Join(fmt.Errorf("embedded database in %s: %w", c.Dir(), err), h.Close(context.WithoutCancel(ctx)))
		}
		url = c.URL(embeddedDatabase)
	}
	pool, err := database.Open(ctx, url)
	if err != nil {
		return nil, errors.Join(err, h.Close(context.WithoutCancel(ctx)))
	}
	h.pool = pool
	return h, nil
}

// openCurrentDB opens the database for a tool command: it migrates the
// embedded default (which this binary owns) and otherwise requires that the
// schema is current.
func openCurrentDB(ctx context.Context, cfg config.Config, log *slog.Logger) (*dbHandle, error) {
	h, err := openDB(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	if h.embedded {
		_, err = database.Migrate(ctx, h.pool, log)
	} else if err = database.CheckCurrent(ctx, h.pool); err != nil {
		err = fmt.Errorf("%w (run `oidc-bridge migrate` first)", err)
	}
	if err != nil {
		return nil, errors.Join(err, h.Close(context.WithoutCancel(ctx)))
	}
	return h, nil
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
