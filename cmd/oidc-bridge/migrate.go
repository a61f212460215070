package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/oidc-bridge/oidc-bridge/internal/config"
	"github.com/oidc-bridge/oidc-bridge/internal/database"
)

func (a *app) migrateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Apply pending database migrations and exit",
		Long: `Apply pending database migrations and exit. Safe to run from several
replicas at once: an advisory lock lets one migrate while the others wait.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) (err error) {
			cfg, err := config.Load(a.environ)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			log := newLogger(a.stderr, cfg.Level)
			db, err := openDB(ctx, cfg, log)
			if err != nil {
				return err
			}
			defer func() { err = errors.Join(err, db.Close(context.WithoutCancel(ctx))) }()
			n, err := database.Migrate(ctx, db.pool, log)
			if err != nil {
				return err
			}
			cur, _, err := database.Status(ctx, db.pool)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "applied %d migration(s); schema version %d\n", n, cur)
			return nil
		},
	}
}
