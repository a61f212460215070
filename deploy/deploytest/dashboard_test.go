package deploytest

import (
	"bytes"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
)

const dashboardFile = "../grafana/oidc-bridge.json"

type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Datasource json.RawMessage `json:"datasource"`
			Definition string          `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int             `json:"id"`
	Type       string          `json:"type"`
	Title      string          `json:"title"`
	Datasource json.RawMessage `json:"datasource"`
	Panels     []panel         `json:"panels"` // a collapsed row's panels
	GridPos    struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		Datasource json.RawMessage `json:"datasource"`
		Expr       string          `json:"expr"`
		RefID      string          `json:"refId"`
	} `json:"targets"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(data) {
		t.Fatalf("%s is not valid JSON", dashboardFile)
	}
	var d dashboard
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// allPanels flattens rows (expanded or collapsed), remembering each
// panel's row.
func allPanels(d dashboard) (rows []string, byRow map[string][]panel) {
	byRow = map[string][]panel{}
	row := ""
	for _, p := range d.Panels {
		if p.Type == "row" {
			row = p.Title
			rows = append(rows, row)
			byRow[row] = append(byRow[row], p.Panels...)
			continue
		}
		byRow[row] = append(byRow[row], p)
	}
	return rows, byRow
}

func TestDashboardRows(t *testing.T) {
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Error("the dashboard needs a uid and a title")
	}
	rows, byRow := allPanels(d)
	if want := []string{"Executive", "On-call", "Debug"}; !slices.Equal(rows, want) {
		t.Fatalf("rows %q, want %q", rows, want)
	}
	if len(byRow[""]) > 0 {
		t.Errorf("%d panels sit above the first row", len(byRow[""]))
	}
	// What each row must show, by a metric its panels read.
	want := map[string][]string{
		"Executive": {"oidc_bridge_exchanges_total", "oidc_bridge_credentials_issued_total", "oidc_bridge_exchange_duration_seconds_bucket"},
		"On-call": {"oidc_bridge_exchanges_total", "oidc_bridge_exchange_duration_seconds_bucket", "oidc_bridge_throttled_total",
			"oidc_bridge_replays_total", "oidc_bridge_audit_write_failures_total", "oidc_bridge_jwks_fetches_total",
			"oidc_bridge_db_pool_acquired_connections", "oidc_bridge_db_pool_max_connections"},
		"Debug": {"oidc_bridge_exchange_stage_duration_seconds_bucket", "oidc_bridge_token_verification_failures_total",
			"oidc_bridge_signing_key_age_seconds"},
	}
	for row, metrics := range want {
		used := map[string]bool{}
		for _, p := range byRow[row] {
			for _, tg := range p.Targets {
				names, _ := metricNames(grafanaVars.Replace(tg.Expr))
				for _, n := range names {
					used[n] = true
				}
			}
		}
		for _, m := range metrics {
			if !used[m] {
				t.Errorf("row %s has no panel reading %s", row, m)
			}
		}
	}
}

func TestDashboardQueries(t *testing.T) {
	d := loadDashboard(t)
	ids := map[int]bool{}
	_, byRow := allPanels(d)
	n := 0
	for row, panels := range byRow {
		for _, p := range panels {
			if ids[p.ID] {
				t.Errorf("panel %q: duplicate id %d", p.Title, p.ID)
			}
			ids[p.ID] = true
			if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
				t.Errorf("panel %q: bad gridPos %+v", p.Title, p.GridPos)
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s / %q: no query", row, p.Title)
			}
			checkDatasource(t, "panel "+p.Title, p.Datasource)
			for _, tg := range p.Targets {
				n++
				checkDatasource(t, "panel "+p.Title+" query "+tg.RefID, tg.Datasource)
				names, err := metricNames(grafanaVars.Replace(tg.Expr))
				if err != nil {
					t.Errorf("%s / %q %s: %v\n  %s", row, p.Title, tg.RefID, err, tg.Expr)
					continue
				}
				if len(names) == 0 {
					t.Errorf("%s / %q %s reads no metric: %s", row, p.Title, tg.RefID, tg.Expr)
				}
				for _, name := range names {
					if !knownBridgeMetric(name) {
						t.Errorf("%s / %q %s: unknown metric %q (the bridge exports only the documented ones)", row, p.Title, tg.RefID, name)
					}
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no queries in the dashboard")
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		checkDatasource(t, "variable "+v.Name, v.Datasource)
		// label_values(metric, label)
		def := strings.TrimSuffix(strings.TrimPrefix(v.Definition, "label_values("), ")")
		metric, _, _ := strings.Cut(def, ",")
		if !knownBridgeMetric(strings.TrimSpace(metric)) {
			t.Errorf("variable %s: query %q reads an unknown metric", v.Name, v.Definition)
		}
	}
}

// The data source is a variable, so the dashboard imports into any Grafana.
func TestDashboardDatasourceIsAVariable(t *testing.T) {
	d := loadDashboard(t)
	for _, v := range d.Templating.List {
		if v.Name == "datasource" && v.Type == "datasource" && string(v.Query) == `"prometheus"` {
			return
		}
	}
	t.Error(`no templating variable {"name": "datasource", "type": "datasource", "query": "prometheus"}`)
}

func checkDatasource(t *testing.T, what string, raw json.RawMessage) {
	t.Helper()
	var ds struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	}
	if len(raw) == 0 {
		t.Errorf("%s: no datasource", what)
		return
	}
	if err := json.Unmarshal(raw, &ds); err != nil {
		t.Errorf("%s: datasource %s: %v", what, raw, err)
		return
	}
	if ds.Type != "prometheus" || ds.UID != "${datasource}" {
		t.Errorf("%s: datasource %s, want {\"type\": \"prometheus\", \"uid\": \"${datasource}\"}", what, raw)
	}
}
