package telemetry

import (
	"context"
	"log/slog"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/oidc-bridge/oidc-bridge/identity"
	"github.com/oidc-bridge/oidc-bridge/mapping"
	"github.com/oidc-bridge/oidc-bridge/signing"
)

// NewFetchMetrics registers oidc_bridge_discovery_fetches_total and
// oidc_bridge_jwks_fetches_total, by issuer (its registered name) and
// result (ok, error), and returns the identity.Config.OnFetch that counts
// them.
func NewFetchMetrics(reg prometheus.Registerer) func(identity.Fetch) {
	disc := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "oidc_bridge_discovery_fetches_total",
		Help: "Fetches of registered issuers' discovery documents, by issuer name and result (ok, error).",
	}, []string{"issuer", "result"})
	jwks := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "oidc_bridge_jwks_fetches_total",
		Help: "Fetches of registered issuers' JWKS, by issuer name and result (ok, error).",
	}, []string{"issuer", "result"})
	reg.MustRegister(disc, jwks)
	return func(f identity.Fetch) {
		result := "ok"
		if f.Err != nil {
			result = "error"
		}
		c := jwks
		if f.Kind == identity.FetchDiscovery {
			c = disc
		}
		c.WithLabelValues(f.Issuer, result).Inc()
	}
}

// CatalogMetrics count the catalog cache's reloads, ignored heartbeats and
// coalesced change notifications; its methods are the mapping.CacheOptions
// callbacks of the same names.
type CatalogMetrics struct {
	reloads   *prometheus.CounterVec
	ignored   *prometheus.CounterVec
	coalesced prometheus.Counter
}

// NewCatalogMetrics registers oidc_bridge_catalog_cache_fresh (1 while the
// exchange reads issuers and mappings from memory, 0 while it reads the
// database), oidc_bridge_catalog_reloads_total by result (ok, error),
// oidc_bridge_catalog_heartbeats_ignored_total by reason (forged, unknown,
// late) and oidc_bridge_catalog_notifications_coalesced_total.
func NewCatalogMetrics(reg prometheus.Registerer, fresh func() bool) *CatalogMetrics {
	m := &CatalogMetrics{
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oidc_bridge_catalog_reloads_total",
			Help: "Reloads of the in-memory issuers and mappings after a change or a reconnection, by result (ok, error).",
		}, []string{"result"}),
		ignored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oidc_bridge_catalog_heartbeats_ignored_total",
			Help: "Heartbeats naming this replica on the catalog channel that did not count, by reason: forged (its MAC does not verify: another database login sent it), unknown (a replay, or one whose send failed), late (arrived over 3 s after it was sent).",
		}, []string{"reason"}),
		coalesced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "oidc_bridge_catalog_notifications_coalesced_total",
			Help: "Change notifications on the catalog channel folded into a reload already owed (reloads are at most one a second) rather than reloading themselves.",
		}),
	}
	for _, r := range []string{"ok", "error"} {
		m.reloads.WithLabelValues(r)
	}
	for _, r := range []string{mapping.HeartbeatForged, mapping.HeartbeatUnknown, mapping.HeartbeatLate} {
		m.ignored.WithLabelValues(r)
	}
	gauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "oidc_bridge_catalog_cache_fresh",
		Help: "1 while exchanges read issuers and mappings from memory (proven current), 0 while they read the database.",
	}, func() float64 {
		if fresh() {
			return 1
		}
		return 0
	})
	reg.MustRegister(m.reloads, m.ignored, m.coalesced, gauge)
	return m
}

// Reloaded counts a reload (mapping.CacheOptions.OnReload).
func (m *CatalogMetrics) Reloaded(err error) {
	if err != nil {
		m.reloads.WithLabelValues("error").Inc()
		return
	}
	m.reloads.WithLabelValues("ok").Inc()
}

// HeartbeatIgnored counts an ignored heartbeat
// (mapping.CacheOptions.OnHeartbeatIgnored).
func (m *CatalogMetrics) HeartbeatIgnored(reason string) { m.ignored.WithLabelValues(reason).Inc() }

// Coalesced counts a coalesced change notification
// (mapping.CacheOptions.OnReloadCoalesced).
func (m *CatalogMetrics) Coalesced() { m.coalesced.Inc() }

// signingScrapeTimeout bounds the read of the active keys at a scrape.
const signingScrapeTimeout = 2 * time.Second

// SigningMetrics are oidc_bridge_signing_key_rotations_total{alg}, counted
// by Rotated (signing.Options.OnRotate), and
// oidc_bridge_signing_key_age_seconds{alg}, the age of each alg's active
// key, read from the database at every scrape (so that another replica's
// rotation shows) through ActiveSince. Without a source, or when the read
// fails, no age is reported. oidc_bridge_signing_keys_invalid is the number
// of stored keys that did not verify against the key-encryption key when
// this replica last read them (InvalidKeys, signing.Options.OnInvalidKeys):
// not published, never signing, and a reason to page.
type SigningMetrics struct {
	rotations *prometheus.CounterVec
	invalid   prometheus.Gauge
	age       *prometheus.Desc
	source    func(ctx context.Context) (map[string]time.Time, error)
	now       func() time.Time
	log       *slog.Logger
}

// NewSigningMetrics registers the signing keys' metrics on reg. source
// returns, by alg, when the active key was activated (a
// signing.Manager's ActiveSince); nil (or a nil map) while the keys are not
// loaded.
func NewSigningMetrics(reg prometheus.Registerer, source func(ctx context.Context) (map[string]time.Time, error), log *slog.Logger) *SigningMetrics {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &SigningMetrics{
		rotations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oidc_bridge_signing_key_rotations_total",
			Help: "Promotions of a next signing key to active committed by this replica, by alg.",
		}, []string{"alg"}),
		invalid: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "oidc_bridge_signing_keys_invalid",
			Help: "Stored signing keys that do not verify against the key-encryption key (not published; someone wrote them to the database), as last read by this replica.",
		}),
		age: prometheus.NewDesc("oidc_bridge_signing_key_age_seconds",
			"Seconds since the active signing key of the alg was activated.", []string{"alg"}, nil),
		source: source,
		now:    time.Now,
		log:    log,
	}
	for _, alg := range []string{signing.RS256, signing.ES256} {
		m.rotations.WithLabelValues(alg)
	}
	reg.MustRegister(m)
	return m
}

// Rotated counts a rotation of alg; it is a signing.Options.OnRotate.
func (m *SigningMetrics) Rotated(alg string) { m.rotations.WithLabelValues(alg).Inc() }

// InvalidKeys sets the number of stored keys that do not verify; it is a
// signing.Options.OnInvalidKeys.
func (m *SigningMetrics) InvalidKeys(kids []string) { m.invalid.Set(float64(len(kids))) }

// Describe implements prometheus.Collector.
func (m *SigningMetrics) Describe(ch chan<- *prometheus.Desc) {
	m.rotations.Describe(ch)
	m.invalid.Describe(ch)
	ch <- m.age
}

// Collect implements prometheus.Collector.
func (m *SigningMetrics) Collect(ch chan<- prometheus.Metric) {
	m.rotations.Collect(ch)
	m.invalid.Collect(ch)
	if m.source == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), signingScrapeTimeout)
	defer cancel()
	since, err := m.source(ctx)
	if err != nil {
		m.log.Warn("telemetry: read the active signing keys", "err", err)
		return
	}
	now := m.now()
	for alg, at := range since {
		ch <- prometheus.MustNewConstMetric(m.age, prometheus.GaugeValue, max(now.Sub(at).Seconds(), 0), alg)
	}
}

// poolCollector reports a pgxpool's statistics at every scrape.
type poolCollector struct {
	stat                                            func() *pgxpool.Stat
	acquired, idle, maxConns, waitSeconds, emptyAcq *prometheus.Desc
}

// NewPoolCollector returns the collector of pool's statistics:
// oidc_bridge_db_pool_acquired_connections, _idle_connections and
// _max_connections (gauges), _acquire_wait_seconds_total (time spent
// waiting for a connection because none was idle) and
// _empty_acquire_total (acquisitions that had to wait so).
func NewPoolCollector(pool *pgxpool.Pool) prometheus.Collector {
	return &poolCollector{
		stat:        pool.Stat,
		acquired:    prometheus.NewDesc("oidc_bridge_db_pool_acquired_connections", "Database connections in use.", nil, nil),
		idle:        prometheus.NewDesc("oidc_bridge_db_pool_idle_connections", "Idle database connections in the pool.", nil, nil),
		maxConns:    prometheus.NewDesc("oidc_bridge_db_pool_max_connections", "The pool's maximum number of database connections.", nil, nil),
		waitSeconds: prometheus.NewDesc("oidc_bridge_db_pool_acquire_wait_seconds_total", "Seconds spent waiting for a database connection because the pool had none idle.", nil, nil),
		emptyAcq:    prometheus.NewDesc("oidc_bridge_db_pool_empty_acquire_total", "Connection acquisitions that waited because the pool had none idle.", nil, nil),
	}
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.acquired, c.idle, c.maxConns, c.waitSeconds, c.emptyAcq} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stat()
	ch <- prometheus.MustNewConstMetric(c.acquired, prometheus.GaugeValue, float64(s.AcquiredConns()))
	ch <- prometheus.MustNewConstMetric(c.idle, prometheus.GaugeValue, float64(s.IdleConns()))
	ch <- prometheus.MustNewConstMetric(c.maxConns, prometheus.GaugeValue, float64(s.MaxConns()))
	ch <- prometheus.MustNewConstMetric(c.waitSeconds, prometheus.CounterValue, s.EmptyAcquireWaitTime().Seconds())
	ch <- prometheus.MustNewConstMetric(c.emptyAcq, prometheus.CounterValue, float64(s.EmptyAcquireCount()))
}

// NewBuildInfo returns oidc_bridge_build_info{version, revision,
// go_version}, always 1. revision is the VCS revision the binary was built
// from, when the build recorded it, else "unknown".
func NewBuildInfo(version string) prometheus.Collector {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "oidc_bridge_build_info",
		Help: "Always 1; the labels say which build runs.",
	}, []string{"version", "revision", "go_version"})
	g.WithLabelValues(version, Revision(), runtime.Version()).Set(1)
	return g
}

// Version is v when set (by -ldflags "-X main.version=…"), else the
// module version `go install` recorded, else "dev".
func Version(v string) string {
	if v != "" {
		return v
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// Revision is the vcs.revision of the build, or "unknown".
func Revision() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				return s.Value
			}
		}
	}
	return "unknown"
}
