package bridge

import (
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

type metrics struct {
	requests       *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	exchanges      *prometheus.CounterVec
	verifyFailures *prometheus.CounterVec
	unrecorded     prometheus.Counter
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oidc_bridge_http_requests_total",
			Help: "HTTP requests by route template, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "oidc_bridge_http_request_duration_seconds",
			Help:    "HTTP request latency by route template and method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
		exchanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oidc_bridge_exchanges_total",
			Help: "Exchanges by provider, outcome (issued, denied, failed, rejected: token not verified) and error code.",
		}, []string{"provider", "outcome", "code"}),
		verifyFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oidc_bridge_token_verification_failures_total",
			Help: "Tokens that did not verify, by reason.",
		}, []string{"reason"}),
		unrecorded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "oidc_bridge_unrecorded_credentials_total",
			Help: "Credentials minted whose issuance could not be recorded; they were withheld from the client and are logged with their id.",
		}),
	}
	reg.MustRegister(m.requests, m.duration, m.exchanges, m.verifyFailures, m.unrecorded,
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

func (m *metrics) observeExchange(provider, outcome, code string) {
	if provider == "" {
		provider = "none"
	}
	m.exchanges.WithLabelValues(provider, outcome, code).Inc()
}
