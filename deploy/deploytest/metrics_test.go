package deploytest

import (
	"fmt"
	"strings"

	"github.com/prometheus/prometheus/promql/parser"
)

// bridgeMetrics are the metrics the service exports (README, /metrics). A
// dashboard panel may use only these; a rule may also use its own
// recording rules and the few external series listed in externalMetrics.
var bridgeMetrics = map[string]metricKind{
	"oidc_bridge_exchanges_total":                    counter,
	"oidc_bridge_exchange_duration_seconds":          histogram,
	"oidc_bridge_exchange_stage_duration_seconds":    histogram,
	"oidc_bridge_credentials_issued_total":           counter,
	"oidc_bridge_throttled_total":                    counter,
	"oidc_bridge_invalid_requests_total":             counter,
	"oidc_bridge_token_verification_failures_total":  counter,
	"oidc_bridge_replays_total":                      counter,
	"oidc_bridge_audit_write_failures_total":         counter,
	"oidc_bridge_unrecorded_credentials_total":       counter,
	"oidc_bridge_signing_key_age_seconds":            gauge,
	"oidc_bridge_signing_key_rotations_total":        counter,
	"oidc_bridge_signing_keys_invalid":               gauge,
	"oidc_bridge_jwks_fetches_total":                 counter,
	"oidc_bridge_discovery_fetches_total":            counter,
	"oidc_bridge_db_pool_acquired_connections":       gauge,
	"oidc_bridge_db_pool_idle_connections":           gauge,
	"oidc_bridge_db_pool_max_connections":            gauge,
	"oidc_bridge_db_pool_acquire_wait_seconds_total": counter,
	"oidc_bridge_db_pool_empty_acquire_total":        counter,
	"oidc_bridge_build_info":                         gauge,
	"oidc_bridge_provider_circuit_open":              gauge,
	"oidc_bridge_catalog_cache_fresh":                gauge,
	"oidc_bridge_catalog_reloads_total":              counter,
	"oidc_bridge_http_requests_total":                counter,
	"oidc_bridge_http_request_duration_seconds":      histogram,

	// The catalog channel's forged heartbeats and coalesced notifications.
	"oidc_bridge_catalog_heartbeats_ignored_total":      counter,
	"oidc_bridge_catalog_notifications_coalesced_total": counter,
}

// externalMetrics are series that Prometheus itself (up) or
// kube-state-metrics export, used by the availability alerts only.
var externalMetrics = map[string]bool{
	"up": true,
	"kube_deployment_status_replicas_available": true,
	"kube_deployment_spec_replicas":             true,
}

type metricKind int

const (
	counter metricKind = iota
	gauge
	histogram
)

// knownBridgeMetric reports whether name is one of bridgeMetrics or one of
// the _bucket/_sum/_count series of a histogram among them.
func knownBridgeMetric(name string) bool {
	if _, ok := bridgeMetrics[name]; ok {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && bridgeMetrics[base] == histogram {
			return true
		}
	}
	return false
}

// grafanaVars replaces Grafana's interval variables and the dashboard's own
// variables with values PromQL parses.
var grafanaVars = strings.NewReplacer(
	"$__rate_interval", "5m",
	"$__interval", "1m",
	"$__range", "1h",
	"${provider}", "aws",
	"$provider", "aws",
)

var promqlParser = parser.NewParser(parser.Options{})

// metricNames parses expr and returns the metric names of its selectors. A
// selector without a metric name is an error: everything here must say
// which metric it reads.
func metricNames(expr string) ([]string, error) {
	e, err := promqlParser.ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var names []string
	var bad error
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		if name == "" {
			for _, m := range vs.LabelMatchers {
				if m.Name == "__name__" {
					name = m.Value
				}
			}
		}
		if name == "" {
			bad = fmt.Errorf("selector %s names no metric", vs)
		}
		names = append(names, name)
		return nil
	})
	return names, bad
}
