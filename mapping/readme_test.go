package mapping_test

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/identity"
	"github.com/oidc-bridge/oidc-bridge/mapping"
)

// readmeBody finds the request bodies of the README's curl commands
// (`-d '{...}'`) that are mappings (they have "conditions").
var readmeBody = regexp.MustCompile(`(?s)-d '(\{.*?\})'`)

// TestReadmeExampleMappingsLintClean: the README's example mappings (the
// quick start's web-prod-deploy) are what a new user copies first: they
// must be valid for their issuer (the README's github issuer) and draw no
// lint warning, so that ?lint=strict accepts them as written; its issuers
// likewise.
func TestReadmeExampleMappingsLintClean(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, match := range readmeBody.FindAllSubmatch(b, -1) {
		body := match[1]
		if bytes.Contains(body, []byte(`"audiences"`)) {
			var is mapping.Issuer
			if err := json.Unmarshal(body, &is); err != nil {
				t.Errorf("README issuer does not decode: %v\n%s", err, body)
			}
			for _, w := range mapping.LintIssuer(&is) {
				t.Errorf("README issuer %q draws lint %s on %s", is.Name, w.Code, w.Field)
			}
			continue
		}
		if !bytes.Contains(body, []byte(`"conditions"`)) {
			continue
		}
		n++
		var m mapping.Mapping
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&m); err != nil {
			t.Errorf("README mapping does not decode as the admin API would: %v\n%s", err, body)
			continue
		}
		mapping.Normalize(&m)
		if err := mapping.ValidateMapping(&m, identity.KindGitHub); err != nil {
			t.Errorf("README mapping %q is invalid: %v", m.Name, err)
		}
		for _, w := range mapping.Lint(&m, identity.KindGitHub) {
			t.Errorf("README mapping %q draws lint %s on %s: %s", m.Name, w.Code, w.Field, w.Message)
		}
	}
	if n == 0 {
		t.Fatal("no example mapping found in README.md (a curl -d '{...\"conditions\"...}' body)")
	}
}
