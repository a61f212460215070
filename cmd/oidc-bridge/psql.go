package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/oidc-bridge/oidc-bridge/internal/config"
	"github.com/oidc-bridge/oidc-bridge/internal/database"
	"github.com/oidc-bridge/oidc-bridge/internal/pgcluster"
)

func (a *app) psqlCmd() *cobra.Command {
	var auditor bool
	cmd := &cobra.Command{
		Use:   "psql [--auditor] [-- PSQL-ARGUMENTS...]",
		Short: "Open psql on the service's database (--auditor: as the auditor role)",
		Long: `Open the machine's psql on the database the service uses, with the
arguments after -- passed to psql (e.g. -- -c 'SELECT ...').

--auditor connects as the database's auditor role (oidc_bridge_auditor_<db>,
which reads schema audit and nothing else; see docs/audit.md). With the
embedded default it logs in as oidc_bridge_auditor_login, a member of that
role only. With BRIDGE_DATABASE_URL it logs in as that URL's user, who must
be a member of the auditor role: set the variable to your own login for this
command.

Without --auditor it connects as the schema's owner, for administrators: the
embedded cluster's superuser, or BRIDGE_MIGRATION_DATABASE_URL (else
BRIDGE_DATABASE_URL).

Like the other tool commands it uses the embedded cluster that exists for
BRIDGE_DATA_DIR (starting it for the session when it is stopped) and never
creates one. A password in the URL is handed to psql in PGPASSWORD, not on
its command line.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runPsql(cmd.Context(), auditor, args)
		},
	}
	cmd.Flags().BoolVar(&auditor, "auditor", false, "connect as the auditor role: read schema audit only")
	return cmd
}

func (a *app) runPsql(ctx context.Context, auditor bool, args []string) (err error) {
	cfg, err := config.Load(a.environ)
	if err != nil {
		return err
	}
	psql, err := findPsql()
	if err != nil {
		return err
	}
	var url, role string
	if cfg.DatabaseURL == "" {
		db, err := openCurrentDB(ctx, cfg, newLogger(a.stderr, max(cfg.Level, slog.LevelWarn)), a.stderr)
		if err != nil {
			return err
		}
		// After psql: stops the cluster if this command started it.
		defer func() { err = errors.Join(err, db.Close(context.WithoutCancel(ctx))) }()
		url = db.cluster.URL(embeddedDatabase)
		if auditor {
			if err := db.pool.QueryRow(ctx, "SELECT oidc_bridge_auditor_role()").Scan(&role); err != nil {
				return fmt.Errorf("the auditor role: %w", err)
			}
			if url, err = withUser(url, embeddedAuditorLogin); err != nil {
				return err
			}
		}
	} else {
		url = cfg.DatabaseURL
		if !auditor && cfg.MigrationDatabaseURL != "" {
			url = cfg.MigrationDatabaseURL
		}
		if auditor {
			if role, err = auditorRole(ctx, url); err != nil {
				return err
			}
		}
	}
	url, password, err := psqlURL(url, role)
	if err != nil {
		return err
	}
	env := a.environ
	if password != "" {
		env = append(env[:len(env):len(env)], "PGPASSWORD="+password)
	}
	// psql has the terminal: it handles Ctrl-C itself (cancelling its
	// query), so the command is not tied to ctx, which a Ctrl-C cancels.
	c := exec.Command(psql, append([]string{"--dbname", url}, args...)...)
	c.Env = env
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, a.stdout, a.stderr
	if err := c.Run(); err != nil {
		return fmt.Errorf("psql: %w", err)
	}
	return nil
}

// findPsql returns the path of psql: the one on PATH, else the one beside
// the PostgreSQL server binaries the embedded default uses.
func findPsql() (string, error) {
	if p, err := exec.LookPath("psql"); err == nil {
		return p, nil
	}
	if dir, err := pgcluster.FindBinaries(); err == nil {
		p := filepath.Join(dir, "psql")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New("psql not found on PATH: install the PostgreSQL client (e.g. apt-get install postgresql-client)")
}

// auditorRole asks the database at url for its auditor role.
func auditorRole(ctx context.Context, url string) (string, error) {
	pool, err := database.Open(ctx, url)
	if err != nil {
		return "", err
	}
	defer pool.Close()
	var role string
	if err := pool.QueryRow(ctx, "SELECT oidc_bridge_auditor_role()").Scan(&role); err != nil {
		return "", fmt.Errorf("the auditor role (is the schema migrated? `oidc-bridge migrate`): %w", err)
	}
	return role, nil
}

// pgxOnlyParams are connection URL parameters of pgx that libpq (psql)
// refuses.
var pgxOnlyParams = []string{"statement_cache_capacity", "description_cache_capacity", "default_query_exec_mode"}

// psqlURL turns a service connection URL into one for psql: without pgx's
// own parameters, without the password (returned apart, for PGPASSWORD:
// a command line is visible to every user of the machine), and, when role
// is set, with the session starting as that role (options=-c role=...,
// after any options the URL had, so it is the one that counts; the server
// refuses it unless the login is a member).
func psqlURL(rawURL, role string) (url, password string, err error) {
	u, err := neturl.Parse(rawURL)
	if err != nil {
		return "", "", errors.New("database URL: cannot be parsed")
	}
	q := u.Query()
	if p, ok := u.User.Password(); ok {
		password = p
		u.User = neturl.User(u.User.Username())
	}
	if p := q.Get("password"); p != "" {
		password = p
	}
	q.Del("password")
	for k := range q {
		if strings.HasPrefix(k, "pool_") {
			q.Del(k)
		}
	}
	for _, k := range pgxOnlyParams {
		q.Del(k)
	}
	if role != "" {
		if strings.Trim(role, "abcdefghijklmnopqrstuvwxyz0123456789_") != "" {
			return "", "", fmt.Errorf("auditor role %q: not a name oidc-bridge makes", role)
		}
		opts := strings.TrimSpace(q.Get("options") + " -c role=" + role)
		q.Set("options", opts)
	}
	// libpq decodes %20, not +, as a space (a literal + is %2B).
	u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
	return u.String(), password, nil
}
