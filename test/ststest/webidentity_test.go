package ststest_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/google/go-cmp/cmp"

	"github.com/oidc-bridge/oidc-bridge/signing"
	"github.com/oidc-bridge/oidc-bridge/signing/signingtest"
	"github.com/oidc-bridge/oidc-bridge/test/ststest"
)

const stsAudience = "sts.amazonaws.com"

// anonymousClient is a real SDK client without credentials, as
// AssumeRoleWithWebIdentity needs none.
func anonymousClient(t *testing.T, s *ststest.Server) *sts.Client {
	t.Helper()
	return sts.New(sts.Options{
		Region:       "eu-west-1",
		BaseEndpoint: aws.String(s.URL()),
		Credentials:  aws.AnonymousCredentials{},
		Retryer:      aws.NopRetryer{},
	})
}

// webToken signs claims (sub, aud and a 5-minute exp unless given) with
// signer.
func webToken(t *testing.T, signer *signingtest.Signer, alg string, claims map[string]any) string {
	t.Helper()
	c := map[string]any{"sub": "oidc-bridge:aws:mapping:deploy", "aud": stsAudience, "exp": time.Now().Add(5 * time.Minute).Unix()}
	for k, v := range claims {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	tok, err := signer.Sign(t.Context(), c, alg)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func assumeWeb(t *testing.T, c *sts.Client, token string) (*sts.AssumeRoleWithWebIdentityOutput, error) {
	t.Helper()
	return c.AssumeRoleWithWebIdentity(t.Context(), &sts.AssumeRoleWithWebIdentityInput{
		RoleArn:          aws.String(roleARN),
		RoleSessionName:  aws.String("gh-acme.web-42-1"),
		WebIdentityToken: aws.String(token),
		DurationSeconds:  aws.Int32(900),
	})
}

func TestAssumeRoleWithWebIdentity(t *testing.T) {
	t.Parallel()
	signer := signingtest.New(t)
	s := ststest.New(t)
	s.TrustOIDCProvider(signer.Issuer(), "other", stsAudience)
	token := webToken(t, signer, "", map[string]any{
		"jti": "issuance-1",
		"https://aws.amazon.com/tags": map[string]any{
			"principal_tags":      map[string]any{"repository": []string{"acme/web"}, "ref": []string{"refs/heads/main"}},
			"transitive_tag_keys": []string{"repository"},
		},
		"https://aws.amazon.com/source_identity": "gh-123",
	})
	before := time.Now().Truncate(time.Second)
	out, err := anonymousClient(t, s).AssumeRoleWithWebIdentity(t.Context(), &sts.AssumeRoleWithWebIdentityInput{
		RoleArn:          aws.String(roleARN),
		RoleSessionName:  aws.String("gh-acme.web-42-1"),
		WebIdentityToken: aws.String(token),
		DurationSeconds:  aws.Int32(1800),
		Policy:           aws.String(`{"Version":"2012-10-17","Statement":[]}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	cr := out.Credentials
	if !accessKeyID.MatchString(*cr.AccessKeyId) || *cr.SecretAccessKey == "" || *cr.SessionToken == "" {
		t.Errorf("credentials = %q", *cr.AccessKeyId)
	}
	if exp := cr.Expiration.Sub(before); exp < 1800*time.Second || exp > 1802*time.Second {
		t.Errorf("expiration %v after the call, want 1800s", exp)
	}
	got := map[string]string{
		"subject":  aws.ToString(out.SubjectFromWebIdentityToken),
		"audience": aws.ToString(out.Audience),
		"provider": aws.ToString(out.Provider),
		"arn":      aws.ToString(out.AssumedRoleUser.Arn),
		"source":   aws.ToString(out.SourceIdentity),
	}
	want := map[string]string{
		"subject":  "oidc-bridge:aws:mapping:deploy",
		"audience": stsAudience,
		"provider": signer.Issuer(),
		"arn":      "arn:aws:sts::123456789012:assumed-role/deploy/gh-acme.web-42-1",
		"source":   "gh-123",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("answer (-want +got):\n%s", d)
	}

	calls := s.Calls()
	if len(calls) != 1 {
		t.Fatalf("%d calls", len(calls))
	}
	call := calls[0]
	var claims map[string]any
	if err := json.Unmarshal(call.WebIdentityClaims, &claims); err != nil || claims["jti"] != "issuance-1" {
		t.Errorf("claims %s: %v", call.WebIdentityClaims, err)
	}
	call.Params, call.Time, call.RequestID, call.WebIdentityClaims = nil, time.Time{}, "", nil
	if call.Host != strings.TrimPrefix(s.URL(), "http://") {
		t.Errorf("host %q", call.Host)
	}
	call.Host = ""
	wantCall := ststest.Call{
		Action: "AssumeRoleWithWebIdentity", Version: "2011-06-15",
		RoleArn: roleARN, RoleSessionName: "gh-acme.web-42-1", DurationSeconds: 1800,
		Policy:              `{"Version":"2012-10-17","Statement":[]}`,
		SourceIdentity:      "gh-123",
		Tags:                map[string]string{"repository": "acme/web", "ref": "refs/heads/main"},
		TransitiveTagKeys:   []string{"repository"},
		WebIdentityIssuer:   signer.Issuer(),
		WebIdentitySubject:  "oidc-bridge:aws:mapping:deploy",
		WebIdentityAudience: []string{stsAudience},
		Status:              http.StatusOK, IssuedAccessKeyID: *cr.AccessKeyId,
	}
	if d := cmp.Diff(wantCall, call); d != "" {
		t.Errorf("call (-want +got):\n%s", d)
	}
}

func TestWebIdentityES256AndAudienceList(t *testing.T) {
	t.Parallel()
	signer := signingtest.New(t)
	s := ststest.New(t)
	s.TrustOIDCProvider(signer.Issuer(), stsAudience)
	token := webToken(t, signer, signing.ES256, map[string]any{"aud": []string{"someone-else", stsAudience}})
	out, err := assumeWeb(t, anonymousClient(t, s), token)
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.Audience) != stsAudience {
		t.Errorf("audience %q", aws.ToString(out.Audience))
	}
}

func TestWebIdentityRefusals(t *testing.T) {
	t.Parallel()
	signer := signingtest.New(t)
	stranger := signingtest.New(t)
	now := time.Now()
	tests := []struct {
		name       string
		token      func() string
		opts       []ststest.Option
		audiences  []string
		refuse     string
		wantCode   string
		wantStatus int
	}{
		{name: "untrusted issuer", token: func() string { return webToken(t, stranger, "", nil) },
			wantCode: "InvalidIdentityToken", wantStatus: 400},
		{name: "wrong audience", token: func() string { return webToken(t, signer, "", map[string]any{"aud": "api://other"}) },
			wantCode: "InvalidIdentityToken", wantStatus: 400},
		{name: "audience not trusted", token: func() string { return webToken(t, signer, "", nil) }, audiences: []string{"only-this"},
			wantCode: "InvalidIdentityToken", wantStatus: 400},
		{name: "expired", token: func() string { return webToken(t, signer, "", map[string]any{"exp": now.Add(-time.Second).Unix()}) },
			wantCode: "ExpiredTokenException", wantStatus: 400},
		{name: "no exp", token: func() string { return webToken(t, signer, "", map[string]any{"exp": nil}) },
			wantCode: "InvalidIdentityToken", wantStatus: 400},
		{name: "not yet valid", token: func() string { return webToken(t, signer, "", map[string]any{"nbf": now.Add(10 * time.Minute).Unix()}) },
			wantCode: "IDPRejectedClaim", wantStatus: 403},
		{name: "issued in the future", token: func() string { return webToken(t, signer, "", nil) },
			opts:     []ststest.Option{ststest.WithClock(func() time.Time { return time.Now().Add(-10 * time.Minute) })},
			wantCode: "IDPRejectedClaim", wantStatus: 403},
		{name: "no sub", token: func() string { return webToken(t, signer, "", map[string]any{"sub": nil}) },
			wantCode: "InvalidIdentityToken", wantStatus: 400},
		{name: "tampered", token: func() string {
			parts := strings.Split(webToken(t, signer, "", nil), ".")
			other := strings.Split(webToken(t, signer, "", map[string]any{"sub": "repo:evil/x:mapping:deploy"}), ".")
			return parts[0] + "." + other[1] + "." + parts[2]
		}, wantCode: "InvalidIdentityToken", wantStatus: 400},
		{name: "not a jwt", token: func() string { return "not-a-jwt-at-all" },
			wantCode: "InvalidIdentityToken", wantStatus: 400},
		{name: "unsigned", token: func() string {
			parts := strings.Split(webToken(t, signer, "", nil), ".")
			return "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + parts[1] + "."
		}, wantCode: "InvalidIdentityToken", wantStatus: 400},
		{name: "bad tags claim", token: func() string {
			return webToken(t, signer, "", map[string]any{"https://aws.amazon.com/tags": map[string]any{"principal_tags": map[string]any{"a": "b"}}})
		}, wantCode: "InvalidIdentityToken", wantStatus: 400},
		{name: "bad tag value", token: func() string {
			return webToken(t, signer, "", map[string]any{"https://aws.amazon.com/tags": map[string]any{"principal_tags": map[string]any{"ref": []string{"a,b"}}}})
		}, wantCode: "ValidationError", wantStatus: 400},
		{name: "transitive key twice", token: func() string {
			return webToken(t, signer, "", map[string]any{"https://aws.amazon.com/tags": map[string]any{
				"principal_tags": map[string]any{"team": []string{"a"}, "Team2": []string{"b"}}, "transitive_tag_keys": []string{"team", "team"}}})
		}, wantCode: "InvalidParameterValue", wantStatus: 400},
		{name: "tags packed too large", token: func() string {
			tags := map[string]any{}
			for i := range 17 {
				tags[fmt.Sprintf("key%03d", i)] = []string{strings.Repeat("v", 250)}
			}
			return webToken(t, signer, "", map[string]any{"https://aws.amazon.com/tags": map[string]any{"principal_tags": tags}})
		}, wantCode: "PackedPolicyTooLarge", wantStatus: 400},
		{name: "trust policy says no", token: func() string { return webToken(t, signer, "", nil) }, refuse: "AccessDenied",
			wantCode: "AccessDenied", wantStatus: 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := ststest.New(t, tt.opts...)
			aud := tt.audiences
			if aud == nil {
				aud = []string{stsAudience}
			}
			s.TrustOIDCProvider(signer.Issuer(), aud...)
			s.Refuse(tt.refuse)
			_, err := assumeWeb(t, anonymousClient(t, s), tt.token())
			if got := apiCode(t, err); got != tt.wantCode {
				t.Errorf("code = %q (%v), want %q", got, err, tt.wantCode)
			}
			var re interface{ HTTPStatusCode() int }
			if !errors.As(err, &re) || re.HTTPStatusCode() != tt.wantStatus {
				t.Errorf("status of %v, want %d", err, tt.wantStatus)
			}
			if c := s.Calls(); len(c) != 1 || c[0].IssuedAccessKeyID != "" || c[0].ErrorCode != tt.wantCode {
				t.Errorf("calls %+v", c)
			}
		})
	}
}

// countingTransport counts requests and fails them all when fail is set.
type countingTransport struct {
	n    atomic.Int32
	fail bool
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	if c.fail {
		return nil, errors.New("idp unreachable")
	}
	return http.DefaultTransport.RoundTrip(r)
}

func TestWebIdentityKeysAreCached(t *testing.T) {
	t.Parallel()
	signer := signingtest.New(t)
	rt := &countingTransport{}
	s := ststest.New(t, ststest.WithOIDCHTTPClient(&http.Client{Transport: rt}))
	s.TrustOIDCProvider(signer.Issuer(), stsAudience)
	c := anonymousClient(t, s)
	for range 3 {
		if _, err := assumeWeb(t, c, webToken(t, signer, "", nil)); err != nil {
			t.Fatal(err)
		}
	}
	if n := rt.n.Load(); n != 2 {
		t.Errorf("%d fetches for 3 calls, want 2 (discovery and JWKS once)", n)
	}
	// Trusting the issuer again forgets its keys.
	s.TrustOIDCProvider(signer.Issuer(), stsAudience)
	if _, err := assumeWeb(t, c, webToken(t, signer, signing.ES256, nil)); err != nil {
		t.Fatal(err)
	}
	if n := rt.n.Load(); n != 4 {
		t.Errorf("%d fetches, want 4", n)
	}
}

func TestWebIdentityIdPUnreachable(t *testing.T) {
	t.Parallel()
	signer := signingtest.New(t)
	s := ststest.New(t, ststest.WithOIDCHTTPClient(&http.Client{Transport: &countingTransport{fail: true}}))
	s.TrustOIDCProvider(signer.Issuer(), stsAudience)
	_, err := assumeWeb(t, anonymousClient(t, s), webToken(t, signer, "", nil))
	if got := apiCode(t, err); got != "IDPCommunicationError" {
		t.Errorf("code %q", got)
	}
}

func TestWebIdentityRequest(t *testing.T) {
	t.Parallel()
	signer := signingtest.New(t)
	s := ststest.New(t)
	s.TrustOIDCProvider(signer.Issuer(), stsAudience)
	token := webToken(t, signer, "", nil)

	// Unsigned, as the SDK sends it, the request passes; signed, its
	// signature is checked as any other.
	body := url.Values{
		"Action": {"AssumeRoleWithWebIdentity"}, "Version": {"2011-06-15"},
		"RoleArn": {roleARN}, "RoleSessionName": {"raw"}, "WebIdentityToken": {token},
	}.Encode()
	if status, er := post(t, s, body, nil); status != http.StatusOK {
		t.Errorf("unsigned: %d %+v", status, er)
	}
	if status, er := post(t, s, body, signWith("wrong")); status != http.StatusForbidden || er.Error.Code != "SignatureDoesNotMatch" {
		t.Errorf("badly signed: %d %+v", status, er)
	}
	if status, er := post(t, s, body, signWith(ststest.SecretAccessKey)); status != http.StatusOK {
		t.Errorf("signed: %d %+v", status, er)
	}
	if c := s.Calls(); len(c) != 3 || c[0].AccessKeyID != "" || c[2].AccessKeyID != ststest.AccessKeyID {
		t.Errorf("calls %+v", c)
	}

	tests := []struct {
		name     string
		mod      func(*sts.AssumeRoleWithWebIdentityInput)
		wantCode string
	}{
		{"duration 899", func(in *sts.AssumeRoleWithWebIdentityInput) { in.DurationSeconds = aws.Int32(899) }, "ValidationError"},
		{"session name slash", func(in *sts.AssumeRoleWithWebIdentityInput) { in.RoleSessionName = aws.String("a/b") }, "ValidationError"},
		{"user arn", func(in *sts.AssumeRoleWithWebIdentityInput) {
			in.RoleArn = aws.String("arn:aws:iam::123456789012:user/bob")
		}, "ValidationError"},
		{"short token", func(in *sts.AssumeRoleWithWebIdentityInput) { in.WebIdentityToken = aws.String("abc") }, "ValidationError"},
		{"provider id", func(in *sts.AssumeRoleWithWebIdentityInput) { in.ProviderId = aws.String("www.amazon.com") }, "InvalidIdentityToken"},
		{"policy not json", func(in *sts.AssumeRoleWithWebIdentityInput) { in.Policy = aws.String("{") }, "MalformedPolicyDocument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := &sts.AssumeRoleWithWebIdentityInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("validate"), WebIdentityToken: aws.String(token)}
			tt.mod(in)
			_, err := anonymousClient(t, s).AssumeRoleWithWebIdentity(t.Context(), in)
			if got := apiCode(t, err); got != tt.wantCode {
				t.Errorf("code = %q (%v), want %q", got, err, tt.wantCode)
			}
		})
	}
}

// AssumeRoleWithWebIdentity is anonymous, never role chaining: a fake whose
// AssumeRole callers are role sessions still grants it 12 hours.
func TestWebIdentityIsNotChaining(t *testing.T) {
	t.Parallel()
	signer := signingtest.New(t)
	s := ststest.New(t, ststest.WithRoleChainingCaller())
	s.TrustOIDCProvider(signer.Issuer(), stsAudience)
	_, err := anonymousClient(t, s).AssumeRoleWithWebIdentity(t.Context(), &sts.AssumeRoleWithWebIdentityInput{
		RoleArn: aws.String(roleARN), RoleSessionName: aws.String("gh-acme.web-42-1"),
		WebIdentityToken: aws.String(webToken(t, signer, "", nil)), DurationSeconds: aws.Int32(43200),
	})
	if err != nil {
		t.Fatal(err)
	}
}
