package ciclient

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/bridge/client"
)

// Environment of the exchange command. Flags override every one of them.
const (
	EnvBridgeURL    = "OIDC_BRIDGE_URL"
	EnvMapping      = "OIDC_BRIDGE_MAPPING"
	EnvProvider     = "OIDC_BRIDGE_PROVIDER"
	EnvDuration     = "OIDC_BRIDGE_DURATION"
	EnvAudience     = "OIDC_BRIDGE_AUDIENCE"
	EnvCacheDir     = "OIDC_BRIDGE_CACHE_DIR"
	EnvGoogleOutput = "GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE"
)

const (
	// AttemptTimeout bounds one exchange (the HTTP client's Timeout).
	AttemptTimeout = 30 * time.Second
	overallTimeout = 5 * time.Minute
)

// Options is the command line as given; Load fills the rest from the
// environment and checks it.
type Options struct {
	BridgeURL, Mapping, Provider, Audience string
	Duration                               string
	// SessionPolicyFile names a file holding an AWS inline session policy
	// the credentials are narrowed to; Scopes a subset of a gcp mapping's
	// scopes, separated by spaces (OAuth's form; the CLI's repeated
	// --scope). Both only ever narrow: the bridge refuses more.
	SessionPolicyFile   string
	Scopes              string
	TokenFile, TokenEnv string
	CI                  string // CIAuto ("" too) or one of CINames
	Format              string
	Retries             int
	CacheDir            string
	NoCache             bool
	RefreshBefore       time.Duration
}

// UsageError is a command-line mistake (the CLI's exit status 2).
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usage(err error) error { return &UsageError{err} }

// Config is a checked command line.
type Config struct {
	env     map[string]string
	base    string // bridge URL without trailing slash
	req     api.ExchangeRequest
	format  string
	retries int
	refresh time.Duration
	source  Source
	// cacheDir is "" without a cache; cacheNote says why there is none, on
	// stderr when an SDK format would have used one ("" when the cache is
	// on or turned off on purpose).
	cacheDir, cacheNote string
}

// Load checks o, whose empty fields take the values of env (the
// process's environment). Mistakes are *UsageError; a CI token source that
// is set but empty is a plain error.
func Load(env map[string]string, o Options) (*Config, error) {
	def := func(v *string, name string) {
		if *v == "" {
			*v = strings.TrimSpace(env[name])
		}
	}
	def(&o.Mapping, EnvMapping)
	def(&o.Provider, EnvProvider)
	def(&o.Duration, EnvDuration)
	def(&o.Audience, EnvAudience)

	c := &Config{env: env, format: o.Format, retries: max(o.Retries, 0), refresh: o.RefreshBefore}
	if !slices.Contains(Formats, o.Format) {
		return nil, usage(fmt.Errorf("--format %q: use one of %s", o.Format, strings.Join(Formats, ", ")))
	}
	if o.BridgeURL == "" {
		return nil, usage(fmt.Errorf("the bridge's URL is required: --bridge-url or %s", EnvBridgeURL))
	}
	// https, or plain http only on loopback: the CI's token must not cross
	// the network in clear text. Checked before the token is read.
	u, err := client.CheckEndpoint(o.BridgeURL)
	if err != nil {
		return nil, usage(err)
	}
	c.base = strings.TrimRight(u.String(), "/")
	if o.Provider != "" && !slices.Contains([]string{"aws", "gcp", "azure", "jwt"}, o.Provider) {
		return nil, usage(fmt.Errorf("--provider %q: use aws, gcp, azure or jwt", o.Provider))
	}
	if want, ok := formatProviders[o.Format]; ok {
		if o.Provider != "" && o.Provider != want {
			return nil, usage(fmt.Errorf("--format %s is for mappings of provider %s, not --provider %s", o.Format, want, o.Provider))
		}
		// Narrow the selection: the bridge then refuses a mapping of
		// another provider before it spends the token.
		o.Provider = want
	}
	c.req = api.ExchangeRequest{Mapping: o.Mapping, Provider: o.Provider}
	if o.Duration != "" {
		d, err := parseDuration(o.Duration)
		if err != nil {
			return nil, usage(err)
		}
		c.req.DurationSeconds = d
	}
	if o.SessionPolicyFile != "" {
		b, err := os.ReadFile(o.SessionPolicyFile)
		if err != nil {
			return nil, usage(fmt.Errorf("--session-policy: %w", err))
		}
		if c.req.InlinePolicy = strings.TrimSpace(string(b)); c.req.InlinePolicy == "" {
			return nil, usage(fmt.Errorf("--session-policy %s is empty", o.SessionPolicyFile))
		}
	}
	c.req.Scopes = strings.Fields(o.Scopes)
	if o.RefreshBefore < 0 {
		return nil, usage(errors.New("--refresh-before must not be negative"))
	}
	if o.Audience == "" {
		o.Audience = c.base
	}
	if c.source, err = newSource(env, o); err != nil {
		return nil, err
	}
	def(&o.CacheDir, EnvCacheDir)
	if !o.NoCache {
		c.cacheDir = o.CacheDir
		if c.cacheDir == "" {
			c.cacheDir = jobTempCacheDir(env)
		}
		if c.cacheDir == "" {
			c.cacheNote = "oidc-bridge: note: credential cache off: this CI has no per-job temporary folder known to oidc-bridge; " +
				"give --cache-dir or $" + EnvCacheDir + " a folder that the job deletes to reuse credentials between calls\n"
		}
	}
	return c, nil
}

// parseDuration reads --duration: whole seconds, as a number or a Go
// duration.
func parseDuration(s string) (int, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 {
			return 0, fmt.Errorf("--duration %q must be positive", s)
		}
		return n, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Second || d%time.Second != 0 {
		return 0, fmt.Errorf("--duration %q: use whole seconds, e.g. 900 or 15m", s)
	}
	return int(d / time.Second), nil
}
