package bridge_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/test/oidctest"
)

// keySet is a public JWK Set of a fresh oidctest issuer's key, as JSON.
func keySet(t *testing.T) (set []byte, kid string) {
	t.Helper()
	iss := oidctest.New(t)
	b, err := json.Marshal(iss.JWKS())
	if err != nil {
		t.Fatal(err)
	}
	return b, iss.KID()
}

func staticIssuer(name, jwks string) string {
	return fmt.Sprintf(`{"name": %q, "url": "https://k8s.internal.example.com", "audiences": ["https://bridge.example.com"],
		"kind": "generic", "jwks": %s}`, name, jwks)
}

// TestIssuerStaticJWKS: an issuer's static set and jwks_url are stored and
// read back (the set compacted, byte for byte), a PUT with a new set
// replaces it (rotation), and the admin history records each change with
// the public set and nothing else.
func TestIssuerStaticJWKS(t *testing.T) {
	e := newEnv(t)
	set1, kid1 := keySet(t)
	set2, kid2 := keySet(t)
	pretty := strings.Replace(string(set1), `{"keys":`, "{\n  \"keys\" : ", 1)
	got := decode[api.Issuer](t, e.must(201, "POST", "/v1/admin/issuers", staticIssuer("cluster", pretty)))
	if string(got.JWKS) != string(set1) || got.JWKSURL != "" {
		t.Fatalf("created: jwks %s, jwks_url %q; want the set compacted", got.JWKS, got.JWKSURL)
	}
	if got := decode[api.Issuer](t, e.must(200, "GET", "/v1/admin/issuers/cluster", "")); string(got.JWKS) != string(set1) {
		t.Fatalf("read back: %s", got.JWKS)
	}
	got = decode[api.Issuer](t, e.must(200, "PUT", "/v1/admin/issuers/cluster", staticIssuer("cluster", string(set2))))
	if string(got.JWKS) != string(set2) {
		t.Fatalf("after rotation: %s", got.JWKS)
	}
	// From a static set to a jwks_url, and back to discovery.
	got = decode[api.Issuer](t, e.must(200, "PUT", "/v1/admin/issuers/cluster", `{"url": "https://k8s.internal.example.com",
		"audiences": ["https://bridge.example.com"], "kind": "generic", "jwks_url": "https://keys.example.com/openid/v1/jwks"}`))
	if got.JWKS != nil || got.JWKSURL != "https://keys.example.com/openid/v1/jwks" {
		t.Fatalf("jwks_url: %+v", got)
	}
	got = decode[api.Issuer](t, e.must(200, "PUT", "/v1/admin/issuers/cluster", `{"url": "https://k8s.internal.example.com",
		"audiences": ["https://bridge.example.com"], "kind": "generic"}`))
	if got.JWKS != nil || got.JWKSURL != "" {
		t.Fatalf("discovery again: %+v", got)
	}
	if b := e.must(200, "GET", "/v1/admin/issuers/cluster", ""); strings.Contains(string(b), "jwks") {
		t.Errorf("an issuer without its own keys shows %s", b)
	}

	changes := e.adminChanges()
	if len(changes) != 4 {
		t.Fatalf("%d changes recorded, want 4: %+v", len(changes), changes)
	}
	kidsOf := func(v any) string {
		m, _ := v.(map[string]any)
		var out []string
		for _, k := range m["keys"].([]any) {
			out = append(out, k.(map[string]any)["kid"].(string))
		}
		return strings.Join(out, ",")
	}
	if c := changes[0]; c.Action != "create" || kidsOf(c.After["jwks"]) != kid1 {
		t.Errorf("create recorded %+v", c)
	}
	if c := changes[1]; c.Action != "update" || kidsOf(c.Before["jwks"]) != kid1 || kidsOf(c.After["jwks"]) != kid2 {
		t.Errorf("rotation recorded %+v", c)
	}
	if c := changes[2]; c.After["jwks_url"] != "https://keys.example.com/openid/v1/jwks" || c.After["jwks"] != nil {
		t.Errorf("jwks_url recorded %+v", c)
	}
}

// TestIssuerJWKSValidation: a static set with private or symmetric key
// material, one that is not a set of usable signature keys, both a set and
// a jwks_url, or a jwks_url that breaks the issuer URL rule is refused with
// the field at fault, and changes nothing.
func TestIssuerJWKSValidation(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	privJWK, err := json.Marshal(jose.JSONWebKey{Key: priv, KeyID: "p", Algorithm: "RS256", Use: "sig"})
	if err != nil {
		t.Fatal(err)
	}
	set, _ := keySet(t)
	many := make([]json.RawMessage, api.MaxJWKSKeys+1)
	var s struct{ Keys []json.RawMessage }
	_ = json.Unmarshal(set, &s)
	for i := range many {
		many[i] = s.Keys[0]
	}
	manyJSON, _ := json.Marshal(map[string]any{"keys": many})
	withURL := func(u string) string {
		return fmt.Sprintf(`{"name": "cluster", "url": "https://k8s.internal.example.com", "audiences": ["x"], "kind": "generic", "jwks_url": %q}`, u)
	}
	tests := []struct {
		name, body, field string
	}{
		{"private key", staticIssuer("cluster", `{"keys": [`+string(privJWK)+`]}`), "jwks.keys[0].d"},
		{"symmetric key", staticIssuer("cluster", `{"keys": [{"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQ", "kid": "h"}]}`), "jwks.keys[0].k"},
		{"no keys", staticIssuer("cluster", `{"keys": []}`), "jwks.keys"},
		{"too many keys", staticIssuer("cluster", string(manyJSON)), "jwks.keys"},
		{"not a set", staticIssuer("cluster", `["a"]`), "jwks"},
		{"a string", staticIssuer("cluster", `"{\"keys\": []}"`), "jwks"},
		{"both", strings.Replace(staticIssuer("cluster", string(set)), `"kind"`, `"jwks_url": "https://keys.example.com/jwks", "kind"`, 1), "jwks_url"},
		{"http jwks_url", withURL("http://keys.example.com/jwks"), "jwks_url"},
		{"jwks_url with query", withURL("https://keys.example.com/jwks?x=1"), "jwks_url"},
		{"relative jwks_url", withURL("/jwks"), "jwks_url"},
	}
	e := newEnv(t)
	e.must(201, "POST", "/v1/admin/issuers", staticIssuer("cluster", string(set)))
	before := e.snapshot()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do("POST", "/v1/admin/issuers", strings.Replace(tt.body, `"cluster"`, `"other"`, 1))
			got := e.wantError(r, 400, api.CodeInvalidRequest, tt.field)
			if strings.Contains(got.Message, priv.D.String()[:20]) {
				t.Errorf("the refusal echoes key material: %s", got.Message)
			}
			e.wantError(e.do("PUT", "/v1/admin/issuers/cluster", tt.body), 400, api.CodeInvalidRequest, tt.field)
		})
	}
	if after := e.snapshot(); after != before {
		t.Fatalf("bad input changed state:\nbefore %s\nafter  %s", before, after)
	}
	// A loopback http jwks_url is accepted where insecure issuers are.
	ei := newEnv(t, insecureIssuers)
	ei.must(201, "POST", "/v1/admin/issuers", withURL("http://127.0.0.1:9999/jwks"))
}
