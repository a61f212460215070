package jwt_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/google/go-cmp/cmp"

	"github.com/oidc-bridge/oidc-bridge/identity"
	"github.com/oidc-bridge/oidc-bridge/providers"
	"github.com/oidc-bridge/oidc-bridge/providers/jwt"
	"github.com/oidc-bridge/oidc-bridge/signing/signingtest"
)

const audience = "https://deploy.internal.example"

// rawClaims decodes claims written as JSON as identity does: numbers as
// json.Number.
func rawClaims(t *testing.T, s string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func githubClaims(t *testing.T) *identity.Claims {
	t.Helper()
	return &identity.Claims{
		Issuer:          "https://token.actions.githubusercontent.com",
		IssuerName:      "github",
		Kind:            identity.KindGitHub,
		Subject:         "repo:acme/web:environment:prod",
		Audience:        "https://bridge.example",
		JTI:             "pipeline-jti",
		Repository:      "acme/web",
		RepositoryID:    "987654321",
		RepositoryOwner: "acme",
		Ref:             "refs/heads/main",
		RefType:         "branch",
		SHA:             "0123456789abcdef0123456789abcdef01234567",
		Environment:     "prod",
		EventName:       "push",
		WorkflowRef:     "acme/web/.github/workflows/deploy.yml@refs/heads/main",
		Actor:           "octocat",
		RunID:           "12345678901",
		RunAttempt:      "2",
		JobID:           "555",
		Raw:             rawClaims(t, `{"sub":"repo:acme/web:environment:prod","runner_environment":"github-hosted"}`),
	}
}

func request(t *testing.T, target string) providers.Request {
	t.Helper()
	return providers.Request{
		IssuanceID: "0193b9e2-6c1e-7c3a-9f1e-2a4b5c6d7e8f",
		Mapping:    "web-prod-deploy",
		Target:     json.RawMessage(target),
		Claims:     githubClaims(t),
		Duration:   15 * time.Minute,
	}
}

// verify checks token as a consuming service would, with go-oidc against
// the signer's discovery document, and returns its claims.
func verify(t *testing.T, s *signingtest.Signer, aud, token string) (*oidc.IDToken, map[string]any) {
	t.Helper()
	p, err := oidc.NewProvider(t.Context(), s.Issuer())
	if err != nil {
		t.Fatal(err)
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: aud}).Verify(t.Context(), token)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	return idt, claims
}

func wantError(t *testing.T, err error, sentinel error, code string) {
	t.Helper()
	var pe *providers.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *providers.Error", err, err)
	}
	if pe.Provider != "jwt" || pe.Code != code || !errors.Is(err, sentinel) || pe.Indeterminate {
		t.Errorf("error = %+v (%v), want jwt/%s wrapping %v", pe, err, code, sentinel)
	}
}

func TestMint(t *testing.T) {
	t.Parallel()
	s := signingtest.New(t)
	p := jwt.New(jwt.Config{Signer: s})
	if p.Name() != "jwt" {
		t.Errorf("Name = %q", p.Name())
	}
	start := time.Now().Truncate(time.Second)
	cred, err := p.Mint(t.Context(), request(t, `{"audience":"`+audience+`","claims":{"team":"platform","tier":2,"scopes":["deploy","read"],"big":12345678901234567890}}`))
	if err != nil {
		t.Fatal(err)
	}
	body, ok := cred.Body.(providers.JWTCredentials)
	if !ok {
		t.Fatalf("Body is %T", cred.Body)
	}
	if body.TokenType != "Bearer" || body.Audience != audience || !body.ExpiresAt.Equal(cred.ExpiresAt) || cred.ID != providers.TokenID(body.Token) {
		t.Errorf("credential %+v, body type %q aud %q", cred, body.TokenType, body.Audience)
	}
	if d := cred.ExpiresAt.Sub(start); d < 15*time.Minute || d > 15*time.Minute+time.Second {
		t.Errorf("expires %v after the mint", d)
	}

	idt, claims := verify(t, s, audience, body.Token)
	if !idt.Expiry.Equal(cred.ExpiresAt) {
		t.Errorf("exp %v, credential says %v", idt.Expiry, cred.ExpiresAt)
	}
	iat, nbf, exp := claims["iat"].(float64), claims["nbf"].(float64), claims["exp"].(float64)
	if exp-nbf != 900 || iat < nbf || iat > nbf+1 {
		t.Errorf("iat %v nbf %v exp %v", iat, nbf, exp)
	}
	delete(claims, "iat")
	delete(claims, "nbf")
	delete(claims, "exp")
	want := map[string]any{
		"iss":              s.Issuer(),
		"sub":              "oidc-bridge:jwt:mapping:web-prod-deploy",
		"src_sub":          "repo:acme/web:environment:prod",
		"aud":              audience,
		"jti":              "0193b9e2-6c1e-7c3a-9f1e-2a4b5c6d7e8f",
		"act":              map[string]any{"iss": "https://token.actions.githubusercontent.com", "sub": "repo:acme/web:environment:prod"},
		"src_iss":          "https://token.actions.githubusercontent.com",
		"mapping":          "web-prod-deploy",
		"repository":       "acme/web",
		"repository_id":    "987654321",
		"repository_owner": "acme",
		"ref":              "refs/heads/main",
		"ref_type":         "branch",
		"sha":              "0123456789abcdef0123456789abcdef01234567",
		"environment":      "prod",
		"event_name":       "push",
		"workflow_ref":     "acme/web/.github/workflows/deploy.yml@refs/heads/main",
		"actor":            "octocat",
		"run_id":           "12345678901",
		"run_attempt":      "2",
		"job_id":           "555",
		"team":             "platform",
		"tier":             float64(2),
		"scopes":           []any{"deploy", "read"},
		"big":              1.2345678901234567e+19,
	}
	if d := cmp.Diff(want, claims); d != "" {
		t.Errorf("claims (-want +got):\n%s", d)
	}
	// Static numbers go out as the admin wrote them.
	if !strings.Contains(string(payload(t, body.Token)), `"big":12345678901234567890`) {
		t.Errorf("payload %s", payload(t, body.Token))
	}

	// Another audience's verifier refuses the token.
	pr, err := oidc.NewProvider(t.Context(), s.Issuer())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pr.Verifier(&oidc.Config{ClientID: "https://other.internal.example"}).Verify(t.Context(), body.Token); err == nil {
		t.Error("a token for another audience verified")
	}
}

func payload(t *testing.T, token string) []byte {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMintGitLabWithoutOptionalClaims(t *testing.T) {
	t.Parallel()
	s := signingtest.New(t)
	p := jwt.New(jwt.Config{Signer: s})
	req := request(t, `{"audience":"`+audience+`"}`)
	req.Claims = &identity.Claims{
		Issuer: "https://gitlab.com", Kind: identity.KindGitLab,
		Subject: "project_path:platform/app:ref_type:tag:ref:v1.2.3", Repository: "platform/app", RunID: "1212",
	}
	cred, err := p.Mint(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	_, claims := verify(t, s, audience, cred.Body.(providers.JWTCredentials).Token)
	for _, absent := range []string{"environment", "actor", "run_attempt", "repository_id", "sha"} {
		if _, ok := claims[absent]; ok {
			t.Errorf("claim %s present though the pipeline had none", absent)
		}
	}
	if claims["sub"] != "oidc-bridge:jwt:mapping:web-prod-deploy" || claims["src_sub"] != req.Claims.Subject || claims["src_iss"] != "https://gitlab.com" || claims["repository"] != "platform/app" {
		t.Errorf("claims %v", claims)
	}
}

func TestDelegation(t *testing.T) {
	t.Parallel()
	s := signingtest.New(t)
	const bridge = "https://bridge.example"
	const pipelineSub = "repo:acme/web:environment:prod"
	gh := map[string]any{"iss": "https://token.actions.githubusercontent.com", "sub": pipelineSub}
	tests := []struct {
		name     string
		maxDepth int
		issuer   string
		raw      string // the pipeline token's claims
		want     map[string]any
		wantCode string
	}{
		{name: "no act", issuer: gh["iss"].(string), raw: `{}`,
			want: gh},
		{name: "one prior", issuer: bridge, raw: `{"act":{"iss":"https://token.actions.githubusercontent.com","sub":"` + pipelineSub + `"}}`,
			want: map[string]any{"iss": bridge, "sub": pipelineSub, "act": gh}},
		{name: "two prior, depth 3", issuer: bridge,
			raw: `{"act":{"iss":"` + bridge + `","sub":"` + pipelineSub + `","act":{"iss":"https://token.actions.githubusercontent.com","sub":"` + pipelineSub + `"}}}`,
			want: map[string]any{"iss": bridge, "sub": pipelineSub,
				"act": map[string]any{"iss": bridge, "sub": pipelineSub, "act": gh}}},
		{name: "three prior", issuer: bridge,
			raw:      `{"act":{"sub":"a","act":{"sub":"b","act":{"sub":"c"}}}}`,
			wantCode: "DelegationTooDeep"},
		{name: "depth 1 refuses any prior", maxDepth: 1, issuer: bridge, raw: `{"act":{"sub":"a"}}`,
			wantCode: "DelegationTooDeep"},
		{name: "depth 5 admits four prior", maxDepth: 5, issuer: bridge,
			raw: `{"act":{"sub":"a","act":{"sub":"b","act":{"sub":"c","act":{"sub":"d"}}}}}`,
			want: map[string]any{"iss": bridge, "sub": pipelineSub,
				"act": map[string]any{"sub": "a", "act": map[string]any{"sub": "b", "act": map[string]any{"sub": "c", "act": map[string]any{"sub": "d"}}}}}},
		{name: "only iss and sub of prior actors", issuer: bridge,
			raw:  `{"act":{"sub":"a","iss":"https://x.example","exp":1,"aud":"y","may_act":{"sub":"z"},"email":"e@x"}}`,
			want: map[string]any{"iss": bridge, "sub": pipelineSub, "act": map[string]any{"iss": "https://x.example", "sub": "a"}}},
		{name: "act not an object", issuer: bridge, raw: `{"act":"someone"}`, wantCode: "InvalidDelegation"},
		{name: "act null", issuer: bridge, raw: `{"act":null}`, wantCode: "InvalidDelegation"},
		{name: "act array", issuer: bridge, raw: `{"act":[{"sub":"a"}]}`, wantCode: "InvalidDelegation"},
		{name: "act without sub", issuer: bridge, raw: `{"act":{"iss":"https://x.example"}}`, wantCode: "InvalidDelegation"},
		{name: "act sub number", issuer: bridge, raw: `{"act":{"sub":42}}`, wantCode: "InvalidDelegation"},
		{name: "act iss number", issuer: bridge, raw: `{"act":{"sub":"a","iss":1}}`, wantCode: "InvalidDelegation"},
		{name: "nested act malformed", issuer: bridge, raw: `{"act":{"sub":"a","act":"b"}}`, wantCode: "InvalidDelegation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := jwt.New(jwt.Config{Signer: s, MaxDelegationDepth: tt.maxDepth})
			req := request(t, `{"audience":"`+audience+`"}`)
			req.Claims.Issuer = tt.issuer
			req.Claims.Raw = rawClaims(t, tt.raw)
			cred, err := p.Mint(t.Context(), req)
			if tt.wantCode != "" {
				wantError(t, err, providers.ErrRefused, tt.wantCode)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			_, claims := verify(t, s, audience, cred.Body.(providers.JWTCredentials).Token)
			want := tt.want
			if tt.name != "no act" {
				want = map[string]any{"iss": tt.issuer, "sub": pipelineSub}
				for k, v := range tt.want {
					want[k] = v
				}
			}
			if d := cmp.Diff(want, claims["act"]); d != "" {
				t.Errorf("act (-want +got):\n%s", d)
			}
			if claims["sub"] != jwt.Subject("web-prod-deploy") || claims["src_sub"] != pipelineSub || claims["src_iss"] != tt.issuer {
				t.Errorf("sub %v src_sub %v src_iss %v", claims["sub"], claims["src_sub"], claims["src_iss"])
			}
		})
	}
}

func TestTargets(t *testing.T) {
	t.Parallel()
	s := signingtest.New(t)
	p := jwt.New(jwt.Config{Signer: s})
	var bad []string
	for _, name := range jwt.ReservedClaims() {
		bad = append(bad, `{"audience":"`+audience+`","claims":{"`+name+`":"x"}}`)
	}
	bad = append(bad,
		``, `null`, `[]`, `"aud"`, `{}`,
		`{"audience":""}`,
		`{"audience":"a b"}`,
		`{"audience":"a\n"}`,
		`{"audience":1}`,
		`{"audience":"`+audience+`","extra":1}`,
		`{"AUDIENCE":"`+audience+`"}`,
		`{"audience":"`+audience+`","audience":"https://admin.internal"}`,
		`{"audience":"`+audience+`","claims":[]}`,
		`{"audience":"`+audience+`","claims":"x"}`,
		`{"audience":"`+audience+`","claims":{"":1}}`,
		`{"audience":"`+audience+`","claims":{"a":1,"a":2}}`,
		`{"audience":"`+audience+`"}{}`,
		`{"audience":"`+audience+`"`,
	)
	// The audiences of the clouds' federation, which the bridge's own
	// assertions carry: a jwt token must never be presentable there, even
	// from a target written behind the admin API's back.
	for _, aud := range []string{
		"sts.amazonaws.com", "STS.AmazonAWS.com", "sts.amazonaws.com.", "https://sts.amazonaws.com/",
		"sts.cn-north-1.amazonaws.com.cn", "sts.us-gov-west-1.amazonaws.com",
		"api://AzureADTokenExchange", "API://azureadtokenexchange", "api://AzureADTokenExchangeUSGov",
		"api://AzureADTokenExchangeChina",
		"//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/b",
		"https://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/b",
		"sts.googleapis.com", "https://sts.googleapis.com",
	} {
		bad = append(bad, `{"audience":"`+aud+`"}`)
	}
	for _, name := range []string{"https://aws.amazon.com/tags", "https://aws.amazon.com/source_identity", "HTTPS://AWS.AMAZON.COM/x", "src_sub", "ci_subject", "service_account"} {
		bad = append(bad, `{"audience":"`+audience+`","claims":{"`+name+`":"x"}}`)
	}
	for _, target := range bad {
		_, err := p.Mint(t.Context(), request(t, target))
		var pe *providers.Error
		if !errors.As(err, &pe) || pe.Code != "InvalidTarget" || !errors.Is(err, providers.ErrRefused) {
			t.Errorf("target %s: error %v, want InvalidTarget", target, err)
		}
	}
	if s.Signed() != 0 {
		t.Errorf("signed %d tokens for invalid targets", s.Signed())
	}
	for _, name := range []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "act"} {
		if !slices.Contains(jwt.ReservedClaims(), name) {
			t.Errorf("%s is not reserved", name)
		}
	}
	for _, good := range []string{
		`{"audience":"` + audience + `","claims":null}`,
		`{"audience":"` + audience + `","claims":{}}`,
		`{"audience":"urn:example:deployer","claims":{"nested":{"sub":"static is fine inside"}}}`,
	} {
		if _, err := p.Mint(t.Context(), request(t, good)); err != nil {
			t.Errorf("target %s: %v", good, err)
		}
	}
}

func TestDurations(t *testing.T) {
	t.Parallel()
	s := signingtest.New(t)
	p := jwt.New(jwt.Config{Signer: s})
	for _, d := range []time.Duration{time.Minute, time.Hour, 24 * time.Hour, 90*time.Second + 500*time.Millisecond} {
		req := request(t, `{"audience":"`+audience+`"}`)
		req.Duration = d
		cred, err := p.Mint(t.Context(), req)
		if err != nil {
			t.Fatalf("%v: %v", d, err)
		}
		_, claims := verify(t, s, audience, cred.Body.(providers.JWTCredentials).Token)
		if got := time.Duration(claims["exp"].(float64)-claims["nbf"].(float64)) * time.Second; got != d.Truncate(time.Second) {
			t.Errorf("duration %v: token lives %v", d, got)
		}
		if !cred.ExpiresAt.Equal(time.Unix(int64(claims["exp"].(float64)), 0)) {
			t.Errorf("duration %v: ExpiresAt %v, exp %v", d, cred.ExpiresAt, claims["exp"])
		}
	}
	for _, d := range []time.Duration{0, 59 * time.Second, 24*time.Hour + time.Second, -time.Hour} {
		req := request(t, `{"audience":"`+audience+`"}`)
		req.Duration = d
		_, err := p.Mint(t.Context(), req)
		wantError(t, err, providers.ErrRefused, "InvalidDuration")
	}
}

type failingSigner struct{}

func (failingSigner) Issuer() string { return "https://bridge.example" }
func (failingSigner) Sign(context.Context, map[string]any, string) (string, error) {
	return "", errors.New("signing: no active RS256 key")
}

func TestFailures(t *testing.T) {
	t.Parallel()
	target := `{"audience":"` + audience + `"}`
	_, err := jwt.New(jwt.Config{}).Mint(t.Context(), request(t, target))
	wantError(t, err, providers.ErrUnavailable, "SignerUnavailable")
	_, err = jwt.New(jwt.Config{Signer: failingSigner{}}).Mint(t.Context(), request(t, target))
	wantError(t, err, providers.ErrUnavailable, "SignerUnavailable")

	p := jwt.New(jwt.Config{Signer: signingtest.New(t)})
	for _, mod := range []func(*providers.Request){
		func(r *providers.Request) { r.Claims = nil },
		func(r *providers.Request) { r.Claims.Subject = "" },
		func(r *providers.Request) { r.Claims.Issuer = "" },
		func(r *providers.Request) { r.Mapping = "" },
		func(r *providers.Request) { r.Mapping = "deploy:x" },
		func(r *providers.Request) { r.Mapping = "Deploy" },
	} {
		req := request(t, target)
		mod(&req)
		_, err := p.Mint(t.Context(), req)
		wantError(t, err, providers.ErrRefused, "InvalidRequest")
	}
}

func TestNoTokenInLogs(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p := jwt.New(jwt.Config{Signer: signingtest.New(t), Logger: log})
	cred, err := p.Mint(t.Context(), request(t, `{"audience":"`+audience+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	tok := cred.Body.(providers.JWTCredentials).Token
	if strings.Contains(buf.String(), tok) || strings.Contains(buf.String(), strings.Split(tok, ".")[2]) {
		t.Error("the token was logged")
	}
	if !strings.Contains(buf.String(), cred.ID) {
		t.Errorf("log lacks the credential id: %s", buf.String())
	}
}
