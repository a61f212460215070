package azure

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/google/uuid"

	"github.com/oidc-bridge/oidc-bridge/providers"
	"github.com/oidc-bridge/oidc-bridge/signing"
)

// Values of the federation with Entra ID.
const (
	// DefaultAudience is the aud of the client assertions unless
	// Config.Audience says otherwise: the audience Entra recommends for
	// federated identity credentials in the Azure public cloud.
	DefaultAudience = "api://AzureADTokenExchange"
	// DefaultScope is the scope of a target without one: Azure Resource
	// Manager.
	DefaultScope = "https://management.azure.com/.default"
	// SubjectPrefix begins the sub of every client assertion; the mapping's
	// name follows. The federated identity credential's subject must be
	// exactly SubjectPrefix + mapping name.
	SubjectPrefix = providers.SubjectPrefix + "azure:mapping:"
	// AuthorityHostEnv is the variable azidentity reads for the authority
	// host.
	AuthorityHostEnv = "AZURE_AUTHORITY_HOST"
)

// assertionLifetime is how long a client assertion is valid: long enough for
// one exchange, short enough to be useless if it leaks. A shorter requested
// duration shortens it; a longer one (max_duration_seconds goes up to a day)
// never lengthens it, for Entra decides the access token's lifetime itself.
// Entra sets no limit on exp but asks for "5-10 minutes after nbf at most",
// https://learn.microsoft.com/entra/identity-platform/certificate-credentials.
const assertionLifetime = 5 * time.Minute

// maxFederationField: a federated identity credential's issuer, subject and
// audience hold at most 600 characters each, and the assertion's iss, sub
// and aud must equal them exactly (case-sensitively, whitespace included),
// https://learn.microsoft.com/entra/workload-id/workload-identity-federation-considerations.
// The subject is checked where the mapping name is chosen (the admin API);
// New checks the issuer and audience, which the bridge's configuration
// decides.
const maxFederationField = 600

// Config configures the provider.
type Config struct {
	// Signer signs the client assertions. Its Issuer() is the issuer of the
	// federated identity credentials; its keys must be reachable by Entra at
	// Issuer()/.well-known/openid-configuration. Required.
	Signer signing.Signer
	// AuthorityHost is Entra's base URL, e.g.
	// https://login.microsoftonline.us/ for Azure US Government. Empty means
	// AZURE_AUTHORITY_HOST from the environment, as azidentity reads it, else
	// the Azure public cloud (https://login.microsoftonline.com/). It must
	// be https.
	AuthorityHost string
	// Audience is the assertions' aud; empty means DefaultAudience. Clouds
	// other than the public one recommend their own value (e.g.
	// api://AzureADTokenExchangeUSGov), which is then what the federated
	// identity credentials name.
	Audience string
	// HTTPClient, if set, makes every call to Entra (tests give the fake's
	// TLS client). Nil means a clone of http.DefaultTransport, which honours
	// HTTPS_PROXY and SSL_CERT_FILE.
	HTTPClient *http.Client
	// Logger receives failures (with Entra's error description, trace and
	// correlation ids) and, at debug level, successes. Never tokens or
	// assertions. Nil discards.
	Logger *slog.Logger
}

// Provider mints Entra ID access tokens for applications that trust the
// bridge through a federated identity credential. It is safe for concurrent
// use.
type Provider struct {
	signer   signing.Signer
	host     string
	hostURL  *url.URL
	audience string
	client   *http.Client
	log      *slog.Logger
}

var _ providers.Provider = (*Provider)(nil)

// New checks cfg. It does not contact Entra.
func New(_ context.Context, cfg Config) (*Provider, error) {
	if cfg.Signer == nil {
		return nil, errors.New("azure: a signer is required")
	}
	host := cfg.AuthorityHost
	if host == "" {
		host = os.Getenv(AuthorityHostEnv)
	}
	if host == "" {
		host = cloud.AzurePublic.ActiveDirectoryAuthorityHost
	}
	u, err := url.Parse(host)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("azure: authority host %q is not an https URL", host)
	}
	audience := cfg.Audience
	if audience == "" {
		audience = DefaultAudience
	}
	for _, f := range []struct{ name, v string }{{"issuer", cfg.Signer.Issuer()}, {"audience", audience}} {
		if len(f.v) > maxFederationField || strings.TrimSpace(f.v) != f.v || strings.Contains(f.v, "*") {
			return nil, fmt.Errorf("azure: the client assertions' %s must be at most %d characters, without surrounding "+
				"whitespace or wildcards, to match a federated identity credential", f.name, maxFederationField)
		}
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Provider{
		signer:   cfg.Signer,
		host:     host,
		hostURL:  u,
		audience: audience,
		client:   client,
		log:      log,
	}, nil
}

// Name is "azure".
func (p *Provider) Name() string { return Name }

// AuthorityHost is the Entra base URL the provider uses.
func (p *Provider) AuthorityHost() string { return p.host }

// Subject is the sub of the client assertions for mapping,
// "oidc-bridge:azure:mapping:<mapping>" (providers.Subject): what the
// federated identity credential's subject must be. No other token the
// bridge signs (a jwt mapping's, an AWS or Google assertion) has it.
func Subject(mapping string) string { return SubjectPrefix + mapping }

// Mint exchanges a client assertion naming req's mapping for an access token
// of the target's application and scope.
//
// Each mint builds its own azidentity credential, so MSAL's token and
// metadata caches live for one mint only: every exchange is one new token
// from Entra (what the ledger records), and a token cached for one mapping
// or request can never be served for another.
func (p *Provider) Mint(ctx context.Context, req providers.Request) (providers.Credential, error) {
	log := p.log.With("mapping", req.Mapping, "issuance_id", req.IssuanceID)
	t, err := decodeTarget(req.Target)
	if err != nil {
		log.Error("azure: refusing a mapping target", "error", err)
		return providers.Credential{}, refused("InvalidTarget")
	}
	if !providers.ValidMappingName(req.Mapping) {
		log.Error("azure: mint request without a valid mapping name")
		return providers.Credential{}, refused("InvalidRequest")
	}
	// The deployment's authority and audience, unless the target names a
	// cloud, which fixes both (and the default scope).
	host, hostURL, audience, scope := p.host, p.hostURL.Host, p.audience, t.Scope
	if c, ok := clouds[t.Cloud]; ok {
		host, audience = c.config.ActiveDirectoryAuthorityHost, c.audience
		u, err := url.Parse(host)
		if err != nil {
			log.Error("azure: the cloud's authority host does not parse", "cloud", t.Cloud, "error", err)
			return providers.Credential{}, refused("InvalidTarget")
		}
		hostURL = u.Host
		if scope == "" {
			scope = c.defaultScope()
		}
		log = log.With("cloud", t.Cloud)
	}
	if scope == "" {
		scope = DefaultScope
	}
	lifetime := assertionLifetime
	if req.Duration > 0 && req.Duration < lifetime {
		lifetime = req.Duration
	}
	x := &exchange{
		client:   p.client,
		host:     hostURL,
		signer:   p.signer,
		subject:  Subject(req.Mapping),
		audience: audience,
		lifetime: lifetime,
	}
	log = log.With("tenant_id", t.TenantID, "client_id", t.ClientID, "scope", scope, "subject", x.subject)

	cred, err := azidentity.NewClientAssertionCredential(t.TenantID, t.ClientID, x.assertion,
		&azidentity.ClientAssertionCredentialOptions{
			ClientOptions: azcore.ClientOptions{
				Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: host},
				Transport: x,
				// One call per request: azcore would otherwise retry a
				// token request (408, 429, 5xx, transport errors) whose
				// first answer was lost, and Entra could issue a token the
				// ledger never saw. MaxRetries < 0 means none (0 would mean
				// azcore's default, 3). The client retries, with a fresh
				// pipeline token.
				Retry: policy.RetryOptions{MaxRetries: -1},
				// Bodies of token responses hold tokens: never log them,
				// whatever azcore log listener the process sets.
				Logging: policy.LogOptions{IncludeBody: false},
			},
			// The authority is configured, not discovered: no call to
			// login.microsoftonline.com's instance discovery, which would
			// also fail for any other authority host.
			DisableInstanceDiscovery: true,
		})
	if err != nil {
		log.Error("azure: cannot build a client assertion credential", "error", err)
		return providers.Credential{}, refused("InvalidTarget")
	}
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}})
	if err != nil {
		return providers.Credential{}, x.failed(ctx, log, err)
	}
	if tok.Token == "" || tok.ExpiresOn.IsZero() {
		log.Error("azure: Entra answered without a token or its expiry")
		return providers.Credential{}, indeterminate("InvalidResponse")
	}
	id := providers.TokenID(tok.Token)
	expires := tok.ExpiresOn.UTC()
	log.Debug("azure: token issued", "token_id", id, "expires_at", expires, "assertion_jti", x.lastJTI())
	return providers.Credential{
		ID:        id,
		ExpiresAt: expires,
		Body: providers.AzureCredentials{
			AccessToken: tok.Token,
			TokenType:   "Bearer",
			ExpiresAt:   expires,
			TenantID:    t.TenantID,
			ClientID:    t.ClientID,
			Scope:       scope,
		},
	}, nil
}

// assertion signs a fresh client assertion; MSAL calls it for each token
// request it builds.
func (x *exchange) assertion(ctx context.Context) (string, error) {
	now := time.Now()
	jti := uuid.NewString()
	tok, err := x.signer.Sign(ctx, map[string]any{
		"sub": x.subject,
		"aud": x.audience,
		"nbf": now.Unix(),
		"exp": now.Add(x.lifetime).Unix(),
		"jti": jti,
	}, signing.RS256)
	x.mu.Lock()
	defer x.mu.Unlock()
	if err != nil {
		x.signErr = err
		return "", fmt.Errorf("azure: sign the client assertion: %w", err)
	}
	x.jtis = append(x.jtis, jti)
	return tok, nil
}

func refused(code string) *providers.Error {
	return &providers.Error{Provider: "azure", Code: code, Err: providers.ErrRefused}
}

func unavailable(code string) *providers.Error {
	return &providers.Error{Provider: "azure", Code: code, Err: providers.ErrUnavailable}
}

// indeterminate is a failure after which Entra may have issued a token.
func indeterminate(code string) *providers.Error {
	e := unavailable(code)
	e.Indeterminate = true
	return e
}

func isTransientOAuthError(e string) bool {
	return strings.EqualFold(e, "temporarily_unavailable") || strings.EqualFold(e, "server_error")
}
