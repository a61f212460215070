// Package config loads oidc-bridge's configuration from the environment
// (the variables of the contract) and validates it in one place.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/oidc-bridge/oidc-bridge/internal/history"
)

// Config is the whole configuration of the oidc-bridge binary.
type Config struct {
	// DatabaseURL is the Postgres connection URL of the service's login,
	// a member of the database's runtime role (oidc_bridge_runtime_role(),
	// migrations/00007_roles.sql), which owns nothing. Empty selects the
	// embedded default: a private cluster under DataDir.
	DatabaseURL string `env:"BRIDGE_DATABASE_URL"`
	// MigrationDatabaseURL is the connection URL of the migrator, the
	// owner of the schema: `migrate` uses it (else DatabaseURL), and
	// `serve` applies pending migrations at start only when it is set.
	// Requires DatabaseURL.
	MigrationDatabaseURL string `env:"BRIDGE_MIGRATION_DATABASE_URL"`
	// DataDir is the state folder of the embedded default.
	DataDir string `env:"BRIDGE_DATA_DIR" envDefault:"./.oidc-bridge"`
	// ListenAddr is the HTTP listen address, host:port.
	ListenAddr string `env:"BRIDGE_LISTEN_ADDR" envDefault:"127.0.0.1:8080"`
	// PublicURL is the bridge's own external URL: the issuer of the tokens
	// it signs. Defaults to http:// + ListenAddr.
	PublicURL string `env:"BRIDGE_PUBLIC_URL"`
	// AdminToken is the bootstrap admin bearer token, at least 32
	// characters. Empty: only tokens made with `admin-token create`.
	AdminToken string `env:"BRIDGE_ADMIN_TOKEN"`
	// AdminTokenLabel names the holder of the bootstrap token in the
	// admin-change history and the logs: its uses are recorded as
	// bootstrap:LABEL (bootstrap without it). 1-64 of A-Z, a-z, 0-9, '.',
	// '_', '@' and '-'.
	AdminTokenLabel string `env:"BRIDGE_ADMIN_TOKEN_LABEL"`
	// AllowInsecureIssuers lets issuers use http:// URLs on loopback hosts.
	// For tests and demos only: never set it in production.
	AllowInsecureIssuers bool `env:"BRIDGE_ALLOW_INSECURE_ISSUERS"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `env:"BRIDGE_LOG_LEVEL" envDefault:"info"`
	// KeyEncryptionKey encrypts the bridge's signing keys at rest: 32
	// random bytes, base64. KeyEncryptionKeyFile names a file holding it
	// instead. Without either, the embedded default keeps one in
	// DataDir; with a database URL the bridge signs nothing, and refuses
	// to start once signing keys exist.
	KeyEncryptionKey     string `env:"BRIDGE_KEY_ENCRYPTION_KEY"`
	KeyEncryptionKeyFile string `env:"BRIDGE_KEY_ENCRYPTION_KEY_FILE"`
	// GCPIAMCredentialsEndpoint and GCPSTSEndpoint override Google's IAM
	// Credentials and STS endpoints (tests, private access).
	GCPIAMCredentialsEndpoint string `env:"BRIDGE_GCP_IAMCREDENTIALS_ENDPOINT"`
	GCPSTSEndpoint            string `env:"BRIDGE_GCP_STS_ENDPOINT"`
	// AWSRoleChaining says that the bridge's own AWS credentials are a role
	// session (IRSA, EKS Pod Identity, an ECS task role, an EC2 instance
	// profile), so that its AssumeRole is role chaining, which AWS limits
	// to one hour: the admin API then refuses assume_role mappings with a
	// max_duration_seconds over 3600, and mints cut older ones to 3600.
	// Set it false only when the bridge runs with an IAM user's keys.
	AWSRoleChaining bool `env:"BRIDGE_AWS_ROLE_CHAINING" envDefault:"true"`
	// TrustedProxies lists the addresses (CIDRs or IPs, comma-separated) of
	// the load balancers in front of the bridge. Only a request whose
	// socket peer is one of them has its X-Forwarded-For read, right to
	// left, for the client's address. Empty: the socket peer is the client.
	TrustedProxies []string `env:"BRIDGE_TRUSTED_PROXIES"`
	// Proxies is TrustedProxies parsed.
	Proxies []netip.Prefix `env:"-"`
	// RateLimit is the exchanges per second allowed to one client address
	// before any token is looked at (0 disables), with RateBurst.
	RateLimit float64 `env:"BRIDGE_RATE_LIMIT" envDefault:"50"`
	RateBurst int     `env:"BRIDGE_RATE_BURST" envDefault:"200"`
	// IssuerRateLimit is the verified exchanges per second allowed per
	// issuer on each replica (0 disables), with IssuerRateBurst.
	IssuerRateLimit float64 `env:"BRIDGE_ISSUER_RATE_LIMIT" envDefault:"1000"`
	IssuerRateBurst int     `env:"BRIDGE_ISSUER_RATE_BURST" envDefault:"2000"`
	// IssuerOwnerRateLimit is the verified exchanges per second allowed per
	// issuer and repository owner on each replica (0 disables), with
	// IssuerOwnerRateBurst: one owner's flood cannot spend the issuer's
	// whole budget. The issuer's limit stays the ceiling of all owners.
	IssuerOwnerRateLimit float64 `env:"BRIDGE_ISSUER_OWNER_RATE_LIMIT" envDefault:"100"`
	IssuerOwnerRateBurst int     `env:"BRIDGE_ISSUER_OWNER_RATE_BURST" envDefault:"200"`
	// LedgerRetention is how long the ledger's monthly partitions are kept
	// (a Go duration, e.g. 9480h for about 13 months): serve drops, daily,
	// those whose whole month ended longer ago, deleting that audit
	// history. 0 keeps everything forever; otherwise at least
	// MinLedgerRetention.
	LedgerRetention time.Duration `env:"BRIDGE_LEDGER_RETENTION"`
	// BreakerCooldown is how long a provider's circuit stays open after
	// it tripped (a Go duration, 1s to 1h) before one probe may pass.
	// 0: the bridge's default, 30 s.
	BreakerCooldown time.Duration `env:"BRIDGE_BREAKER_COOLDOWN"`
	// PprofAddr, when set, serves Go's runtime profiles (net/http/pprof)
	// on this loopback host:port, apart from the service's listener; for
	// profiling under load (`kubectl port-forward` reaches it). Empty: off.
	PprofAddr string `env:"BRIDGE_PPROF_ADDR"`
	// MetricsAddr, when set, serves GET /metrics on this host:port only, on
	// a listener of its own, and the service's listener answers 404 for
	// it: the main port faces pipelines, the metrics port the monitoring
	// network. Empty: /metrics is served on BRIDGE_LISTEN_ADDR.
	MetricsAddr string `env:"BRIDGE_METRICS_ADDR"`
	// Console serves the read-only web console under /console/ on the
	// service's listener, beside the admin API (docs/runbooks/console.md):
	// people sign in with an admin token of the read scope. Off by
	// default.
	Console bool `env:"BRIDGE_CONSOLE"`

	// Level is LogLevel parsed.
	Level slog.Level `env:"-"`
}

// MinAdminTokenLength is the shortest bootstrap admin token accepted.
const MinAdminTokenLength = 32

// MinLedgerRetention is the shortest LedgerRetention accepted: 31 days.
const MinLedgerRetention = 31 * 24 * time.Hour

// Load reads the environment (environ, as os.Environ gives it) and
// validates the result, naming the variable at fault.
func Load(environ []string) (Config, error) {
	var c Config
	if err := env.ParseWithOptions(&c, env.Options{Environment: env.ToMap(environ)}); err != nil {
		return Config{}, fmt.Errorf("config: %w", explain(err))
	}
	if err := c.validate(); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return c, nil
}

func (c *Config) validate() error {
	var errs []error
	if err := c.Level.UnmarshalText([]byte(c.LogLevel)); err != nil || !validLevel(c.LogLevel) {
		errs = append(errs, fmt.Errorf("BRIDGE_LOG_LEVEL: %q is not one of debug, info, warn, error", c.LogLevel))
	}
	if c.AdminToken != "" && len(c.AdminToken) < MinAdminTokenLength {
		errs = append(errs, fmt.Errorf("BRIDGE_ADMIN_TOKEN: must be at least %d characters (it is %d)", MinAdminTokenLength, len(c.AdminToken)))
	}
	if strings.TrimSpace(c.AdminToken) != c.AdminToken {
		errs = append(errs, errors.New("BRIDGE_ADMIN_TOKEN: must not start or end with whitespace"))
	}
	if c.AdminTokenLabel != "" && !history.ValidLabel(c.AdminTokenLabel) {
		errs = append(errs, errors.New("BRIDGE_ADMIN_TOKEN_LABEL: must be "+history.LabelRule))
	}
	if c.AdminTokenLabel != "" && c.AdminToken == "" {
		errs = append(errs, errors.New("BRIDGE_ADMIN_TOKEN_LABEL: names the holder of BRIDGE_ADMIN_TOKEN, which is not set"))
	}
	if c.RateLimit < 0 || math.IsNaN(c.RateLimit) || math.IsInf(c.RateLimit, 0) {
		errs = append(errs, fmt.Errorf("BRIDGE_RATE_LIMIT: must be a number of requests per second, 0 or more"))
	}
	if c.RateBurst < 1 {
		errs = append(errs, fmt.Errorf("BRIDGE_RATE_BURST: must be 1 or more"))
	}
	if c.IssuerRateLimit < 0 || math.IsNaN(c.IssuerRateLimit) || math.IsInf(c.IssuerRateLimit, 0) {
		errs = append(errs, fmt.Errorf("BRIDGE_ISSUER_RATE_LIMIT: must be a number of requests per second, 0 or more"))
	}
	if c.IssuerRateBurst < 1 {
		errs = append(errs, fmt.Errorf("BRIDGE_ISSUER_RATE_BURST: must be 1 or more"))
	}
	if c.IssuerOwnerRateLimit < 0 || math.IsNaN(c.IssuerOwnerRateLimit) || math.IsInf(c.IssuerOwnerRateLimit, 0) {
		errs = append(errs, fmt.Errorf("BRIDGE_ISSUER_OWNER_RATE_LIMIT: must be a number of requests per second, 0 or more"))
	}
	if c.IssuerOwnerRateBurst < 1 {
		errs = append(errs, fmt.Errorf("BRIDGE_ISSUER_OWNER_RATE_BURST: must be 1 or more"))
	}
	if c.LedgerRetention != 0 && c.LedgerRetention < MinLedgerRetention {
		errs = append(errs, fmt.Errorf("BRIDGE_LEDGER_RETENTION: must be 0 (keep forever) or at least %s (31 days), not %s", MinLedgerRetention, c.LedgerRetention))
	}
	if c.BreakerCooldown != 0 && (c.BreakerCooldown < time.Second || c.BreakerCooldown > time.Hour) {
		errs = append(errs, fmt.Errorf("BRIDGE_BREAKER_COOLDOWN: must be between 1s and 1h, not %s", c.BreakerCooldown))
	}
	if c.KeyEncryptionKey != "" && c.KeyEncryptionKeyFile != "" {
		errs = append(errs, errors.New("BRIDGE_KEY_ENCRYPTION_KEY_FILE: set it or BRIDGE_KEY_ENCRYPTION_KEY, not both"))
	}
	for name, v := range map[string]string{"BRIDGE_GCP_IAMCREDENTIALS_ENDPOINT": c.GCPIAMCredentialsEndpoint, "BRIDGE_GCP_STS_ENDPOINT": c.GCPSTSEndpoint} {
		if u, err := url.Parse(v); v != "" && (err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "") {
			errs = append(errs, fmt.Errorf("%s: must be an http(s) URL", name))
		}
	}
	for _, p := range c.TrustedProxies {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		prefix, err := netip.ParsePrefix(p)
		if err != nil {
			addr, aerr := netip.ParseAddr(p)
			if aerr != nil {
				errs = append(errs, fmt.Errorf("BRIDGE_TRUSTED_PROXIES: %q is not an IP address or CIDR", p))
				continue
			}
			prefix = netip.PrefixFrom(addr.Unmap(), addr.Unmap().BitLen())
		}
		c.Proxies = append(c.Proxies, prefix.Masked())
	}
	if c.PprofAddr != "" {
		h, p, err := net.SplitHostPort(c.PprofAddr)
		ip, perr := netip.ParseAddr(h)
		if err != nil || p == "" || perr != nil || !ip.IsLoopback() {
			errs = append(errs, fmt.Errorf("BRIDGE_PPROF_ADDR: %q must be a loopback address and port, e.g. 127.0.0.1:6060: profiles reveal the process's internals", c.PprofAddr))
		}
	}
	if c.MetricsAddr != "" {
		if _, p, err := net.SplitHostPort(c.MetricsAddr); err != nil || p == "" {
			errs = append(errs, fmt.Errorf("BRIDGE_METRICS_ADDR: %q is not host:port, e.g. 0.0.0.0:9090", c.MetricsAddr))
		} else if sameListener(c.MetricsAddr, c.ListenAddr) || sameListener(c.MetricsAddr, c.PprofAddr) {
			errs = append(errs, fmt.Errorf("BRIDGE_METRICS_ADDR: %q must differ from BRIDGE_LISTEN_ADDR and BRIDGE_PPROF_ADDR", c.MetricsAddr))
		}
	}
	host, port, err := net.SplitHostPort(c.ListenAddr)
	if err != nil || port == "" {
		errs = append(errs, fmt.Errorf("BRIDGE_LISTEN_ADDR: %q is not host:port", c.ListenAddr))
	}
	if c.PublicURL == "" && err == nil {
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		c.PublicURL = "http://" + net.JoinHostPort(host, port)
	}
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		errs = append(errs, fmt.Errorf("BRIDGE_PUBLIC_URL: %q must be an absolute http(s) URL without query, fragment or user info", c.PublicURL))
	} else {
		c.PublicURL = strings.TrimSuffix(c.PublicURL, "/")
	}
	if c.DatabaseURL == "" {
		// An empty BRIDGE_DATA_DIR takes the default (envDefault).
		if abs, err := filepath.Abs(c.DataDir); err == nil {
			c.DataDir = abs
		}
	} else if u, err := url.Parse(c.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		// Do not echo the URL: it may hold a password.
		errs = append(errs, errors.New("BRIDGE_DATABASE_URL: must be a postgres:// or postgresql:// URL"))
	}
	if c.MigrationDatabaseURL != "" {
		if u, err := url.Parse(c.MigrationDatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			errs = append(errs, errors.New("BRIDGE_MIGRATION_DATABASE_URL: must be a postgres:// or postgresql:// URL"))
		} else if c.DatabaseURL == "" {
			errs = append(errs, errors.New("BRIDGE_MIGRATION_DATABASE_URL: needs BRIDGE_DATABASE_URL (the embedded default has its own roles)"))
		}
	}
	return errors.Join(errs...)
}

// sameListener reports whether listen addresses a and b would take the same
// port: the same port on the same host, or on a wildcard host.
func sameListener(a, b string) bool {
	ha, pa, err1 := net.SplitHostPort(a)
	hb, pb, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || pa != pb || pa == "0" {
		return false
	}
	wild := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ha == hb || wild(ha) || wild(hb)
}

func validLevel(s string) bool {
	switch strings.ToLower(s) {
	case "debug", "info", "warn", "error":
		return true
	}
	return false
}

// explain rewrites the env library's parse errors to name the variable, not
// the Go field, and to hide Go's parser detail.
func explain(err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err
	}
	out := make([]error, 0, len(agg.Errors))
	for _, e := range agg.Errors {
		var pe env.ParseError
		if !errors.As(e, &pe) {
			out = append(out, e)
			continue
		}
		name := pe.Name
		if f, ok := reflect.TypeFor[Config]().FieldByName(pe.Name); ok {
			name, _, _ = strings.Cut(f.Tag.Get("env"), ",")
		}
		what := "a valid " + pe.Type.String()
		if pe.Type.Kind() == reflect.Bool {
			what = "true or false"
		}
		out = append(out, fmt.Errorf("%s: must be %s", name, what))
	}
	return errors.Join(out...)
}

// Variable is one environment variable of Config.
type Variable struct {
	// Name is the variable, e.g. BRIDGE_LISTEN_ADDR.
	Name string
	// Default is its default value, "" for none.
	Default string
}

// Variables lists every environment variable that Load reads, in the
// order of Config's fields, from the struct's env tags: the help and the
// docs take it from here, so that the list cannot drift from Config.
func Variables() []Variable {
	t := reflect.TypeFor[Config]()
	var out []Variable
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
		if name == "" || name == "-" {
			continue
		}
		out = append(out, Variable{Name: name, Default: f.Tag.Get("envDefault")})
	}
	return out
}
