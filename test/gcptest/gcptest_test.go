package gcptest_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/auth/credentials"
	"github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/oidc-bridge/oidc-bridge/test/gcptest"
)

const (
	bridgeSA = "oidc-bridge@bridge-project.iam.gserviceaccount.com"
	deploySA = "deploy@acme-prod.iam.gserviceaccount.com"
	middleSA = "middle@acme-prod.iam.gserviceaccount.com"
	wip      = "//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/oidc-bridge/providers/bridge"
	wipHTTPS = "https://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/oidc-bridge/providers/bridge"
)

var (
	keyOnce sync.Once
	rsaKey  *rsa.PrivateKey
	rsaKey2 *rsa.PrivateKey
	ecKey   *ecdsa.PrivateKey
)

func keys(t *testing.T) {
	t.Helper()
	keyOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if rsaKey2, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
	})
}

// issuer is a minimal OIDC issuer (discovery and JWKS) whose tokens the
// tests shape freely.
type issuer struct {
	srv *httptest.Server
}

func newIssuer(t *testing.T) *issuer {
	t.Helper()
	keys(t)
	is := &issuer{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": is.srv.URL, "jwks_uri": is.srv.URL + "/jwks"})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
			{Key: &rsaKey.PublicKey, KeyID: "rsa-1", Algorithm: "RS256", Use: "sig"},
			{Key: &ecKey.PublicKey, KeyID: "ec-1", Algorithm: "ES256", Use: "sig"},
		}})
	})
	is.srv = httptest.NewServer(mux)
	t.Cleanup(is.srv.Close)
	return is
}

func (is *issuer) URL() string { return is.srv.URL }

// claims are valid claims for wip; edit them per test.
func (is *issuer) claims() map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": is.URL(), "sub": "oidc-bridge:gcp:mapping:web", "aud": wipHTTPS,
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"repository": "acme/web", "mapping": "web",
	}
}

func sign(t *testing.T, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type answer struct {
	Status int
	Body   map[string]any
}

func post(t *testing.T, u, contentType, body, bearer string) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{Status: resp.StatusCode}
	if err := json.Unmarshal(b, &a.Body); err != nil {
		t.Fatalf("answer %d is not JSON: %s", resp.StatusCode, b)
	}
	return a
}

func (a answer) str(k string) string { s, _ := a.Body[k].(string); return s }

// googleStatus is the status of Google's JSON error shape.
func (a answer) googleStatus() string {
	e, _ := a.Body["error"].(map[string]any)
	s, _ := e["status"].(string)
	if code, _ := e["code"].(float64); int(code) != a.Status {
		return "code mismatch"
	}
	return s
}

func stsForm(subject string, edit func(url.Values)) string {
	v := url.Values{
		"grant_type":           {gcptest.TokenExchangeGrant},
		"audience":             {wip},
		"scope":                {gcptest.CloudPlatformScope},
		"requested_token_type": {gcptest.AccessTokenType},
		"subject_token":        {subject},
		"subject_token_type":   {gcptest.JWTTokenType},
	}
	if edit != nil {
		edit(v)
	}
	return v.Encode()
}

func setupSTS(t *testing.T, p gcptest.WorkloadIdentityProvider) (*gcptest.Server, *issuer) {
	t.Helper()
	s := gcptest.New(t)
	is := newIssuer(t)
	if p.Name == "" {
		p.Name = wip
	}
	if p.IssuerURI == "" {
		p.IssuerURI = is.URL()
	}
	if err := s.AddWorkloadIdentityProvider(p); err != nil {
		t.Fatal(err)
	}
	return s, is
}

func TestSTSExchange(t *testing.T) {
	t.Parallel()
	p := gcptest.WorkloadIdentityProvider{AttributeMapping: map[string]string{
		"google.subject": "assertion.sub", "attribute.repository": "assertion.repository",
	}}
	s, is := setupSTS(t, p)
	p.Name = wip
	jwt := sign(t, jose.RS256, rsaKey, "rsa-1", is.claims())
	jsonCamel, _ := json.Marshal(map[string]string{
		"grantType": gcptest.TokenExchangeGrant, "audience": wip, "scope": gcptest.CloudPlatformScope,
		"requestedTokenType": gcptest.AccessTokenType, "subjectToken": jwt, "subjectTokenType": gcptest.JWTTokenType,
	})
	jsonSnake, _ := json.Marshal(map[string]string{
		"grant_type": gcptest.TokenExchangeGrant, "audience": wip, "scope": gcptest.CloudPlatformScope,
		"requested_token_type": gcptest.AccessTokenType, "subject_token": jwt, "subject_token_type": gcptest.IDTokenType,
	})
	for name, req := range map[string][2]string{
		"form":       {"application/x-www-form-urlencoded", stsForm(jwt, nil)},
		"json camel": {"application/json", string(jsonCamel)},
		"json snake": {"application/json", string(jsonSnake)},
		"es256":      {"application/x-www-form-urlencoded", stsForm(sign(t, jose.ES256, ecKey, "ec-1", is.claims()), nil)},
		"aud //":     {"application/x-www-form-urlencoded", stsForm(sign(t, jose.RS256, rsaKey, "rsa-1", with(is.claims(), "aud", wip)), nil)},
		"aud list":   {"application/x-www-form-urlencoded", stsForm(sign(t, jose.RS256, rsaKey, "rsa-1", with(is.claims(), "aud", []string{"x", wip})), nil)},
	} {
		t.Run(name, func(t *testing.T) {
			a := post(t, s.STSEndpoint()+"/v1/token", req[0], req[1], "")
			if a.Status != http.StatusOK || a.str("token_type") != "Bearer" || a.str("issued_token_type") != gcptest.AccessTokenType ||
				a.Body["expires_in"] != float64(3600) || a.str("access_token") == "" {
				t.Fatalf("answer %+v", a)
			}
			tok, ok := s.Lookup(a.str("access_token"))
			want := gcptest.Token{
				Via: gcptest.STS, Principal: p.Principal("oidc-bridge:gcp:mapping:web"), Attributes: map[string]string{"repository": "acme/web"},
				Pool: "projects/123456789012/locations/global/workloadIdentityPools/oidc-bridge", Scopes: []string{gcptest.CloudPlatformScope},
			}
			tok.Expiry = time.Time{}
			if diff := cmp.Diff(want, tok); !ok || diff != "" {
				t.Errorf("token (-want +got):\n%s", diff)
			}
		})
	}
	calls := s.CallsTo(gcptest.STS)
	if len(calls) != 6 || calls[0].SubjectClaims["sub"] != "oidc-bridge:gcp:mapping:web" || calls[0].Principal != p.Principal("oidc-bridge:gcp:mapping:web") {
		t.Errorf("calls %+v", calls)
	}
}

func with(m map[string]any, kv ...any) map[string]any {
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(m, kv[i].(string))
		} else {
			m[kv[i].(string)] = kv[i+1]
		}
	}
	return m
}

func TestSTSRejects(t *testing.T) {
	t.Parallel()
	s, is := setupSTS(t, gcptest.WorkloadIdentityProvider{})
	allowed, is2 := setupSTS(t, gcptest.WorkloadIdentityProvider{AllowedAudiences: []string{"https://bridge.example.com"}})
	now := time.Now()
	signed := func(c map[string]any) string { return sign(t, jose.RS256, rsaKey, "rsa-1", c) }
	tests := []struct {
		name    string
		server  *gcptest.Server
		body    string
		wantErr string
	}{
		{"wrong grant type", s, stsForm(signed(is.claims()), func(v url.Values) { v.Set("grant_type", gcptest.JWTBearerGrant) }), "unsupported_grant_type"},
		{"wrong requested type", s, stsForm(signed(is.claims()), func(v url.Values) { v.Set("requested_token_type", gcptest.JWTTokenType) }), "invalid_request"},
		{"wrong subject type", s, stsForm(signed(is.claims()), func(v url.Values) { v.Set("subject_token_type", gcptest.AccessTokenType) }), "invalid_request"},
		{"no subject token", s, stsForm("", nil), "invalid_request"},
		{"unknown provider", s, stsForm(signed(is.claims()), func(v url.Values) { v.Set("audience", strings.Replace(wip, "bridge", "other", 1)) }), "invalid_target"},
		{"not a jwt", s, stsForm("not-a-jwt", nil), "invalid_grant"},
		{"HS256", s, stsForm(sign(t, jose.HS256, []byte("0123456789abcdef0123456789abcdef"), "rsa-1", is.claims()), nil), "invalid_grant"},
		{"no kid", s, stsForm(sign(t, jose.RS256, rsaKey, "", is.claims()), nil), "invalid_grant"},
		{"unknown kid", s, stsForm(sign(t, jose.RS256, rsaKey, "rsa-9", is.claims()), nil), "invalid_grant"},
		{"forged signature", s, stsForm(sign(t, jose.RS256, rsaKey2, "rsa-1", is.claims()), nil), "invalid_grant"},
		{"other issuer", s, stsForm(signed(is2.claims()), nil), "invalid_grant"},
		{"wrong audience", s, stsForm(signed(with(is.claims(), "aud", "https://bridge.example.com")), nil), "invalid_grant"},
		{"audience not allowed", allowed, stsForm(signed(with(is2.claims(), "aud", wipHTTPS)), nil), "invalid_grant"},
		{"expired", s, stsForm(signed(with(is.claims(), "exp", now.Add(-time.Second).Unix())), nil), "invalid_grant"},
		{"no exp", s, stsForm(signed(with(is.claims(), "exp", nil)), nil), "invalid_grant"},
		{"no iat", s, stsForm(signed(with(is.claims(), "iat", nil)), nil), "invalid_grant"},
		{"iat in the future", s, stsForm(signed(with(is.claims(), "iat", now.Add(time.Hour).Unix(), "exp", now.Add(2*time.Hour).Unix())), nil), "invalid_grant"},
		{"48 hours", s, stsForm(signed(with(is.claims(), "iat", now.Unix(), "exp", now.Add(48*time.Hour).Unix())), nil), "invalid_grant"},
		{"nbf in the future", s, stsForm(signed(with(is.claims(), "nbf", now.Add(time.Hour).Unix())), nil), "invalid_grant"},
		{"no sub", s, stsForm(signed(with(is.claims(), "sub", nil)), nil), "invalid_grant"},
		{"sub too long", s, stsForm(signed(with(is.claims(), "sub", strings.Repeat("x", 128))), nil), "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := post(t, tt.server.STSEndpoint()+"/v1/token", "application/x-www-form-urlencoded", tt.body, "")
			if a.Status != http.StatusBadRequest || a.str("error") != tt.wantErr || a.str("error_description") == "" {
				t.Errorf("answer %+v, want 400 %s", a, tt.wantErr)
			}
		})
	}
	// The allowed audience passes where the default ones do not.
	a := post(t, allowed.STSEndpoint()+"/v1/token", "application/x-www-form-urlencoded",
		stsForm(signed(with(is2.claims(), "aud", "https://bridge.example.com")), nil), "")
	if a.Status != http.StatusOK {
		t.Errorf("allowed audience: %+v", a)
	}
	for _, c := range s.CallsTo(gcptest.STS) {
		if c.Status != http.StatusBadRequest || c.ErrorCode == "" {
			t.Errorf("call %+v", c)
		}
	}
}

func TestAddWorkloadIdentityProviderValidates(t *testing.T) {
	t.Parallel()
	h := gcptest.NewHandler()
	for _, p := range []gcptest.WorkloadIdentityProvider{
		{Name: "projects/1/locations/global/workloadIdentityPools/pool/providers/prov", IssuerURI: "https://x"},
		{Name: wip, IssuerURI: "not a url"},
		{Name: wip, IssuerURI: "https://x", AttributeMapping: map[string]string{"attribute.a": "assertion.a + 'x'", "google.groups": "assertion.g"}},
	} {
		if err := h.AddWorkloadIdentityProvider(p); err == nil {
			t.Errorf("%+v accepted", p)
		}
	}
}

// oauthToken gets a token for a service account through the real auth
// library and the key file the fake wrote.
func oauthToken(t *testing.T, s *gcptest.Server, email string, scopes ...string) string {
	t.Helper()
	creds, err := credentials.NewCredentialsFromFile(credentials.ServiceAccount, s.WriteCredentialsFile(t, email),
		&credentials.DetectOptions{Scopes: scopes})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := creds.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return tok.Value
}

func TestOAuthWithTheAuthLibrary(t *testing.T) {
	t.Parallel()
	s := gcptest.New(t)
	tok := oauthToken(t, s, bridgeSA, gcptest.CloudPlatformScope)
	info, ok := s.Lookup(tok)
	if !ok || info.Via != gcptest.OAuth || info.Principal != bridgeSA || !cmp.Equal(info.Scopes, []string{gcptest.CloudPlatformScope}) ||
		time.Until(info.Expiry) < 59*time.Minute {
		t.Errorf("token %+v", info)
	}
	calls := s.CallsTo(gcptest.OAuth)
	if len(calls) != 1 || calls[0].ClientEmail != bridgeSA || calls[0].GrantType != gcptest.JWTBearerGrant || calls[0].Status != 200 {
		t.Errorf("calls %+v", calls)
	}

	var file map[string]string
	b := s.AddServiceAccountKey(bridgeSA).JSON(s.TokenURL())
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	if file["type"] != "service_account" || file["token_uri"] != s.TokenURL() || file["client_email"] != bridgeSA ||
		file["project_id"] != "bridge-project" || !strings.HasPrefix(file["private_key"], "-----BEGIN PRIVATE KEY-----") {
		t.Errorf("key file %v", file)
	}
}

func TestOAuthRejects(t *testing.T) {
	t.Parallel()
	s := gcptest.New(t)
	keys(t)
	k := s.AddServiceAccountKey(bridgeSA)
	now := time.Now()
	good := func() map[string]any {
		return map[string]any{"iss": bridgeSA, "aud": s.TokenURL(), "scope": gcptest.CloudPlatformScope,
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	}
	form := func(assertion string) string {
		return url.Values{"grant_type": {gcptest.JWTBearerGrant}, "assertion": {assertion}}.Encode()
	}
	tests := []struct {
		name, body, wantErr string
	}{
		{"ok", form(sign(t, jose.RS256, k.PrivateKey, k.PrivateKeyID, good())), ""},
		{"grant type", url.Values{"grant_type": {"client_credentials"}}.Encode(), "unsupported_grant_type"},
		{"unknown key id", form(sign(t, jose.RS256, k.PrivateKey, "nope", good())), "invalid_grant"},
		{"other key", form(sign(t, jose.RS256, rsaKey2, k.PrivateKeyID, good())), "invalid_grant"},
		{"other account", form(sign(t, jose.RS256, k.PrivateKey, k.PrivateKeyID, with(good(), "iss", deploySA))), "invalid_grant"},
		{"audience", form(sign(t, jose.RS256, k.PrivateKey, k.PrivateKeyID, with(good(), "aud", "https://oauth2.googleapis.com/token"))), "invalid_grant"},
		{"expired", form(sign(t, jose.RS256, k.PrivateKey, k.PrivateKeyID, with(good(), "exp", now.Add(-time.Minute).Unix()))), "invalid_grant"},
		{"too long", form(sign(t, jose.RS256, k.PrivateKey, k.PrivateKeyID, with(good(), "exp", now.Add(2*time.Hour).Unix()))), "invalid_grant"},
		{"no scope", form(sign(t, jose.RS256, k.PrivateKey, k.PrivateKeyID, with(good(), "scope", nil))), "invalid_scope"},
		{"subject", form(sign(t, jose.RS256, k.PrivateKey, k.PrivateKeyID, with(good(), "sub", "user@example.com"))), "unauthorized_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := post(t, s.TokenURL(), "application/x-www-form-urlencoded", tt.body, "")
			if tt.wantErr == "" {
				if a.Status != 200 || a.str("token_type") != "Bearer" || a.Body["expires_in"] != float64(3599) || a.str("access_token") == "" {
					t.Errorf("answer %+v", a)
				}
				return
			}
			if a.Status/100 != 4 || a.str("error") != tt.wantErr {
				t.Errorf("answer %+v, want %s", a, tt.wantErr)
			}
		})
	}
	if a := post(t, s.TokenURL(), "application/json", "{}", ""); a.str("error") != "invalid_request" {
		t.Errorf("JSON body: %+v", a)
	}
}

func generate(t *testing.T, s *gcptest.Server, account, bearer string, body map[string]any) answer {
	t.Helper()
	b, _ := json.Marshal(body)
	return post(t, s.IAMCredentialsEndpoint()+"/v1/projects/-/serviceAccounts/"+account+":generateAccessToken?%24alt=json%3Benum-encoding%3Dint",
		"application/json", string(b), bearer)
}

func TestGenerateAccessToken(t *testing.T) {
	t.Parallel()
	s := gcptest.New(t)
	s.Allow(bridgeSA, middleSA)
	s.Allow(middleSA, deploySA)
	bearer := oauthToken(t, s, bridgeSA, gcptest.CloudPlatformScope)
	start := time.Now()
	a := generate(t, s, deploySA, bearer, map[string]any{
		"scope": []string{gcptest.CloudPlatformScope}, "delegates": []string{"projects/-/serviceAccounts/" + middleSA}, "lifetime": "900s",
	})
	if a.Status != 200 || !strings.HasPrefix(a.str("accessToken"), "ya29.") {
		t.Fatalf("answer %+v", a)
	}
	exp, err := time.Parse(time.RFC3339, a.str("expireTime"))
	if err != nil || exp.Sub(start) < 899*time.Second || exp.Sub(start) > 901*time.Second {
		t.Errorf("expireTime %q", a.str("expireTime"))
	}
	info, _ := s.Lookup(a.str("accessToken"))
	if info.Via != gcptest.IAMCredentials || info.Principal != deploySA || !info.Expiry.Equal(exp) {
		t.Errorf("token %+v", info)
	}
	// The minted token can itself impersonate (chaining), where allowed.
	s.Allow(deploySA, middleSA)
	if a := generate(t, s, middleSA, a.str("accessToken"), map[string]any{"scope": []string{gcptest.CloudPlatformScope}}); a.Status != 200 {
		t.Errorf("chained: %+v", a)
	}
	c := s.CallsTo(gcptest.IAMCredentials)[0]
	if c.Caller != bridgeSA || c.CallerVia != gcptest.OAuth || c.ServiceAccount != deploySA ||
		!cmp.Equal(c.Delegates, []string{middleSA}) || c.Lifetime != 15*time.Minute || c.Status != 200 {
		t.Errorf("call %+v", c)
	}
}

func TestGenerateAccessTokenRejects(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Now()}
	s := gcptest.New(t, gcptest.WithClock(clock.now))
	s.Allow(bridgeSA, deploySA)
	bearer := oauthToken(t, s, bridgeSA, gcptest.CloudPlatformScope)
	narrow := oauthToken(t, s, bridgeSA, "https://www.googleapis.com/auth/devstorage.read_only")
	scope := []string{gcptest.CloudPlatformScope}
	tests := []struct {
		name, account, bearer string
		body                  map[string]any
		want                  string
	}{
		{"no bearer", deploySA, "", map[string]any{"scope": scope}, "UNAUTHENTICATED"},
		{"unknown bearer", deploySA, "ya29.forged", map[string]any{"scope": scope}, "UNAUTHENTICATED"},
		{"narrow scope", deploySA, narrow, map[string]any{"scope": scope}, "PERMISSION_DENIED"},
		{"not allowed", "other@acme-prod.iam.gserviceaccount.com", bearer, map[string]any{"scope": scope}, "PERMISSION_DENIED"},
		{"delegate not allowed", deploySA, bearer, map[string]any{"scope": scope, "delegates": []string{"projects/-/serviceAccounts/" + middleSA}}, "PERMISSION_DENIED"},
		{"bad delegate", deploySA, bearer, map[string]any{"scope": scope, "delegates": []string{middleSA}}, "INVALID_ARGUMENT"},
		{"no scope", deploySA, bearer, map[string]any{}, "INVALID_ARGUMENT"},
		{"lifetime", deploySA, bearer, map[string]any{"scope": scope, "lifetime": "3601s"}, "INVALID_ARGUMENT"},
		{"bad lifetime", deploySA, bearer, map[string]any{"scope": scope, "lifetime": "1h"}, "INVALID_ARGUMENT"},
		{"unknown field", deploySA, bearer, map[string]any{"scope": scope, "lifespan": "60s"}, "INVALID_ARGUMENT"},
		{"name mismatch", deploySA, bearer, map[string]any{"scope": scope, "name": "projects/-/serviceAccounts/" + middleSA}, "INVALID_ARGUMENT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := generate(t, s, tt.account, tt.bearer, tt.body)
			if got := a.googleStatus(); got != tt.want {
				t.Errorf("answer %d %v, want %s", a.Status, a.Body, tt.want)
			}
		})
	}
	if a := post(t, s.URL()+"/v1/projects/acme/serviceAccounts/"+deploySA+":generateAccessToken", "application/json", `{"scope":["x"]}`, bearer); a.googleStatus() != "INVALID_ARGUMENT" {
		t.Errorf("project not -: %+v", a)
	}
	if a := post(t, s.URL()+"/v1/projects/-/serviceAccounts/"+deploySA+":signBlob", "application/json", `{}`, bearer); a.googleStatus() != "NOT_FOUND" {
		t.Errorf("signBlob: %+v", a)
	}
	// PERMISSION_DENIED carries an ErrorInfo like Google's.
	a := generate(t, s, "other@acme-prod.iam.gserviceaccount.com", bearer, map[string]any{"scope": scope})
	details, _ := a.Body["error"].(map[string]any)["details"].([]any)
	if len(details) != 1 || details[0].(map[string]any)["reason"] != "IAM_PERMISSION_DENIED" {
		t.Errorf("details %v", details)
	}
	// Expired bearer.
	clock.advance(time.Hour)
	if a := generate(t, s, deploySA, bearer, map[string]any{"scope": scope}); a.googleStatus() != "UNAUTHENTICATED" {
		t.Errorf("expired bearer: %+v", a)
	}
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestMaxLifetime(t *testing.T) {
	t.Parallel()
	s := gcptest.New(t, gcptest.WithLifetimeExtension(deploySA))
	s.Allow(bridgeSA, deploySA, middleSA)
	bearer := oauthToken(t, s, bridgeSA, gcptest.IAMScope)
	if a := generate(t, s, deploySA, bearer, map[string]any{"scope": []string{"x"}, "lifetime": "43200s"}); a.Status != 200 {
		t.Errorf("12 h: %+v", a)
	}
	if a := generate(t, s, deploySA, bearer, map[string]any{"scope": []string{"x"}, "lifetime": "43201s"}); a.googleStatus() != "INVALID_ARGUMENT" {
		t.Errorf("over 12 h: %+v", a)
	}
	// The org policy lists deploySA only: middleSA keeps the hour.
	if a := generate(t, s, middleSA, bearer, map[string]any{"scope": []string{"x"}, "lifetime": "3600s"}); a.Status != 200 {
		t.Errorf("1 h: %+v", a)
	}
	a := generate(t, s, middleSA, bearer, map[string]any{"scope": []string{"x"}, "lifetime": "3601s"})
	if a.Status != 400 || a.googleStatus() != "INVALID_ARGUMENT" {
		t.Fatalf("over 1 h without the org policy: %+v", a)
	}
	if msg, _ := a.Body["error"].(map[string]any)["message"].(string); !strings.Contains(msg, gcptest.LifetimeConstraint) {
		t.Errorf("message %q does not name the constraint", msg)
	}
}

func TestFederatedCaller(t *testing.T) {
	t.Parallel()
	p := gcptest.WorkloadIdentityProvider{AttributeMapping: map[string]string{
		"google.subject": "assertion.sub", "attribute.mapping": "assertion.mapping",
	}}
	s, is := setupSTS(t, p)
	p.Name = wip
	exchange := func(sub, mapping string) string {
		a := post(t, s.STSEndpoint()+"/v1/token", "application/x-www-form-urlencoded",
			stsForm(sign(t, jose.RS256, rsaKey, "rsa-1", with(is.claims(), "sub", sub, "mapping", mapping)), nil), "")
		if a.Status != 200 {
			t.Fatalf("exchange: %+v", a)
		}
		return a.str("access_token")
	}
	s.Allow(p.Principal("oidc-bridge:gcp:mapping:a"), deploySA)
	s.Allow(p.PrincipalSet("mapping", "b"), middleSA)
	s.Allow(p.AllIdentities(), "everyone@acme-prod.iam.gserviceaccount.com")
	body := map[string]any{"scope": []string{gcptest.CloudPlatformScope}}
	for _, tt := range []struct {
		sub, mapping, account string
		ok                    bool
	}{
		{"oidc-bridge:gcp:mapping:a", "a", deploySA, true},
		{"oidc-bridge:gcp:mapping:b", "b", deploySA, false},
		{"oidc-bridge:gcp:mapping:b", "b", middleSA, true},
		{"oidc-bridge:gcp:mapping:a", "a", middleSA, false},
		{"oidc-bridge:gcp:mapping:c", "c", "everyone@acme-prod.iam.gserviceaccount.com", true},
	} {
		a := generate(t, s, tt.account, exchange(tt.sub, tt.mapping), body)
		if (a.Status == 200) != tt.ok {
			t.Errorf("%s → %s: %d %v", tt.sub, tt.account, a.Status, a.Body)
		}
	}
	c := s.CallsTo(gcptest.IAMCredentials)[0]
	if c.Caller != p.Principal("oidc-bridge:gcp:mapping:a") || c.CallerVia != gcptest.STS {
		t.Errorf("call %+v", c)
	}
}

func TestControls(t *testing.T) {
	t.Parallel()
	s, is := setupSTS(t, gcptest.WorkloadIdentityProvider{})
	s.Allow(bridgeSA, deploySA)
	bearer := oauthToken(t, s, bridgeSA, gcptest.CloudPlatformScope)
	body := map[string]any{"scope": []string{gcptest.CloudPlatformScope}}
	sts := func() answer {
		return post(t, s.STSEndpoint()+"/v1/token", "application/x-www-form-urlencoded", stsForm(sign(t, jose.RS256, rsaKey, "rsa-1", is.claims()), nil), "")
	}

	s.Refuse(gcptest.IAMCredentials, "NOT_FOUND")
	if a := generate(t, s, deploySA, bearer, body); a.Status != 404 || a.googleStatus() != "NOT_FOUND" {
		t.Errorf("refuse: %+v", a)
	}
	if a := sts(); a.Status != 200 {
		t.Errorf("refusal of IAM reached STS: %+v", a)
	}
	s.Refuse(gcptest.STS, "invalid_grant")
	if a := sts(); a.Status != 400 || a.str("error") != "invalid_grant" {
		t.Errorf("refuse sts: %+v", a)
	}
	s.Reset()
	if len(s.Calls()) != 0 {
		t.Error("Reset kept the calls")
	}

	s.Fail(gcptest.IAMCredentials, 2, http.StatusServiceUnavailable)
	for i, want := range []int{503, 503, 200} {
		a := generate(t, s, deploySA, bearer, body)
		if a.Status != want {
			t.Errorf("attempt %d: %+v", i, a)
		}
		if want == 503 && a.googleStatus() != "UNAVAILABLE" {
			t.Errorf("503 shape: %+v", a)
		}
	}
	s.Fail(gcptest.STS, 1, http.StatusInternalServerError)
	if a := sts(); a.Status != 500 || a.str("error") != "server_error" {
		t.Errorf("fail sts: %+v", a)
	}
	s.Fail(gcptest.IAMCredentials, 1, http.StatusTooManyRequests)
	if a := generate(t, s, deploySA, bearer, body); a.googleStatus() != "RESOURCE_EXHAUSTED" {
		t.Errorf("429: %+v", a)
	}

	// Hang holds requests until the client gives up, or Reset releases them.
	s.Hang(gcptest.IAMCredentials)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL()+"/v1/projects/-/serviceAccounts/"+deploySA+":generateAccessToken",
		strings.NewReader(`{"scope":["`+gcptest.CloudPlatformScope+`"]}`))
	req.Header.Set("Authorization", "Bearer "+bearer)
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Error("a hung request answered")
	}
	done := make(chan answer)
	go func() { done <- generate(t, s, deploySA, bearer, body) }()
	time.Sleep(50 * time.Millisecond)
	select {
	case a := <-done:
		t.Fatalf("answered while hanging: %+v", a)
	default:
	}
	s.Reset()
	if a := <-done; a.Status != 200 {
		t.Errorf("after Reset: %+v", a)
	}
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	s, is := setupSTS(t, gcptest.WorkloadIdentityProvider{})
	s.Allow(bridgeSA, deploySA)
	bearer := oauthToken(t, s, bridgeSA, gcptest.CloudPlatformScope)
	var ok atomic.Int32
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			switch i % 3 {
			case 0:
				if generate(t, s, deploySA, bearer, map[string]any{"scope": []string{gcptest.CloudPlatformScope}}).Status == 200 {
					ok.Add(1)
				}
			case 1:
				if post(t, s.STSEndpoint()+"/v1/token", "application/x-www-form-urlencoded", stsForm(sign(t, jose.RS256, rsaKey, "rsa-1", is.claims()), nil), "").Status == 200 {
					ok.Add(1)
				}
			default:
				s.Fail(gcptest.OAuth, 0, 0)
				_ = s.Calls()
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 20 {
		t.Errorf("%d of 20 succeeded", ok.Load())
	}
}

func TestStatusOf(t *testing.T) {
	t.Parallel()
	for status, want := range map[int]string{400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
		404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED", 418: "UNKNOWN"} {
		if got := gcptest.StatusOf(status); got != want {
			t.Errorf("StatusOf(%d) = %s, want %s", status, got, want)
		}
	}
}
