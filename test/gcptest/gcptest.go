package gcptest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/oidc-bridge/oidc-bridge/test/faulttest"
)

// Scopes the fake knows by name.
const (
	CloudPlatformScope = "https://www.googleapis.com/auth/cloud-platform"
	IAMScope           = "https://www.googleapis.com/auth/iam"
)

// generateAccessToken's lifetime limits: DefaultMaxLifetime for every
// account, MaxExtendedLifetime for those that an organisation policy
// enforcing LifetimeConstraint lists (WithLifetimeExtension). Source: the
// lifetime field of projects.serviceAccounts.generateAccessToken,
// https://cloud.google.com/iam/docs/reference/credentials/rest/v1/projects.serviceAccounts/generateAccessToken.
const (
	DefaultMaxLifetime  = time.Hour
	MaxExtendedLifetime = 12 * time.Hour
	LifetimeConstraint  = "constraints/iam.allowServiceAccountCredentialLifetimeExtension"
)

// TokenTTL is the lifetime of the tokens the OAuth and STS endpoints issue.
const TokenTTL = time.Hour

// maxBody bounds a request body.
const maxBody = 1 << 20

// Endpoint names one of the fake's endpoints, for controls and calls.
type Endpoint string

// The fake's endpoints.
const (
	// IAMCredentials is generateAccessToken.
	IAMCredentials Endpoint = "iamcredentials"
	// OAuth is the service-account token endpoint, /token.
	OAuth Endpoint = "oauth"
	// STS is the Security Token Service, /v1/token.
	STS Endpoint = "sts"
)

// Option configures a Handler or Server.
type Option func(*Handler)

// WithClock makes the fake read the time from now: token expiry, assertion
// and subject token times follow it.
func WithClock(now func() time.Time) Option {
	return func(h *Handler) { h.now = now }
}

// WithLifetimeExtension lists service accounts (by e-mail or unique id, as
// requests name them) in the org policy LifetimeConstraint: their tokens may
// live up to MaxExtendedLifetime instead of DefaultMaxLifetime.
func WithLifetimeExtension(serviceAccounts ...string) Option {
	return func(h *Handler) {
		for _, sa := range serviceAccounts {
			h.extended[sa] = true
		}
	}
}

// WithHTTPClient sets the client STS fetches issuers' discovery documents
// and JWKS with (default: a client with a 10 s timeout).
func WithHTTPClient(c *http.Client) Option {
	return func(h *Handler) { h.client = c }
}

// Call is one request the fake received, whatever its outcome. It never
// holds a bearer token, assertion or subject token.
type Call struct {
	Endpoint Endpoint
	Time     time.Time
	Method   string
	Path     string
	// Host is the request's Host header: the endpoint's host name the
	// client resolved (iamcredentials.googleapis.com, sts.s3nsapis.fr)
	// when a test maps such hosts to the fake, else the fake's address.
	Host string
	// Method of IAMCredentials: generateAccessToken or generateIdToken.
	IAMMethod string

	// Caller is who the bearer token of a generateAccessToken call belongs
	// to: a service account's e-mail or a principal:// subject of a
	// workload identity pool; empty when the token was missing or unknown.
	// CallerVia is the endpoint that issued that token.
	Caller    string
	CallerVia Endpoint
	// ServiceAccount, Delegates and Lifetime are generateAccessToken's
	// (Lifetime 0 when absent); Scopes are its scope, the OAuth
	// assertion's scope or STS's scope parameter.
	ServiceAccount string
	Delegates      []string
	Lifetime       time.Duration
	Scopes         []string

	// Audience of a generateIdToken call (STS's audience is Audience
	// below) and its includeEmail.
	IDTokenAudience string
	IncludeEmail    bool

	// ClientEmail is the service account of an OAuth assertion.
	ClientEmail string

	// STS parameters, and what the verified subject token yielded.
	GrantType          string
	Audience           string
	SubjectTokenType   string
	RequestedTokenType string
	// SubjectClaims are the claims of the subject token, set only once
	// its signature verified.
	SubjectClaims map[string]any
	// Principal is the principal:// subject STS issued a token for.
	Principal  string
	Attributes map[string]string

	// Status and ErrorCode are what the fake answered (ErrorCode empty on
	// success: Google's status such as PERMISSION_DENIED for
	// IAMCredentials, the OAuth error such as invalid_grant otherwise).
	Status    int
	ErrorCode string
	// ErrorMessage is the message of the error answer.
	ErrorMessage string
	// IssuedExpiry is the expiry of the token issued, if any;
	// IssuedToken the access token generateAccessToken issued.
	IssuedExpiry time.Time
	IssuedToken  string
}

func (c Call) clone() Call {
	c.Delegates = slices.Clone(c.Delegates)
	c.Scopes = slices.Clone(c.Scopes)
	c.SubjectClaims = maps.Clone(c.SubjectClaims)
	c.Attributes = maps.Clone(c.Attributes)
	return c
}

// Token describes a token the fake issued, as a tokeninfo endpoint would.
type Token struct {
	// Via is the endpoint that issued it.
	Via Endpoint
	// Principal is whom it authenticates: a service account's e-mail
	// (OAuth, IAMCredentials) or a principal:// subject (STS).
	Principal string
	// Attributes are a federated token's mapped attributes.
	Attributes map[string]string
	// Pool is a federated token's workload identity pool, as
	// projects/N/locations/global/workloadIdentityPools/POOL.
	Pool   string
	Scopes []string
	Expiry time.Time
}

// control is one endpoint's failure injection.
type control struct {
	refuse string
	faults faulttest.Faults // Fail and Drop; Hang is hang's
	hang   chan struct{}    // closed by Reset; nil when not hanging
}

// Handler is the fake's http.Handler, usable without Server (e.g. behind a
// TLS listener). Controls apply to requests that arrive after they are set.
type Handler struct {
	now       func() time.Time
	extended  map[string]bool // accounts the lifetime org policy lists
	client    *http.Client
	closed    chan struct{}
	closeOnce sync.Once
	mux       *http.ServeMux
	calls     faulttest.Calls[Call]

	mu        sync.Mutex
	baseURL   string // for the aud of assertions; set by Server
	controls  map[Endpoint]*control
	tokens    map[string]Token
	keys      map[string]ServiceAccountKey // by private key id
	providers map[string]WorkloadIdentityProvider
	allowed   map[string]map[string]bool // member → service accounts
	idKey     *rsa.PrivateKey            // signs generateIdToken's tokens, made on first use
}

// NewHandler returns a Handler with no keys, providers or grants.
func NewHandler(opts ...Option) *Handler {
	h := &Handler{
		now:       time.Now,
		extended:  map[string]bool{},
		client:    &http.Client{Timeout: 10 * time.Second},
		closed:    make(chan struct{}),
		controls:  map[Endpoint]*control{},
		tokens:    map[string]Token{},
		keys:      map[string]ServiceAccountKey{},
		providers: map[string]WorkloadIdentityProvider{},
		allowed:   map[string]map[string]bool{},
	}
	for _, o := range opts {
		o(h)
	}
	h.mux = http.NewServeMux()
	h.mux.HandleFunc("POST /v1/projects/{project}/serviceAccounts/{name}", h.serveIAM)
	h.mux.HandleFunc("POST /token", h.serveOAuth)
	h.mux.HandleFunc("POST /v1/token", h.serveSTS)
	h.mux.HandleFunc("GET /oauth2/v3/certs", h.serveIDTokenKeys)
	return h
}

// ServeHTTP routes to the three endpoints; anything else is 404.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// SetBaseURL tells a Handler served without Server its own base URL, which
// service-account assertions must name as their audience (BaseURL + "/token").
func (h *Handler) SetBaseURL(u string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.baseURL = u
}

func (h *Handler) tokenURL() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.baseURL + "/token"
}

// Server is a Handler served on 127.0.0.1 by httptest.
type Server struct {
	*Handler
	srv *httptest.Server
}

// New starts the fake on 127.0.0.1, closed when the test ends.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	h := NewHandler(opts...)
	s := &Server{Handler: h, srv: httptest.NewServer(h)}
	h.SetBaseURL(s.srv.URL)
	t.Cleanup(func() {
		h.Close() // release hung requests first: srv.Close waits for them
		s.srv.Close()
	})
	return s
}

// URL is the server's base URL.
func (s *Server) URL() string { return s.srv.URL }

// IAMCredentialsEndpoint is the value for BRIDGE_GCP_IAMCREDENTIALS_ENDPOINT.
func (s *Server) IAMCredentialsEndpoint() string { return s.srv.URL }

// STSEndpoint is the value for BRIDGE_GCP_STS_ENDPOINT.
func (s *Server) STSEndpoint() string { return s.srv.URL }

// TokenURL is the token_uri of the key files the fake writes.
func (s *Server) TokenURL() string { return s.srv.URL + "/token" }

// Close releases hung requests; later requests are no longer held. Server
// calls it when the test ends.
func (h *Handler) Close() { h.closeOnce.Do(func() { close(h.closed) }) }

func (h *Handler) control(ep Endpoint) *control {
	c := h.controls[ep]
	if c == nil {
		c = &control{}
		h.controls[ep] = c
	}
	return c
}

// Refuse makes every later request to ep that passes the fake's checks of
// who is calling fail with code, until Reset or Refuse(ep, ""): for
// IAMCredentials a Google status (PERMISSION_DENIED, NOT_FOUND,
// INVALID_ARGUMENT, UNAUTHENTICATED, FAILED_PRECONDITION, ...) answered with
// its HTTP status; for OAuth and STS an OAuth error (invalid_grant,
// invalid_request, unauthorized_client, invalid_target, ...) answered 400
// (401 for invalid_client, unauthorized_client).
func (h *Handler) Refuse(ep Endpoint, code string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.control(ep).refuse = code
}

// Fail makes the next n requests to ep fail with the HTTP status (5xx or
// 429), in that endpoint's error shape (UNAVAILABLE, INTERNAL,
// RESOURCE_EXHAUSTED ... for IAMCredentials; temporarily_unavailable or
// server_error otherwise).
func (h *Handler) Fail(ep Endpoint, n, status int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.control(ep).faults.Fail(n, status)
}

// Drop makes the next n requests to ep be read in full and then their
// connections closed without an answer, as a network that loses the
// response after Google got the request. Such calls are recorded with
// ErrorCode "dropped" and Status 0.
func (h *Handler) Drop(ep Endpoint, n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.control(ep).faults.Drop(n)
}

// Hang makes every later request to ep block until its client goes away,
// Reset or Close.
func (h *Handler) Hang(ep Endpoint) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.control(ep)
	if c.hang == nil {
		c.hang = make(chan struct{})
	}
}

// Reset clears every control of every endpoint (releasing hung requests,
// which then proceed) and forgets the calls. Keys, providers, grants and
// issued tokens stay.
func (h *Handler) Reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.controls {
		if c.hang != nil {
			close(c.hang)
		}
	}
	h.controls = map[Endpoint]*control{}
	h.calls.Reset()
}

// Calls returns a copy of the calls received so far, in the order of their
// answers.
func (h *Handler) Calls() []Call {
	return h.calls.All(Call.clone)
}

// CallsTo returns the calls to one endpoint.
func (h *Handler) CallsTo(ep Endpoint) []Call {
	var out []Call
	for _, c := range h.Calls() {
		if c.Endpoint == ep {
			out = append(out, c)
		}
	}
	return out
}

// Lookup describes a token the fake issued, expired or not.
func (h *Handler) Lookup(token string) (Token, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.tokens[token]
	t.Attributes = maps.Clone(t.Attributes)
	t.Scopes = slices.Clone(t.Scopes)
	return t, ok
}

// Allow lets member obtain tokens for each service account (by e-mail or
// unique id, as requests name them), like roles/iam.serviceAccountTokenCreator
// or roles/iam.workloadIdentityUser on it. member is a service account's
// e-mail, principal://iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/POOL/subject/SUBJECT,
// principalSet://iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/POOL/attribute.NAME/VALUE
// or principalSet://iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/POOL/*.
func (h *Handler) Allow(member string, serviceAccounts ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.allowed[member]
	if m == nil {
		m = map[string]bool{}
		h.allowed[member] = m
	}
	for _, sa := range serviceAccounts {
		m[sa] = true
	}
}

// issue records a new token and returns it.
func (h *Handler) issue(prefix string, t Token) string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	tok := prefix + base64.RawURLEncoding.EncodeToString(b[:])
	h.mu.Lock()
	defer h.mu.Unlock()
	h.tokens[tok] = t
	return tok
}

// begin applies ep's Hang and Fail. It reports false, having answered,
// when the request must stop here; a hung request whose client went away
// gets no answer at all.
func (h *Handler) begin(w http.ResponseWriter, r *http.Request, call *Call, shape errorShape) bool {
	h.mu.Lock()
	c := h.control(call.Endpoint)
	hang := c.hang
	var failStatus int
	var drop bool
	if hang == nil {
		_, failStatus, drop = c.faults.Next()
	}
	h.mu.Unlock()
	if drop {
		_, _ = io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, maxBody))
		call.Status, call.ErrorCode = 0, "dropped"
		h.calls.RecordEarly(call)
		faulttest.DropConnection(w)
		return false
	}
	if hang != nil {
		select {
		case <-r.Context().Done():
			call.Status, call.ErrorCode = 0, "hung"
			return false
		case <-h.closed:
			call.Status, call.ErrorCode = 0, "hung"
			return false
		case <-hang:
		}
	}
	if failStatus != 0 {
		shape.fail(w, call, failStatus)
		return false
	}
	return true
}

// refusal is ep's Refuse code, if any.
func (h *Handler) refusal(ep Endpoint) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.control(ep).refuse
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
