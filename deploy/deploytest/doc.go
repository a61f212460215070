// Package deploytest checks the deployment artefacts under deploy/ offline:
// the Kubernetes manifests (decoded strictly into the typed k8s.io/api
// objects, then checked for probes, limits, security context, replicas, the
// PodDisruptionBudget's selector, pinned images and secrets kept out of the
// manifests), the Grafana dashboard (valid JSON, a data source variable,
// every PromQL expression parsed and naming only the bridge's metrics) and
// the metric names the Prometheus rules use.
//
// It does not run promtool (the Makefile's test target does: `promtool check
// rules` and `promtool test rules`), talk to a cluster or touch the network.
// It holds no code besides its tests.
package deploytest
