package bridge

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
)

// Stages of an exchange, the label of
// oidc_bridge_exchange_stage_duration_seconds and the names of its spans.
const (
	stageVerify  = "verify"  // the token's signature and claims
	stageSelect  = "select"  // reading the request and choosing the mapping
	stageReserve = "reserve" // the ledger's replay and quota check
	stageMint    = "mint"    // the cloud call
	stageRecord  = "record"  // writing the outcome: deny, complete or fail
)

// Kinds of oidc_bridge_throttled_total.
const (
	throttleRateLimit = "rate_limit" // the pre-authentication limit per client
	throttleQuota     = "quota"      // a mapping's quota
	throttleAdminAuth = "admin_auth" // failed admin authentications per client
)

// Ledger writes of the exchange, the op of
// oidc_bridge_audit_write_failures_total.
const (
	opDeny          = "deny"
	opReserve       = "reserve"
	opComplete      = "complete"
	opFail          = "fail"
	opIndeterminate = "indeterminate"
	opRecordAudit   = "record_audit"
)

// durationBuckets suit latencies from 1 ms to 10 s.
var durationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Every label below has a bounded set of values: providers, mapping names
// (from the store, never from the request), outcomes, the contract's
// codes, stages, fixed reasons. Nothing from a token (repository, subject,
// jti) is ever a label.
type metrics struct {
	requests         *prometheus.CounterVec
	duration         *prometheus.HistogramVec
	exchanges        *prometheus.CounterVec
	exchangeDuration *prometheus.HistogramVec
	stageDuration    *prometheus.HistogramVec
	issued           *prometheus.CounterVec
	throttled        *prometheus.CounterVec
	circuitOpen      *prometheus.GaugeVec
	invalidRequests  *prometheus.CounterVec
	verifyFailures   *prometheus.CounterVec
	replays          prometheus.Counter
	auditFailures    *prometheus.CounterVec
	unrecorded       prometheus.Counter
}

func newMetrics(reg *prometheus.Registry, providers []string) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oidc_bridge_http_requests_total",
			Help: "HTTP requests by route template, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "oidc_bridge_http_request_duration_seconds",
			Help:    "HTTP request latency by route template and method.",
			Buckets: durationBuckets,
		}, []string{"route", "method"}),
		exchanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oidc_bridge_exchanges_total",
			Help: "Exchanges by provider, mapping (none before one is selected), outcome (issued, denied, failed, rejected: token not verified) and error code (ok when issued).",
		}, []string{"provider", "mapping", "outcome", "code"}),
		exchangeDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "oidc_bridge_exchange_duration_seconds",
			Help:    "Latency of whole exchanges, by provider and outcome.",
			Buckets: durationBuckets,
		}, []string{"provider", "outcome"}),
		stageDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "oidc_bridge_exchange_stage_duration_seconds",
			Help:    "Latency of the exchange's stages: verify, select (request and mapping), reserve (replay and quota check), mint (cloud call), record (writing the denial or outcome).",
			Buckets: durationBuckets,
		}, []string{"stage"}),
		issued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oidc_bridge_credentials_issued_total",
			Help: "Credentials issued to clients, by provider.",
		}, []string{"provider"}),
		circuitOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "oidc_bridge_provider_circuit_open",
			Help: "1 while a provider's circuit breaker is open: its cloud kept failing and mints fail fast (CircuitOpen).",
		}, []string{"provider"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oidc_bridge_throttled_total",
			Help: "Requests refused with 429, by kind: rate_limit (exchanges per client), quota (a mapping's quota), admin_auth (failed admin authentications per client).",
		}, []string{"kind"}),
		invalidRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oidc_bridge_invalid_requests_total",
			Help: "Exchange and token-exchange requests refused as invalid_request, by the field at fault (body: the body as a whole; unknown_field: a field the API does not have).",
		}, []string{"reason"}),
		verifyFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oidc_bridge_token_verification_failures_total",
			Help: "Tokens that did not verify, by reason.",
		}, []string{"reason"}),
		replays: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "oidc_bridge_replays_total",
			Help: "Exchanges refused because the token was already exchanged for the mapping.",
		}),
		auditFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oidc_bridge_audit_write_failures_total",
			Help: "Ledger writes of the exchange that failed, by operation (deny, reserve, complete, fail, record_audit).",
		}, []string{"op"}),
		unrecorded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "oidc_bridge_unrecorded_credentials_total",
			Help: "Credentials minted whose issuance could not be recorded; they were withheld from the client and are logged with their id.",
		}),
	}
	// Known label values start at zero, so that rates and alerts see them
	// before the first event.
	for _, k := range []string{throttleRateLimit, throttleQuota, throttleAdminAuth} {
		m.throttled.WithLabelValues(k)
	}
	for _, op := range []string{opDeny, opReserve, opComplete, opFail, opIndeterminate, opRecordAudit} {
		m.auditFailures.WithLabelValues(op)
	}
	for _, p := range providers {
		m.issued.WithLabelValues(p)
	}
	reg.MustRegister(m.requests, m.duration, m.exchanges, m.exchangeDuration, m.stageDuration, m.issued,
		m.throttled, m.circuitOpen, m.invalidRequests, m.verifyFailures, m.replays, m.auditFailures, m.unrecorded,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// middleware counts requests by route template (never the raw path, so
// that names in URLs cannot blow up the label space).
func (m *metrics) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		method := c.Request().Method
		m.requests.WithLabelValues(route, method, strconv.Itoa(c.Response().Status)).Inc()
		m.duration.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
		return err
	}
}

// exchangeResult is what the metrics learn of one finished exchange.
type exchangeResult struct {
	provider, mapping, outcome string
	// code is the contract's error code, or "ok".
	code string
	// field is the request field at fault, for invalid_request.
	field   string
	elapsed time.Duration
}

func (m *metrics) observeExchange(r exchangeResult) {
	provider, mapping := orNone(r.provider), orNone(r.mapping)
	m.exchanges.WithLabelValues(provider, mapping, r.outcome, r.code).Inc()
	m.exchangeDuration.WithLabelValues(provider, r.outcome).Observe(r.elapsed.Seconds())
	switch r.code {
	case "ok":
		m.issued.WithLabelValues(provider).Inc()
	case api.CodeRateLimited:
		m.throttled.WithLabelValues(throttleRateLimit).Inc()
	case api.CodeQuotaExceeded:
		m.throttled.WithLabelValues(throttleQuota).Inc()
	case api.CodeTokenReplayed:
		m.replays.Inc()
	case api.CodeInvalidRequest:
		m.invalidRequest(r.field)
	}
}

// invalidRequest counts an invalid_request of the exchange endpoints.
func (m *metrics) invalidRequest(field string) {
	m.invalidRequests.WithLabelValues(invalidReason(field)).Inc()
}

// requestFields are the fields of the exchange endpoints' requests: the
// values of oidc_bridge_invalid_requests_total's reason besides "body" and
// "unknown_field". A client's unknown field names never become labels.
var requestFields = map[string]bool{
	"mapping": true, "provider": true, "duration_seconds": true, "session_policy": true, "scopes": true, // POST /v1/exchange
	"grant_type": true, "subject_token": true, "subject_token_type": true, "actor_token": true, // POST /oauth2/token
	"audience": true, "resource": true, "requested_token_type": true,
}

func invalidReason(field string) string {
	switch {
	case field == "":
		return "body"
	case requestFields[field]:
		return field
	}
	return "unknown_field"
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// badTokenRequest answers a POST /oauth2/token refused before the exchange
// starts (its form or grant is wrong), counting it by the field at fault.
func (s *Server) badTokenRequest(c echo.Context, field, code, description string) error {
	s.metrics.invalidRequest(field)
	return oauthError(c, http.StatusBadRequest, code, description, api.Error{})
}
