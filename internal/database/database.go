package database

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

const (
	// defaultMaxConns bounds a replica's connections unless the URL sets
	// pool_max_conns: enough for concurrent exchanges, small enough that
	// many replicas fit under the server's max_connections (100 by default).
	defaultMaxConns = 16
	// pingTimeout bounds the first connection made by Open.
	pingTimeout = 5 * time.Second
	// connectTimeout bounds every new connection unless the URL sets
	// connect_timeout.
	connectTimeout = 5 * time.Second
	// applicationName shows in pg_stat_activity unless the URL sets one.
	applicationName = "oidc-bridge"
	// StatementTimeout is the server's bound on one statement of the
	// service, unless the URL sets statement_timeout: a backstop behind
	// the client's own deadlines (5 s per ledger or store operation), for
	// when a cancel request cannot reach the server.
	StatementTimeout = "30s"
	// IdleInTransactionTimeout ends a session whose client stopped in the
	// middle of a transaction (a hung replica holding quota locks),
	// unless the URL sets idle_in_transaction_session_timeout.
	IdleInTransactionTimeout = "60s"
)

// Open parses url (a PostgreSQL URL or keyword/value string, as accepted by
// pgxpool.ParseConfig), opens a pool and checks it with a ping bounded by 5
// seconds. Its sessions have StatementTimeout and IdleInTransactionTimeout. Settings in url (pool_max_conns, connect_timeout, ...) win over
// the defaults. Errors never contain the password of url.
func Open(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database: parse connection URL: %w", redact(err, url))
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = defaultMaxConns
	}
	if !strings.Contains(url, "pool_health_check_period") {
		cfg.HealthCheckPeriod = 15 * time.Second
	}
	if !strings.Contains(url, "pool_max_conn_idle_time") {
		cfg.MaxConnIdleTime = 5 * time.Minute
	}
	if !strings.Contains(url, "pool_max_conn_lifetime_jitter") {
		// Spread reconnects of long-lived connections.
		cfg.MaxConnLifetimeJitter = 5 * time.Minute
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = connectTimeout
	}
	for k, v := range map[string]string{"application_name": applicationName, "statement_timeout": StatementTimeout,
		"idle_in_transaction_session_timeout": IdleInTransactionTimeout} {
		if _, ok := cfg.ConnConfig.RuntimeParams[k]; !ok {
			cfg.ConnConfig.RuntimeParams[k] = v
		}
	}
	where := fmt.Sprintf("database %q as %q", cfg.ConnConfig.Database, cfg.ConnConfig.User)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("database: open %s: %w", where, redact(err, url))
	}
	pingCtx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("database: connect to %s: %w", where, redact(err, url))
	}
	return pool, nil
}

// redact hides the password of connString in err's message; errors.Is and
// errors.As still see err.
func redact(err error, connString string) error {
	var secrets []string
	if u, perr := url.Parse(connString); perr == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			secrets = append(secrets, pw, url.QueryEscape(pw), url.PathEscape(pw))
		}
	}
	for _, m := range passwordField.FindAllStringSubmatch(connString, -1) {
		for _, s := range m[1:] {
			if s != "" {
				secrets = append(secrets, s)
			}
		}
	}
	if len(secrets) == 0 {
		return err
	}
	return &redactedError{err: err, secrets: secrets}
}

// passwordField matches a password in a keyword/value string or in a URL's
// query.
var passwordField = regexp.MustCompile(`password\s*=\s*(?:'((?:[^'\\]|\\.)*)'|([^\s&]+))`)

type redactedError struct {
	err     error
	secrets []string
}

func (e *redactedError) Error() string {
	msg := e.err.Error()
	for _, s := range e.secrets {
		msg = strings.ReplaceAll(msg, s, "xxxxx")
	}
	return msg
}

func (e *redactedError) Unwrap() error { return e.err }

var _ interface{ Unwrap() error } = (*redactedError)(nil)
