package bridge_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"

	"github.com/oidc-bridge/oidc-bridge/bridge"
	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/providers"
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

// TestTokenExchangeJWT: the RFC 8693 endpoint and /v1/exchange issue a
// bridge-signed JWT for an internal audience; it verifies with go-oidc
// against the bridge's issuer, carries the delegation, and is recorded.
func TestTokenExchangeJWT(t *testing.T) {
	x := newExchangeEnv(t)
	x.must(201, "POST", "/v1/admin/mappings", `{"name": "internal", "issuer": "github",
		"conditions": {"repository": "acme/web"}, "provider": "jwt", "max_duration_seconds": 600,
		"target": {"audience": "https://deploy.internal.example", "claims": {"team": "web"}}}`)
	subject := x.token(map[string]any{"jti": "jti-te-1"})
	r := x.tokenExchange(url.Values{"grant_type": {grantTE}, "subject_token": {subject}, "subject_token_type": {typeIDTok},
		"resource": {"internal"}, "requested_token_type": {"urn:ietf:params:oauth:token-type:jwt"}})
	if r.status != 200 {
		t.Fatalf("token exchange: %d %s", r.status, r.body)
	}
	var resp api.TokenExchangeResponse
	if err := json.Unmarshal(r.body, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.IssuedTokenType != typeJWT || resp.TokenType != "Bearer" || resp.ExpiresIn < 590 || resp.ExpiresIn > 600 ||
		resp.Mapping != "internal" || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("response %s, headers %v", r.body, r.header)
	}
	signer := x.keys()
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, signer.Issuer())
	if err != nil {
		t.Fatal(err)
	}
	idt, err := provider.Verifier(&oidc.Config{ClientID: "https://deploy.internal.example"}).Verify(ctx, resp.AccessToken)
	if err != nil {
		t.Fatalf("the issued token does not verify: %v", err)
	}
	var claims struct {
		Sub        string            `json:"sub"`
		SrcSub     string            `json:"src_sub"`
		Act        map[string]string `json:"act"`
		Repository string            `json:"repository"`
		Team       string            `json:"team"`
		JTI        string            `json:"jti"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if claims.Sub != "oidc-bridge:jwt:mapping:internal" || claims.SrcSub != "repo:acme/web:environment:production" || claims.Act["iss"] != x.gh.URL() ||
		claims.Repository != "acme/web" || claims.Team != "web" || claims.JTI != resp.IssuanceID {
		t.Fatalf("claims %+v", claims)
	}
	var cred string
	if err := x.pool.QueryRow(ctx, `SELECT credential_id FROM audit.issuances WHERE id = $1 AND outcome = 'issued'`,
		resp.IssuanceID).Scan(&cred); err != nil {
		t.Fatal(err)
	}
	if cred != providers.TokenID(resp.AccessToken) {
		t.Fatalf("credential_id %q", cred)
	}
	// The same token again: replayed, in RFC 6749's shape.
	wantOAuthError(t, x.tokenExchange(url.Values{"grant_type": {grantTE}, "subject_token": {subject},
		"subject_token_type": {typeJWT}, "audience": {"internal"}}), 400, "invalid_request", "token_replayed")
	// /v1/exchange gives the same kind of credential in the contract's shape.
	r2 := x.exchange(x.token(nil), `{"mapping": "internal", "duration_seconds": 120}`)
	var er api.ExchangeResponse
	if err := json.Unmarshal(r2.body, &er); r2.status != 200 || err != nil {
		t.Fatalf("exchange: %d %s", r2.status, r2.body)
	}
	var body providers.JWTCredentials
	if err := json.Unmarshal(er.Credentials, &body); err != nil || body.Audience != "https://deploy.internal.example" ||
		body.TokenType != "Bearer" || body.Token == "" {
		t.Fatalf("credentials %s", er.Credentials)
	}
}

// TestIssuerEndpoints: the bridge's discovery document and JWKS.
func TestIssuerEndpoints(t *testing.T) {
	x := newExchangeEnv(t)
	r := x.do("GET", "/.well-known/openid-configuration", "", "Authorization", "")
	var doc map[string]any
	if err := json.Unmarshal(r.body, &doc); r.status != 200 || err != nil {
		t.Fatalf("discovery: %d %s", r.status, r.body)
	}
	iss := x.keys().Issuer()
	if doc["issuer"] != iss || doc["jwks_uri"] != iss+"/.well-known/jwks.json" || doc["token_endpoint"] != iss+"/oauth2/token" {
		t.Fatalf("discovery %v", doc)
	}
	r = x.do("GET", "/.well-known/jwks.json", "", "Authorization", "")
	if r.status != 200 || !strings.Contains(string(r.body), `"kty":"RSA"`) || !strings.Contains(string(r.body), `"kty":"EC"`) ||
		strings.Contains(string(r.body), `"d":`) {
		t.Fatalf("jwks: %d %s", r.status, r.body)
	}
}

// failingKeys is a KeySource whose store is down.
type failingKeys struct{}

func (failingKeys) JWKS(context.Context) (jose.JSONWebKeySet, error) {
	return jose.JSONWebKeySet{}, errors.New("database down")
}

func TestJWKSUnavailable(t *testing.T) {
	e := newEnv(t, func(o *bridge.Options) { o.Keys, o.PublicURL = failingKeys{}, "https://bridge.example.com" })
	e.wantError(e.do("GET", "/.well-known/jwks.json", "", "Authorization", ""), 503, api.CodeUnavailable, "")
	if r := e.do("GET", "/.well-known/openid-configuration", "", "Authorization", ""); r.status != 200 {
		t.Fatalf("discovery: %d", r.status)
	}
}

// TestTokenExchangeRequestedType: requested_token_type must be what the
// mapping issues (RFC 8693 §2.2.2): a jwt mapping issues
// urn:ietf:params:oauth:token-type:jwt, gcp and azure access tokens. A
// mismatched or unknown type is invalid_request, recorded, and refused
// before the reservation: the subject token is not spent and nothing is
// minted.
func TestTokenExchangeRequestedType(t *testing.T) {
	x := newExchangeEnv(t)
	x.must(201, "POST", "/v1/admin/mappings", `{"name": "internal", "issuer": "github",
		"conditions": {"repository": "acme/web"}, "provider": "jwt", "max_duration_seconds": 600,
		"target": {"audience": "https://deploy.internal.example"}}`)
	x.must(201, "POST", "/v1/admin/mappings", `{"name": "gcp-deploy", "issuer": "github",
		"conditions": {"repository": "acme/web"}, "provider": "gcp",
		"target": {"service_account": "deploy@acme-prod.iam.gserviceaccount.com"}}`)
	subject := x.token(map[string]any{"jti": "jti-rtt-1"})
	form := func(aud, typ string) url.Values {
		v := url.Values{"grant_type": {grantTE}, "subject_token": {subject}, "subject_token_type": {typeJWT}, "audience": {aud}}
		if typ != "" {
			v.Set("requested_token_type", typ)
		}
		return v
	}
	const typeAccess = "urn:ietf:params:oauth:token-type:access_token"
	for _, tt := range []struct{ name, aud, typ, row string }{
		{"access token from a jwt mapping", "internal", typeAccess, "denied/invalid_request"},
		{"jwt from a gcp mapping", "gcp-deploy", typeJWT, "denied/invalid_request"},
		{"unknown type", "internal", "urn:ietf:params:oauth:token-type:saml2", "denied/invalid_request"},
		{"id_token type", "internal", typeIDTok, "denied/invalid_request"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			x := &exchangeEnv{env: x.env.in(t), gh: x.gh}
			before := len(x.rows())
			e := wantOAuthError(t, x.tokenExchange(form(tt.aud, tt.typ)), 400, "invalid_request", "invalid_request")
			if !strings.Contains(e.ErrorDescription, "requested_token_type") {
				t.Errorf("description %q", e.ErrorDescription)
			}
			if rows := x.rows(); len(rows) != before+1 || rows[len(rows)-1] != tt.row {
				t.Errorf("rows %v, want %s", rows[before:], tt.row)
			}
		})
	}
	// Nothing was reserved: the same subject token still exchanges, with
	// the matching type, and absent means the mapping's own type.
	r := x.tokenExchange(form("internal", typeJWT))
	if r.status != 200 {
		t.Fatalf("matching type: %d %s", r.status, r.body)
	}
	var resp api.TokenExchangeResponse
	if err := json.Unmarshal(r.body, &resp); err != nil || resp.IssuedTokenType != typeJWT {
		t.Fatalf("response %s", r.body)
	}
	subject = x.token(map[string]any{"jti": "jti-rtt-2"})
	if r := x.tokenExchange(form("internal", "")); r.status != 200 || !strings.Contains(string(r.body), typeJWT) {
		t.Fatalf("no requested type: %d %s", r.status, r.body)
	}
}
