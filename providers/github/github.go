package github

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	gh "github.com/google/go-github/v88/github"

	"github.com/oidc-bridge/oidc-bridge/providers"
)

// TokenType is the credentials' token_type.
const TokenType = "Bearer"

// Defaults of Config.
const (
	DefaultAppCacheTTL          = 10 * time.Second
	DefaultInstallationCacheTTL = 10 * time.Minute
	// githubAPI and githubServer are github.com's REST API and web host.
	githubAPI    = "https://api.github.com/"
	githubServer = "https://github.com/"
)

// App is a registered GitHub App with its private keys, the signing key
// first (package githubapp reads it from the database).
type App struct {
	Name    string
	AppID   int64
	BaseURL string // "" for github.com, else https://HOST/api/v3/
	Keys    []*rsa.PrivateKey
	// Fingerprints are the keys' GitHub fingerprints, in the same order.
	Fingerprints []string
}

// String hides the keys.
func (a App) String() string {
	return fmt.Sprintf("github.App{%s, app %d, %d key(s)}", a.Name, a.AppID, len(a.Keys))
}

// APIURL is the App's REST API base URL, with its trailing slash.
func (a App) APIURL() string {
	if a.BaseURL == "" {
		return githubAPI
	}
	return a.BaseURL
}

// ServerURL is the App's web and git host: https://github.com/ or a GitHub
// Enterprise Server's https://HOST/.
func (a App) ServerURL() string {
	if a.BaseURL == "" {
		return githubServer
	}
	return strings.TrimSuffix(a.BaseURL, "api/v3/")
}

// ErrAppNotFound: no App of that name is registered.
var ErrAppNotFound = errors.New("github: no github app of that name is registered")

// Apps reads registered Apps with their keys (githubapp.Store).
type Apps interface {
	Credentials(ctx context.Context, name string) (App, error)
}

// Config configures the provider.
type Config struct {
	// Apps reads the Apps. Nil: every mint fails (AppUnavailable).
	Apps Apps
	// HTTPClient's transport makes every GitHub call. Nil: the default.
	// Deadlines come from the mint's context.
	HTTPClient *http.Client
	// AppCacheTTL is how long an App read from Apps is reused (default
	// DefaultAppCacheTTL); a replica sees an admin's change within it,
	// and at once when GitHub refuses every key it holds.
	AppCacheTTL time.Duration
	// InstallationCacheTTL is how long an owner's installation id is
	// reused (default DefaultInstallationCacheTTL).
	InstallationCacheTTL time.Duration
	// Logger receives refusals and failures with GitHub's status and
	// message; never a token or key. Nil discards.
	Logger *slog.Logger
}

// Provider mints GitHub App installation access tokens. It is safe for
// concurrent use.
type Provider struct {
	apps      Apps
	transport http.RoundTripper
	appTTL    time.Duration
	instTTL   time.Duration
	log       *slog.Logger

	mu       sync.Mutex
	appCache map[string]cachedApp
	installs map[string]installation
}

type cachedApp struct {
	app App
	at  time.Time
}

// installation is an owner's installation of an App, as GitHub answered.
type installation struct {
	id          int64
	permissions map[string]string
	at          time.Time
}

var _ providers.Provider = (*Provider)(nil)

// New returns a Provider; it contacts nobody.
func New(cfg Config) *Provider {
	p := &Provider{apps: cfg.Apps, appTTL: cfg.AppCacheTTL, instTTL: cfg.InstallationCacheTTL, log: cfg.Logger,
		appCache: map[string]cachedApp{}, installs: map[string]installation{}}
	if cfg.HTTPClient != nil {
		p.transport = cfg.HTTPClient.Transport
	}
	if p.transport == nil {
		p.transport = http.DefaultTransport
	}
	if p.appTTL <= 0 {
		p.appTTL = DefaultAppCacheTTL
	}
	if p.instTTL <= 0 {
		p.instTTL = DefaultInstallationCacheTTL
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	return p
}

// Name is "github".
func (p *Provider) Name() string { return Name }

func refused(code, detail string) *providers.Error {
	return &providers.Error{Provider: Name, Code: code, Err: providers.ErrRefused, Detail: detail}
}

func unavailable(code string) *providers.Error {
	return &providers.Error{Provider: Name, Code: code, Err: providers.ErrUnavailable}
}

// app returns the App called name, from the cache unless fresh says so;
// cached reports whether it came from the cache.
func (p *Provider) app(ctx context.Context, name string, fresh bool) (App, bool, error) {
	p.mu.Lock()
	c, ok := p.appCache[name]
	p.mu.Unlock()
	if ok && !fresh && time.Since(c.at) < p.appTTL {
		return c.app, true, nil
	}
	if p.apps == nil {
		return App{}, false, unavailable("AppUnavailable")
	}
	a, err := p.apps.Credentials(ctx, name)
	if err != nil {
		return App{}, false, err
	}
	p.mu.Lock()
	p.appCache[name] = cachedApp{app: a, at: time.Now()}
	p.mu.Unlock()
	return a, false, nil
}

func (p *Provider) dropApp(name string) {
	p.mu.Lock()
	delete(p.appCache, name)
	p.mu.Unlock()
}

// errKeysRefused: GitHub answered 401 to the JWT of every key of the App.
var errKeysRefused = errors.New("github: every key of the app was refused")

// Mint creates an installation access token for the target's owner,
// repositories and permissions. The App JWT is signed with the App's
// signing key; when GitHub answers 401 to it (a rotation under way: the key
// not yet, or no longer, known to GitHub), with the previous key, and when
// both are refused and were cached, with the keys read anew from the
// database. A 401 means nothing was issued, so trying another key keeps
// "one credential per issuance".
func (p *Provider) Mint(ctx context.Context, req providers.Request) (providers.Credential, error) {
	log := p.log.With("mapping", req.Mapping, "issuance_id", req.IssuanceID)
	t, err := decodeTarget(req.Target)
	if err != nil {
		log.Error("github: refusing a mapping target", "error", err)
		return providers.Credential{}, refused("InvalidTarget", "")
	}
	app, cached, err := p.app(ctx, t.App, false)
	if err != nil {
		return providers.Credential{}, p.appError(log, t.App, err)
	}
	cred, err := p.mintWith(ctx, log, app, t)
	if errors.Is(err, errKeysRefused) && cached {
		log.Info("github: every cached key of the app was refused; reading the app anew", "app", t.App)
		p.dropApp(t.App)
		if app, _, err = p.app(ctx, t.App, true); err != nil {
			return providers.Credential{}, p.appError(log, t.App, err)
		}
		cred, err = p.mintWith(ctx, log, app, t)
	}
	if errors.Is(err, errKeysRefused) {
		p.dropApp(t.App)
		log.Error("github: GitHub refused the JWT of every key of the app", "app", t.App, "app_id", app.AppID,
			"fingerprints", app.Fingerprints)
		return providers.Credential{}, refused("AppKeyRefused",
			fmt.Sprintf("GitHub refused the JWT of every private key the bridge holds for App %q; register the App's current key (PUT /v1/admin/github-apps/%s)", t.App, t.App))
	}
	return cred, err
}

func (p *Provider) appError(log *slog.Logger, name string, err error) error {
	var pe *providers.Error
	if errors.As(err, &pe) {
		return pe
	}
	if errors.Is(err, ErrAppNotFound) {
		log.Error("github: the mapping names an app that is not registered", "app", name)
		return refused("AppNotFound", fmt.Sprintf("no GitHub App %q is registered with the bridge", name))
	}
	log.Error("github: reading the app failed", "app", name, "error", err)
	return unavailable("AppUnavailable")
}

// client is a go-github client for app, authenticated as the App with key
// (an App JWT per request, ghinstallation), without retries.
func (p *Provider) client(app App, key *rsa.PrivateKey) (*gh.Client, error) {
	tr := ghinstallation.NewAppsTransportFromPrivateKey(p.transport, app.AppID, key)
	return newClient(app.BaseURL, tr)
}

func newClient(baseURL string, tr http.RoundTripper, more ...gh.ClientOptionsFunc) (*gh.Client, error) {
	opts := append([]gh.ClientOptionsFunc{gh.WithTransport(tr)}, more...)
	if baseURL != "" {
		opts = append(opts, gh.WithEnterpriseURLs(baseURL, strings.TrimSuffix(baseURL, "api/v3/")+"api/uploads/"))
	}
	return gh.NewClient(opts...)
}

func (p *Provider) mintWith(ctx context.Context, log *slog.Logger, app App, t target) (providers.Credential, error) {
	for i, key := range app.Keys {
		c, err := p.client(app, key)
		if err != nil {
			log.Error("github: client", "error", err)
			return providers.Credential{}, unavailable("ClientError")
		}
		inst, err := p.installation(ctx, log, c, app, t.Owner)
		if status(err) == http.StatusUnauthorized {
			log.Warn("github: GitHub refused the app JWT", "app", app.Name, "fingerprint", app.Fingerprints[i])
			continue
		}
		if err != nil {
			return providers.Credential{}, err
		}
		cred, err := p.createToken(ctx, log, c, app, inst, t)
		if status(err) == http.StatusUnauthorized {
			log.Warn("github: GitHub refused the app JWT", "app", app.Name, "fingerprint", app.Fingerprints[i])
			continue
		}
		return cred, err
	}
	return providers.Credential{}, errKeysRefused
}

func installKey(app App, owner string) string {
	return fmt.Sprintf("%s\x00%d\x00%s\x00%s", app.Name, app.AppID, app.BaseURL, strings.ToLower(owner))
}

// installation finds the App's installation on owner: the organization's,
// else the user's. It is cached for InstallationCacheTTL.
func (p *Provider) installation(ctx context.Context, log *slog.Logger, c *gh.Client, app App, owner string) (installation, error) {
	k := installKey(app, owner)
	p.mu.Lock()
	in, ok := p.installs[k]
	p.mu.Unlock()
	if ok && time.Since(in.at) < p.instTTL {
		return in, nil
	}
	got, _, err := c.Apps.GetOrganizationInstallation(ctx, owner)
	if status(err) == http.StatusNotFound {
		got, _, err = c.Apps.GetUserInstallation(ctx, owner)
	}
	if status(err) == http.StatusNotFound {
		log.Warn("github: the app is not installed on the owner", "app", app.Name, "owner", owner)
		return installation{}, refused("NotInstalled", fmt.Sprintf("GitHub App %q is not installed on %s", app.Name, owner))
	}
	if err != nil {
		if status(err) == http.StatusUnauthorized {
			return installation{}, err
		}
		return installation{}, p.failed(ctx, log, "installation lookup", err, false)
	}
	in = installation{id: got.GetID(), at: time.Now(), permissions: permissionsOf(got.GetPermissions())}
	p.mu.Lock()
	p.installs[k] = in
	p.mu.Unlock()
	return in, nil
}

func (p *Provider) dropInstallation(app App, owner string) {
	p.mu.Lock()
	delete(p.installs, installKey(app, owner))
	p.mu.Unlock()
}

// tokenRequest is the body of POST /app/installations/{id}/access_tokens,
// written here rather than with go-github's InstallationPermissions so
// that every permission of the table reaches GitHub exactly as the
// mapping names it.
type tokenRequest struct {
	Repositories []string          `json:"repositories,omitempty"`
	Permissions  map[string]string `json:"permissions"`
}

type tokenResponse struct {
	Token        string            `json:"token"`
	ExpiresAt    time.Time         `json:"expires_at"`
	Permissions  map[string]string `json:"permissions"`
	Repositories []struct {
		FullName string `json:"full_name"`
	} `json:"repositories"`
}

func (p *Provider) createToken(ctx context.Context, log *slog.Logger, c *gh.Client, app App, inst installation, t target) (providers.Credential, error) {
	body := tokenRequest{Repositories: t.Repositories, Permissions: t.Permissions}
	r, err := c.NewRequest(ctx, http.MethodPost, fmt.Sprintf("app/installations/%d/access_tokens", inst.id), body)
	if err != nil {
		log.Error("github: token request", "error", err)
		return providers.Credential{}, unavailable("ClientError")
	}
	var out tokenResponse
	_, err = c.Do(r, &out)
	switch status(err) {
	case 0:
	case http.StatusUnauthorized:
		return providers.Credential{}, err
	case http.StatusNotFound:
		// Uninstalled since it was cached.
		p.dropInstallation(app, t.Owner)
		log.Warn("github: the installation is gone", "app", app.Name, "owner", t.Owner, "installation_id", inst.id)
		return providers.Credential{}, refused("NotInstalled", fmt.Sprintf("GitHub App %q is no longer installed on %s", app.Name, t.Owner))
	case http.StatusUnprocessableEntity, http.StatusForbidden:
		if e := p.explain(ctx, log, c, app, t, err); e != nil {
			return providers.Credential{}, e
		}
	}
	if err != nil {
		return providers.Credential{}, p.failed(ctx, log, "token request", err, true)
	}
	if out.Token == "" || out.ExpiresAt.IsZero() {
		log.Error("github: a token answer without token or expiry")
		return providers.Credential{}, &providers.Error{Provider: Name, Code: "InvalidResponse", Err: providers.ErrUnavailable, Indeterminate: true}
	}
	repos := make([]string, 0, len(out.Repositories))
	for _, r := range out.Repositories {
		repos = append(repos, r.FullName)
	}
	id := providers.TokenID(out.Token)
	log.Debug("github: issued an installation token", "credential_id", id, "app", app.Name, "owner", t.Owner,
		"repositories", repos, "expires_at", out.ExpiresAt)
	return providers.Credential{
		ID:        id,
		ExpiresAt: out.ExpiresAt.UTC(),
		Body: providers.GitHubCredentials{
			Token: out.Token, TokenType: TokenType, ExpiresAt: out.ExpiresAt.UTC(),
			Repositories: repos, Permissions: out.Permissions,
			APIURL: app.APIURL(), ServerURL: app.ServerURL(),
		},
	}, nil
}

// explain turns GitHub's refusal of a token request (422; 403 when not a
// rate limit) into a refusal naming what the target asks beyond the
// installation: the installation is read anew and its permissions compared
// with the target's; otherwise, the repositories. Nil for a rate limit,
// which failed handles.
func (p *Provider) explain(ctx context.Context, log *slog.Logger, c *gh.Client, app App, t target, err error) error {
	var rle *gh.RateLimitError
	var ale *gh.AbuseRateLimitError
	if errors.As(err, &rle) || errors.As(err, &ale) {
		return nil
	}
	log.Warn("github: GitHub refused the token request", "app", app.Name, "owner", t.Owner, "status", status(err), "error", err)
	p.dropInstallation(app, t.Owner)
	inst, ierr := p.installation(ctx, log, c, app, t.Owner)
	if ierr == nil {
		if missing := beyond(t.Permissions, inst.permissions); len(missing) > 0 {
			return refused("PermissionNotGranted", fmt.Sprintf("the installation of App %q on %s does not grant %s",
				app.Name, t.Owner, strings.Join(missing, ", ")))
		}
	}
	if len(t.Repositories) > 0 {
		return refused("RepositoryNotAccessible", fmt.Sprintf("a repository of %s is not accessible to the installation of App %q on %s (or does not exist)",
			strings.Join(t.Repositories, ", "), app.Name, t.Owner))
	}
	return refused(fmt.Sprintf("HTTP%d", status(err)), fmt.Sprintf("GitHub refused the token request for App %q on %s", app.Name, t.Owner))
}

// beyond lists, as "name: level", the permissions of want that granted does
// not cover.
func beyond(want, granted map[string]string) []string {
	var out []string
	for name, level := range want {
		if rank[granted[name]] < rank[level] {
			out = append(out, name+": "+level)
		}
	}
	slices.Sort(out)
	return out
}

func permissionsOf(ip *gh.InstallationPermissions) map[string]string {
	out := map[string]string{}
	if ip == nil {
		return out
	}
	b, err := json.Marshal(ip)
	if err != nil {
		return out
	}
	_ = json.Unmarshal(b, &out)
	return out
}

// status is the HTTP status of a GitHub error answer, 0 for no answer or
// no error.
func status(err error) int {
	var er *gh.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		return er.Response.StatusCode
	}
	var rle *gh.RateLimitError
	if errors.As(err, &rle) && rle.Response != nil {
		return rle.Response.StatusCode
	}
	var ale *gh.AbuseRateLimitError
	if errors.As(err, &ale) && ale.Response != nil {
		return ale.Response.StatusCode
	}
	return 0
}

// failed classifies a GitHub call's failure, logging GitHub's message.
// mayIssue says whether the call mints (the token request), so that losing
// its answer is indeterminate.
func (p *Provider) failed(ctx context.Context, log *slog.Logger, op string, err error, mayIssue bool) *providers.Error {
	e := classify(ctx, err, mayIssue, time.Now())
	log.Warn("github: "+op+" failed", "code", e.Code, "status", status(err), "retry_after", e.RetryAfter,
		"indeterminate", e.Indeterminate, "error", err)
	return e
}

func classify(ctx context.Context, err error, mayIssue bool, now time.Time) *providers.Error {
	var rle *gh.RateLimitError
	if errors.As(err, &rle) {
		e := unavailable("RateLimited")
		if reset := rle.Rate.Reset.Time; reset.After(now) {
			e.RetryAfter = reset.Sub(now)
		}
		e.Detail = "GitHub's API rate limit of the App is spent; retry after the time Retry-After says"
		return e
	}
	var ale *gh.AbuseRateLimitError
	if errors.As(err, &ale) {
		e := unavailable("SecondaryRateLimited")
		if ale.RetryAfter != nil {
			e.RetryAfter = *ale.RetryAfter
		}
		e.Detail = "GitHub's secondary rate limit was hit; retry after the time Retry-After says"
		return e
	}
	if s := status(err); s != 0 {
		switch {
		case s == http.StatusTooManyRequests:
			return unavailable("RateLimited")
		case s == http.StatusGatewayTimeout && mayIssue:
			e := unavailable(fmt.Sprintf("HTTP%d", s))
			e.Indeterminate = true
			return e
		case s >= 500:
			return unavailable(fmt.Sprintf("HTTP%d", s))
		}
		return refused(fmt.Sprintf("HTTP%d", s), "")
	}
	mk := func(code string) *providers.Error {
		e := unavailable(code)
		e.Indeterminate = mayIssue
		return e
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		return mk("Timeout")
	case errors.Is(err, context.Canceled) || ctx.Err() != nil:
		return mk("Canceled")
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return unavailable("ConnectionError")
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return mk("ConnectionError")
	}
	return mk("InvalidResponse")
}
