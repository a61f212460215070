package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/bridge/client"
	"github.com/oidc-bridge/oidc-bridge/providers"
)

// Environment of the exchange command. Flags override every one of them.
const (
	envMappingName    = "OIDC_BRIDGE_MAPPING"
	envProviderName   = "OIDC_BRIDGE_PROVIDER"
	envDuration       = "OIDC_BRIDGE_DURATION"
	envAudience       = "OIDC_BRIDGE_AUDIENCE"
	envIDToken        = "OIDC_BRIDGE_ID_TOKEN" // the GitLab template's id_tokens variable
	envGitHubReqURL   = "ACTIONS_ID_TOKEN_REQUEST_URL"
	envGitHubReqToken = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
	envCacheDir       = "OIDC_BRIDGE_CACHE_DIR"
	envGoogleOutput   = "GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE"
)

// Output formats.
const (
	formatEnv      = "env"
	formatJSON     = "json"
	formatDotenv   = "dotenv"
	formatAWSProc  = "aws-credential-process"
	formatGCPExec  = "gcp-executable"
	gcpJWTType     = "urn:ietf:params:oauth:token-type:jwt"
	exchangeAPI    = "/v1/exchange"
	attemptTimeout = 30 * time.Second
	overallTimeout = 5 * time.Minute
	backoffMin     = 500 * time.Millisecond
	backoffMax     = 10 * time.Second
	// longestRetryAfter: a 429 asking to wait longer than this (a spent
	// hourly quota) fails at once rather than holding the job.
	longestRetryAfter = time.Minute
	maxExchangeReply  = 1 << 20
	maxTokenFile      = 64 << 10
	cacheVersion      = 1
	lockWait          = 2 * time.Minute
)

var exchangeFormats = []string{formatEnv, formatJSON, formatDotenv, formatAWSProc, formatGCPExec}

// formatProviders: the formats that fit one provider only.
var formatProviders = map[string]string{formatAWSProc: "aws", formatGCPExec: "jwt"}

type exchangeOpts struct {
	bridgeURL, mapping, provider, audience string
	duration                               string
	tokenFile, tokenEnv                    string
	format                                 string
	retries                                int
	cacheDir                               string
	noCache                                bool
	refreshBefore                          time.Duration
}

func (a *app) exchangeCmd() *cobra.Command {
	var o exchangeOpts
	cmd := &cobra.Command{
		Use:   "exchange [--bridge-url URL] [--mapping NAME] [--format FORMAT] [--token-file F | --token-env VAR]",
		Short: "Exchange this job's OIDC token for credentials (the client for any CI)",
		Long: `Exchange the CI job's OIDC token for short-lived credentials at the bridge's
POST /v1/exchange, and print them for a shell, a file or a cloud SDK.

The bridge's URL (--bridge-url or $OIDC_BRIDGE_URL; the old name
$OIDC_BRIDGE_ENDPOINT is deprecated) must be https://; plain http:// only on localhost, 127.0.0.1 or [::1]. No
redirect is followed: a 3xx answer fails, naming where it pointed.

The token comes from exactly one source: --token-file (read again for each
attempt, so a file the CI refreshes gives fresh tokens), --token-env (a
variable such as GitLab's id_tokens variable; static), or, when neither is
given, GitHub Actions' ACTIONS_ID_TOKEN_REQUEST_URL and _TOKEN (a fresh token
for --audience per attempt), else $OIDC_BRIDGE_ID_TOKEN.

Formats: env (export lines for eval or source), dotenv (NAME=value lines for
docker --env-file, compose and dotenv readers), json (the bridge's answer),
aws-credential-process (an AWS SDK credential_process; aws mappings), and
gcp-executable (Google's executable-sourced credential response; a jwt
mapping whose audience is the workload identity pool provider).

Credentials are cached per bridge, mapping and job (0700 folder, 0600 files)
and reused until they are within --refresh-before of expiry; then a fresh CI
token is exchanged. SDKs that run this command whenever their credentials
expire thus keep long jobs working. The cache lives only in a folder that the
CI deletes after the job: GitHub Actions' $RUNNER_TEMP, Azure Pipelines'
$AGENT_TEMPDIRECTORY. Elsewhere (GitLab, Jenkins, Buildkite, a workstation)
there is no such folder and nothing is cached unless --cache-dir or
$OIDC_BRIDGE_CACHE_DIR names one: a cache that outlives the job would hand
its credentials to whatever runs next as the same user.

Transient failures (429, 5xx, network) are retried with jittered backoff;
refusals fail at once with the bridge's error code. Exit status: 0 success,
1 failure, 2 usage.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			err := a.runExchange(cmd, o)
			if err != nil && o.format == formatGCPExec {
				a.writeGCPFailure(err)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.bridgeURL, "bridge-url", "", "the bridge's base URL (default $"+envBridgeURL+")")
	f.StringVar(&o.mapping, "mapping", "", "the mapping to use (default $"+envMappingName+"; else the one mapping that admits the token)")
	f.StringVar(&o.provider, "provider", "", "only mappings of this provider: aws, gcp, azure, jwt (default $"+envProviderName+")")
	f.StringVar(&o.duration, "duration", "", "the credentials' lifetime, e.g. 15m or 900 (default $"+envDuration+"; else the mapping's default)")
	f.StringVar(&o.audience, "audience", "", "the audience of a token requested from GitHub Actions (default $"+envAudience+"; else the bridge URL)")
	f.StringVar(&o.tokenFile, "token-file", "", "a file holding the CI job's OIDC token, read anew for every exchange")
	f.StringVar(&o.tokenEnv, "token-env", "", "a variable holding the CI job's OIDC token (e.g. GitLab's id_tokens variable)")
	f.StringVar(&o.format, "format", formatEnv, "output: "+strings.Join(exchangeFormats, ", "))
	f.IntVar(&o.retries, "retries", 4, "retries of a transient failure (429, 5xx, network)")
	f.StringVar(&o.cacheDir, "cache-dir", "", "the credential cache (default $"+envCacheDir+", else the CI's per-job temporary folder: $RUNNER_TEMP/oidc-bridge, $AGENT_TEMPDIRECTORY/oidc-bridge; else none)")
	f.BoolVar(&o.noCache, "no-cache", false, "neither read nor write the credential cache")
	f.DurationVar(&o.refreshBefore, "refresh-before", 5*time.Minute, "exchange again when cached credentials expire within this")
	return cmd
}

// exchangeConfig is the validated command line.
type exchangeConfig struct {
	base     string // bridge URL without trailing slash
	req      api.ExchangeRequest
	format   string
	retries  int
	refresh  time.Duration
	source   tokenSource
	cacheDir string // "" without a cache
	// cacheNote: why there is no cache, said on stderr when an SDK format
	// would have used one; "" when the cache is on or turned off on purpose.
	cacheNote string
}

func (a *app) exchangeConfig(o exchangeOpts) (*exchangeConfig, error) {
	env := environMap(a.environ)
	def := func(v *string, name string) {
		if *v == "" {
			*v = strings.TrimSpace(env[name])
		}
	}
	if o.bridgeURL == "" {
		o.bridgeURL = a.clientEnv(env, envBridgeURL, deprecatedEnvEndpoint)
	}
	def(&o.mapping, envMappingName)
	def(&o.provider, envProviderName)
	def(&o.duration, envDuration)
	def(&o.audience, envAudience)

	c := &exchangeConfig{format: o.format, retries: max(o.retries, 0), refresh: o.refreshBefore}
	if !slices.Contains(exchangeFormats, o.format) {
		return nil, usageError{fmt.Errorf("--format %q: use one of %s", o.format, strings.Join(exchangeFormats, ", "))}
	}
	if o.bridgeURL == "" {
		return nil, usageError{fmt.Errorf("the bridge's URL is required: --bridge-url or %s", envBridgeURL)}
	}
	// https, or plain http only on loopback: the CI's token must not cross
	// the network in clear text. Checked before the token is read.
	u, err := client.CheckEndpoint(o.bridgeURL)
	if err != nil {
		return nil, usageError{err}
	}
	c.base = strings.TrimRight(u.String(), "/")
	if o.provider != "" && !slices.Contains([]string{"aws", "gcp", "azure", "jwt"}, o.provider) {
		return nil, usageError{fmt.Errorf("--provider %q: use aws, gcp, azure or jwt", o.provider)}
	}
	if want, ok := formatProviders[o.format]; ok {
		if o.provider != "" && o.provider != want {
			return nil, usageError{fmt.Errorf("--format %s is for mappings of provider %s, not --provider %s", o.format, want, o.provider)}
		}
		// Narrow the selection: the bridge then refuses a mapping of
		// another provider before it spends the token.
		o.provider = want
	}
	c.req = api.ExchangeRequest{Mapping: o.mapping, Provider: o.provider}
	if o.duration != "" {
		d, err := parseExchangeDuration(o.duration)
		if err != nil {
			return nil, usageError{err}
		}
		c.req.DurationSeconds = d
	}
	if o.refreshBefore < 0 {
		return nil, usageError{errors.New("--refresh-before must not be negative")}
	}
	if o.audience == "" {
		o.audience = c.base
	}
	if c.source, err = newTokenSource(env, o); err != nil {
		return nil, err
	}
	def(&o.cacheDir, envCacheDir)
	if !o.noCache {
		c.cacheDir = o.cacheDir
		if c.cacheDir == "" {
			c.cacheDir = jobTempCacheDir(env)
		}
		if c.cacheDir == "" {
			c.cacheNote = "oidc-bridge: note: credential cache off: this CI has no per-job temporary folder known to oidc-bridge; " +
				"give --cache-dir or $" + envCacheDir + " a folder that the job deletes to reuse credentials between calls\n"
		}
	}
	return c, nil
}

func parseExchangeDuration(s string) (int, error) {
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

// jobTempDirs: the per-job temporary folders of the CIs that delete them
// when the job ends, whoever runs next on the runner. Only these hold the
// cache by default: on shared runners jobs of other projects run as the same
// OS user, so file modes do not keep a lasting folder private.
//
// Left out on purpose: GitLab (RUNNER_TEMP_PROJECT_DIR is per project, kept
// for the project's next job; CI_PROJECT_DIR is the checkout, kept by the
// fetch strategy), Jenkins (WORKSPACE_TMP is workspace@tmp, kept between
// builds unless a cleanup step deletes it), Buildkite and CircleCI (no such
// folder), and $HOME/.cache or $XDG_CACHE_HOME.
var jobTempDirs = []struct{ ci, variable string }{
	{"GitHub Actions", "RUNNER_TEMP"},          // emptied at the start and end of each job
	{"Azure Pipelines", "AGENT_TEMPDIRECTORY"}, // cleaned after each pipeline job
}

// jobTempCacheDir is the default cache folder: oidc-bridge in the CI's
// per-job temporary folder, "" (no cache) when none is known.
func jobTempCacheDir(env map[string]string) string {
	for _, d := range jobTempDirs {
		if t := env[d.variable]; t != "" && filepath.IsAbs(t) {
			return filepath.Join(t, "oidc-bridge")
		}
	}
	return ""
}

func (a *app) runExchange(cmd *cobra.Command, o exchangeOpts) error {
	c, err := a.exchangeConfig(o)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, overallTimeout)
	defer cancel()

	resp, err := a.credentials(ctx, c)
	if err != nil {
		return err
	}
	if want, ok := formatProviders[c.format]; ok && resp.Provider != want {
		return fmt.Errorf("exchange: --format %s is for mappings of provider %s; mapping %q issues %s credentials (use --format env, dotenv or json)",
			c.format, want, resp.Mapping, resp.Provider)
	}
	out, err := formatCredentials(c.format, resp)
	if err != nil {
		return err
	}
	if c.format == formatGCPExec {
		if f := environMap(a.environ)[envGoogleOutput]; f != "" {
			if err := writePrivateFile(f, out); err != nil {
				return fmt.Errorf("exchange: write %s: %w", envGoogleOutput, err)
			}
		}
	}
	_, err = a.stdout.Write(out)
	return err
}

// credentials returns cached credentials that are not near expiry, or
// exchanges a token for new ones (and caches them).
func (a *app) credentials(ctx context.Context, c *exchangeConfig) (*api.ExchangeResponse, error) {
	var cache *credCache
	if c.cacheNote != "" && formatProviders[c.format] != "" {
		fmt.Fprint(a.stderr, c.cacheNote)
	}
	if c.cacheDir != "" {
		var err error
		if cache, err = openCredCache(c.cacheDir); err != nil {
			fmt.Fprintf(a.stderr, "oidc-bridge: warning: credential cache disabled: %v\n", err)
			cache = nil
		}
	}
	if cache == nil {
		resp, _, err := a.exchangeWithRetries(ctx, c, "")
		return resp, err
	}
	key := cache.key(c.base, c.req.Mapping, c.req.Provider, c.source.scope())
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
	resp, tokenID, err := a.exchangeWithRetries(ctx, c, spent)
	if err != nil {
		var se *spentTokenError
		switch {
		case errors.As(err, &se) && staleOK:
			fmt.Fprintf(a.stderr, "oidc-bridge: warning: cached credentials expire at %s and %s gives no fresh token to exchange again; using them as they are\n",
				entry.Response.ExpiresAt.UTC().Format(time.RFC3339), c.source.describe())
			return &entry.Response, nil
		case errors.As(err, &se) && entry != nil:
			return nil, fmt.Errorf("exchange: the cached credentials expired at %s, and %s still holds the token already exchanged for them: the bridge exchanges a token once (token_replayed). Use a source that gives a fresh token (--token-file the CI refreshes, GitHub Actions' request variables) or ask for a longer --duration",
				entry.Response.ExpiresAt.UTC().Format(time.RFC3339), c.source.describe())
		case staleOK && !isRefusal(err):
			fmt.Fprintf(a.stderr, "oidc-bridge: warning: %v; using cached credentials that expire at %s\n",
				err, entry.Response.ExpiresAt.UTC().Format(time.RFC3339))
			return &entry.Response, nil
		}
		return nil, err
	}
	if err := cache.store(key, &cacheEntry{Version: cacheVersion, Bridge: c.base, Mapping: c.req.Mapping,
		TokenID: tokenID, StoredAt: time.Now().UTC(), Response: *resp}); err != nil {
		fmt.Fprintf(a.stderr, "oidc-bridge: warning: credentials not cached: %v\n", err)
	}
	return resp, nil
}

// exchangeError is the bridge's refusal or failure of an exchange.
type exchangeError struct {
	status     int
	code       string
	message    string
	issuanceID string
	requestID  string
	retryAfter time.Duration
	// hasRetryAfter: the answer carried Retry-After (possibly 0).
	hasRetryAfter bool
}

func (e *exchangeError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "exchange: %d", e.status)
	if e.code != "" {
		b.WriteString(" " + clean(e.code))
	}
	if e.message != "" {
		b.WriteString(": " + clean(e.message))
	}
	if e.issuanceID != "" {
		b.WriteString(" (issuance id " + clean(e.issuanceID) + ")")
	}
	if e.requestID != "" {
		b.WriteString(" (request id " + clean(e.requestID) + ")")
	}
	return b.String()
}

// transient: 429 and 5xx may pass, except 501 and a 502 without
// Retry-After. The bridge sends Retry-After on a 502 provider_error only when
// the cloud was failing; without it, the cloud refused, and will again.
func (e *exchangeError) transient() bool {
	if e.status == http.StatusBadGateway {
		return e.hasRetryAfter
	}
	return e.status == http.StatusTooManyRequests || e.status >= 500 && e.status != http.StatusNotImplemented
}

// isRefusal: the bridge said no for a reason that waiting will not change.
func isRefusal(err error) bool {
	var e *exchangeError
	return errors.As(err, &e) && !e.transient()
}

// spentTokenError: the source holds only the token that the cached
// credentials were already exchanged for.
type spentTokenError struct{}

func (*spentTokenError) Error() string { return "exchange: the token was already exchanged" }

// exchangeWithRetries exchanges a token from the source, retrying transient
// failures with a fresh token per attempt where the source gives one. spent
// is the id of a token already exchanged (from the cache): the source
// holding only that token is a spentTokenError, not a call.
func (a *app) exchangeWithRetries(ctx context.Context, c *exchangeConfig, spent string) (*api.ExchangeResponse, string, error) {
	hc := a.httpClient(attemptTimeout)
	payload, err := json.Marshal(c.req)
	if err != nil {
		return nil, "", err
	}
	var lastTokenID string
	for attempt := 0; ; attempt++ {
		tok, err := c.source.token(ctx, hc)
		var resp *api.ExchangeResponse
		if err == nil {
			id := providers.TokenID(tok)
			if id == spent {
				return nil, "", &spentTokenError{}
			}
			if attempt > 0 && id == lastTokenID && !c.source.static() {
				fmt.Fprintf(a.stderr, "oidc-bridge: note: %s gave the same token again\n", c.source.describe())
			}
			lastTokenID = id
			resp, err = postExchange(ctx, hc, c.base, tok, payload)
			if err == nil {
				return resp, id, nil
			}
		}
		wait, retry := retryWait(err, attempt)
		if !retry || attempt >= c.retries || ctx.Err() != nil {
			var e *exchangeError
			if errors.As(err, &e) && e.code == api.CodeTokenReplayed && attempt > 0 {
				return nil, "", fmt.Errorf("%w; an earlier attempt that failed in transit may have been issued, and %s gives no fresh token", err, c.source.describe())
			}
			if errors.As(err, &e) && e.code == api.CodeTokenReplayed && c.source.static() {
				return nil, "", fmt.Errorf("%w; a token is exchanged once in all, whatever the mapping, and %s holds one token: "+
					"give each exchange a token of its own (on GitLab, one id_tokens entry per mapping, each passed with --token-env)", err, c.source.describe())
			}
			if errors.As(err, &e) && e.code == api.CodeNoMatchingMapping && c.req.Provider != "" {
				return nil, "", fmt.Errorf("%w (--format and --provider asked for a mapping of provider %s)", err, c.req.Provider)
			}
			return nil, "", err
		}
		fmt.Fprintf(a.stderr, "oidc-bridge: %v; retrying in %s\n", err, wait.Round(10*time.Millisecond))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, "", fmt.Errorf("exchange: %w (after: %v)", ctx.Err(), err)
		case <-t.C:
		}
	}
}

// retryWait says whether err is worth another attempt, and after how long.
func retryWait(err error, attempt int) (time.Duration, bool) {
	d := backoff(attempt)
	var e *exchangeError
	if errors.As(err, &e) {
		if !e.transient() {
			return 0, false
		}
		if e.retryAfter > longestRetryAfter {
			return 0, false
		}
		if e.retryAfter > 0 {
			d = e.retryAfter + time.Duration(rand.N(int64(250*time.Millisecond)))
		}
		return d, true
	}
	var te *transientError
	return d, errors.As(err, &te)
}

// transientError is a network failure or an unavailable token source.
type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

func backoff(attempt int) time.Duration {
	d := backoffMin << min(attempt, 10)
	d = min(d, backoffMax)
	return d/2 + time.Duration(rand.N(int64(d/2)))
}

func postExchange(ctx context.Context, hc *http.Client, base, token string, payload []byte) (*api.ExchangeResponse, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+exchangeAPI, bytes.NewReader(payload))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "oidc-bridge-cli exchange")
	resp, err := hc.Do(req)
	if err != nil {
		if re := (*client.RedirectError)(nil); errors.As(err, &re) {
			return nil, fmt.Errorf("exchange: %w", re) // final: never retried
		}
		return nil, netError(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxExchangeReply))
	if err != nil {
		return nil, &transientError{fmt.Errorf("exchange: read the answer: %w", err)}
	}
	if resp.StatusCode == http.StatusOK {
		var out api.ExchangeResponse
		if err := json.Unmarshal(body, &out); err != nil || out.Provider == "" || len(out.Credentials) == 0 {
			return nil, fmt.Errorf("exchange: the bridge answered malformed JSON")
		}
		return &out, nil
	}
	e := &exchangeError{status: resp.StatusCode, requestID: resp.Header.Get("X-Request-Id")}
	var b api.Error
	if json.Unmarshal(body, &b) == nil && b.Error != "" {
		e.code, e.message, e.issuanceID = b.Error, b.Message, b.IssuanceID
		if b.RequestID != "" {
			e.requestID = b.RequestID
		}
	} else {
		e.message = http.StatusText(resp.StatusCode)
	}
	if v := resp.Header.Get("Retry-After"); v != "" {
		if s, err := strconv.Atoi(v); err == nil && s >= 0 {
			e.retryAfter, e.hasRetryAfter = time.Duration(s)*time.Second, true
		} else if t, err := http.ParseTime(v); err == nil {
			e.retryAfter, e.hasRetryAfter = max(time.Until(t), 0), true
		}
	}
	return nil, e
}

// netError marks transport failures that may pass: timeouts, refused or
// reset connections. Bad URLs and TLS failures are final.
func netError(err error) error {
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &ne) && ne.Timeout() || errors.As(err, &oe) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &transientError{fmt.Errorf("exchange: %w", err)}
	}
	return fmt.Errorf("exchange: %w", err)
}

// tokenSource gives the CI job's OIDC token.
type tokenSource interface {
	token(ctx context.Context, hc *http.Client) (string, error)
	// static: every call gives the same token.
	static() bool
	// scope identifies the job for the cache key without revealing the token.
	scope() string
	describe() string
}

func newTokenSource(env map[string]string, o exchangeOpts) (tokenSource, error) {
	if o.tokenFile != "" && o.tokenEnv != "" {
		return nil, usageError{errors.New("give at most one of --token-file and --token-env")}
	}
	switch {
	case o.tokenFile != "":
		return &fileSource{path: o.tokenFile, env: env}, nil
	case o.tokenEnv != "":
		return newEnvSource(env, o.tokenEnv)
	case env[envGitHubReqURL] != "" && env[envGitHubReqToken] != "":
		return &githubSource{url: env[envGitHubReqURL], bearer: env[envGitHubReqToken], audience: o.audience, env: env}, nil
	case env[envIDToken] != "":
		return newEnvSource(env, envIDToken)
	}
	return nil, usageError{fmt.Errorf("no CI token: give --token-file or --token-env, or run in GitHub Actions with `permissions: id-token: write` (%s)", envGitHubReqURL)}
}

func newEnvSource(env map[string]string, name string) (tokenSource, error) {
	tok := strings.TrimSpace(env[name])
	if tok == "" {
		return nil, fmt.Errorf("exchange: $%s is empty or unset", name)
	}
	return &envSource{name: name, tok: tok, env: env}, nil
}

type envSource struct {
	name, tok string
	env       map[string]string
}

func (s *envSource) token(context.Context, *http.Client) (string, error) { return s.tok, nil }
func (s *envSource) static() bool                                        { return true }
func (s *envSource) scope() string                                       { return jobScope(s.env) + "|" + tokenScope(s.tok) }
func (s *envSource) describe() string                                    { return "$" + s.name }

type fileSource struct {
	path string
	env  map[string]string
}

func (s *fileSource) token(context.Context, *http.Client) (string, error) {
	f, err := os.Open(s.path)
	if err != nil {
		return "", fmt.Errorf("exchange: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTokenFile+1))
	if err != nil {
		return "", fmt.Errorf("exchange: read %s: %w", s.path, err)
	}
	if len(b) > maxTokenFile {
		return "", fmt.Errorf("exchange: %s is larger than %d bytes", s.path, maxTokenFile)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("exchange: the token file %s is empty", s.path)
	}
	return tok, nil
}

func (s *fileSource) static() bool { return false }

func (s *fileSource) scope() string {
	tok, err := s.token(context.Background(), nil)
	if err != nil {
		return jobScope(s.env) + "|file:" + s.path
	}
	return jobScope(s.env) + "|" + tokenScope(tok)
}

func (s *fileSource) describe() string { return "the token file " + s.path }

// githubSource asks GitHub Actions for a token (for the job's
// `permissions: id-token: write`).
type githubSource struct {
	url, bearer, audience string
	env                   map[string]string
}

func (s *githubSource) token(ctx context.Context, hc *http.Client) (string, error) {
	u, err := url.Parse(s.url)
	if err != nil {
		return "", fmt.Errorf("exchange: %s is not a URL", envGitHubReqURL)
	}
	q := u.Query()
	q.Set("audience", s.audience)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+s.bearer)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "oidc-bridge-cli exchange")
	resp, err := hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL may carry secrets of the runner
		}
		err = fmt.Errorf("exchange: request a token from GitHub Actions: %w", err)
		if re := (*client.RedirectError)(nil); errors.As(err, &re) {
			return "", err // not followed, and not worth retrying
		}
		return "", &transientError{err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenFile))
	if err != nil {
		return "", &transientError{fmt.Errorf("exchange: read GitHub Actions' token: %w", err)}
	}
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("exchange: GitHub Actions answered %s to the token request (does the job have `permissions: id-token: write`?)", resp.Status)
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
			return "", &transientError{err}
		}
		return "", err
	}
	var v struct {
		Value string `json:"value"`
	}
	if json.Unmarshal(body, &v) != nil || v.Value == "" {
		return "", errors.New("exchange: GitHub Actions' token answer has no value")
	}
	return v.Value, nil
}

func (s *githubSource) static() bool { return false }

func (s *githubSource) scope() string {
	sum := sha256.Sum256([]byte(s.bearer + "|" + s.audience))
	return jobScope(s.env) + "|github:" + hex.EncodeToString(sum[:8])
}

func (s *githubSource) describe() string { return "GitHub Actions' token request" }

// jobScope names the CI job from the variables that the common CIs set, so
// that a cache shared by several jobs never hands one job's credentials to
// another.
func jobScope(env map[string]string) string {
	var parts []string
	for _, k := range []string{"GITHUB_REPOSITORY", "GITHUB_RUN_ID", "GITHUB_RUN_ATTEMPT", "GITHUB_JOB",
		"CI_PROJECT_PATH", "CI_PIPELINE_ID", "CI_JOB_ID", "BUILDKITE_JOB_ID", "CIRCLE_WORKFLOW_JOB_ID",
		"SYSTEM_COLLECTIONID", "SYSTEM_JOBID", "BUILD_TAG"} {
		if v := env[k]; v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	return strings.Join(parts, ",")
}

// tokenScope reads the token's issuer and subject without verifying it (the
// bridge verifies); a token that is not a JWT is scoped by its hash.
func tokenScope(tok string) string {
	parts := strings.Split(tok, ".")
	if len(parts) == 3 {
		if b, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil {
			var c struct {
				Iss string `json:"iss"`
				Sub string `json:"sub"`
			}
			if json.Unmarshal(b, &c) == nil && c.Iss != "" {
				return "iss=" + c.Iss + ",sub=" + c.Sub
			}
		}
	}
	return providers.TokenID(tok)
}

// credCache keeps the last credentials per bridge, mapping and job, one
// JSON file each (0600) in a directory only the user may enter (0700).
type credCache struct{ dir string }

type cacheEntry struct {
	Version  int                  `json:"version"`
	Bridge   string               `json:"bridge"`
	Mapping  string               `json:"mapping"`
	TokenID  string               `json:"token_id"` // the CI token exchanged, as the ledger names it
	StoredAt time.Time            `json:"stored_at"`
	Response api.ExchangeResponse `json:"response"`
}

func openCredCache(dir string) (*credCache, error) {
	if !filepath.IsAbs(dir) {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, err
		}
		dir = abs
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() {
		return nil, fmt.Errorf("%s belongs to another user", dir)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s may be read by other users (mode %v); chmod 700 it", dir, fi.Mode().Perm())
	}
	return &credCache{dir: dir}, nil
}

func (c *credCache) key(base, mapping, provider, scope string) string {
	sum := sha256.Sum256([]byte(strings.Join([]string{"v1", base, mapping, provider, scope}, "\x00")))
	return hex.EncodeToString(sum[:16])
}

// lock serializes the processes that would exchange for one key, so that
// concurrent SDK calls exchange once.
func (c *credCache) lock(ctx context.Context, key string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(c.dir, key+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("exchange: credential cache: %w", err)
	}
	deadline := time.Now().Add(lockWait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("exchange: lock the credential cache: %w", err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, errors.New("exchange: another oidc-bridge exchange holds the credential cache's lock")
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// load returns the entry for key if it answers req; nil otherwise.
func (c *credCache) load(key, base string, req api.ExchangeRequest) *cacheEntry {
	p := filepath.Join(c.dir, key+".json")
	fi, err := os.Lstat(p)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o077 != 0 {
		return nil
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil
	}
	var e cacheEntry
	if json.Unmarshal(b, &e) != nil || e.Version != cacheVersion || e.Bridge != base || e.Mapping != req.Mapping ||
		(req.Provider != "" && e.Response.Provider != req.Provider) || len(e.Response.Credentials) == 0 {
		return nil
	}
	return &e
}

func (c *credCache) store(key string, e *cacheEntry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return writePrivateFile(filepath.Join(c.dir, key+".json"), b)
}

// writePrivateFile replaces name atomically with a 0600 file holding b.
func writePrivateFile(name string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(name), ".oidc-bridge-*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}

// formatCredentials renders an exchange's answer in format.
func formatCredentials(format string, resp *api.ExchangeResponse) ([]byte, error) {
	switch format {
	case formatJSON:
		b, err := json.MarshalIndent(resp, "", "  ")
		return append(b, '\n'), err
	case formatAWSProc:
		var c providers.AWSCredentials
		if err := json.Unmarshal(resp.Credentials, &c); err != nil || c.AccessKeyID == "" {
			return nil, errors.New("exchange: the bridge's aws credentials are malformed")
		}
		b, err := json.Marshal(struct {
			Version         int
			AccessKeyID     string `json:"AccessKeyId"`
			SecretAccessKey string
			SessionToken    string
			Expiration      string
		}{1, c.AccessKeyID, c.SecretAccessKey, c.SessionToken, c.Expiration.UTC().Format(time.RFC3339)})
		return append(b, '\n'), err
	case formatGCPExec:
		var c providers.JWTCredentials
		if err := json.Unmarshal(resp.Credentials, &c); err != nil || c.Token == "" {
			return nil, errors.New("exchange: the bridge's jwt credentials are malformed")
		}
		exp := c.ExpiresAt
		if exp.IsZero() {
			exp = resp.ExpiresAt
		}
		b, err := json.Marshal(gcpExecutableResponse{Version: 1, Success: true, TokenType: gcpJWTType, IDToken: c.Token,
			ExpirationTime: exp.Unix()})
		return append(b, '\n'), err
	}
	vars, err := credentialVariables(resp)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	for _, kv := range vars {
		switch format {
		case formatEnv:
			fmt.Fprintf(&b, "export %s=%s\n", kv[0], shellQuote(kv[1]))
		case formatDotenv:
			if !dotenvSafe(kv[1]) {
				return nil, fmt.Errorf("exchange: %s holds characters that a dotenv file cannot carry unquoted; use --format env or json", kv[0])
			}
			fmt.Fprintf(&b, "%s=%s\n", kv[0], kv[1])
		}
	}
	return []byte(b.String()), nil
}

type gcpExecutableResponse struct {
	Version        int    `json:"version"`
	Success        bool   `json:"success"`
	TokenType      string `json:"token_type,omitempty"`
	IDToken        string `json:"id_token,omitempty"`
	ExpirationTime int64  `json:"expiration_time,omitempty"`
	Code           string `json:"code,omitempty"`
	Message        string `json:"message,omitempty"`
}

// writeGCPFailure prints Google's executable failure response.
func (a *app) writeGCPFailure(err error) {
	code := "oidc_bridge_error"
	var e *exchangeError
	var ue usageError
	switch {
	case errors.As(err, &e) && e.code != "":
		code = e.code
	case errors.As(err, &ue):
		code = "usage"
	}
	b, _ := json.Marshal(gcpExecutableResponse{Version: 1, Success: false, Code: code, Message: err.Error()})
	fmt.Fprintf(a.stdout, "%s\n", b)
}

// credentialVariables are the environment variables of an answer, in order.
func credentialVariables(resp *api.ExchangeResponse) ([][2]string, error) {
	var vars [][2]string
	add := func(k, v string) {
		if v != "" {
			vars = append(vars, [2]string{k, v})
		}
	}
	bad := func() error {
		return fmt.Errorf("exchange: the bridge's %s credentials are malformed", clean(resp.Provider))
	}
	switch resp.Provider {
	case "aws":
		var c providers.AWSCredentials
		if json.Unmarshal(resp.Credentials, &c) != nil || c.AccessKeyID == "" {
			return nil, bad()
		}
		add("AWS_ACCESS_KEY_ID", c.AccessKeyID)
		add("AWS_SECRET_ACCESS_KEY", c.SecretAccessKey)
		add("AWS_SESSION_TOKEN", c.SessionToken)
		add("AWS_REGION", c.Region)
		add("AWS_DEFAULT_REGION", c.Region)
		if !c.Expiration.IsZero() {
			add("AWS_CREDENTIAL_EXPIRATION", c.Expiration.UTC().Format(time.RFC3339))
		}
	case "gcp":
		var c providers.GCPCredentials
		if json.Unmarshal(resp.Credentials, &c) != nil || c.AccessToken == "" {
			return nil, bad()
		}
		add("CLOUDSDK_AUTH_ACCESS_TOKEN", c.AccessToken)
		add("GOOGLE_OAUTH_ACCESS_TOKEN", c.AccessToken)
	case "azure":
		var c providers.AzureCredentials
		if json.Unmarshal(resp.Credentials, &c) != nil || c.AccessToken == "" {
			return nil, bad()
		}
		add("AZURE_ACCESS_TOKEN", c.AccessToken)
	case "jwt":
		var c providers.JWTCredentials
		if json.Unmarshal(resp.Credentials, &c) != nil || c.Token == "" {
			return nil, bad()
		}
		add("OIDC_BRIDGE_JWT", c.Token)
	default:
		return nil, fmt.Errorf("exchange: unknown provider %q in the bridge's answer; use --format json", clean(resp.Provider))
	}
	if !resp.ExpiresAt.IsZero() {
		add("OIDC_BRIDGE_EXPIRES_AT", resp.ExpiresAt.UTC().Format(time.RFC3339))
	}
	add("OIDC_BRIDGE_ISSUANCE_ID", resp.IssuanceID)
	return vars, nil
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// dotenvSafe: s reads back unchanged, unquoted, in docker's --env-file,
// compose and godotenv (no blanks, quotes, #, $ or escapes).
func dotenvSafe(s string) bool {
	for _, r := range s {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		case strings.ContainsRune("+/=._:@,~-", r):
		default:
			return false
		}
	}
	return true
}
