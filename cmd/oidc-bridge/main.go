// Command oidc-bridge is the oidc-bridge service and its tools: serve,
// migrate, admin-token, exchange (the client for any CI) and keys.
//
// Configuration comes from the environment; see internal/config and the
// README's table.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/oidc-bridge/oidc-bridge/bridge/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot(os.Stdout, os.Stderr, os.Environ()).ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "oidc-bridge:", err)
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// usageError marks a command-line mistake (exit status 2).
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

func newRoot(stdout, stderr io.Writer, environ []string) *cobra.Command {
	return newAppRoot(&app{stdout: stdout, stderr: stderr, environ: environ})
}

// newAppRoot builds the command tree around app.
func newAppRoot(app *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "oidc-bridge",
		Short: "Exchange CI OIDC tokens for short-lived cloud credentials",
		Long: `oidc-bridge verifies the OIDC tokens that GitHub Actions, GitLab CI and other
issuers hand to pipeline jobs, and exchanges them for short-lived cloud
credentials under mappings kept in Postgres.

Configuration is read from the environment (BRIDGE_DATABASE_URL,
BRIDGE_MIGRATION_DATABASE_URL,
BRIDGE_DATA_DIR, BRIDGE_LISTEN_ADDR, BRIDGE_PUBLIC_URL, BRIDGE_ADMIN_TOKEN,
BRIDGE_ALLOW_INSECURE_ISSUERS, BRIDGE_LOG_LEVEL); see the README.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(app.stdout)
	root.SetErr(app.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		app.serveCmd(),
		app.migrateCmd(),
		app.adminTokenCmd(),
		app.exchangeCmd(),
		app.keysCmd(),
		app.explainCmd(),
		app.psqlCmd(),
	)
	return root
}

// app carries what every command shares.
type app struct {
	stdout, stderr io.Writer
	environ        []string
	// transport carries the client commands' (exchange, explain) HTTP
	// requests; nil is http.DefaultTransport. Tests set it.
	transport http.RoundTripper
}

// httpClient is the client commands' HTTP client: it follows no redirect
// (client.RefuseRedirect), so a bearer token goes only to the URL given.
func (a *app) httpClient(timeout time.Duration) *http.Client {
	return client.NoRedirects(&http.Client{Transport: a.transport, Timeout: timeout})
}

func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}
