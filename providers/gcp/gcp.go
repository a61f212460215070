package gcp

import (
	"context"
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
	iam        *iamcredentials.IamCredentialsClient
	sts        *stsv1.Service
	httpClient *http.Client
	signer     signing.Signer
	log        *slog.Logger

	mu  sync.Mutex
	adc *auth.Credentials // found on the first impersonate mint
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
	p.iam, err = iamcredentials.NewIamCredentialsRESTClient(ctx,
		option.WithHTTPClient(iamHTTP), option.WithEndpoint(iamEndpoint), quiet)
	if err != nil {
		return nil, fmt.Errorf("gcp: iamcredentials client: %w", err)
	}
	// STS is called without credentials: the subject token is the proof.
	// Its client resolves "v1/token" against the endpoint, which must end
	// in "/" to keep a path prefix.
	p.sts, err = stsv1.NewService(ctx, option.WithHTTPClient(p.httpClient), option.WithEndpoint(stsEndpoint+"/"), quiet)
	if err != nil {
		return nil, fmt.Errorf("gcp: sts client: %w", err)
	}
	return p, nil
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

	var bearer string
	var perr *providers.Error
	switch t.Mode {
	case modeWorkloadIdentity:
		bearer, perr = p.federatedToken(ctx, log, t, req)
	default:
		bearer, perr = p.ownToken(ctx, log)
	}
	if perr != nil {
		return providers.Credential{}, perr
	}

	in := &credentialspb.GenerateAccessTokenRequest{
		Name:     serviceAccountPrefix + t.ServiceAccount,
		Scope:    scopes(t, req),
		Lifetime: durationpb.New(req.Duration.Truncate(time.Second)),
	}
	for _, d := range t.Delegates {
		in.Delegates = append(in.Delegates, serviceAccountPrefix+d)
	}
	out, err := p.iam.GenerateAccessToken(withBearer(ctx, bearer), in, gax.WithRetry(noRetry))
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
func (p *Provider) ownToken(ctx context.Context, log *slog.Logger) (string, *providers.Error) {
	creds, err := p.credentials()
	if err != nil {
		log.Error("gcp: the bridge has no Application Default Credentials", "error", err)
		return "", unavailable("CredentialsUnavailable")
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
func (p *Provider) Close() error { return p.iam.Close() }

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
