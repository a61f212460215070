// Package telemetry sets up what oidc-bridge reports about itself beyond
// its HTTP server's own metrics: OpenTelemetry tracing (off unless the
// standard OTEL_* variables ask for it), the trace id in log lines, and the
// Prometheus collectors of the process's dependencies — identity's
// discovery and JWKS fetches, the signing keys, the database pool and the
// build.
//
// It does not define the exchange and HTTP metrics (package bridge does),
// and it never labels a metric with anything taken from a token: labels are
// registered issuer names, algorithms and fixed words.
package telemetry
