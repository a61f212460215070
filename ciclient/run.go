package ciclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
)

// Run gives the job credentials in c's format: cached ones that are not
// near expiry, or those of a new exchange (then cached). hc carries the
// calls (it must follow no redirect; AttemptTimeout is its Timeout); stderr
// gets the warnings and retry notes. A gcp-executable run also writes its
// answer to $GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE when set.
func (c *Config) Run(ctx context.Context, hc *http.Client, stderr io.Writer) ([]byte, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, overallTimeout)
	defer cancel()
	if c.format == FormatAWSConfig {
		return c.runAWSConfig(ctx, hc, stderr)
	}

	resp, err := c.credentials(ctx, hc, stderr)
	if err != nil {
		return nil, err
	}
	if want, ok := formatProviders[c.format]; ok && resp.Provider != want {
		return nil, fmt.Errorf("exchange: --format %s is for mappings of provider %s; mapping %q issues %s credentials (use --format env, dotenv or json)",
			c.format, want, resp.Mapping, resp.Provider)
	}
	out, err := formatCredentials(c.format, resp)
	if err != nil {
		return nil, err
	}
	if c.gitHelper {
		lines, err := c.gitHelperLines(resp)
		if err != nil {
			return nil, err
		}
		out = append(out, lines...)
	}
	if c.format == FormatGCPExec {
		if f := c.env[EnvGoogleOutput]; f != "" {
			if err := writePrivateFile(f, out); err != nil {
				return nil, fmt.Errorf("exchange: write %s: %w", EnvGoogleOutput, err)
			}
		}
	}
	return out, nil
}

// credentials returns cached credentials that are not near expiry, or
// exchanges a token for new ones (and caches them).
func (c *Config) credentials(ctx context.Context, hc *http.Client, stderr io.Writer) (*api.ExchangeResponse, error) {
	var cache *credCache
	if c.cacheNote != "" && formatProviders[c.format] != "" {
		fmt.Fprint(stderr, c.cacheNote)
	}
	if c.cacheDir != "" {
		var err error
		if cache, err = openCredCache(c.cacheDir); err != nil {
			fmt.Fprintf(stderr, "oidc-bridge: warning: credential cache disabled: %v\n", err)
			cache = nil
		}
	}
	if cache == nil {
		resp, _, err := c.exchangeWithRetries(ctx, hc, stderr, "")
		return resp, err
	}
	key := cache.key(c.base, c.req.Mapping, c.req.Provider, c.source.Scope()+narrowing(c.req))
	unlock, err := cache.lock(ctx, key)
	if err != nil {
		return nil, err
	}
	defer unlock()

	entry := cache.load(key, c.base, c.req)
	now := time.Now()
	if entry != nil && entry.Response.ExpiresAt.Sub(now) > c.refresh {
		return &entry.Response, nil
	}
	staleOK := entry != nil && entry.Response.ExpiresAt.After(now.Add(10*time.Second))
	spent := ""
	if entry != nil {
		spent = entry.TokenID
	}
	resp, tokenID, err := c.exchangeWithRetries(ctx, hc, stderr, spent)
	if err != nil {
		var se *spentTokenError
		switch {
		case errors.As(err, &se) && staleOK:
			fmt.Fprintf(stderr, "oidc-bridge: warning: cached credentials expire at %s and %s gives no fresh token to exchange again; using them as they are\n",
				entry.Response.ExpiresAt.UTC().Format(time.RFC3339), c.source.Describe())
			return &entry.Response, nil
		case errors.As(err, &se) && entry != nil:
			return nil, fmt.Errorf("exchange: the cached credentials expired at %s, and %s still holds the token already exchanged for them: the bridge exchanges a token once (token_replayed). Use a source that gives a fresh token (--token-file the CI refreshes, GitHub Actions' request variables) or ask for a longer --duration",
				entry.Response.ExpiresAt.UTC().Format(time.RFC3339), c.source.Describe())
		case staleOK && !isRefusal(err):
			fmt.Fprintf(stderr, "oidc-bridge: warning: %v; using cached credentials that expire at %s\n",
				err, entry.Response.ExpiresAt.UTC().Format(time.RFC3339))
			return &entry.Response, nil
		}
		return nil, err
	}
	if err := cache.store(key, &cacheEntry{Version: cacheVersion, Bridge: c.base, Mapping: c.req.Mapping,
		TokenID: tokenID, StoredAt: time.Now().UTC(), Response: *resp}); err != nil {
		fmt.Fprintf(stderr, "oidc-bridge: warning: credentials not cached: %v\n", err)
	}
	return resp, nil
}

// runAWSConfig exchanges for each mapping in turn (each exchange with a
// token of its own from the source) and renders the profiles as one AWS
// config file: on stdout, or into c.output (mode 0600), when every
// exchange succeeded.
func (c *Config) runAWSConfig(ctx context.Context, hc *http.Client, stderr io.Writer) ([]byte, error) {
	out := []byte("# AWS config written by oidc-bridge exchange --format " + FormatAWSConfig + ": short-lived credentials, one profile per mapping\n")
	for _, m := range c.mappings {
		mc := *c
		mc.req.Mapping = m
		resp, err := mc.credentials(ctx, hc, stderr)
		if err != nil {
			return nil, fmt.Errorf("%w (mapping %q)", err, m)
		}
		if resp.Provider != "aws" {
			return nil, fmt.Errorf("exchange: --format %s is for mappings of provider aws; mapping %q issues %s credentials", c.format, m, resp.Provider)
		}
		p, err := awsConfigProfile(m, resp)
		if err != nil {
			return nil, err
		}
		out = append(append(out, '\n'), p...)
	}
	if c.output == "" {
		return out, nil
	}
	if err := writePrivateFile(c.output, out); err != nil {
		return nil, fmt.Errorf("exchange: write --output: %w", err)
	}
	return nil, nil
}
