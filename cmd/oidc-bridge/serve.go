package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/oidc-bridge/oidc-bridge/bridge"
	"github.com/oidc-bridge/oidc-bridge/identity"
	"github.com/oidc-bridge/oidc-bridge/internal/admintoken"
	"github.com/oidc-bridge/oidc-bridge/internal/config"
	"github.com/oidc-bridge/oidc-bridge/internal/database"
	"github.com/oidc-bridge/oidc-bridge/ledger"
	"github.com/oidc-bridge/oidc-bridge/mapping"
	"github.com/oidc-bridge/oidc-bridge/providers"
	"github.com/oidc-bridge/oidc-bridge/providers/aws"
	"github.com/oidc-bridge/oidc-bridge/providers/azure"
	"github.com/oidc-bridge/oidc-bridge/providers/gcp"
	"github.com/oidc-bridge/oidc-bridge/providers/jwt"
	"github.com/oidc-bridge/oidc-bridge/signing"
)

const (
	shutdownTimeout = 15 * time.Second
	// partitionMonths is how many months ahead the ledger's partitions exist.
	partitionMonths   = 3
	partitionInterval = 24 * time.Hour
	sweepInterval     = time.Minute
	// keyMaintenanceInterval is how often each replica checks the
	// signing keys' schedule.
	keyMaintenanceInterval = time.Minute
)

func (a *app) serveCmd() *cobra.Command {
	var noMigrate bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the HTTP service (applies pending migrations first)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(a.environ)
			if err != nil {
				return err
			}
			return a.serve(cmd.Context(), cfg, !noMigrate)
		},
	}
	cmd.Flags().BoolVar(&noMigrate, "no-migrate", false, "do not apply pending migrations (readyz answers 503 until the schema is current)")
	return cmd
}

func (a *app) serve(ctx context.Context, cfg config.Config, migrate bool) (err error) {
	log := newLogger(a.stderr, cfg.Level)
	if cfg.AllowInsecureIssuers {
		log.Warn("BRIDGE_ALLOW_INSECURE_ISSUERS is set: http:// issuers on loopback are accepted; never use this in production")
	}
	// Shutdown work must run even after the signal cancelled ctx.
	bg := context.WithoutCancel(ctx)
	db, err := openDB(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(bg, shutdownTimeout)
		defer cancel()
		err = errors.Join(err, db.Close(stopCtx))
	}()

	if migrate {
		n, err := database.Migrate(ctx, db.pool, log)
		if err != nil {
			return err
		}
		log.Info("migrations applied", "count", n)
	}
	led := ledger.New(db.pool)
	if err := database.CheckCurrent(ctx, db.pool); err == nil {
		if err := led.EnsurePartitions(ctx, partitionMonths); err != nil {
			return err
		}
	} else {
		log.Warn("database schema is not current; /readyz answers 503 until `oidc-bridge migrate` runs", "err", err)
	}

	store := mapping.NewPGStore(db.pool, 0)
	// Nil interfaces when the bridge signs nothing (never a nil pointer in
	// a non-nil interface).
	var (
		signer signing.Signer
		keys   bridge.KeySource
	)
	kek, haveKEK, err := loadKEK(cfg, db.embedded)
	if err != nil {
		return err
	}
	if haveKEK {
		ds := &deferredSigner{issuer: cfg.PublicURL}
		if err := ds.start(ctx, db, kek, log); err != nil {
			return err
		}
		defer func() {
			closeCtx, cancel := context.WithTimeout(bg, shutdownTimeout)
			defer cancel()
			err = errors.Join(err, ds.close(closeCtx))
		}()
		signer, keys = ds, ds
	} else if err := refuseWithoutKEK(ctx, db, log); err != nil {
		return err
	}
	provs, err := newProviders(ctx, cfg, signer, log)
	if err != nil {
		return err
	}
	srv := bridge.New(bridge.Options{
		Store:                store,
		Usage:                led,
		Verifier:             identity.NewVerifier(identity.Config{AllowInsecureIssuers: cfg.AllowInsecureIssuers, Logger: log}, store),
		Ledger:               led,
		Providers:            provs,
		Keys:                 keys,
		PublicURL:            cfg.PublicURL,
		TrustedProxies:       cfg.Proxies,
		RateLimit:            cfg.RateLimit,
		RateBurst:            cfg.RateBurst,
		Admins:               admintoken.New(db.pool, cfg.AdminToken),
		Ready:                func(ctx context.Context) error { return database.CheckCurrent(ctx, db.pool) },
		AllowInsecureIssuers: cfg.AllowInsecureIssuers,
		Logger:               log,
		Registry:             prometheus.NewRegistry(),
	})
	hs := srv.HTTPServer(cfg.ListenAddr)
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("listen on BRIDGE_LISTEN_ADDR: %w", err)
	}
	if cfg.AdminToken == "" {
		log.Info("no BRIDGE_ADMIN_TOKEN: the admin API accepts only tokens made with `oidc-bridge admin-token create`")
	}
	log.Info("listening", "addr", ln.Addr().String(), "public_url", cfg.PublicURL, "embedded_database", db.embedded)

	go maintainLedger(ctx, led, log)
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()
	select {
	case err := <-serveErr:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(bg, shutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http server: %w", err)
	}
	return nil
}

// newProviders builds every cloud provider. Those that need the bridge's
// signature (jwt, azure) exist only with a signer; the others fail only
// their signing modes without one.
func newProviders(ctx context.Context, cfg config.Config, signer signing.Signer, log *slog.Logger) (map[string]providers.Provider, error) {
	out := map[string]providers.Provider{}
	awsP, err := aws.New(ctx, aws.Config{Signer: signer, Logger: log})
	if err != nil {
		return nil, err
	}
	gcpP, err := gcp.New(ctx, gcp.Config{Signer: signer, IAMCredentialsEndpoint: cfg.GCPIAMCredentialsEndpoint,
		STSEndpoint: cfg.GCPSTSEndpoint, Logger: log})
	if err != nil {
		return nil, err
	}
	out[awsP.Name()], out[gcpP.Name()] = awsP, gcpP
	if signer != nil {
		azureP, err := azure.New(ctx, azure.Config{Signer: signer, Logger: log})
		if err != nil {
			return nil, err
		}
		jwtP := jwt.New(jwt.Config{Signer: signer, Logger: log})
		out[azureP.Name()], out[jwtP.Name()] = azureP, jwtP
	}
	return out, nil
}

// maintainLedger keeps the ledger's months ahead in place and resolves
// abandoned pending issuances while the service runs. Every replica runs it;
// both jobs are idempotent.
func maintainLedger(ctx context.Context, led *ledger.Ledger, log *slog.Logger) {
	sweep := time.NewTicker(sweepInterval)
	defer sweep.Stop()
	parts := time.NewTicker(partitionInterval)
	defer parts.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sweep.C:
			n, err := led.Sweep(ctx)
			if err != nil {
				log.Error("ledger sweep", "err", err)
			} else if n > 0 {
				log.Warn("ledger sweep: pending issuances past their credentials' lifetime marked unknown", "count", n)
			}
		case <-parts.C:
			if err := led.EnsurePartitions(ctx, partitionMonths); err != nil {
				log.Error("ledger partitions", "err", err)
			}
		}
	}
}
