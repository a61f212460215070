package identity

import (
	"log/slog"
	"net/http"
	"time"
)

// Limits that are not configurable: they bound work done on unauthenticated
// input.
const (
	// MaxTokenSize is the largest token Verify looks at. Real GitHub and
	// GitLab tokens are 1-2 KiB.
	MaxTokenSize = 16 << 10
	// maxKIDLen bounds the kid header; longer values are refused before any
	// lookup.
	maxKIDLen = 256
	// maxDocSize bounds discovery and JWKS response bodies.
	maxDocSize = 256 << 10
	// maxIssuerURLLen bounds registered issuer URLs.
	maxIssuerURLLen = 1024
)

// Defaults for Config's zero values.
const (
	DefaultClockSkew          = 60 * time.Second
	MaxClockSkew              = 60 * time.Second
	DefaultMaxTokenLifetime   = 6 * time.Hour
	DefaultMaxTokenAge        = 6 * time.Hour
	DefaultKeyRefreshInterval = 30 * time.Second
	DefaultCacheTTL           = time.Hour
	DefaultHTTPTimeout        = 10 * time.Second
)

// Config tunes a Verifier. The zero value is usable: every zero field takes
// its default.
type Config struct {
	// ClockSkew is the leeway applied, the same way, to exp, nbf, iat and the
	// age check. Default and maximum 60s; larger values are capped.
	ClockSkew time.Duration

	// MaxTokenLifetime and MaxTokenAge are deployment-wide ceilings on
	// exp-iat and now-iat, default (and at most useful) 6h. Each issuer has
	// its own limits (Issuer.Limits: its max_token_age_seconds and
	// max_token_lifetime_seconds, or its kind's defaults, 15 minutes for
	// GitHub and 6 hours for GitLab and generic issuers); the lower of the
	// issuer's limit and the ceiling applies.
	MaxTokenLifetime time.Duration
	MaxTokenAge      time.Duration

	// AllowInsecureIssuers permits http:// issuer URLs (and jwks_uri) when
	// the host is a loopback IP or "localhost". For tests and demos only:
	// production deployments must never set it.
	AllowInsecureIssuers bool

	// HTTPClient is the base client for discovery and JWKS requests. It is
	// copied: the Verifier installs its own redirect policy and, when the
	// client has none, a timeout of DefaultHTTPTimeout.
	HTTPClient *http.Client

	// Now is the clock for every time check and cache decision. Default
	// time.Now.
	Now func() time.Time

	// KeyRefreshInterval is the least time between two JWKS fetches for one
	// issuer that a token can trigger (an unknown kid, an expired cache).
	// Default 30s.
	KeyRefreshInterval time.Duration

	// CacheTTL is how long a discovery document and a JWKS are used before
	// they are fetched again. A failed refresh keeps the cached copy.
	// Default 1h.
	CacheTTL time.Duration

	// Logger receives discovery and JWKS events. Default: discard.
	Logger *slog.Logger

	// OnFetch, if set, is told of every discovery and JWKS fetch once it
	// has finished, for metrics. It runs on the fetching goroutine and must
	// not block.
	OnFetch func(Fetch)
}

// Kinds of Fetch.
const (
	FetchDiscovery = "discovery"
	FetchJWKS      = "jwks"
)

// Fetch describes one finished discovery or JWKS fetch.
type Fetch struct {
	// Kind is FetchDiscovery or FetchJWKS.
	Kind string
	// Issuer is the registered issuer's name (a bounded set, unlike URLs
	// taken from tokens).
	Issuer string
	// Err is nil when the document was fetched and accepted.
	Err      error
	Duration time.Duration
}

func (c Config) withDefaults() Config {
	if c.ClockSkew <= 0 {
		c.ClockSkew = DefaultClockSkew
	}
	c.ClockSkew = min(c.ClockSkew, MaxClockSkew)
	if c.MaxTokenLifetime <= 0 {
		c.MaxTokenLifetime = DefaultMaxTokenLifetime
	}
	if c.MaxTokenAge <= 0 {
		c.MaxTokenAge = DefaultMaxTokenAge
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.KeyRefreshInterval <= 0 {
		c.KeyRefreshInterval = DefaultKeyRefreshInterval
	}
	if c.CacheTTL <= 0 {
		c.CacheTTL = DefaultCacheTTL
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
