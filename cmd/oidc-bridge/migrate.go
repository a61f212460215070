package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/oidc-bridge/oidc-bridge/internal/config"
	"github.com/oidc-bridge/oidc-bridge/internal/database"
)

func (a *app) migrateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Apply pending database migrations and exit",
		Long: `Apply pending database migrations and exit. Safe to run from several
replicas at once: an advisory lock lets one migrate while the others wait.
Connects as BRIDGE_MIGRATION_DATABASE_URL (the schema's owner), else as
BRIDGE_DATABASE_URL; the embedded default migrates as its superuser.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) (err error) {
			cfg, err := config.Load(a.environ)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			log := newLogger(a.stderr, cfg.Level)
			var pool *pgxpool.Pool
			var n int
			if cfg.DatabaseURL == "" {
				db, err := openDB(ctx, cfg, log, true)
				if err != nil {
					return err
				}
				defer func() { err = errors.Join(err, db.Close(context.WithoutCancel(ctx))) }()
				pool, n = db.pool, db.applied
			} else {
				// Only the migrator's URL is used: on a first install
				// the runtime login has no grant yet. Without
				// BRIDGE_MIGRATION_DATABASE_URL the only URL is the
				// migrator's (the migration Job, a single-role setup).
				url := cfg.MigrationDatabaseURL
				if url == "" {
					url = cfg.DatabaseURL
				}
				if pool, err = database.Open(ctx, url); err != nil {
					return err
				}
				defer pool.Close()
				if n, err = database.Migrate(ctx, pool, log); err != nil {
					return err
				}
			}
			cur, _, err := database.Status(ctx, pool)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "applied %d migration(s); schema version %d\n", n, cur)
			return nil
		},
	}
}
