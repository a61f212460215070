package gcp

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/auth"
	googlecreds "cloud.google.com/go/auth/credentials"
	iamcredentials "cloud.google.com/go/iam/credentials/apiv1"
	"cloud.google.com/go/iam/credentials/apiv1/credentialspb"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/api/option"
	stsv1 "google.golang.org/api/sts/v1"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/oidc-bridge/oidc-bridge/providers"
	"github.com/oidc-bridge/oidc-bridge/signing"
)

// Defaults of Config.
const (
	DefaultIAMCredentialsEndpoint = "https://iamcredentials.googleapis.com"
	DefaultSTSEndpoint            = "https://sts.googleapis.com"
)

// DefaultScope is the OAuth scope of minted tokens when the target names
// none, and the scope of the bridge's own tokens.
const DefaultScope = "https://www.googleapis.com/auth/cloud-platform"

// minDuration is generateAccessToken's shortest lifetime. The longest is
// MaxLifetime, or MaxExtendedLifetime with the target's
// allow_lifetime_extension (target.maxLifetime): the admin API refuses a
// mapping whose max_duration_seconds breaks them (Spec.CheckMapping); Mint
// checks each requested duration again, for mappings stored before.
const minDuration = 60 * time.Second

// assertionLifetime is how long the bridge's JWT for Google STS lives: long
// enough for retries within a mint, short enough to be useless once seen.
const assertionLifetime = 5 * time.Minute

// Config configures the provider. The bridge's own Google credentials are
// not here: impersonate mode finds Application Default Credentials
// (GOOGLE_APPLICATION_CREDENTIALS, gcloud's file, the metadata server).
type Config struct {
	// Signer signs the JWTs that workload_identity mode exchanges at Google
	// STS. Nil makes those mints fail with SignerUnavailable.
	Signer signing.Signer
	// IAMCredentialsEndpoint and STSEndpoint override Google's endpoints
	// (the binary fills them from BRIDGE_GCP_IAMCREDENTIALS_ENDPOINT and
	// BRIDGE_GCP_STS_ENDPOINT): base URLs without the /v1 path. Empty
	// means DefaultIAMCredentialsEndpoint and DefaultSTSEndpoint.
	IAMCredentialsEndpoint string
	STSEndpoint            string
	// HTTPClient makes every call: generateAccessToken, STS, and the
	// token requests of Application Default Credentials. Nil means a
	// client with http.DefaultTransport. Deadlines come from the mint's
	// context.
	HTTPClient *http.Client
	// Logger receives failures (with Google's message) and, at debug
	// level, successes. Never tokens or keys. Nil discards.
	Logger *slog.Logger
}

// Provider mints Google access tokens for service accounts with
// generateAccessToken. It is safe for concurrent use.
type Provider struct {
	httpClient *http.Client
	signer     signing.Signer
	log        *slog.Logger

	mu  sync.Mutex
	adc *auth.Credentials // found on the first impersonate mint
	// universes are the clients of each universe domain, by domain: the
	// default one (Config's endpoints) made by New, the others
	// (iamcredentials.DOMAIN, sts.DOMAIN) on their first mint.
	universes map[string]*universe
}

// universe is the clients of one Google Cloud universe.
type universe struct {
	iam *iamcredentials.IamCredentialsClient
	sts *stsv1.Service
}

var _ providers.Provider = (*Provider)(nil)

// New builds the clients. It contacts nobody and does not look for
// Application Default Credentials: a bridge without them starts, and only
// impersonate mints fail (CredentialsUnavailable).
func New(ctx context.Context, cfg Config) (*Provider, error) {
	iamEndpoint, err := endpoint(cfg.IAMCredentialsEndpoint, DefaultIAMCredentialsEndpoint)
	if err != nil {
		return nil, fmt.Errorf("gcp: iamcredentials endpoint: %w", err)
	}
	stsEndpoint, err := endpoint(cfg.STSEndpoint, DefaultSTSEndpoint)
	if err != nil {
		return nil, fmt.Errorf("gcp: sts endpoint: %w", err)
	}
	p := &Provider{
		httpClient: cfg.HTTPClient,
		signer:     cfg.Signer,
		log:        cfg.Logger,
	}
	if p.httpClient == nil {
		p.httpClient = &http.Client{Transport: http.DefaultTransport}
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	u, err := p.newUniverse(ctx, iamEndpoint, stsEndpoint)
	if err != nil {
		return nil, err
	}
	p.universes = map[string]*universe{DefaultUniverseDomain: u}
	return p, nil
}

// newUniverse builds the clients of the endpoints iamEndpoint and
// stsEndpoint. It contacts nobody.
func (p *Provider) newUniverse(ctx context.Context, iamEndpoint, stsEndpoint string) (*universe, error) {
	// The client libraries' loggers print request and response bodies
	// (tokens) at debug level when GOOGLE_SDK_GO_LOGGING_LEVEL says so;
	// they are silenced for good.
	quiet := option.WithLogger(slog.New(slog.DiscardHandler))

	// generateAccessToken's bearer differs per mint (the bridge's own token
	// or a federated one), so the client gets no credentials and the
	// transport adds the mint's token from the request's context.
	base := p.httpClient.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	iamHTTP := &http.Client{
		Transport:     bearerTransport{base: base},
		CheckRedirect: p.httpClient.CheckRedirect,
		Timeout:       p.httpClient.Timeout,
	}
	var u universe
	var err error
	u.iam, err = iamcredentials.NewIamCredentialsRESTClient(ctx,
		option.WithHTTPClient(iamHTTP), option.WithEndpoint(iamEndpoint), quiet)
	if err != nil {
		return nil, fmt.Errorf("gcp: iamcredentials client: %w", err)
	}
	// STS is called without credentials: the subject token is the proof.
	// Its client resolves "v1/token" against the endpoint, which must end
	// in "/" to keep a path prefix.
	u.sts, err = stsv1.NewService(ctx, option.WithHTTPClient(p.httpClient), option.WithEndpoint(stsEndpoint+"/"), quiet)
	if err != nil {
		_ = u.iam.Close()
		return nil, fmt.Errorf("gcp: sts client: %w", err)
	}
	return &u, nil
}

// universe returns the clients of the universe domain d: Config's
// endpoints for DefaultUniverseDomain, https://iamcredentials.d and
// https://sts.d for any other (the overrides of Config are for the
// default universe only).
func (p *Provider) universe(ctx context.Context, d string) (*universe, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if u := p.universes[d]; u != nil {
		return u, nil
	}
	u, err := p.newUniverse(context.WithoutCancel(ctx), "https://iamcredentials."+d, "https://sts."+d)
	if err != nil {
		return nil, err
	}
	p.universes[d] = u
	return u, nil
}

// endpoint checks an override and returns it without a trailing "/".
func endpoint(s, def string) (string, error) {
	if s == "" {
		return def, nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", fmt.Errorf("%q is not an http(s) base URL", s)
	}
	return strings.TrimRight(s, "/"), nil
}

// Name is "gcp".
func (p *Provider) Name() string { return Name }

// Mint returns an access token of the target's service account for
// req.Duration.
func (p *Provider) Mint(ctx context.Context, req providers.Request) (providers.Credential, error) {
	log := p.log.With("mapping", req.Mapping, "issuance_id", req.IssuanceID)
	t, err := decodeTarget(req.Target)
	if err != nil {
		log.Error("gcp: refusing a mapping target", "error", err)
		return providers.Credential{}, refused("InvalidTarget")
	}
	if err := (Spec{}).CheckDownscope(req.Target, req.Downscope); err != nil {
		// The bridge checked it before reserving; a mint never widens.
		log.Error("gcp: refusing a downscope", "error", err)
		return providers.Credential{}, refused("InvalidRequest")
	}
	limit := time.Duration(t.maxLifetime()) * time.Second
	if req.Duration < minDuration || req.Duration > limit {
		log.Error("gcp: duration outside generateAccessToken's range", "duration", req.Duration,
			"max", limit, "allow_lifetime_extension", t.AllowLifetimeExtension)
		return providers.Credential{}, refused("InvalidDuration")
	}
	log = log.With("service_account", t.ServiceAccount, "mode", t.Mode)

	log = log.With("token_format", t.TokenFormat)
	if t.UniverseDomain != DefaultUniverseDomain {
		log = log.With("universe_domain", t.UniverseDomain)
	}
	u, err := p.universe(ctx, t.UniverseDomain)
	if err != nil {
		log.Error("gcp: cannot build the universe's clients", "error", err)
		return providers.Credential{}, refused("InvalidTarget")
	}

	var bearer string
	var perr *providers.Error
	switch t.Mode {
	case modeWorkloadIdentity:
		bearer, perr = p.federatedToken(ctx, log, u, t, req)
	default:
		bearer, perr = p.ownToken(ctx, log, t.UniverseDomain)
	}
	if perr != nil {
		return providers.Credential{}, perr
	}
	if t.TokenFormat == formatIDToken {
		return p.idToken(ctx, log, u, bearer, t)
	}

	in := &credentialspb.GenerateAccessTokenRequest{
		Name:     serviceAccountPrefix + t.ServiceAccount,
		Scope:    scopes(t, req),
		Lifetime: durationpb.New(req.Duration.Truncate(time.Second)),
	}
	in.Delegates = delegates(t)
	out, err := u.iam.GenerateAccessToken(withBearer(ctx, bearer), in, gax.WithRetry(noRetry))
	if err != nil {
		return providers.Credential{}, p.failed(log, ctx, "generateAccessToken", err, googleCode, true)
	}
	expires := out.GetExpireTime()
	if out.GetAccessToken() == "" || expires == nil || expires.CheckValid() != nil {
		log.Error("gcp: generateAccessToken answered without a token or an expiry")
		return providers.Credential{}, indeterminate("InvalidResponse")
	}
	id, at := providers.TokenID(out.GetAccessToken()), expires.AsTime()
	log.Debug("gcp: minted an access token", "credential_id", id, "expires_at", at, "scopes", scopes(t, req),
		"delegates", t.Delegates)
	return providers.Credential{
		ID:        id,
		ExpiresAt: at,
		Body: providers.GCPCredentials{
			AccessToken:    out.GetAccessToken(),
			TokenType:      "Bearer",
			ExpiresAt:      at,
			ServiceAccount: t.ServiceAccount,
		},
	}, nil
}

// delegates are the resource names of t's delegation chain.
func delegates(t target) []string {
	var out []string
	for _, d := range t.Delegates {
		out = append(out, serviceAccountPrefix+d)
	}
	return out
}

// idToken mints an ID token for t's service account with generateIdToken,
// authenticated with bearer. Google's answer holds only the token: its
// expiry is read from the token's exp claim (Google's own signature is for
// the token's audience to check; the bridge has it straight from IAM
// Credentials over TLS).
func (p *Provider) idToken(ctx context.Context, log *slog.Logger, u *universe, bearer string, t target) (providers.Credential, error) {
	in := &credentialspb.GenerateIdTokenRequest{
		Name:         serviceAccountPrefix + t.ServiceAccount,
		Delegates:    delegates(t),
		Audience:     t.IDTokenAudience,
		IncludeEmail: t.IncludeEmail,
	}
	out, err := u.iam.GenerateIdToken(withBearer(ctx, bearer), in, gax.WithRetry(noRetry))
	if err != nil {
		return providers.Credential{}, p.failed(log, ctx, "generateIdToken", err, googleCode, true)
	}
	at, ok := jwtExpiry(out.GetToken())
	if !ok {
		log.Error("gcp: generateIdToken answered without a token whose exp can be read")
		return providers.Credential{}, indeterminate("InvalidResponse")
	}
	id := providers.TokenID(out.GetToken())
	log.Debug("gcp: minted an ID token", "credential_id", id, "expires_at", at, "audience", t.IDTokenAudience,
		"include_email", t.IncludeEmail, "delegates", t.Delegates)
	return providers.Credential{
		ID:        id,
		ExpiresAt: at,
		Body: providers.GCPCredentials{
			IDToken:        out.GetToken(),
			TokenType:      "Bearer",
			ExpiresAt:      at,
			ServiceAccount: t.ServiceAccount,
			Audience:       t.IDTokenAudience,
		},
	}, nil
}

// jwtExpiry reads the exp claim of a compact JWT without verifying it.
func jwtExpiry(token string) (time.Time, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[2] == "" {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, false
	}
	var c struct {
		Exp json.Number `json:"exp"`
	}
	if json.Unmarshal(payload, &c) != nil {
		return time.Time{}, false
	}
	exp, err := c.Exp.Int64()
	if err != nil || exp <= 0 {
		return time.Time{}, false
	}
	return time.Unix(exp, 0).UTC(), true
}

// serviceAccountPrefix makes a service account's resource name; the "-"
// wildcard project is required by the API.
const serviceAccountPrefix = "projects/-/serviceAccounts/"

// credentials returns the bridge's Application Default Credentials, found
// on first use. A failure is not remembered, so that credentials provided
// later are found without a restart.
func (p *Provider) credentials() (*auth.Credentials, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.adc != nil {
		return p.adc, nil
	}
	creds, err := googlecreds.DetectDefault(&googlecreds.DetectOptions{
		Scopes: []string{DefaultScope},
		Client: p.httpClient,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return nil, err
	}
	p.adc = creds
	return creds, nil
}

// ownToken is an access token of the bridge's own Application Default
// Credentials (cached and refreshed by the auth library).
func (p *Provider) ownToken(ctx context.Context, log *slog.Logger, universeDomain string) (string, *providers.Error) {
	creds, err := p.credentials()
	if err != nil {
		log.Error("gcp: the bridge has no Application Default Credentials", "error", err)
		return "", unavailable("CredentialsUnavailable")
	}
	// Credentials of one universe are worthless in another: the target's
	// universe must be the bridge's own, or Google would refuse the call.
	if own, err := creds.UniverseDomain(ctx); err != nil || own != universeDomain {
		log.Error("gcp: the bridge's Application Default Credentials are of another universe than the target's",
			"credentials_universe", own, "error", err)
		return "", refused("UniverseMismatch")
	}
	tok, err := creds.Token(ctx)
	if err == nil && tok.Value == "" {
		err = errors.New("empty token")
	}
	if err != nil {
		// Nothing was asked of the target yet: never indeterminate.
		switch {
		case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
			log.Error("gcp: timed out getting the bridge's own token", "error", err)
			return "", unavailable("Timeout")
		case ctx.Err() != nil:
			return "", unavailable("Canceled")
		}
		attrs := []any{"error", err}
		var ae *auth.Error
		if errors.As(err, &ae) && ae.Response != nil {
			attrs = append(attrs, "status", ae.Response.StatusCode)
		}
		log.Error("gcp: the bridge's Application Default Credentials gave no token", attrs...)
		return "", unavailable("CredentialsUnavailable")
	}
	return tok.Value, nil
}

// Close releases the clients' resources.
func (p *Provider) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for _, u := range p.universes {
		errs = append(errs, u.iam.Close())
	}
	return errors.Join(errs...)
}

// bearerKey carries a mint's bearer token to bearerTransport.
type bearerKey struct{}

func withBearer(ctx context.Context, token string) context.Context {
	return context.WithValue(ctx, bearerKey{}, token)
}

// bearerTransport authenticates each generateAccessToken call with the
// token its context carries, and refuses to send one without.
type bearerTransport struct{ base http.RoundTripper }

func (t bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	tok, _ := r.Context().Value(bearerKey{}).(string)
	if tok == "" {
		if r.Body != nil {
			_ = r.Body.Close()
		}
		return nil, errors.New("gcp: no bearer token for the request")
	}
	r2 := r.Clone(r.Context())
	r2.Header.Set("Authorization", "Bearer "+tok)
	return t.base.RoundTrip(r2)
}
