package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/oidc-bridge/oidc-bridge/internal/config"
	"github.com/oidc-bridge/oidc-bridge/signing"
)

// kekFileName is the key-encryption key the embedded default keeps in
// BRIDGE_DATA_DIR when none is configured.
const kekFileName = "key-encryption-key"

// loadKEK returns the configured key-encryption key: BRIDGE_KEY_ENCRYPTION_KEY,
// the file BRIDGE_KEY_ENCRYPTION_KEY_FILE names, or, for the embedded
// default, a key kept in BRIDGE_DATA_DIR (made on first use, mode 0600). ok
// is false when none is configured. A key file that other users may read
// is refused (readKEKFile).
func loadKEK(cfg config.Config, embedded bool) (kek signing.KEK, ok bool, err error) {
	switch {
	case cfg.KeyEncryptionKey != "":
		kek, err = signing.ParseKEK([]byte(cfg.KeyEncryptionKey))
		if err != nil {
			return kek, false, fmt.Errorf("BRIDGE_KEY_ENCRYPTION_KEY: %w", err)
		}
		return kek, true, nil
	case cfg.KeyEncryptionKeyFile != "":
		b, err := readKEKFile(cfg.KeyEncryptionKeyFile)
		if err != nil {
			return kek, false, fmt.Errorf("BRIDGE_KEY_ENCRYPTION_KEY_FILE: %w", err)
		}
		kek, err = signing.ParseKEK(b)
		if err != nil {
			return kek, false, fmt.Errorf("BRIDGE_KEY_ENCRYPTION_KEY_FILE: %w", err)
		}
		return kek, true, nil
	case embedded:
		path := filepath.Join(cfg.DataDir, kekFileName)
		b, err := readKEKFile(path)
		if errors.Is(err, os.ErrNotExist) {
			enc, gerr := signing.GenerateKEK()
			if gerr != nil {
				return kek, false, gerr
			}
			b = []byte(enc + "\n")
			// O_EXCL: two commands starting at once must not write two keys.
			f, ferr := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if errors.Is(ferr, os.ErrExist) {
				b, err = readKEKFile(path)
			} else if ferr != nil {
				return kek, false, fmt.Errorf("key-encryption key: %w", ferr)
			} else {
				_, werr := f.Write(b)
				err = errors.Join(werr, f.Sync(), f.Close())
			}
		}
		if err != nil {
			return kek, false, fmt.Errorf("key-encryption key %s: %w", path, err)
		}
		kek, err = signing.ParseKEK(b)
		if err != nil {
			return kek, false, fmt.Errorf("key-encryption key %s: %w", path, err)
		}
		return kek, true, nil
	}
	return kek, false, nil
}

// refuseWithoutKEK is the check for a bridge without a key-encryption
// key: it may run (signing nothing) only while no signing keys exist.
func refuseWithoutKEK(ctx context.Context, db *dbHandle, log *slog.Logger) error {
	exist, err := signing.KeysExist(ctx, db.pool)
	if err != nil {
		return err
	}
	if exist {
		return errors.New("signing keys exist in the database but no key-encryption key is configured: " +
			"set BRIDGE_KEY_ENCRYPTION_KEY or BRIDGE_KEY_ENCRYPTION_KEY_FILE to the key they were encrypted with")
	}
	log.Warn("no key-encryption key: the bridge signs nothing (jwt mappings, aws web_identity, gcp workload_identity " +
		"and azure fail with provider_error); set BRIDGE_KEY_ENCRYPTION_KEY to enable them")
	return nil
}

func (a *app) keysCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "List or rotate the bridge's own signing keys",
		Long: `List or rotate the keys with which the bridge signs its own JWTs. Their
private parts are encrypted with the key-encryption key (BRIDGE_KEY_ENCRYPTION_KEY).
Rotation is automatic (every 30 days); a next key is published an hour
before it may sign, and a retired key stays published for a day after its
last use, so rotation never breaks a verifier.`,
	}
	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List the signing keys and their states",
		Args:  exactArgs(0),
		RunE: a.withSigner(func(ctx context.Context, m *signing.Manager) error {
			keys, err := m.Keys(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				if keys == nil {
					keys = []signing.KeyInfo{}
				}
				return json.NewEncoder(a.stdout).Encode(keys)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KID\tALG\tSTATE\tCREATED\tACTIVATED\tRETIRED\tLAST USED\tPUBLISHED UNTIL")
			var invalid []signing.KeyInfo
			for _, k := range keys {
				state := k.State
				if k.Invalid != "" {
					state += ",INVALID"
					invalid = append(invalid, k)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.KID, k.Alg, state, stamp(k.CreatedAt),
					stamp(k.ActivatedAt), stamp(k.RetiredAt), stamp(k.LastUsedAt), stamp(k.PublishedUntil))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			for _, k := range invalid {
				fmt.Fprintf(a.stdout, "\nINVALID %s: %s\n  not published, never signs; the bridge refuses to start beside it. "+
					"Investigate (docs/runbooks/signing-key-invalid.md), then: oidc-bridge keys rotate --force --revoke\n", k.KID, k.Invalid)
			}
			return nil
		}),
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	var (
		opts signing.RotateOptions
		by   string
	)
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Promote the next signing key now (every replica picks it up within 30 s)",
		Long: `Promote each algorithm's next key to active and retire the active one. The
next key must have been published for an hour, so that every verifier has
it; --force promotes it at once (after a compromise), and --revoke also stops
publishing the old key, so tokens it signed stop verifying, and deletes every
stored key that does not verify against the key-encryption key (a row that a
bridge with this key did not write; see keys list).`,
		Args: exactArgs(0),
		PreRunE: func(*cobra.Command, []string) (err error) {
			if opts.Alg != "" && !slices.Contains(signing.Algorithms(), opts.Alg) {
				return usageError{fmt.Errorf("--alg %q is not supported: use %s", opts.Alg, strings.Join(signing.Algorithms(), " or "))}
			}
			opts.Actor, err = cliActor(by)
			return err
		},
		RunE: a.withSigner(func(ctx context.Context, m *signing.Manager) error {
			if err := m.Rotate(ctx, opts); err != nil {
				var te *signing.TooEarlyError
				if errors.As(err, &te) {
					return fmt.Errorf("%w (use --force to promote it now; verifiers that cached the keys before %s will reject the new key until they refresh)",
						err, te.PublishedAt.UTC().Format(time.RFC3339))
				}
				return err
			}
			fmt.Fprintln(a.stdout, "rotated; every replica signs with the new key within 30 seconds")
			return nil
		}),
	}
	rotate.Flags().StringVar(&opts.Alg, "alg", "", "rotate only this algorithm (RS256 or ES256)")
	rotate.Flags().BoolVar(&opts.Force, "force", false, "promote the next key even if it was published less than an hour ago")
	rotate.Flags().BoolVar(&opts.Revoke, "revoke", false, "also unpublish the old key at once, and delete keys that do not verify (implies --force)")
	rotate.Flags().StringVar(&by, "actor", "", actorHelp)
	cmd.AddCommand(list, rotate)
	return cmd
}

func (a *app) withSigner(run func(context.Context, *signing.Manager) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) (err error) {
		cfg, err := config.Load(a.environ)
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		log := newLogger(a.stderr, max(cfg.Level, slog.LevelWarn))
		db, err := openCurrentDB(ctx, cfg, log, a.stderr)
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, db.Close(context.WithoutCancel(ctx))) }()
		kek, ok, err := loadKEK(cfg, db.embedded)
		if err != nil {
			return err
		}
		if !ok {
			if err := refuseWithoutKEK(ctx, db, log); err != nil {
				return err
			}
			return errors.New("no key-encryption key is configured (BRIDGE_KEY_ENCRYPTION_KEY): the bridge has no signing keys")
		}
		// Keys that do not verify are listed, and removed by rotate
		// --revoke; serve refuses to start beside them.
		m, err := signing.New(ctx, db.pool, kek, signing.Options{Issuer: cfg.PublicURL, Logger: log, AllowInvalidKeys: true})
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, m.Close(context.WithoutCancel(ctx))) }()
		return run(ctx, m)
	}
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
