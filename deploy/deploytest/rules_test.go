package deploytest

import (
	"os"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const rulesFile = "../prometheus/rules.yml"

type ruleFile struct {
	Groups []struct {
		Name     string `json:"name"`
		Interval string `json:"interval,omitempty"`
		Rules    []struct {
			Record      string            `json:"record,omitempty"`
			Alert       string            `json:"alert,omitempty"`
			Expr        string            `json:"expr"`
			For         string            `json:"for,omitempty"`
			Labels      map[string]string `json:"labels,omitempty"`
			Annotations map[string]string `json:"annotations,omitempty"`
		} `json:"rules"`
	} `json:"groups"`
}

// TestRulesUseKnownMetrics complements promtool (which checks syntax and
// behaviour, but not names): a misspelt metric would make an alert that can
// never fire.
func TestRulesUseKnownMetrics(t *testing.T) {
	data, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.UnmarshalStrict(data, &rf); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	recorded := map[string]bool{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				recorded[r.Record] = true
			}
		}
	}
	alerts := 0
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			what := r.Record + r.Alert
			names, err := metricNames(r.Expr)
			if err != nil {
				t.Errorf("%s: %v", what, err)
				continue
			}
			for _, n := range names {
				if !knownBridgeMetric(n) && !recorded[n] && !externalMetrics[n] {
					t.Errorf("%s reads unknown metric %q", what, n)
				}
			}
			if r.Alert == "" {
				continue
			}
			alerts++
			if sev := r.Labels["severity"]; sev != "page" && sev != "ticket" {
				t.Errorf("%s: severity %q, want page or ticket", r.Alert, sev)
			}
			rb := r.Annotations["runbook_url"]
			const prefix = "https://github.com/oidc-bridge/oidc-bridge/blob/main/"
			path, ok := strings.CutPrefix(rb, prefix)
			if !ok {
				t.Errorf("%s: runbook_url %q does not start with %s", r.Alert, rb, prefix)
				continue
			}
			path, _, _ = strings.Cut(path, "#")
			if _, err := os.Stat("../../" + path); err != nil {
				t.Errorf("%s: runbook %s: %v", r.Alert, path, err)
			}
			if r.Annotations["summary"] == "" {
				t.Errorf("%s: no summary", r.Alert)
			}
		}
	}
	if alerts == 0 {
		t.Fatal("no alerts in " + rulesFile)
	}
}
