package bridge_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
)

const (
	grantTE   = "urn:ietf:params:oauth:grant-type:token-exchange"
	typeJWT   = "urn:ietf:params:oauth:token-type:jwt"
	typeIDTok = "urn:ietf:params:oauth:token-type:id_token"
)

// tokenExchange posts form to /oauth2/token.
func (x *exchangeEnv) tokenExchange(form url.Values, hdr ...string) response {
	x.t.Helper()
	h := append([]string{"Content-Type", "application/x-www-form-urlencoded", "Authorization", ""}, hdr...)
	return x.do("POST", "/oauth2/token", form.Encode(), h...)
}

// wantOAuthError checks an RFC 6749 §5.2 error answer.
func wantOAuthError(t testing.TB, r response, status int, code, bridgeCode string) api.OAuthError {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	var e api.OAuthError
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
	if e.Error != code || e.ErrorDescription == "" || e.BridgeError != bridgeCode {
		t.Fatalf("error %+v, want %s/%s", e, code, bridgeCode)
	}
	if r.header.Get("Cache-Control") != "no-store" || r.header.Get("Pragma") != "no-cache" {
		t.Errorf("caching headers %v", r.header)
	}
	var raw map[string]any
	_ = json.Unmarshal(r.body, &raw)
	for k := range raw {
		switch k {
		case "error", "error_description", "oidc_bridge_error", "issuance_id", "request_id":
		default:
			t.Errorf("unexpected member %q", k)
		}
	}
	return e
}

func TestTokenExchangeErrors(t *testing.T) {
	x := newExchangeEnv(t)
	good := func() url.Values {
		return url.Values{"grant_type": {grantTE}, "subject_token": {x.token(nil)}, "subject_token_type": {typeJWT}, "audience": {"web"}}
	}
	edit := func(f func(url.Values)) url.Values { v := good(); f(v); return v }
	tests := []struct {
		name       string
		form       url.Values
		hdr        []string
		status     int
		code       string
		bridgeCode string
		row        string
	}{
		{"json body", good(), []string{"Content-Type", "application/json"}, 400, "invalid_request", "", ""},
		{"no grant_type", edit(func(v url.Values) { v.Del("grant_type") }), nil, 400, "invalid_request", "", ""},
		{"other grant_type", edit(func(v url.Values) { v.Set("grant_type", "client_credentials") }), nil, 400, "unsupported_grant_type", "", ""},
		{"no subject_token", edit(func(v url.Values) { v.Del("subject_token") }), nil, 400, "invalid_request", "", ""},
		{"wrong subject_token_type", edit(func(v url.Values) { v.Set("subject_token_type", "urn:ietf:params:oauth:token-type:saml2") }), nil, 400, "invalid_request", "", ""},
		{"actor_token", edit(func(v url.Values) { v.Set("actor_token", "x"); v.Set("actor_token_type", typeJWT) }), nil, 400, "invalid_request", "", ""},
		{"repeated parameter", edit(func(v url.Values) { v.Add("audience", "tags") }), nil, 400, "invalid_request", "", ""},
		{"invalid subject token", edit(func(v url.Values) { v.Set("subject_token", "a.b.c") }), nil, 400, "invalid_request", "invalid_token", ""},
		{"id_token type, no audience", edit(func(v url.Values) { v.Set("subject_token_type", typeIDTok); v.Del("audience") }), nil,
			400, "invalid_request", "invalid_request", "denied/invalid_request"},
		{"audience and resource disagree", edit(func(v url.Values) { v.Set("resource", "tags") }), nil, 400, "invalid_request", "invalid_request", "denied/invalid_request"},
		{"unknown mapping", edit(func(v url.Values) { v.Set("audience", "nope") }), nil, 400, "invalid_target", "no_matching_mapping", "denied/no_matching_mapping"},
		{"aws mapping is not a bearer token", good(), nil, 400, "invalid_target", "no_matching_mapping", "denied/no_matching_mapping"},
		{"resource names the aws mapping", edit(func(v url.Values) { v.Del("audience"); v.Set("resource", "web") }), nil, 400, "invalid_target", "no_matching_mapping", "denied/no_matching_mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := &exchangeEnv{env: x.env.in(t), gh: x.gh}
			before := len(x.rows())
			e := wantOAuthError(t, x.tokenExchange(tt.form, tt.hdr...), tt.status, tt.code, tt.bridgeCode)
			rows := x.rows()
			if tt.row == "" {
				if len(rows) != before || e.IssuanceID != "" {
					t.Errorf("rows %v, issuance %q: want none", rows[before:], e.IssuanceID)
				}
			} else if len(rows) != before+1 || rows[len(rows)-1] != tt.row || e.IssuanceID == "" {
				t.Errorf("rows %v (issuance %q), want %s", rows[before:], e.IssuanceID, tt.row)
			}
			if sts.CallCount() != 0 {
				t.Error("STS was called")
			}
			if strings.Contains(e.ErrorDescription, "eyJ") {
				t.Error("a token in the description")
			}
		})
	}
}
