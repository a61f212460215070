package telemetry_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/oidc-bridge/oidc-bridge/identity"
	"github.com/oidc-bridge/oidc-bridge/internal/telemetry"
	"github.com/oidc-bridge/oidc-bridge/test/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

// TestSetupOff: tracing stays off unless the environment asks for it.
func TestSetupOff(t *testing.T) {
	t.Parallel()
	for name, kv := range map[string]map[string]string{
		"nothing set":      {},
		"exporter none":    {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"},
		"sdk disabled":     {"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"},
		"only a protocol":  {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
		"only the service": {"OTEL_SERVICE_NAME": "bridge"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tp, shutdown, err := telemetry.Setup(context.Background(), telemetry.Options{Getenv: env(kv)})
			if err != nil || tp != nil {
				t.Fatalf("Setup = %v, %v; want off", tp, err)
			}
			if err := shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestSetupRefusesUnknownSettings(t *testing.T) {
	t.Parallel()
	for name, kv := range map[string]map[string]string{
		"exporter":  {"OTEL_TRACES_EXPORTER": "zipkin"},
		"protocol":  {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
		"protocol2": {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "thrift"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if tp, _, err := telemetry.Setup(context.Background(), telemetry.Options{Getenv: env(kv)}); err == nil || tp != nil {
				t.Fatalf("Setup = %v, %v; want an error", tp, err)
			}
		})
	}
}

// TestSetupExportsOTLP: with OTEL_EXPORTER_OTLP_ENDPOINT set, spans reach
// the collector over OTLP/HTTP by the time shutdown returns.
func TestSetupExportsOTLP(t *testing.T) {
	var posts atomic.Int64
	var body atomic.Value
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			t.Errorf("collector got %s %s (%s)", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
		}
		b, _ := io.ReadAll(r.Body)
		body.Store(b)
		posts.Add(1)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer collector.Close()
	// The exporter reads the process environment, as the SDK does.
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	t.Setenv("OTEL_SERVICE_NAME", "bridge-under-test")
	tp, shutdown, err := telemetry.Setup(context.Background(), telemetry.Options{Version: "v9.9.9"})
	if err != nil || tp == nil {
		t.Fatalf("Setup = %v, %v", tp, err)
	}
	_, span := tp.Tracer("test").Start(context.Background(), "exchange-span")
	span.End()
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if posts.Load() == 0 {
		t.Fatal("no OTLP export")
	}
	b, _ := body.Load().([]byte)
	for _, want := range []string{"exchange-span", "bridge-under-test", "v9.9.9"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("export does not hold %q", want)
		}
	}
}

// TestWithTraceID: records logged with a span's context carry its trace
// id, others do not; wrapping twice adds it once.
func TestWithTraceID(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := telemetry.WithTraceID(slog.New(slog.NewJSONHandler(&buf, nil)))
	if telemetry.WithTraceID(log) != log {
		t.Fatal("WithTraceID wrapped twice")
	}
	tp := sdktrace.NewTracerProvider()
	ctx, span := tp.Tracer("test").Start(context.Background(), "s")
	defer span.End()
	log.With("a", 1).InfoContext(ctx, "in a span")
	log.Info("outside")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := `"trace_id":"` + span.SpanContext().TraceID().String() + `"`
	if len(lines) != 2 || strings.Count(lines[0], want) != 1 || strings.Contains(lines[1], "trace_id") {
		t.Fatalf("log:\n%s", buf.String())
	}
}

func TestFetchMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	observe := telemetry.NewFetchMetrics(reg)
	observe(identity.Fetch{Kind: identity.FetchDiscovery, Issuer: "github"})
	observe(identity.Fetch{Kind: identity.FetchJWKS, Issuer: "github"})
	observe(identity.Fetch{Kind: identity.FetchJWKS, Issuer: "github", Err: errors.New("down")})
	want := `
# HELP oidc_bridge_discovery_fetches_total Fetches of registered issuers' discovery documents, by issuer name and result (ok, error).
# TYPE oidc_bridge_discovery_fetches_total counter
oidc_bridge_discovery_fetches_total{issuer="github",result="ok"} 1
# HELP oidc_bridge_jwks_fetches_total Fetches of registered issuers' JWKS, by issuer name and result (ok, error).
# TYPE oidc_bridge_jwks_fetches_total counter
oidc_bridge_jwks_fetches_total{issuer="github",result="error"} 1
oidc_bridge_jwks_fetches_total{issuer="github",result="ok"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
}

func TestSigningMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	var fail atomic.Bool
	activated := time.Now().Add(-90 * time.Minute)
	m := telemetry.NewSigningMetrics(reg, func(context.Context) (map[string]time.Time, error) {
		if fail.Load() {
			return nil, errors.New("database down")
		}
		return map[string]time.Time{"RS256": activated}, nil
	}, nil)
	m.Rotated("ES256")
	m.InvalidKeys([]string{"forged-kid-0000000000", "swapped-kid-000000000"})
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		for _, mt := range f.GetMetric() {
			if f.GetName() == "oidc_bridge_signing_keys_invalid" {
				got[f.GetName()] = mt.GetGauge().GetValue()
				continue
			}
			key := f.GetName() + "/" + mt.GetLabel()[0].GetValue()
			if f.GetName() == "oidc_bridge_signing_key_age_seconds" {
				got[key] = mt.GetGauge().GetValue()
			} else {
				got[key] = mt.GetCounter().GetValue()
			}
		}
	}
	if got["oidc_bridge_signing_key_rotations_total/ES256"] != 1 || got["oidc_bridge_signing_key_rotations_total/RS256"] != 0 || len(got) != 4 {
		t.Errorf("metrics %v", got)
	}
	if age := got["oidc_bridge_signing_key_age_seconds/RS256"]; age < 5400 || age > 5460 {
		t.Errorf("age %v, want about 5400", age)
	}
	if got["oidc_bridge_signing_keys_invalid"] != 2 {
		t.Errorf("invalid keys %v, want 2", got["oidc_bridge_signing_keys_invalid"])
	}
	m.InvalidKeys(nil)
	want := `
# HELP oidc_bridge_signing_keys_invalid Stored signing keys that do not verify against the key-encryption key (not published; someone wrote them to the database), as last read by this replica.
# TYPE oidc_bridge_signing_keys_invalid gauge
oidc_bridge_signing_keys_invalid 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "oidc_bridge_signing_keys_invalid"); err != nil {
		t.Errorf("invalid keys once all verify: %v", err)
	}
	fail.Store(true)
	if n, err := testutil.GatherAndCount(reg, "oidc_bridge_signing_key_age_seconds"); err != nil || n != 0 {
		t.Errorf("age while the source fails: %d series, %v", n, err)
	}
}

func TestPoolCollectorAndBuildInfo(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	reg := prometheus.NewRegistry()
	reg.MustRegister(telemetry.NewPoolCollector(pool), telemetry.NewBuildInfo("v1.2.3"))
	if err := pool.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			switch {
			case m.GetGauge() != nil:
				got[f.GetName()] = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				got[f.GetName()] = m.GetCounter().GetValue()
			}
			if f.GetName() == "oidc_bridge_build_info" {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				if labels["version"] != "v1.2.3" || labels["revision"] == "" || !strings.HasPrefix(labels["go_version"], "go") {
					t.Errorf("build info labels %v", labels)
				}
			}
		}
	}
	for _, name := range []string{"oidc_bridge_db_pool_acquired_connections", "oidc_bridge_db_pool_idle_connections",
		"oidc_bridge_db_pool_max_connections", "oidc_bridge_db_pool_acquire_wait_seconds_total", "oidc_bridge_db_pool_empty_acquire_total",
		"oidc_bridge_build_info"} {
		if _, ok := got[name]; !ok {
			t.Errorf("%s missing: %v", name, got)
		}
	}
	if got["oidc_bridge_db_pool_max_connections"] < 1 || got["oidc_bridge_db_pool_idle_connections"] < 1 || got["oidc_bridge_build_info"] != 1 {
		t.Errorf("values %v", got)
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	if v := telemetry.Version("v1.0.0"); v != "v1.0.0" {
		t.Errorf("Version(v1.0.0) = %q", v)
	}
	if v := telemetry.Version(""); v == "" {
		t.Error("Version(\"\") is empty")
	}
	if r := telemetry.Revision(); r == "" {
		t.Error("Revision is empty")
	}
}
