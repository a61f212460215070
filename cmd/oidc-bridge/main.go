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
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/oidc-bridge/oidc-bridge/internal/config"
	"github.com/oidc-bridge/oidc-bridge/internal/telemetry"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot(os.Stdout, os.Stderr, os.Environ()).ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "oidc-bridge:", userMessage(err))
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

` + environmentHelp() + `
See the README's Configuration for what each variable means.`,
		Version:       telemetry.Version(version),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("oidc-bridge {{.Version}}\n")
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
		app.gitCredentialCmd(),
		app.revokeCmd(),
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
	hc, _ := a.httpClientCA(timeout, "") // no CA file, no error
	return hc
}

// environmentHelp lists the environment: the server's variables, from
// config's Config (so the list cannot drift from what Load reads), then the
// clients'.
func environmentHelp() string {
	var b strings.Builder
	b.WriteString("Configuration of serve and the tool commands (migrate, admin-token, keys)\nis read from the environment:\n")
	for _, v := range config.Variables() {
		if v.Default != "" {
			fmt.Fprintf(&b, "  %s (default %s)\n", v.Name, v.Default)
		} else {
			fmt.Fprintf(&b, "  %s\n", v.Name)
		}
	}
	b.WriteString("  OTEL_* (OpenTelemetry tracing), and the cloud SDKs' own variables\n\n")
	b.WriteString("The clients read their own variables, never the server's:\n")
	fmt.Fprintf(&b, "  %s         the bridge's URL (exchange, explain)\n", envBridgeURL)
	fmt.Fprintf(&b, "  %s an admin token (explain; the Terraform provider)\n", envAdminToken)
	b.WriteString("  and exchange's OIDC_BRIDGE_MAPPING, _PROVIDER, _DURATION, _AUDIENCE,\n  _ID_TOKEN, _CACHE_DIR (see oidc-bridge exchange --help)\n")
	return b.String()
}

func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}
