package bridge_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/oidc-bridge/oidc-bridge/bridge"
	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/identity"
	"github.com/oidc-bridge/oidc-bridge/internal/telemetry"
	"github.com/oidc-bridge/oidc-bridge/providers"
	"github.com/oidc-bridge/oidc-bridge/test/logtest"
	"github.com/oidc-bridge/oidc-bridge/test/oidctest"
)

// scrape reads /metrics with the text parser.
func (x *exchangeEnv) scrape() map[string]*dto.MetricFamily {
	x.t.Helper()
	r := x.do("GET", "/metrics", "", "Authorization", "")
	if r.status != 200 {
		x.t.Fatalf("GET /metrics: %d %s", r.status, r.body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(r.body))
	if err != nil {
		x.t.Fatalf("parse /metrics: %v\n%s", err, r.body)
	}
	return fams
}

// samples flattens the bridge's own counters and histogram counts (not
// the HTTP ones) to `name{label="value",...}` → value; a histogram
// contributes its name_count.
func samples(fams map[string]*dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for name, f := range fams {
		if !strings.HasPrefix(name, "oidc_bridge_") || strings.HasPrefix(name, "oidc_bridge_http_") {
			continue
		}
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			slices.Sort(labels)
			key := func(n string) string { return n + "{" + strings.Join(labels, ",") + "}" }
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[key(name)] = m.GetCounter().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[key(name+"_count")] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// deltas is after - before, without the unchanged series.
func deltas(before, after map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	for k, v := range before {
		if _, ok := after[k]; !ok {
			out[k] = -v
		}
	}
	return out
}

// Shorthands for the expected series.
func exchanges(provider, mapping, outcome, code string) string {
	return fmt.Sprintf(`oidc_bridge_exchanges_total{code=%q,mapping=%q,outcome=%q,provider=%q}`, code, mapping, outcome, provider)
}

func exchangeDuration(provider, outcome string) string {
	return fmt.Sprintf(`oidc_bridge_exchange_duration_seconds_count{outcome=%q,provider=%q}`, outcome, provider)
}

func stages(n float64, names ...string) map[string]float64 {
	out := map[string]float64{}
	for _, s := range names {
		out[fmt.Sprintf(`oidc_bridge_exchange_stage_duration_seconds_count{stage=%q}`, s)] = n
	}
	return out
}

func merge(ms ...map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for _, m := range ms {
		for k, v := range m {
			out[k] += v
		}
	}
	return out
}

// withFetchMetrics gives the server a verifier whose fetches are counted
// on the server's registry, as serve wires it.
func withFetchMetrics(o *bridge.Options) {
	o.Verifier = identity.NewVerifier(identity.Config{AllowInsecureIssuers: true, OnFetch: telemetry.NewFetchMetrics(o.Registry)},
		o.Store.(identity.IssuerSource))
}

// TestExchangeMetrics drives every kind of exchange outcome and checks the
// exact change of every bridge counter and the stage histograms' counts
// after each.
func TestExchangeMetrics(t *testing.T) {
	x := newExchangeEnv(t, withFetchMetrics, func(o *bridge.Options) { o.RateLimit, o.RateBurst = 0.001, 2 })
	x.mapping("limited", `"repository": "acme/limited"`, `"quota": {"per_hour": 1}`)
	// Every request comes from its own address, unless a step shares one,
	// so that only the rate-limit step meets the limit.
	n := 0
	addr := func() string { n++; return fmt.Sprintf("192.0.2.%d:4000", n) }
	exchange := func(from, token, body string) response {
		t.Helper()
		hdr := []string{"Authorization", "Bearer " + token, remoteAddr, from}
		if token == "" {
			hdr[1] = ""
		}
		if body == "" {
			hdr = append(hdr, "Content-Type", "")
		}
		return x.do("POST", "/v1/exchange", body, hdr...)
	}
	want := func(r response, status int) {
		t.Helper()
		if r.status != status {
			t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
		}
	}
	refuse := func(sql string) {
		t.Helper()
		for _, q := range []string{
			`CREATE OR REPLACE FUNCTION refuse_write() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk full (test)'; END $$`,
			sql,
		} {
			if _, err := x.pool.Exec(context.Background(), q); err != nil {
				t.Fatal(err)
			}
		}
	}
	issued := x.token(nil)

	steps := []struct {
		name string
		do   func()
		want map[string]float64
	}{
		{"issued", func() { want(exchange(addr(), issued, ""), 200) }, merge(map[string]float64{
			exchanges("aws", "web", "issued", "ok"):                            1,
			exchangeDuration("aws", "issued"):                                  1,
			`oidc_bridge_credentials_issued_total{provider="aws"}`:             1,
			`oidc_bridge_discovery_fetches_total{issuer="github",result="ok"}`: 1,
			`oidc_bridge_jwks_fetches_total{issuer="github",result="ok"}`:      1,
		}, stages(1, "verify", "select", "reserve", "mint", "record"))},
		{"denied: no mapping admits", func() {
			want(exchange(addr(), x.token(map[string]any{"repository": "acme/api"}), ""), 403)
		}, merge(map[string]float64{
			exchanges("none", "none", "denied", "no_matching_mapping"): 1,
			exchangeDuration("none", "denied"):                         1,
		}, stages(1, "verify", "select", "record"))},
		{"invalid request: a field's value", func() { want(exchange(addr(), x.token(nil), `{"provider": "oracle"}`), 400) }, merge(map[string]float64{
			exchanges("none", "none", "denied", "invalid_request"):  1,
			exchangeDuration("none", "denied"):                      1,
			`oidc_bridge_invalid_requests_total{reason="provider"}`: 1,
		}, stages(1, "verify", "select", "record"))},
		{"invalid request: an unknown field", func() {
			want(exchange(addr(), x.token(nil), `{"role_arn_of_someone_else": "x"}`), 400)
		}, merge(map[string]float64{
			exchanges("none", "none", "denied", "invalid_request"):       1,
			exchangeDuration("none", "denied"):                           1,
			`oidc_bridge_invalid_requests_total{reason="unknown_field"}`: 1,
		}, stages(1, "verify", "select", "record"))},
		{"invalid request: malformed body", func() { want(exchange(addr(), x.token(nil), `{"mapping":`), 400) }, merge(map[string]float64{
			exchanges("none", "none", "denied", "invalid_request"): 1,
			exchangeDuration("none", "denied"):                     1,
			`oidc_bridge_invalid_requests_total{reason="body"}`:    1,
		}, stages(1, "verify", "select", "record"))},
		{"token exchange: invalid form", func() {
			want(x.tokenExchange(url.Values{"subject_token": {x.token(nil)}}, remoteAddr, addr()), 400)
		}, map[string]float64{`oidc_bridge_invalid_requests_total{reason="grant_type"}`: 1}},
		{"token exchange: no audience", func() {
			want(x.tokenExchange(url.Values{"grant_type": {grantTE}, "subject_token": {x.token(nil)}, "subject_token_type": {typeJWT}},
				remoteAddr, addr()), 400)
		}, merge(map[string]float64{
			exchanges("none", "none", "denied", "invalid_request"):  1,
			exchangeDuration("none", "denied"):                      1,
			`oidc_bridge_invalid_requests_total{reason="audience"}`: 1,
		}, stages(1, "verify", "select", "record"))},
		{"quota", func() {
			tok := func() string { return x.token(map[string]any{"repository": "acme/limited"}) }
			want(exchange(addr(), tok(), ""), 200)
			want(exchange(addr(), tok(), ""), 429)
		}, merge(map[string]float64{
			exchanges("aws", "limited", "issued", "ok"):             1,
			exchanges("aws", "limited", "denied", "quota_exceeded"): 1,
			exchangeDuration("aws", "issued"):                       1,
			exchangeDuration("aws", "denied"):                       1,
			`oidc_bridge_credentials_issued_total{provider="aws"}`:  1,
			`oidc_bridge_throttled_total{kind="quota"}`:             1,
		}, stages(2, "verify", "select", "reserve"), stages(1, "mint", "record"))},
		{"rate limited", func() {
			from := addr()
			want(exchange(from, "", ""), 401)
			want(exchange(from, "", ""), 401)
			want(exchange(from, x.token(nil), ""), 429)
		}, map[string]float64{
			exchanges("none", "none", "rejected", "invalid_token"): 2,
			exchanges("none", "none", "rejected", "rate_limited"):  1,
			exchangeDuration("none", "rejected"):                   3,
			`oidc_bridge_throttled_total{kind="rate_limit"}`:       1,
		}},
		{"failed: the cloud refuses", func() {
			sts.Refuse("AccessDenied")
			defer sts.Reset()
			want(exchange(addr(), x.token(nil), ""), 502)
		}, merge(map[string]float64{
			exchanges("aws", "web", "failed", "provider_error"): 1,
			exchangeDuration("aws", "failed"):                   1,
		}, stages(1, "verify", "select", "reserve", "mint", "record"))},
		{"replay", func() { want(exchange(addr(), issued, ""), 409) }, merge(map[string]float64{
			exchanges("aws", "web", "denied", "token_replayed"): 1,
			exchangeDuration("aws", "denied"):                   1,
			`oidc_bridge_replays_total{}`:                       1,
		}, stages(1, "verify", "select", "reserve"))},
		{"invalid token", func() { want(exchange(addr(), "not.a.jwt", ""), 401) }, merge(map[string]float64{
			exchanges("none", "none", "rejected", "invalid_token"):                    1,
			exchangeDuration("none", "rejected"):                                      1,
			`oidc_bridge_token_verification_failures_total{reason="malformed_token"}`: 1,
		}, stages(1, "verify"))},
		{"admin authentication throttled", func() {
			from := addr()
			for range 10 {
				want(x.do("GET", "/v1/admin/issuers", "", "Authorization", "Bearer wrong", remoteAddr, from), 401)
			}
			want(x.do("GET", "/v1/admin/issuers", "", "Authorization", "Bearer wrong", remoteAddr, from), 429)
		}, map[string]float64{`oidc_bridge_throttled_total{kind="admin_auth"}`: 1}},
		{"audit write fails: complete", func() {
			refuse(`CREATE TRIGGER refuse_issued BEFORE UPDATE ON issuances FOR EACH ROW WHEN (NEW.outcome = 'issued') EXECUTE FUNCTION refuse_write()`)
			want(exchange(addr(), x.token(nil), ""), 503)
		}, merge(map[string]float64{
			exchanges("aws", "web", "failed", "unavailable"):        1,
			exchangeDuration("aws", "failed"):                       1,
			`oidc_bridge_audit_write_failures_total{op="complete"}`: 1,
			`oidc_bridge_unrecorded_credentials_total{}`:            1,
		}, stages(1, "verify", "select", "reserve", "mint", "record"))},
		{"audit write fails: deny", func() {
			refuse(`CREATE TRIGGER refuse_denied BEFORE INSERT ON issuances FOR EACH ROW WHEN (NEW.outcome = 'denied') EXECUTE FUNCTION refuse_write()`)
			want(exchange(addr(), x.token(map[string]any{"repository": "acme/api"}), ""), 503)
		}, merge(map[string]float64{
			exchanges("none", "none", "failed", "unavailable"):  1,
			exchangeDuration("none", "failed"):                  1,
			`oidc_bridge_audit_write_failures_total{op="deny"}`: 1,
		}, stages(1, "verify", "select", "record"))},
	}
	before := samples(x.scrape())
	for _, st := range steps {
		st.do()
		after := samples(x.scrape())
		if diff := cmp.Diff(st.want, deltas(before, after)); diff != "" {
			t.Errorf("%s: metric changes (-want +got):\n%s", st.name, diff)
		}
		before = after
	}
}

// TestMetricsStartAtZero: the known label values exist before any event,
// and the series of the dashboard are all exposed.
func TestMetricsStartAtZero(t *testing.T) {
	x := newExchangeEnv(t)
	got := samples(x.scrape())
	for _, k := range []string{
		`oidc_bridge_throttled_total{kind="rate_limit"}`, `oidc_bridge_throttled_total{kind="quota"}`,
		`oidc_bridge_throttled_total{kind="admin_auth"}`, `oidc_bridge_replays_total{}`,
		`oidc_bridge_unrecorded_credentials_total{}`, `oidc_bridge_credentials_issued_total{provider="aws"}`,
		`oidc_bridge_credentials_issued_total{provider="jwt"}`,
		`oidc_bridge_audit_write_failures_total{op="deny"}`, `oidc_bridge_audit_write_failures_total{op="reserve"}`,
		`oidc_bridge_audit_write_failures_total{op="complete"}`, `oidc_bridge_audit_write_failures_total{op="fail"}`,
		`oidc_bridge_audit_write_failures_total{op="record_audit"}`,
	} {
		if v, ok := got[k]; !ok || v != 0 {
			t.Errorf("%s = %v (present %v), want 0", k, v, ok)
		}
	}
}

// TestMetricLabelsCarryNoTokenValues: whatever the tokens and requests
// say, no label value holds a repository, subject, jti, token or a
// mapping name the client made up.
func TestMetricLabelsCarryNoTokenValues(t *testing.T) {
	x := newExchangeEnv(t, withFetchMetrics)
	var secrets []string
	tok := func(repo string, i int) string {
		jti := fmt.Sprintf("jti-label-check-%d", i)
		sub := fmt.Sprintf("repo:%s:ref:refs/heads/main", repo)
		secrets = append(secrets, repo, jti, sub)
		t := x.token(map[string]any{"repository": repo, "jti": jti, "sub": sub})
		secrets = append(secrets, t)
		return t
	}
	x.exchange(tok("acme/web", 1), "")                                    // issued
	x.exchange(tok("acme/web", 1), "")                                    // replayed (same jti)
	x.exchange(tok("zeta-corp/payments-secret", 2), "")                   // no mapping admits
	x.exchange(tok("acme/web", 3), `{"mapping": "made-up-mapping-name"}`) // unknown mapping
	x.exchange(tok("acme/web", 4), `{"made_up_field_name": 1}`)           // unknown field
	x.tokenExchange(url.Values{"grant_type": {grantTE}, "subject_token": {tok("acme/web", 5)}, "subject_token_type": {typeJWT},
		"audience": {"another-made-up-mapping"}})
	x.exchange(tok("acme/web", 6)+"x", "") // bad signature
	secrets = append(secrets, "made-up-mapping-name", "made_up_field_name", "another-made-up-mapping", "eyJ")

	fams := x.scrape()
	if len(fams) == 0 {
		t.Fatal("no metrics")
	}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				for _, s := range secrets {
					if strings.Contains(l.GetValue(), s) {
						t.Errorf("%s{%s=%q} holds %q", name, l.GetName(), l.GetValue(), s)
					}
				}
			}
		}
	}
}

// tracedEnv is an exchange env whose server traces into an in-memory
// exporter and logs JSON at debug level into a buffer.
type tracedEnv struct {
	*exchangeEnv
	spans *tracetest.InMemoryExporter
	logs  *logtest.Buffer
}

func newTracedEnv(t *testing.T, tracing bool) *tracedEnv {
	t.Helper()
	spans := tracetest.NewInMemoryExporter()
	logs := &logtest.Buffer{}
	x := newExchangeEnv(t, func(o *bridge.Options) {
		if tracing {
			tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
			t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			o.TracerProvider = tp
		}
		o.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	return &tracedEnv{exchangeEnv: x, spans: spans, logs: logs}
}

// lines are the JSON log lines of the request with this id.
func (e *tracedEnv) lines(t *testing.T, requestID string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range bytes.Split([]byte(e.logs.String()), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("log line %s: %v", l, err)
		}
		if m["request_id"] == requestID {
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no log line for request %s in\n%s", requestID, e.logs.String())
	}
	return out
}

// TestTracing: an exchange continuing the client's traceparent makes a
// server span, a span per stage under it and the cloud call under mint; the
// trace id is on every log line of the request and in error bodies.
func TestTracing(t *testing.T) {
	x := newTracedEnv(t, true)
	const (
		traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
		parent  = "00f067aa0ba902b7"
	)
	x.spans.Reset()
	r := x.do("POST", "/v1/exchange", "", "Authorization", "Bearer "+x.token(nil), "Content-Type", "",
		"Traceparent", "00-"+traceID+"-"+parent+"-01")
	if r.status != 200 {
		t.Fatalf("exchange: %d %s", r.status, r.body)
	}
	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range x.spans.GetSpans().Snapshots() {
		if _, dup := byName[s.Name()]; dup {
			t.Errorf("two spans named %q", s.Name())
		}
		byName[s.Name()] = s
	}
	names := slices.Sorted(maps.Keys(byName))
	if want := []string{"POST /v1/exchange", "mint", "mint aws", "record", "reserve", "select", "verify"}; !slices.Equal(names, want) {
		t.Fatalf("spans %q, want %q", names, want)
	}
	server := byName["POST /v1/exchange"]
	if server.SpanContext().TraceID().String() != traceID || server.Parent().SpanID().String() != parent || !server.Parent().IsRemote() {
		t.Errorf("server span %s parent %s: does not continue the traceparent", server.SpanContext().TraceID(), server.Parent().SpanID())
	}
	parentOf := map[string]string{"verify": "POST /v1/exchange", "select": "POST /v1/exchange", "reserve": "POST /v1/exchange",
		"mint": "POST /v1/exchange", "record": "POST /v1/exchange", "mint aws": "mint"}
	for child, p := range parentOf {
		s := byName[child]
		if s.Parent().SpanID() != byName[p].SpanContext().SpanID() || s.SpanContext().TraceID().String() != traceID {
			t.Errorf("span %q: parent %s, want %q (%s)", child, s.Parent().SpanID(), p, byName[p].SpanContext().SpanID())
		}
	}
	// Stages run in order, each within the request.
	order := []string{"verify", "select", "reserve", "mint", "record"}
	for i := 1; i < len(order); i++ {
		if byName[order[i]].StartTime().Before(byName[order[i-1]].EndTime()) {
			t.Errorf("stage %s starts before %s ends", order[i], order[i-1])
		}
	}
	attrs := map[string]string{}
	for _, kv := range server.Attributes() {
		attrs[string(kv.Key)] = kv.Value.String()
	}
	for k, v := range map[string]string{"http.route": "/v1/exchange", "http.response.status_code": "200",
		"oidc_bridge.outcome": "issued", "oidc_bridge.mapping": "web", "oidc_bridge.provider": "aws", "oidc_bridge.issuer": "github"} {
		if attrs[k] != v {
			t.Errorf("server span %s = %q, want %q", k, attrs[k], v)
		}
	}
	rid := r.header.Get("X-Request-ID")
	for _, l := range x.lines(t, rid) {
		if l["trace_id"] != traceID {
			t.Errorf("log line without the trace id: %v", l)
		}
	}

	// An error body carries the trace id (a new trace: no traceparent).
	x.spans.Reset()
	r = x.do("POST", "/v1/exchange", "", "Authorization", "Bearer junk", "Content-Type", "")
	e := x.wantError(r, 401, api.CodeInvalidToken, "")
	spans := x.spans.GetSpans().Snapshots()
	if len(spans) != 2 { // the request and verify
		t.Fatalf("spans of a refused token: %d", len(spans))
	}
	if tid := spans[0].SpanContext().TraceID().String(); e.TraceID != tid || tid == traceID {
		t.Errorf("error body trace_id %q, want the request's %q", e.TraceID, tid)
	}
	for _, l := range x.lines(t, r.header.Get("X-Request-ID")) {
		if l["trace_id"] != e.TraceID {
			t.Errorf("log line without the trace id: %v", l)
		}
	}
	// So does a 500-class answer of the admin API, and a 404.
	r = x.do("GET", "/nowhere", "")
	if e := x.wantError(r, 404, api.CodeNotFound, ""); len(e.TraceID) != 32 {
		t.Errorf("404 body trace_id %q", e.TraceID)
	}
}

// TestNoTracingByDefault: without a tracer provider a traceparent changes
// nothing: no trace id in bodies or logs.
func TestNoTracingByDefault(t *testing.T) {
	x := newTracedEnv(t, false)
	r := x.do("POST", "/v1/exchange", "", "Authorization", "Bearer junk", "Content-Type", "",
		"Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	x.wantError(r, 401, api.CodeInvalidToken, "")
	if bytes.Contains(r.body, []byte("trace_id")) {
		t.Errorf("body %s", r.body)
	}
	if strings.Contains(x.logs.String(), "trace_id") {
		t.Errorf("logs carry a trace id:\n%s", x.logs.String())
	}
}

// TestExchangeLogLine: the exchange's one line has each stage's latency
// and each mapping's decision.
func TestExchangeLogLine(t *testing.T) {
	x := newTracedEnv(t, false)
	x.mapping("shadow", `"repository": "acme/*"`, `"mode": "audit"`)
	r := x.exchange(x.token(nil), "")
	if r.status != 200 {
		t.Fatalf("exchange: %d %s", r.status, r.body)
	}
	var line map[string]any
	for _, l := range x.lines(t, r.header.Get("X-Request-ID")) {
		if l["msg"] == "exchange" {
			line = l
		}
	}
	if line == nil {
		t.Fatal("no exchange line")
	}
	st, _ := line["stage_ms"].(map[string]any)
	if got := slices.Sorted(maps.Keys(st)); !slices.Equal(got, []string{"mint", "record", "reserve", "select", "verify"}) {
		t.Errorf("stage_ms %v", line["stage_ms"])
	}
	for k, v := range st {
		if ms, ok := v.(float64); !ok || ms < 0 {
			t.Errorf("stage_ms.%s = %v", k, v)
		}
	}
	want := map[string]any{"web": "admitted", "tags": "ref", "shadow": "audit:admitted"}
	if diff := cmp.Diff(want, line["decisions"]); diff != "" {
		t.Errorf("decisions (-want +got):\n%s", diff)
	}

	// A refusal says why each mapping said no.
	r = x.exchange(x.token(map[string]any{"ref": "refs/heads/dev"}), "")
	x.wantError(r, 403, api.CodeNoMatchingMapping, "")
	for _, l := range x.lines(t, r.header.Get("X-Request-ID")) {
		if l["msg"] == "exchange" {
			want := map[string]any{"web": "ref", "tags": "ref", "shadow": "audit:admitted"}
			if diff := cmp.Diff(want, l["decisions"]); diff != "" {
				t.Errorf("decisions of a refusal (-want +got):\n%s", diff)
			}
			if l["reason"] != "no_mapping_admits" {
				t.Errorf("reason of a refusal: %v", l["reason"])
			}
		}
	}
}

// TestRequestID: a client's X-Request-ID is kept when it looks like one,
// and replaced otherwise.
func TestRequestID(t *testing.T) {
	x := newTracedEnv(t, false)
	tests := []struct {
		name, id string
		keep     bool
	}{
		{"uuid", "0b9c2f0e-7a51-4a8e-9d1c-6f1a2b3c4d5e", true},
		{"dotted", "req_42.retry-1", true},
		{"longest", strings.Repeat("a", 128), true},
		{"too long", strings.Repeat("a", 129), false},
		{"spaces", "a b", false},
		{"log injection", "x\" level=ERROR msg=forged", false},
		{"json", `{"admin":"root"}`, false},
		{"unicode", "idé", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := x.do("GET", "/healthz", "", "X-Request-ID", tt.id)
			got := r.header.Get("X-Request-ID")
			switch {
			case tt.keep && got != tt.id:
				t.Errorf("X-Request-ID %q became %q", tt.id, got)
			case !tt.keep && (got == tt.id || got == ""):
				t.Errorf("X-Request-ID %q kept as %q", tt.id, got)
			}
		})
	}
	if strings.Contains(x.logs.String(), "forged") {
		t.Errorf("a refused request id reached the log:\n%s", x.logs.String())
	}
}

// TestLogsHoldNoSecrets: at debug level, with tracing on, no log line of
// any exchange — issued, refused, by either endpoint — holds a token, an
// issued secret or session token.
func TestLogsHoldNoSecrets(t *testing.T) {
	x := newTracedEnv(t, true)
	x.must(201, "POST", "/v1/admin/mappings", `{"name": "internal", "issuer": "github",
		"conditions": {"repository": "acme/web"}, "provider": "jwt", "max_duration_seconds": 600,
		"target": {"audience": "https://deploy.internal.example"}}`)
	var secrets []string
	tok := func(over map[string]any, opts ...oidctest.MintOption) string {
		s := x.token(over, opts...)
		secrets = append(secrets, s)
		return s
	}

	r := x.exchange(tok(nil), `{"mapping": "web"}`)
	if r.status != 200 {
		t.Fatalf("exchange: %d %s", r.status, r.body)
	}
	var resp api.ExchangeResponse
	var creds providers.AWSCredentials
	if err := json.Unmarshal(r.body, &resp); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(resp.Credentials, &creds); err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, creds.SecretAccessKey, creds.SessionToken)

	r = x.tokenExchange(url.Values{"grant_type": {grantTE}, "subject_token": {tok(nil)}, "subject_token_type": {typeJWT}, "audience": {"internal"}})
	if r.status != 200 {
		t.Fatalf("token exchange: %d %s", r.status, r.body)
	}
	var te api.TokenExchangeResponse
	if err := json.Unmarshal(r.body, &te); err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, te.AccessToken)

	// Refusals at every stage.
	sts.Refuse("AccessDenied")
	x.exchange(tok(nil), `{"mapping": "web"}`)
	sts.Reset()
	x.exchange(secrets[0], `{"mapping": "web"}`)                                     // replayed
	x.exchange(tok(map[string]any{"aud": "someone-else"}), "")                       // wrong audience
	x.exchange(tok(nil, oidctest.WithUnpublishedKey()), "")                          // bad signature
	x.exchange(tok(nil)+"AAAA", "")                                                  // malformed
	x.exchange(tok(map[string]any{"repository": "acme/api"}), "")                    // no mapping
	x.exchange(tok(nil), `{"duration_seconds": 5}`)                                  // invalid request
	x.tokenExchange(url.Values{"grant_type": {grantTE}, "subject_token": {tok(nil)}, // aws is not a bearer token
		"subject_token_type": {typeJWT}, "audience": {"web"}})

	logs := x.logs.String()
	if !strings.Contains(logs, `"msg":"exchange"`) || !strings.Contains(logs, `"level":"DEBUG"`) {
		t.Fatalf("the test did not log at debug:\n%s", logs)
	}
	for _, s := range append(secrets, "eyJ") {
		if s != "" && strings.Contains(logs, s) {
			t.Errorf("logs hold %.20q…", s)
		}
	}
	if t.Failed() {
		t.Logf("logs:\n%s", logs)
	}
}
