package console

import (
	"bytes"
	"encoding/csv"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/ledger"
)

// TestCSVGuardsFormulas: every cell that a spreadsheet would run as a
// formula starts with an apostrophe; commas, quotes and newlines are
// quoted, and the file reads back to the guarded values.
func TestCSVGuardsFormulas(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	w, err := newCSVWriter(&b)
	if err != nil {
		t.Fatal(err)
	}
	r := ledger.Record{ID: "id", Actor: "=HYPERLINK(\"http://x\")", Ref: "+1", Repository: "-2", Subject: "@SUM(A1)",
		Environment: "\tx", EventName: "\rx", WorkflowRef: "a,b \"c\"\nd", UserAgent: "plain"}
	if err := w.write(r); err != nil {
		t.Fatal(err)
	}
	if err := w.flush(); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil || len(rows) != 2 {
		t.Fatalf("%v %v", rows, err)
	}
	got := map[string]string{}
	for i, c := range rows[0] {
		got[c] = rows[1][i]
	}
	for col, want := range map[string]string{
		"actor": "'=HYPERLINK(\"http://x\")", "ref": "'+1", "repository": "'-2", "subject": "'@SUM(A1)",
		"environment": "'\tx", "event_name": "'\rx", "workflow_ref": "a,b \"c\"\nd", "user_agent": "plain",
	} {
		if got[col] != want {
			t.Errorf("%s = %q, want %q", col, got[col], want)
		}
	}
}

// TestSafeNext: sign-in sends a person back only to a page of the console.
func TestSafeNext(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"/console/issuances?repository=a%2Fb": "/console/issuances?repository=a%2Fb",
		"":                                    "/console/denials",
		"https://evil.example/console/":       "/console/denials",
		"//evil.example/console/":             "/console/denials",
		"/v1/admin/mappings":                  "/console/denials",
		"/console":                            "/console/denials",
		"/console/\\evil":                     "/console/denials",
		"javascript:alert(1)":                 "/console/denials",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSameOrigin: a POST is taken from the console's own origin, or from
// a client that is no browser (neither Origin nor Sec-Fetch-Site).
func TestSameOrigin(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		origin, site string
		want         bool
	}{
		{"http://bridge.example:8080", "", true},
		{"https://bridge.example:8080", "same-origin", true},
		{"https://evil.example", "", false},
		{"null", "", false},
		{"", "cross-site", false},
		{"", "same-site", false},
		{"", "same-origin", true},
		{"", "", true},
	} {
		r := httptest.NewRequest("POST", "http://bridge.example:8080/console/explain", strings.NewReader(""))
		if tc.origin != "" {
			r.Header.Set("Origin", tc.origin)
		}
		if tc.site != "" {
			r.Header.Set("Sec-Fetch-Site", tc.site)
		}
		if got := sameOrigin(r); got != tc.want {
			t.Errorf("Origin %q, Sec-Fetch-Site %q: %v, want %v", tc.origin, tc.site, got, tc.want)
		}
	}
}
