package bridge

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/oidc-bridge/oidc-bridge/internal/admintoken"
	"github.com/oidc-bridge/oidc-bridge/internal/database"
	"github.com/oidc-bridge/oidc-bridge/internal/telemetry"
	"github.com/oidc-bridge/oidc-bridge/ledger"
	"github.com/oidc-bridge/oidc-bridge/mapping"
	"github.com/oidc-bridge/oidc-bridge/providers"
)

// Authenticator checks admin bearer tokens and returns the token's
// principal: its name and scopes. An invalid token is
// admintoken.ErrUnauthorized.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (admintoken.Principal, error)
}

// UsageReader reports a mapping's quota counts.
type UsageReader interface {
	Usage(ctx context.Context, mappingID int64, name string, perHour, perJob int) (ledger.Usage, error)
}

// Options are the Server's dependencies and settings.
type Options struct {
	Store  mapping.Store
	Usage  UsageReader
	Admins Authenticator
	// Verifier, Ledger and Providers serve POST /v1/exchange; Providers
	// maps a provider name (aws, gcp, azure, jwt) to its implementation.
	Verifier  Verifier
	Ledger    Ledger
	Providers map[string]providers.Provider
	// GitHubApps stores the github provider's Apps (GET|POST|PUT|DELETE
	// /v1/admin/github-apps); nil answers those routes 503.
	GitHubApps GitHubApps
	// Keys publishes the bridge's signing keys; with PublicURL (the issuer
	// URL, no trailing slash) it serves the discovery document and JWKS.
	// Nil: the bridge is not an issuer and those routes answer 404.
	Keys      KeySource
	PublicURL string
	// TrustedProxies are the load balancers whose X-Forwarded-For is read
	// (right to left) for the client's address; empty: the socket peer is
	// the client. The address keys the rate limits and the audit client_ip.
	TrustedProxies []netip.Prefix
	// BreakerFailures consecutive failures of a cloud open its circuit for
	// BreakerCooldown (defaults 5 and 30 s): mints then fail fast.
	BreakerFailures int
	BreakerCooldown time.Duration
	// MintTimeout bounds the cloud call of an exchange (default 20 s).
	MintTimeout time.Duration
	// RateLimit is the pre-authentication limit on exchanges per client
	// address, in requests per second with RateBurst; 0 disables it.
	RateLimit float64
	RateBurst int
	// IssuerRateLimit limits the exchanges of verified tokens per issuer,
	// in requests per second with IssuerRateBurst (0 disables it): one
	// issuer's flood cannot take every replica's database capacity. It
	// applies after verification, so forged tokens cannot spend it.
	IssuerRateLimit float64
	IssuerRateBurst int
	// IssuerOwnerRateLimit limits the exchanges of verified tokens per
	// issuer and repository owner (ownerKey), in requests per second with
	// IssuerOwnerRateBurst (0 disables it), so that one owner's flood
	// cannot spend the whole issuer's budget and starve the others. It is
	// checked before the issuer's, which stays the ceiling of them all.
	IssuerOwnerRateLimit float64
	IssuerOwnerRateBurst int
	// MaxTrackedClients bounds the table of each limiter (per client
	// address, per issuer owner, failed admin authentications); default
	// 100,000. Tests lower it.
	MaxTrackedClients int
	// Ready reports whether the service can serve: the database answers,
	// accepts writes and its schema is current. It backs GET /readyz.
	Ready func(ctx context.Context) error
	// AllowInsecureIssuers permits http:// issuer URLs on loopback hosts.
	// For tests and demos only: never in production.
	AllowInsecureIssuers bool
	// AWSRoleChaining says the bridge's own AWS credentials are a role
	// session (BRIDGE_AWS_ROLE_CHAINING): the admin API then refuses aws
	// assume_role mappings longer than AWS's one hour for chained sessions
	// (mapping.ValidateOptions).
	AWSRoleChaining bool
	Logger          *slog.Logger
	// Registry receives the server's metrics and serves GET /metrics.
	Registry *prometheus.Registry
	// SeparateMetrics serves GET /metrics only through MetricsHandler (a
	// listener of its own): the service's handler answers 404 for it.
	SeparateMetrics bool
	// TracerProvider, when set, traces every request: a server span that
	// continues the client's W3C traceparent, a span per exchange stage
	// and one per cloud call. The trace id then joins the request's log
	// lines (trace_id) and error bodies. Nil: no tracing, and no trace ids.
	TracerProvider trace.TracerProvider
}

// Server is the HTTP service.
type Server struct {
	opts    Options
	log     *slog.Logger
	echo    *echo.Echo
	metrics *metrics
	limiter *clientLimiter
	// issuerLimiter limits verified exchanges per issuer, ownerLimiter
	// per issuer and repository owner.
	issuerLimiter *clientLimiter
	ownerLimiter  *clientLimiter
	breakers      breakers
	// adminFailures limits failed admin authentications per client, so
	// that admin tokens cannot be guessed at speed.
	adminFailures *clientLimiter
	// tracer makes the exchange's spans; a no-op one without
	// Options.TracerProvider.
	tracer  trace.Tracer
	tracing bool
}

// Body and time limits of every request.
const (
	maxBodyBytes      = 64 << 10
	maxHeaderBytes    = 32 << 10
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 60 * time.Second
	idleTimeout       = 120 * time.Second
	readyTimeout      = 2 * time.Second
	maxLimitedClients = 100_000
	// A client may fail admin authentication adminFailureBurst times in a
	// row, then once per 1/adminFailureRate seconds.
	adminFailureRate  = 0.2
	adminFailureBurst = 10
)

// New builds the Server and its routes.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	if opts.MintTimeout <= 0 {
		opts.MintTimeout = defaultMintTimeout
	}
	if opts.BreakerFailures <= 0 {
		opts.BreakerFailures = defaultBreakerFailures
	}
	if opts.BreakerCooldown <= 0 {
		opts.BreakerCooldown = defaultBreakerCooldown
	}
	if opts.MaxTrackedClients <= 0 {
		opts.MaxTrackedClients = maxLimitedClients
	}
	s := &Server{opts: opts, log: opts.Logger, echo: echo.New(),
		metrics: newMetrics(opts.Registry, slices.Sorted(maps.Keys(opts.Providers))), tracer: noop.NewTracerProvider().Tracer("")}
	s.breakers = newBreakers(slices.Sorted(maps.Keys(opts.Providers)), opts.BreakerFailures, opts.BreakerCooldown, s.metrics.circuitOpen)
	if opts.TracerProvider != nil {
		s.tracing = true
		s.tracer = opts.TracerProvider.Tracer(tracerName)
		s.log = telemetry.WithTraceID(opts.Logger)
	}
	if opts.RateLimit > 0 {
		s.limiter = newClientLimiter(opts.RateLimit, max(opts.RateBurst, 1), opts.MaxTrackedClients)
	}
	if opts.IssuerRateLimit > 0 {
		s.issuerLimiter = newClientLimiter(opts.IssuerRateLimit, max(opts.IssuerRateBurst, 1), opts.MaxTrackedClients)
	}
	if opts.IssuerOwnerRateLimit > 0 {
		s.ownerLimiter = newClientLimiter(opts.IssuerOwnerRateLimit, max(opts.IssuerOwnerRateBurst, 1), opts.MaxTrackedClients)
	}
	s.adminFailures = newClientLimiter(adminFailureRate, adminFailureBurst, opts.MaxTrackedClients)
	e := s.echo
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.errorHandler
	e.IPExtractor = clientIPExtractor(opts.TrustedProxies)

	e.Use(
		dropInvalidRequestID,
		middleware.RequestIDWithConfig(middleware.RequestIDConfig{}),
	)
	if s.tracing {
		e.Use(s.traceRequests)
	}
	e.Use(
		s.metrics.middleware,
		s.requestLog,
		middleware.RecoverWithConfig(middleware.RecoverConfig{DisableStackAll: true, LogErrorFunc: s.logPanic}),
		middleware.BodyLimit(strconv.Itoa(maxBodyBytes/1024)+"K"),
	)

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	if !opts.SeparateMetrics {
		e.GET("/metrics", echo.WrapHandler(s.metricsHandler()))
	}

	e.POST("/v1/exchange", s.exchange)
	e.POST("/oauth2/token", s.tokenExchange)
	e.POST("/v1/credentials/revoke", s.revokeCredential)
	if opts.Keys != nil {
		e.GET(discoveryPath, s.discovery)
		e.GET(jwksPath, s.jwks)
	}

	admin := e.Group("/v1/admin", s.requireAdmin)
	admin.GET("/issuers", s.listIssuers)
	admin.POST("/issuers", s.createIssuer)
	admin.GET("/issuers/:name", s.getIssuer)
	admin.PUT("/issuers/:name", s.updateIssuer)
	admin.DELETE("/issuers/:name", s.deleteIssuer)
	admin.GET("/mappings", s.listMappings)
	admin.POST("/mappings", s.createMapping)
	admin.GET("/mappings/:name", s.getMapping)
	admin.PUT("/mappings/:name", s.updateMapping)
	admin.DELETE("/mappings/:name", s.deleteMapping)
	admin.GET("/mappings/:name/usage", s.mappingUsage)
	admin.POST("/explain", s.explain)
	admin.POST("/issuances/revoke", s.revokeIssuances)
	admin.GET("/github-apps", s.listGitHubApps)
	admin.POST("/github-apps", s.createGitHubApp)
	admin.GET("/github-apps/:name", s.getGitHubApp)
	admin.PUT("/github-apps/:name", s.updateGitHubApp)
	admin.DELETE("/github-apps/:name", s.deleteGitHubApp)
	return s
}

// ConsolePath is where MountConsole serves the web console.
const ConsolePath = "/console"

// MountConsole serves h (the read-only web console, package console) under
// ConsolePath, on the service's listener beside the admin API it mirrors,
// behind the same request ids, logs, metrics and body limit. h authenticates
// its own requests (a session opened with an admin token of the read
// scope). It sees the client's address as the bridge resolves it
// (Options.TrustedProxies) in RemoteAddr. Call it before serving.
func (s *Server) MountConsole(h http.Handler) {
	serve := func(c echo.Context) error {
		r := c.Request().Clone(c.Request().Context())
		r.RemoteAddr = net.JoinHostPort(c.RealIP(), "0")
		h.ServeHTTP(c.Response(), r)
		return nil
	}
	s.echo.Any(ConsolePath, serve)
	s.echo.Any(ConsolePath+"/*", serve)
}

// clientIPExtractor trusts X-Forwarded-For only from the given proxies,
// walking it right to left to the first untrusted address; without proxies
// the socket peer is the client. Loopback, link-local and private ranges
// are not trusted unless listed.
func clientIPExtractor(proxies []netip.Prefix) echo.IPExtractor {
	if len(proxies) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range proxies {
		opts = append(opts, echo.TrustIPRange(&net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

func (s *Server) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.opts.Registry, promhttp.HandlerOpts{Registry: s.opts.Registry})
}

// MetricsHandler serves GET /metrics alone, for a listener of its own
// (Options.SeparateMetrics); every other path is 404.
func (s *Server) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metricsHandler())
	return mux
}

// Handler returns the server's http.Handler.
func (s *Server) Handler() http.Handler { return s.echo }

// HTTPServer returns an http.Server for the handler with every timeout
// and size limit set (slow clients are cut off, huge headers refused).
func (s *Server) HTTPServer(addr string) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           s.echo,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(c echo.Context) error {
	if s.opts.Ready != nil {
		ctx, cancel := context.WithTimeout(c.Request().Context(), readyTimeout)
		defer cancel()
		if err := s.opts.Ready(ctx); err != nil {
			s.log.Warn("not ready", "err", err)
			return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": readyReason(err)})
		}
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// readyReason says, without internal detail, why the service is not ready.
func readyReason(err error) string {
	if unavailable(err) {
		return "database unavailable"
	}
	if errors.Is(err, database.ErrReadOnly) {
		return "database is read-only (a standby?); point BRIDGE_DATABASE_URL at the primary, e.g. with target_session_attrs=read-write"
	}
	if strings.Contains(err.Error(), "schema") {
		return "database schema is not current; run oidc-bridge migrate"
	}
	return "database check failed"
}

// requireAdmin admits requests carrying a valid admin bearer token that
// holds the request's scope: read for GET and HEAD, write for every other
// method. A valid token without the scope is refused with 403 forbidden and
// does not count as a failed authentication.
func (s *Server) requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		client := clientKey(c.RealIP())
		if blocked, wait := s.adminFailures.blocked(client); blocked {
			s.metrics.throttled.WithLabelValues(throttleAdminAuth).Inc()
			return rateLimited(wait, "too many failed admin authentications from this client; retry later")
		}
		token, ok := bearer(c.Request().Header.Get(echo.HeaderAuthorization))
		var (
			p   admintoken.Principal
			err error = admintoken.ErrUnauthorized
		)
		if ok && s.opts.Admins != nil {
			p, err = s.opts.Admins.Authenticate(c.Request().Context(), token)
		}
		if errors.Is(err, admintoken.ErrUnauthorized) {
			s.adminFailures.allow(client)
		}
		if err != nil {
			return err
		}
		c.Set(adminKey, p)
		if scope := requiredScope(c.Request().Method, c.Path()); !p.Can(scope) {
			return forbidden(scope)
		}
		return next(c)
	}
}

// readOnlyRoutes are the admin routes that take a body (so are not GET)
// yet change nothing: read suffices for them.
var readOnlyRoutes = map[string]bool{
	"/v1/admin/explain": true, // evaluates a token against the mappings
}

// requiredScope is the admin token scope a request of method on route (its
// registered path) needs: read for GET, HEAD and the read-only routes,
// write for everything else.
func requiredScope(method, route string) string {
	if method == http.MethodGet || method == http.MethodHead || readOnlyRoutes[route] {
		return admintoken.ScopeRead
	}
	return admintoken.ScopeWrite
}

// actor is who makes an admin request, for the admin-change history: the
// token's name and the request's id.
func actor(c echo.Context) mapping.Actor {
	p, _ := c.Get(adminKey).(admintoken.Principal)
	return mapping.Actor{Name: p.Name, RequestID: c.Response().Header().Get(echo.HeaderXRequestID)}
}

const adminKey = "admin"

// bearer extracts the token of an "Authorization: Bearer" header.
func bearer(h string) (string, bool) {
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

func (s *Server) requestLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			// Let the error handler write the response so the status is known.
			c.Error(err)
		}
		req, res := c.Request(), c.Response()
		attrs := []any{
			"request_id", res.Header().Get(echo.HeaderXRequestID),
			"method", req.Method, "route", c.Path(), "status", res.Status,
			"duration_ms", float64(time.Since(start).Microseconds()) / 1000,
			"client_ip", c.RealIP(), "bytes_out", res.Size,
		}
		if p, ok := c.Get(adminKey).(admintoken.Principal); ok {
			attrs = append(attrs, "admin", p.Name)
		}
		level := slog.LevelInfo
		if c.Path() == "/healthz" || c.Path() == "/readyz" || c.Path() == "/metrics" {
			level = slog.LevelDebug
		}
		s.log.Log(req.Context(), level, "request", attrs...)
		return nil
	}
}

// maxRequestIDLen bounds a client's X-Request-ID.
const maxRequestIDLen = 128

// dropInvalidRequestID removes an X-Request-ID that does not look like a
// request id (1 to 128 of [A-Za-z0-9._-]), so that the RequestID
// middleware generates one instead: the id lands in logs, the audit's
// admin changes and error bodies, where a client's arbitrary text must
// not.
func dropInvalidRequestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Request().Header
		if id := h.Get(echo.HeaderXRequestID); id != "" && !validRequestID(id) {
			h.Del(echo.HeaderXRequestID)
		}
		return next(c)
	}
}

func validRequestID(id string) bool {
	if len(id) == 0 || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch b := id[i]; {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9', b == '.', b == '_', b == '-':
		default:
			return false
		}
	}
	return true
}

// tracerName is the instrumentation scope of the server's spans.
const tracerName = "github.com/oidc-bridge/oidc-bridge/bridge"

// traceRequests makes the request's server span, continuing the client's
// W3C traceparent, and puts it in the request's context for the handlers,
// the exchange's stage spans and the log lines.
func (s *Server) traceRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		ctx := propagation.TraceContext{}.Extract(req.Context(), propagation.HeaderCarrier(req.Header))
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		ctx, span := s.tracer.Start(ctx, req.Method+" "+route, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(
				attribute.String("http.request.method", req.Method),
				attribute.String("http.route", route),
				attribute.String("oidc_bridge.request_id", c.Response().Header().Get(echo.HeaderXRequestID)),
			))
		defer span.End()
		c.SetRequest(req.WithContext(ctx))
		err := next(c) // requestLog has had the error handler answer
		status := c.Response().Status
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
		return err
	}
}

// traceID is the request's trace id when tracing is on, else "".
func (s *Server) traceID(c echo.Context) string {
	if !s.tracing {
		return ""
	}
	return telemetry.TraceID(c.Request().Context())
}

func (s *Server) logPanic(c echo.Context, err error, stack []byte) error {
	s.log.ErrorContext(c.Request().Context(), "panic in handler", "request_id", c.Response().Header().Get(echo.HeaderXRequestID),
		"err", err, "stack", string(stack))
	return err
}
