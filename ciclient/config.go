package ciclient

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
	// GitHelper (with the env format) adds to a github answer the lines
	// that make git use Executable's git-credential for its host.
	GitHelper  bool
	Executable string
	// Mappings: --mapping given more than once (with --format aws-config,
	// one exchange and one profile each); when set, Mapping is ignored.
	Mappings []string
	// Output: with --format aws-config, the file to write (mode 0600)
	// instead of stdout.
	Output string
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
	// gitHelper: --git-helper, run as executable.
	gitHelper  bool
	executable string
	// mappings: with --format aws-config, the mappings to exchange for,
	// in order (each one a profile).
	mappings []string
	output   string
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
	if o.Provider != "" && !slices.Contains([]string{"aws", "gcp", "azure", "jwt", "github"}, o.Provider) {
		return nil, usage(fmt.Errorf("--provider %q: use aws, gcp, azure, jwt or github", o.Provider))
	}
	if want, ok := formatProviders[o.Format]; ok {
		if o.Provider != "" && o.Provider != want {
			return nil, usage(fmt.Errorf("--format %s is for mappings of provider %s, not --provider %s", o.Format, want, o.Provider))
		}
		// Narrow the selection: the bridge then refuses a mapping of
		// another provider before it spends the token.
		o.Provider = want
	}
	if o.GitHelper {
		if o.Format != FormatEnv {
			return nil, usage(fmt.Errorf("--git-helper prints export lines: it needs --format env, not %s", o.Format))
		}
		if o.Provider != "" && o.Provider != "github" {
			return nil, usage(fmt.Errorf("--git-helper is for mappings of provider github, not --provider %s", o.Provider))
		}
		if !filepath.IsAbs(o.Executable) {
			return nil, usage(errors.New("--git-helper: the path of the oidc-bridge command is unknown"))
		}
		o.Provider = "github"
		c.gitHelper, c.executable = true, o.Executable
	}
	if err := c.checkMappings(o); err != nil {
		return nil, err
	}
	c.req = api.ExchangeRequest{Mapping: c.mappings[0], Provider: o.Provider}
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
	if len(c.mappings) > 1 && c.source.Static() {
		return nil, usage(fmt.Errorf("%d mappings need a fresh token for each exchange (the bridge exchanges a token once), and %s holds one: "+
			"use a source that gives fresh tokens (GitHub Actions' token request, buildkite-agent, a --token-file the CI refreshes) or one command per mapping, each with its own token",
			len(c.mappings), c.source.Describe()))
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

// checkMappings sets c.mappings from --mapping (given once or more) or
// $OIDC_BRIDGE_MAPPING: several only with --format aws-config, whose
// profiles are named after them; "" stands for the bridge's choice.
func (c *Config) checkMappings(o Options) error {
	c.mappings = []string{o.Mapping}
	if len(o.Mappings) > 0 {
		c.mappings = o.Mappings
	}
	if o.Output != "" && o.Format != FormatAWSConfig {
		return usage(fmt.Errorf("--output is for --format %s", FormatAWSConfig))
	}
	c.output = o.Output
	if o.Format != FormatAWSConfig {
		if len(c.mappings) > 1 {
			return usage(fmt.Errorf("--mapping is given %d times: several mappings need --format %s (one profile each)", len(c.mappings), FormatAWSConfig))
		}
		return nil
	}
	seen := map[string]bool{}
	for _, m := range c.mappings {
		if !profileName.MatchString(m) {
			if m == "" {
				return usage(fmt.Errorf("--format %s needs --mapping (or $%s): each profile is named after its mapping", FormatAWSConfig, EnvMapping))
			}
			return usage(fmt.Errorf("--mapping %q cannot name an AWS profile: use letters, digits, '.', '_' and '-' (at most 64, the first a letter or digit)", m))
		}
		if seen[m] {
			return usage(fmt.Errorf("--mapping %q is given twice", m))
		}
		seen[m] = true
	}
	return nil
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
