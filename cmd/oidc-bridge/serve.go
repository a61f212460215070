package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime/debug"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/oidc-bridge/oidc-bridge/bridge"
	"github.com/oidc-bridge/oidc-bridge/console"
	"github.com/oidc-bridge/oidc-bridge/githubapp"
	"github.com/oidc-bridge/oidc-bridge/identity"
	"github.com/oidc-bridge/oidc-bridge/internal/admintoken"
	"github.com/oidc-bridge/oidc-bridge/internal/config"
	"github.com/oidc-bridge/oidc-bridge/internal/database"
	"github.com/oidc-bridge/oidc-bridge/internal/telemetry"
	"github.com/oidc-bridge/oidc-bridge/ledger"
	"github.com/oidc-bridge/oidc-bridge/mapping"
	"github.com/oidc-bridge/oidc-bridge/providers"
	"github.com/oidc-bridge/oidc-bridge/providers/aws"
	"github.com/oidc-bridge/oidc-bridge/providers/azure"
	"github.com/oidc-bridge/oidc-bridge/providers/gcp"
	"github.com/oidc-bridge/oidc-bridge/providers/github"
	"github.com/oidc-bridge/oidc-bridge/providers/jwt"
	"github.com/oidc-bridge/oidc-bridge/signing"
)

// version is the release, set at build time with
// -ldflags "-X main.version=…"; see telemetry.Version for the fallback.
var version string

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
		Short: "Run the HTTP service (applies pending migrations first, as BRIDGE_MIGRATION_DATABASE_URL)",
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

// defaultGCPercent is the service's GOGC unless the environment sets one:
// its live heap is small (tens of MiB), so collecting at 400 % growth
// instead of Go's 100 % costs some RSS and saves about a fifth of the CPU
// per exchange (docs/performance.md). GOMEMLIMIT, set in the Kubernetes
// manifests, makes the collector work harder near the container's limit.
const defaultGCPercent = 400

func (a *app) serve(ctx context.Context, cfg config.Config, migrate bool) (err error) {
	if a.getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	// Lines logged with a request's context carry its trace id.
	log := telemetry.WithTraceID(newLogger(a.stderr, cfg.Level))
	tp, stopTracing, err := telemetry.Setup(ctx, telemetry.Options{Getenv: a.getenv, Version: telemetry.Version(version), Logger: log})
	if err != nil {
		return err
	}
	// Deferred first, so it runs last: after the server has stopped.
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
		defer cancel()
		if err := stopTracing(stopCtx); err != nil {
			log.Warn("telemetry: flush spans", "err", err)
		}
	}()
	if tp != nil {
		log.Info("tracing on: spans are exported over OTLP")
	}
	if cfg.AllowInsecureIssuers {
		log.Warn("BRIDGE_ALLOW_INSECURE_ISSUERS is set: http:// issuers on loopback are accepted; never use this in production")
	}
	// Shutdown work must run even after the signal cancelled ctx.
	bg := context.WithoutCancel(ctx)
	db, err := openDB(ctx, cfg, log, migrate)
	if err != nil {
		return err
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(bg, shutdownTimeout)
		defer cancel()
		err = errors.Join(err, db.Close(stopCtx))
	}()

	led := ledger.New(db.pool)
	if err := schemaUsable(ctx, db.pool); err == nil {
		if err := led.EnsurePartitions(ctx, partitionMonths); err != nil {
			return err
		}
	} else {
		log.Warn("database schema is not current; /readyz answers 503 until `oidc-bridge migrate` runs", "err", err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(telemetry.NewPoolCollector(db.pool), telemetry.NewBuildInfo(telemetry.Version(version)))
	// The exchange reads issuers and mappings from memory, kept current
	// by LISTEN/NOTIFY (mapping.Cache); admin reads and writes go to the
	// database.
	var store *mapping.Cache
	catalogMetrics := telemetry.NewCatalogMetrics(reg, func() bool { return store.Fresh() })
	store = mapping.NewCache(mapping.NewPGStore(db.pool, 0), db.pool, mapping.CacheOptions{Logger: log,
		OnReload: catalogMetrics.Reloaded, OnHeartbeatIgnored: catalogMetrics.HeartbeatIgnored,
		OnReloadCoalesced: catalogMetrics.Coalesced})
	cacheCtx, stopCache := context.WithCancel(ctx)
	cacheDone := make(chan struct{})
	go func() { defer close(cacheDone); store.Run(cacheCtx) }()
	defer func() { stopCache(); <-cacheDone }()
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
		sm := telemetry.NewSigningMetrics(reg, ds.activeSince, log)
		ds.onRotate, ds.onInvalidKeys = sm.Rotated, sm.InvalidKeys
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
	// GitHub Apps' keys are encrypted with the KEK: without one, the
	// admin API keeps no Apps and github mints fail (nil interfaces).
	var (
		ghApps     bridge.GitHubApps
		ghAppCreds github.Apps
	)
	if haveKEK {
		st := githubapp.New(db.pool, kek)
		ghApps, ghAppCreds = st, st
	}
	provs, err := newProviders(ctx, cfg, signer, log)
	if err != nil {
		return err
	}
	// The App's base URL is per App (githubapp); the provider needs no
	// configuration of its own.
	ghP := github.New(github.Config{Apps: ghAppCreds, Logger: log})
	provs[ghP.Name()] = ghP
	verifier := identity.NewVerifier(identity.Config{AllowInsecureIssuers: cfg.AllowInsecureIssuers, Logger: log,
		OnFetch: telemetry.NewFetchMetrics(reg)}, store)
	admins, err := admintoken.New(db.pool, cfg.AdminToken, cfg.AdminTokenLabel)
	if err != nil {
		return err
	}
	if err := admins.CheckBootstrap(ctx); err != nil {
		var se *admintoken.BootstrapStoredError
		if !errors.As(err, &se) {
			return err
		}
		state := ""
		if se.Revoked {
			state = ", revoked"
		}
		return fmt.Errorf("BRIDGE_ADMIN_TOKEN is the admin token %q (id %s%s) made with `oidc-bridge admin-token create`: "+
			"refusing to start, because as the bootstrap token it would act with every scope, be recorded as %s rather than %q, "+
			"and revoking %q would not stop it. Unset BRIDGE_ADMIN_TOKEN in the server's environment "+
			"(admin clients read OIDC_BRIDGE_ADMIN_TOKEN), or give it a value of its own, e.g. `openssl rand -base64 32`",
			se.Name, se.ID, state, admintoken.BootstrapName, se.Name, se.Name)
	}
	srv := bridge.New(bridge.Options{
		Store:                store,
		Usage:                led,
		Verifier:             verifier,
		Ledger:               led,
		Providers:            provs,
		GitHubApps:           ghApps,
		Keys:                 keys,
		PublicURL:            cfg.PublicURL,
		TrustedProxies:       cfg.Proxies,
		RateLimit:            cfg.RateLimit,
		RateBurst:            cfg.RateBurst,
		IssuerRateLimit:      cfg.IssuerRateLimit,
		IssuerRateBurst:      cfg.IssuerRateBurst,
		IssuerOwnerRateLimit: cfg.IssuerOwnerRateLimit,
		IssuerOwnerRateBurst: cfg.IssuerOwnerRateBurst,
		SeparateMetrics:      cfg.MetricsAddr != "",
		Admins:               admins,
		Ready: func(ctx context.Context) error {
			if err := schemaUsable(ctx, db.pool); err != nil {
				return err
			}
			return database.CheckWritable(ctx, db.pool)
		},
		AllowInsecureIssuers: cfg.AllowInsecureIssuers,
		AWSRoleChaining:      cfg.AWSRoleChaining,
		BreakerCooldown:      cfg.BreakerCooldown,
		Logger:               log,
		Registry:             reg,
		TracerProvider:       tp,
	})
	if cfg.Console {
		// The console is on the admin side: the service's listener, where
		// the admin API is, under /console/, behind its own sign-in.
		srv.MountConsole(console.New(console.Options{Ledger: led, Catalog: store, Explainer: srv, Tokens: admins,
			ErrorBody: bridge.ErrorBody, SecureCookie: strings.HasPrefix(cfg.PublicURL, "https://"), Logger: log}))
		log.Info("console on", "path", bridge.ConsolePath+"/")
	}
	hs := srv.HTTPServer(cfg.ListenAddr)
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("listen on BRIDGE_LISTEN_ADDR: %w", err)
	}
	if cfg.AdminToken != "" && cfg.AdminTokenLabel == "" {
		log.Warn("BRIDGE_ADMIN_TOKEN has no BRIDGE_ADMIN_TOKEN_LABEL: the admin-change history names its holder only as bootstrap; set the label to the person or team who holds it")
	}
	if cfg.AdminToken == "" {
		log.Info("no BRIDGE_ADMIN_TOKEN: the admin API accepts only tokens made with `oidc-bridge admin-token create`")
	}
	log.Info("listening", "addr", ln.Addr().String(), "public_url", cfg.PublicURL, "embedded_database", db.embedded)

	go maintainLedger(ctx, led, cfg.LedgerRetention, log)
	if cfg.MetricsAddr != "" {
		stopMetrics, err := serveMetrics(cfg.MetricsAddr, srv.MetricsHandler(), log)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}
	if cfg.PprofAddr != "" {
		stopPprof, err := servePprof(cfg.PprofAddr, log)
		if err != nil {
			return err
		}
		defer stopPprof()
	}
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

// getenv reads the command's environment (a.environ), last value winning.
func (a *app) getenv(key string) string {
	v := ""
	for _, kv := range a.environ {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}

// newProviders builds every cloud provider. Those that need the bridge's
// signature (jwt, azure) exist only with a signer; the others fail only
// their signing modes without one.
func newProviders(ctx context.Context, cfg config.Config, signer signing.Signer, log *slog.Logger) (map[string]providers.Provider, error) {
	out := map[string]providers.Provider{}
	awsP, err := aws.New(ctx, aws.Config{Signer: signer, Logger: log, RoleChaining: cfg.AWSRoleChaining})
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

// maintainLedger keeps the ledger's months ahead in place, resolves
// abandoned pending issuances, analyzes the partitioned ledger daily and,
// with a retention (0: keep forever), drops the months older than it,
// while the service runs. Every replica runs it; every job is idempotent
// (the drop and the analysis run under advisory locks).
func maintainLedger(ctx context.Context, led *ledger.Ledger, retention time.Duration, log *slog.Logger) {
	sweep := time.NewTicker(sweepInterval)
	defer sweep.Stop()
	parts := time.NewTicker(partitionInterval)
	defer parts.Stop()
	analyze := func() {
		start := time.Now()
		ran, err := led.Analyze(ctx)
		switch {
		case err != nil:
			log.Error("ledger analyze: the planner's statistics of the partitioned ledger are not refreshed", "err", err)
		case ran:
			log.Info("ledger analyzed", "duration", time.Since(start).Round(time.Millisecond))
		}
	}
	analyze()
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
			analyze()
			if retention > 0 {
				cutoff := time.Now().Add(-retention)
				dropped, err := led.DropPartitionsBefore(ctx, cutoff)
				if err != nil {
					log.Error("ledger retention", "err", err)
				} else if len(dropped) > 0 {
					log.Warn("ledger retention: dropped partitions and their audit history", "partitions", dropped,
						"before", cutoff.UTC().Format(time.RFC3339), "retention", retention.String())
				}
			}
		}
	}
}

// serveMetrics serves GET /metrics (h) on addr, on its own listener: the
// service's port then answers 404 for it.
func serveMetrics(addr string, h http.Handler, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on BRIDGE_METRICS_ADDR: %w", err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	log.Info("metrics listening", "addr", ln.Addr().String())
	return func() { hs.Close() }, nil
}

// servePprof serves net/http/pprof on addr (a loopback address, checked by
// config) on its own listener and mux, never on the service's.
func servePprof(addr string, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on BRIDGE_PPROF_ADDR: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("pprof server stopped", "err", err)
		}
	}()
	log.Info("pprof listening", "addr", ln.Addr().String())
	return func() { hs.Close() }, nil
}
