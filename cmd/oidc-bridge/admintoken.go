package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/oidc-bridge/oidc-bridge/internal/admintoken"
	"github.com/oidc-bridge/oidc-bridge/internal/config"
	"github.com/oidc-bridge/oidc-bridge/internal/history"
)

func (a *app) adminTokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admin-token",
		Short: "Create, list and revoke admin API tokens",
		Long: `Create, list and revoke bearer tokens for the admin API. Only a SHA-256 of
each token is stored: a token is shown once, when it is created.`,
	}
	var (
		asJSON    bool
		scopes    []string
		expiresIn time.Duration
		by        string
	)
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a token and print it (once) on standard output",
		Long: `Create an admin token and print it (once) on standard output. A token has
the scopes read (GET and HEAD of the admin API) and write (everything else):
both unless --scope names some. With --expires-in it stops working after that
long; without, it works until revoked.`,
		Args: exactArgs(1),
		// Flag mistakes are usage errors, found before the database is opened.
		PreRunE: func(*cobra.Command, []string) error {
			if _, err := admintoken.NormalizeScopes(scopes); err != nil {
				return usageError{err}
			}
			if expiresIn < 0 {
				return usageError{errors.New("--expires-in must be positive, e.g. 720h")}
			}
			_, err := cliActor(by)
			return err
		},
		RunE: a.withTokens(func(ctx context.Context, s *admintoken.Store, args []string) error {
			var expiresAt *time.Time
			if expiresIn > 0 {
				t := time.Now().Add(expiresIn)
				expiresAt = &t
			}
			actor, err := cliActor(by)
			if err != nil {
				return err
			}
			token, info, err := s.Create(ctx, actor, args[0], scopes, expiresAt)
			if errors.Is(err, admintoken.ErrExists) {
				return fmt.Errorf("an admin token named %q exists and is not revoked: choose another name, or revoke it first (oidc-bridge admin-token revoke %s); a revoked token's name may be reused", args[0], args[0])
			}
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
			fmt.Fprintf(a.stderr, "created admin token %q (id %s, scopes %s, expires %s); it is shown only now, store it safely\n",
				info.Name, info.ID, strings.Join(info.Scopes, ","), expiry(info.ExpiresAt))
			return nil
		}),
	}
	create.Flags().BoolVar(&asJSON, "json", false, "print the token and its details as JSON")
	create.Flags().StringSliceVar(&scopes, "scope", admintoken.AllScopes(), "a scope of the token, read or write (repeat or separate with commas)")
	create.Flags().DurationVar(&expiresIn, "expires-in", 0, "expire the token after this long (e.g. 720h); default: never")
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
			now := time.Now()
			fmt.Fprintln(tw, "ID\tNAME\tSCOPES\tCREATED\tEXPIRES\tLAST USED\tREVOKED")
			for _, i := range infos {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", i.ID, i.Name, strings.Join(i.Scopes, ","),
					i.CreatedAt.UTC().Format(time.RFC3339), listExpiry(i, now), when(i.LastUsedAt), when(i.RevokedAt))
			}
			return tw.Flush()
		}),
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	revoke := &cobra.Command{
		Use:   "revoke ID|NAME",
		Short: "Revoke a token; it stops working at once on every replica",
		Args:  exactArgs(1),
		PreRunE: func(*cobra.Command, []string) error {
			_, err := cliActor(by)
			return err
		},
		RunE: a.withTokens(func(ctx context.Context, s *admintoken.Store, args []string) error {
			actor, err := cliActor(by)
			if err != nil {
				return err
			}
			info, err := s.Revoke(ctx, actor, args[0])
			if errors.Is(err, admintoken.ErrNotFound) {
				return fmt.Errorf("no admin token has the id or name %q (see oidc-bridge admin-token list)", args[0])
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "revoked admin token %q (id %s)\n", info.Name, info.ID)
			return nil
		}),
	}
	for _, c := range []*cobra.Command{create, revoke} {
		c.Flags().StringVar(&by, "actor", "", actorHelp)
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
		db, err := openCurrentDB(ctx, cfg, newLogger(a.stderr, max(cfg.Level, slog.LevelWarn)), a.stderr)
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, db.Close(context.WithoutCancel(ctx))) }()
		s, err := admintoken.New(db.pool, "", "")
		if err != nil {
			return err
		}
		return run(ctx, s, args)
	}
}

const actorHelp = "who runs this, for the admin-change history (recorded as cli:LABEL with the database login); default: the OS user"

// cliActor is who runs a command that changes admin tokens or signing
// keys, as the admin-change history records it: cli:LABEL, the label from
// --actor or else the OS user. Both are the runner's say-so; the history
// also records the database login (db_user), which the database vouches for.
func cliActor(label string) (history.Actor, error) {
	if label == "" {
		label = osUser()
	} else if !history.ValidLabel(label) {
		return history.Actor{}, usageError{fmt.Errorf("--actor must be %s", history.LabelRule)}
	}
	return history.Actor{Name: "cli:" + label, Source: history.SourceCLI}, nil
}

// osUser is the name of the OS user running the command, or uid-N when it
// has none that history.ValidLabel accepts.
func osUser() string {
	if u, err := user.Current(); err == nil && history.ValidLabel(u.Username) {
		return u.Username
	}
	return fmt.Sprintf("uid-%d", os.Getuid())
}

func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Errorf("usage: oidc-bridge %s", cmd.UseLine()[len("oidc-bridge "):])}
		}
		return nil
	}
}

// expiry shows an expiry time, "never" for none.
func expiry(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

// listExpiry is expiry, marked when the token has expired.
func listExpiry(i admintoken.Info, now time.Time) string {
	if i.Expired(now) {
		return expiry(i.ExpiresAt) + " (expired)"
	}
	return expiry(i.ExpiresAt)
}

func when(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
