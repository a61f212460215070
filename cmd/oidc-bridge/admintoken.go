package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/oidc-bridge/oidc-bridge/internal/admintoken"
	"github.com/oidc-bridge/oidc-bridge/internal/config"
)

func (a *app) adminTokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admin-token",
		Short: "Create, list and revoke admin API tokens",
		Long: `Create, list and revoke bearer tokens for the admin API. Only a SHA-256 of
each token is stored: a token is shown once, when it is created.`,
	}
	var asJSON bool
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a token and print it (once) on standard output",
		Args:  exactArgs(1),
		RunE: a.withTokens(func(ctx context.Context, s *admintoken.Store, args []string) error {
			token, info, err := s.Create(ctx, args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(a.stdout).Encode(struct {
					admintoken.Info
					Token string `json:"token"`
				}{info, token})
			}
			fmt.Fprintln(a.stdout, token)
			fmt.Fprintf(a.stderr, "created admin token %q (id %s); it is shown only now, store it safely\n", info.Name, info.ID)
			return nil
		}),
	}
	create.Flags().BoolVar(&asJSON, "json", false, "print the token and its details as JSON")
	list := &cobra.Command{
		Use:   "list",
		Short: "List tokens (never their values)",
		Args:  exactArgs(0),
		RunE: a.withTokens(func(ctx context.Context, s *admintoken.Store, _ []string) error {
			infos, err := s.List(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				if infos == nil {
					infos = []admintoken.Info{}
				}
				return json.NewEncoder(a.stdout).Encode(infos)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tCREATED\tLAST USED\tREVOKED")
			for _, i := range infos {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", i.ID, i.Name, i.CreatedAt.UTC().Format(time.RFC3339), when(i.LastUsedAt), when(i.RevokedAt))
			}
			return tw.Flush()
		}),
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	revoke := &cobra.Command{
		Use:   "revoke ID|NAME",
		Short: "Revoke a token; it stops working at once on every replica",
		Args:  exactArgs(1),
		RunE: a.withTokens(func(ctx context.Context, s *admintoken.Store, args []string) error {
			info, err := s.Revoke(ctx, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "revoked admin token %q (id %s)\n", info.Name, info.ID)
			return nil
		}),
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

func (a *app) withTokens(run func(context.Context, *admintoken.Store, []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) (err error) {
		cfg, err := config.Load(a.environ)
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		db, err := openCurrentDB(ctx, cfg, newLogger(a.stderr, max(cfg.Level, slog.LevelWarn)))
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, db.Close(context.WithoutCancel(ctx))) }()
		return run(ctx, admintoken.New(db.pool, ""), args)
	}
}

func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Errorf("usage: oidc-bridge %s", cmd.UseLine()[len("oidc-bridge "):])}
		}
		return nil
	}
}

func when(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
