package entratest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"

	"github.com/oidc-bridge/oidc-bridge/test/faulttest"
)

// Values of the federation protocol.
const (
	// DefaultAudience is the audience Entra recommends for federated
	// identity credentials in the Azure public cloud; credentials added
	// without audiences get it.
	DefaultAudience = "api://AzureADTokenExchange"
	// AssertionType is the client_assertion_type of a JWT client assertion.
	AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	// GrantClientCredentials is the only grant_type the fake serves.
	GrantClientCredentials = "client_credentials"
)

// DefaultTokenLifetime is the expires_in of the access tokens the fake
// issues unless WithTokenLifetime says otherwise (Entra's usual 3599 s).
const DefaultTokenLifetime = 3599 * time.Second

// clockSkew is how far exp and nbf may be off, as in Entra.
const clockSkew = 5 * time.Minute

// maxBody bounds a request body.
const maxBody = 1 << 20

// Endpoints, as Call.Endpoint names them.
const (
	EndpointMetadata = "metadata"
	EndpointToken    = "token"
	EndpointKeys     = "keys"
)

// FederatedCredential is a federated identity credential registered on an
// application: Entra accepts a client assertion whose iss is Issuer, whose
// sub is Subject and whose aud holds one of Audiences.
type FederatedCredential struct {
	// Name is informative only (Entra requires one; the fake does not).
	Name    string
	Issuer  string
	Subject string
	// Audiences defaults to [DefaultAudience]; Entra takes exactly one.
	Audiences []string
}

// Entra's limits on federated identity credentials, from "Important
// considerations and restrictions for federated identity credentials",
// https://learn.microsoft.com/entra/workload-id/workload-identity-federation-considerations,
// and the federatedIdentityCredential resource of Microsoft Graph,
// https://learn.microsoft.com/graph/api/resources/federatedidentitycredential:
// at most MaxFederatedCredentials per application; issuer, subject and the
// one audience at most MaxCredentialField characters each; no wildcards; an
// issuer with leading or trailing whitespace blocks the exchange.
const (
	MaxFederatedCredentials = 20
	MaxCredentialField      = 600
)

// ValidateFederatedCredential returns why Entra would refuse to create fc,
// or nil. AddFederatedCredential panics on such a credential.
func ValidateFederatedCredential(fc FederatedCredential) error {
	auds := fc.Audiences
	if len(auds) == 0 {
		auds = []string{DefaultAudience}
	}
	if len(auds) != 1 {
		return errors.New("entratest: federated identity credentials must have exactly one audience")
	}
	for _, f := range []struct{ name, v string }{{"issuer", fc.Issuer}, {"subject", fc.Subject}, {"audience", auds[0]}} {
		switch {
		case f.v == "":
			return fmt.Errorf("entratest: the %s is required", f.name)
		case len(f.v) > MaxCredentialField:
			return fmt.Errorf("entratest: the %s has %d characters; at most %d", f.name, len(f.v), MaxCredentialField)
		case strings.Contains(f.v, "*"):
			return fmt.Errorf("entratest: the %s has a wildcard, which Entra does not support", f.name)
		case strings.TrimSpace(f.v) != f.v:
			return fmt.Errorf("entratest: the %s has leading or trailing whitespace", f.name)
		}
	}
	return nil
}

// Call is one request the fake received, whatever its outcome.
type Call struct {
	Time     time.Time
	Method   string
	Path     string
	Endpoint string // EndpointMetadata, EndpointToken, EndpointKeys or ""
	// Tenant is the path's tenant, as sent.
	Tenant string

	// The token request's form fields (the assertion itself is not kept).
	GrantType           string
	ClientID            string
	ClientAssertionType string
	Scope               string
	// Assertion holds the client assertion's claims when it parsed as a JWS
	// (whether or not it then verified); AssertionKeyID its header's kid.
	Assertion      map[string]any
	AssertionKeyID string
	// CorrelationID is the client-request-id header MSAL sends, which Entra
	// echoes as correlation_id.
	CorrelationID string

	// Status is what the fake answered; Error and ErrorCode the error and
	// its AADSTS code ("AADSTS70021") when it refused or failed.
	Status      int
	Error       string
	ErrorCode   string
	AccessToken string
}

// Option configures a Server.
type Option func(*Server)

// WithClock makes the fake read the time from now: assertion validity and
// token expiry follow it.
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// WithTokenLifetime sets the expires_in of issued access tokens.
func WithTokenLifetime(d time.Duration) Option { return func(s *Server) { s.lifetime = d } }

// WithMaxAssertionLifetime makes the fake refuse, with AADSTS700024, a
// client assertion whose exp is more than d after its nbf (or iat). Entra
// itself sets no limit ("Microsoft Entra ID doesn't place restrictions on the
// exp time currently") but asks for "5-10 minutes after nbf at most",
// https://learn.microsoft.com/entra/identity-platform/certificate-credentials;
// tests of the bridge hold its assertions to that with 10 minutes. Zero, the
// default, is Entra's behaviour.
func WithMaxAssertionLifetime(d time.Duration) Option {
	return func(s *Server) { s.maxAssertionLife = d }
}

// WithIssuerClient sets the client with which the fake fetches issuers'
// discovery documents and keys; the default has a 10 s timeout.
func WithIssuerClient(c *http.Client) Option { return func(s *Server) { s.issuerClient = c } }

type appKey struct{ tenant, client string }

// Server is a fake Entra ID token service on 127.0.0.1 over TLS.
type Server struct {
	srv          *httptest.Server
	now          func() time.Time
	lifetime     time.Duration
	issuerClient *http.Client
	// maxAssertionLife bounds exp-nbf of client assertions; 0 none.
	maxAssertionLife time.Duration
	signer           jose.Signer
	closed           chan struct{}
	once             sync.Once

	mu      sync.Mutex
	tenants map[string]bool
	apps    map[appKey][]FederatedCredential
	refuse  int // AADSTS number; 0 none
	calls   faulttest.Calls[Call]
	// tokenFaults and metaFaults are the token and metadata endpoints' faults.
	tokenFaults, metaFaults faulttest.Faults

	keysMu sync.Mutex
	keys   map[string]jose.JSONWebKeySet // by issuer
}

var (
	keyOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

const tokenKeyID = "entratest-1"

// New starts a fake Entra ID on 127.0.0.1 over TLS, closed when the test
// ends.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	keyOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: rsaKey},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", tokenKeyID))
	if err != nil {
		t.Fatalf("entratest: %v", err)
	}
	s := &Server{
		now:          time.Now,
		lifetime:     DefaultTokenLifetime,
		issuerClient: &http.Client{Timeout: 10 * time.Second},
		signer:       signer,
		closed:       make(chan struct{}),
		tenants:      map[string]bool{},
		apps:         map[appKey][]FederatedCredential{},
		keys:         map[string]jose.JSONWebKeySet{},
	}
	for _, o := range opts {
		o(s)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", s.metadata)
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", s.token)
	mux.HandleFunc("GET /{tenant}/discovery/v2.0/keys", s.jwks)
	mux.HandleFunc("/", s.notFound)
	s.srv = httptest.NewTLSServer(mux)
	t.Cleanup(func() {
		s.once.Do(func() { close(s.closed) }) // release hung requests: Close waits for them
		s.srv.Close()
	})
	return s
}

// URL is the fake's base URL, https://127.0.0.1:port: the authority host
// (AZURE_AUTHORITY_HOST).
func (s *Server) URL() string { return s.srv.URL }

// Client returns an HTTP client that trusts the fake's certificate.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// CertPEM is the fake's TLS certificate, PEM-encoded.
func (s *Server) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
}

// WriteCertFile writes CertPEM to a file in a test folder and returns its
// path, for SSL_CERT_FILE of a child process (which then trusts only that
// certificate, unless SSL_CERT_DIR adds others).
func (s *Server) WriteCertFile(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "entratest.pem")
	if err := os.WriteFile(path, s.CertPEM(), 0o644); err != nil {
		t.Fatalf("entratest: write certificate: %v", err)
	}
	return path
}

// AddFederatedCredential registers fc on the application clientID of
// tenant, creating both if needed. Tenant and client id compare
// case-insensitively, as GUIDs do in Entra. Like Entra, it refuses (here:
// panics on) a credential ValidateFederatedCredential refuses, a second
// credential with the same issuer and subject, and a 21st credential.
func (s *Server) AddFederatedCredential(tenant, clientID string, fc FederatedCredential) {
	if err := ValidateFederatedCredential(fc); err != nil {
		panic(err.Error())
	}
	if len(fc.Audiences) == 0 {
		fc.Audiences = []string{DefaultAudience}
	} else {
		fc.Audiences = append([]string(nil), fc.Audiences...)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := appKey{strings.ToLower(tenant), strings.ToLower(clientID)}
	if len(s.apps[k]) >= MaxFederatedCredentials {
		panic(fmt.Sprintf("entratest: an application holds at most %d federated identity credentials", MaxFederatedCredentials))
	}
	for _, have := range s.apps[k] {
		if have.Issuer == fc.Issuer && have.Subject == fc.Subject {
			panic("entratest: issuer and subject combination already exists for this application")
		}
	}
	s.tenants[k.tenant] = true
	s.apps[k] = append(s.apps[k], fc)
}

// Refuse makes every later well-formed token request fail with code
// ("AADSTS70021" or "70021"), with Entra's error and status for that code,
// until Reset or Refuse(""). It panics on a code that is not AADSTS digits.
func (s *Server) Refuse(code string) {
	n := 0
	if code != "" {
		var ok bool
		if n, ok = parseCode(code); !ok {
			panic("entratest: Refuse needs an AADSTS code, got " + code)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuse = n
}

// Fail makes the next n token requests fail with status: 503 and 504 answer
// temporarily_unavailable (AADSTS90033), 429 the same with Retry-After: 1,
// any other server_error (AADSTS50000).
func (s *Server) Fail(n, status int) { s.tokenFaults.Fail(n, status) }

// Drop makes the next n token requests be read in full and then their
// connections closed without an answer, as a network that loses the
// response after Entra got the request. Such calls are recorded with
// Status 0 and Error "dropped".
func (s *Server) Drop(n int) { s.tokenFaults.Drop(n) }

// Hang makes every later token request, until Reset, go unanswered until
// the test ends, whether or not its client still waits.
func (s *Server) Hang() { s.tokenFaults.Hang() }

// FailMetadata makes the next n metadata requests fail as Fail does.
func (s *Server) FailMetadata(n, status int) { s.metaFaults.Fail(n, status) }

// HangMetadata makes every later metadata request hang, until Reset.
func (s *Server) HangMetadata() { s.metaFaults.Hang() }

// Reset clears every control and forgets the calls and cached issuer keys;
// registered credentials stay.
func (s *Server) Reset() {
	s.mu.Lock()
	s.refuse = 0
	s.calls.Reset()
	s.mu.Unlock()
	s.tokenFaults.Reset()
	s.metaFaults.Reset()
	s.keysMu.Lock()
	s.keys = map[string]jose.JSONWebKeySet{}
	s.keysMu.Unlock()
}

// Calls returns a copy of the calls received so far, in the order of their
// answers.
func (s *Server) Calls() []Call {
	return s.calls.All(func(c Call) Call {
		c.Assertion = maps.Clone(c.Assertion)
		return c
	})
}

// TokenCalls returns the calls to the token endpoint.
func (s *Server) TokenCalls() []Call {
	var out []Call
	for _, c := range s.Calls() {
		if c.Endpoint == EndpointToken {
			out = append(out, c)
		}
	}
	return out
}

// JWKS is the key set that verifies the access tokens the fake issues.
func (s *Server) JWKS() jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key: &rsaKey.PublicKey, KeyID: tokenKeyID, Algorithm: string(jose.RS256), Use: "sig",
	}}}
}

func (s *Server) knownTenant(tenant string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tenants[strings.ToLower(tenant)]
}

// tenantID is the tenant's GUID: the path's tenant when it is one, else a
// name-based UUID standing for a verified domain's tenant.
func tenantID(tenant string) string {
	t := strings.ToLower(tenant)
	if _, err := uuid.Parse(t); err == nil && len(t) == 36 {
		return t
	}
	return uuid.NewSHA1(uuid.NameSpaceDNS, []byte(t)).String()
}

func (s *Server) metadata(w http.ResponseWriter, r *http.Request) {
	call := Call{Time: s.now(), Method: r.Method, Path: r.URL.Path, Endpoint: EndpointMetadata,
		Tenant: r.PathValue("tenant"), CorrelationID: r.Header.Get("client-request-id")}
	defer s.calls.Record(&call)

	hang, status, _ := s.metaFaults.Next()
	if hang {
		s.wait(r)
		s.writeError(w, r, &call, failure(http.StatusServiceUnavailable))
		return
	}
	if status != 0 {
		s.writeError(w, r, &call, failure(status))
		return
	}
	if !s.knownTenant(call.Tenant) {
		e := refusal(90002, "Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.", call.Tenant)
		e.err = "invalid_tenant"
		s.writeError(w, r, &call, e)
		return
	}
	// The endpoints are on the host the client asked (the fake's own, or a
	// proxy in front of it), as a real authority's are its own.
	base := s.URL() + "/" + tenantID(call.Tenant)
	if r.Host != "" {
		base = "https://" + r.Host + "/" + tenantID(call.Tenant)
	}
	call.Status = http.StatusOK
	writeJSON(w, http.StatusOK, map[string]any{
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"jwks_uri":                              base + "/discovery/v2.0/keys",
		"response_modes_supported":              []string{"query", "fragment", "form_post"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"issuer":                                base + "/v2.0",
		"request_uri_parameter_supported":       false,
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"device_authorization_endpoint":         base + "/oauth2/v2.0/devicecode",
		"end_session_endpoint":                  base + "/oauth2/v2.0/logout",
		"http_logout_supported":                 true,
		"frontchannel_logout_supported":         true,
		"claims_supported":                      []string{"sub", "iss", "aud", "exp", "iat", "nbf", "tid", "ver"},
		"tenant_region_scope":                   "EU",
		"cloud_instance_name":                   "entratest",
		"cloud_graph_host_name":                 "graph.windows.net",
		"msgraph_host":                          "graph.microsoft.com",
	})
}

func (s *Server) jwks(w http.ResponseWriter, r *http.Request) {
	call := Call{Time: s.now(), Method: r.Method, Path: r.URL.Path, Endpoint: EndpointKeys, Tenant: r.PathValue("tenant")}
	defer s.calls.Record(&call)
	call.Status = http.StatusOK
	writeJSON(w, http.StatusOK, s.JWKS())
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	call := Call{Time: s.now(), Method: r.Method, Path: r.URL.Path, Status: http.StatusNotFound}
	defer s.calls.Record(&call)
	http.NotFound(w, r)
}

// wait blocks until the test ends: a hung request never answers while its
// client waits. It does not watch the request's context, which the server
// may cancel while the connection lives (an answer written then would reach
// the client); the connection stays open until the fake closes.
func (s *Server) wait(*http.Request) {
	<-s.closed
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
