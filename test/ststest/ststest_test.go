package ststest_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"

	"github.com/oidc-bridge/oidc-bridge/test/ststest"
)

const roleARN = "arn:aws:iam::123456789012:role/deploy"

// client is a real SDK STS client aimed at the fake, without retries so that
// each call is one request.
func client(t *testing.T, s *ststest.Server, akid, secret, token string) *sts.Client {
	t.Helper()
	return sts.New(sts.Options{
		Region:       "eu-west-1",
		BaseEndpoint: aws.String(s.URL()),
		Credentials:  credentials.NewStaticCredentialsProvider(akid, secret, token),
		Retryer:      aws.NopRetryer{},
	})
}

func defaultClient(t *testing.T, s *ststest.Server) *sts.Client {
	t.Helper()
	return client(t, s, ststest.AccessKeyID, ststest.SecretAccessKey, "")
}

func apiCode(t *testing.T, err error) string {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v is not an API error", err)
	}
	return ae.ErrorCode()
}

var accessKeyID = regexp.MustCompile(`^ASIA[A-Z0-9]{16}$`)

func TestAssumeRole(t *testing.T) {
	t.Parallel()
	s := ststest.New(t)
	c := defaultClient(t, s)
	before := time.Now().Truncate(time.Second)
	out, err := c.AssumeRole(t.Context(), &sts.AssumeRoleInput{
		RoleArn:         aws.String(roleARN),
		RoleSessionName: aws.String("gh-acme.web-42-1"),
		DurationSeconds: aws.Int32(900),
		SourceIdentity:  aws.String("gh-123"),
		Policy:          aws.String(`{"Version":"2012-10-17","Statement":[]}`),
		ExternalId:      aws.String("ext-id"),
		PolicyArns:      []types.PolicyDescriptorType{{Arn: aws.String("arn:aws:iam::aws:policy/ReadOnlyAccess")}},
		Tags: []types.Tag{
			{Key: aws.String("repository"), Value: aws.String("acme/web")},
			{Key: aws.String("ref"), Value: aws.String("refs/heads/main")},
		},
		TransitiveTagKeys: []string{"repository"},
	})
	if err != nil {
		t.Fatal(err)
	}
	cr := out.Credentials
	if !accessKeyID.MatchString(*cr.AccessKeyId) || *cr.SecretAccessKey == "" || *cr.SessionToken == "" {
		t.Errorf("credentials = %q %q %q", *cr.AccessKeyId, *cr.SecretAccessKey, *cr.SessionToken)
	}
	if exp := cr.Expiration.Sub(before); exp < 900*time.Second || exp > 902*time.Second {
		t.Errorf("expiration %v is %v after the call, want 900s", cr.Expiration, exp)
	}
	if got, want := *out.AssumedRoleUser.Arn, "arn:aws:sts::123456789012:assumed-role/deploy/gh-acme.web-42-1"; got != want {
		t.Errorf("assumed role arn = %q, want %q", got, want)
	}
	if !strings.HasPrefix(*out.AssumedRoleUser.AssumedRoleId, "AROA") || !strings.HasSuffix(*out.AssumedRoleUser.AssumedRoleId, ":gh-acme.web-42-1") {
		t.Errorf("assumed role id = %q", *out.AssumedRoleUser.AssumedRoleId)
	}
	if out.SourceIdentity == nil || *out.SourceIdentity != "gh-123" {
		t.Errorf("source identity %v", out.SourceIdentity)
	}
	if out.SessionTokenSize == nil || int(*out.SessionTokenSize) != len(*cr.SessionToken) || out.SessionTokenUtilization == nil {
		t.Errorf("session token size %v, utilization %v", out.SessionTokenSize, out.SessionTokenUtilization)
	}

	calls := s.Calls()
	if len(calls) != 1 || s.CallCount() != 1 {
		t.Fatalf("calls = %d", len(calls))
	}
	got := calls[0]
	got.Params, got.Time, got.RequestID = nil, time.Time{}, ""
	want := ststest.Call{
		Action: "AssumeRole", Version: "2011-06-15", Region: "eu-west-1", Host: strings.TrimPrefix(s.URL(), "http://"),
		AccessKeyID: ststest.AccessKeyID,
		RoleArn:     roleARN, RoleSessionName: "gh-acme.web-42-1", DurationSeconds: 900, SourceIdentity: "gh-123",
		Policy: `{"Version":"2012-10-17","Statement":[]}`, ExternalID: "ext-id",
		PolicyArns:        []string{"arn:aws:iam::aws:policy/ReadOnlyAccess"},
		Tags:              map[string]string{"repository": "acme/web", "ref": "refs/heads/main"},
		TransitiveTagKeys: []string{"repository"},
		Status:            200, IssuedAccessKeyID: *cr.AccessKeyId,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("call (-want +got):\n%s", d)
	}
}

func TestGetCallerIdentity(t *testing.T) {
	t.Parallel()
	s := ststest.New(t)
	out, err := defaultClient(t, s).GetCallerIdentity(t.Context(), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if *out.Account != ststest.CallerAccount {
		t.Errorf("account = %q", *out.Account)
	}
}

func TestConcurrentUniqueKeys(t *testing.T) {
	t.Parallel()
	s := ststest.New(t)
	c := defaultClient(t, s)
	const n = 50
	ids := make(chan string, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			out, err := c.AssumeRole(t.Context(), &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("concurrent")})
			if err != nil {
				t.Error(err)
				return
			}
			ids <- *out.Credentials.AccessKeyId
		})
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		if seen[id] {
			t.Errorf("access key id %s issued twice", id)
		}
		seen[id] = true
	}
	if len(seen) != n || s.CallCount() != n {
		t.Errorf("issued %d keys in %d calls, want %d", len(seen), s.CallCount(), n)
	}
}

func TestSignature(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                string
		akid, secret, token string
		keys                []ststest.Key
		wantCode            string
	}{
		{name: "wrong secret", akid: ststest.AccessKeyID, secret: "not-the-secret", wantCode: "SignatureDoesNotMatch"},
		{name: "unknown key", akid: "AKIAUNKNOWNUNKNOWN00", secret: ststest.SecretAccessKey, wantCode: "InvalidClientTokenId"},
		{name: "unexpected session token", akid: ststest.AccessKeyID, secret: ststest.SecretAccessKey, token: "tok", wantCode: "InvalidClientTokenId"},
		{
			name: "session key", akid: "ASIASESSIONSESSION01", secret: "s3cr3t", token: "tok",
			keys: []ststest.Key{{AccessKeyID: "ASIASESSIONSESSION01", SecretAccessKey: "s3cr3t", SessionToken: "tok"}},
		},
		{
			name: "session key without token", akid: "ASIASESSIONSESSION01", secret: "s3cr3t",
			keys:     []ststest.Key{{AccessKeyID: "ASIASESSIONSESSION01", SecretAccessKey: "s3cr3t", SessionToken: "tok"}},
			wantCode: "InvalidClientTokenId",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var opts []ststest.Option
			if tt.keys != nil {
				opts = append(opts, ststest.WithKeys(tt.keys...))
			}
			s := ststest.New(t, opts...)
			_, err := client(t, s, tt.akid, tt.secret, tt.token).AssumeRole(t.Context(), &sts.AssumeRoleInput{
				RoleArn: aws.String(roleARN), RoleSessionName: aws.String("sig-test"),
			})
			if tt.wantCode == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if got := apiCode(t, err); got != tt.wantCode {
				t.Errorf("code = %q, want %q", got, tt.wantCode)
			}
			if c := s.Calls()[0]; c.Status != http.StatusForbidden || c.IssuedAccessKeyID != "" {
				t.Errorf("call status %d issued %q", c.Status, c.IssuedAccessKeyID)
			}
		})
	}
}

type errorResponse struct {
	XMLName xml.Name `xml:"ErrorResponse"`
	Error   struct {
		Type    string
		Code    string
		Message string
	}
	RequestID string `xml:"RequestId"`
}

func post(t *testing.T, s *ststest.Server, body string, sign func(*http.Request, string)) (int, errorResponse) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL()+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	if sign != nil {
		sign(req, body)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var er errorResponse
	if resp.StatusCode != http.StatusOK {
		if err := xml.Unmarshal(b, &er); err != nil {
			t.Fatalf("error body %q: %v", b, err)
		}
	}
	return resp.StatusCode, er
}

func signWith(secret string) func(*http.Request, string) {
	return func(req *http.Request, body string) {
		sum := sha256.Sum256([]byte(body))
		_ = v4.NewSigner().SignHTTP(context.Background(),
			aws.Credentials{AccessKeyID: ststest.AccessKeyID, SecretAccessKey: secret},
			req, hex.EncodeToString(sum[:]), "sts", "us-east-1", time.Now())
	}
}

const rawBody = "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fdeploy&RoleSessionName=raw"

func TestRawRequests(t *testing.T) {
	t.Parallel()
	s := ststest.New(t)

	status, er := post(t, s, rawBody, nil)
	if status != http.StatusForbidden || er.Error.Code != "MissingAuthenticationToken" || er.Error.Type != "Sender" || er.RequestID == "" {
		t.Errorf("unsigned: %d %+v", status, er)
	}

	if status, er := post(t, s, rawBody, signWith(ststest.SecretAccessKey)); status != http.StatusOK {
		t.Errorf("signed raw request: %d %+v", status, er)
	}

	tampered := func(req *http.Request, body string) {
		signWith(ststest.SecretAccessKey)(req, body)
		evil := strings.Replace(body, "deploy", "admin0", 1)
		req.Body = io.NopCloser(strings.NewReader(evil))
	}
	if status, er := post(t, s, rawBody, tampered); status != http.StatusForbidden || er.Error.Code != "SignatureDoesNotMatch" {
		t.Errorf("tampered body: %d %+v", status, er)
	}

	stale := func(req *http.Request, body string) {
		sum := sha256.Sum256([]byte(body))
		_ = v4.NewSigner().SignHTTP(context.Background(),
			aws.Credentials{AccessKeyID: ststest.AccessKeyID, SecretAccessKey: ststest.SecretAccessKey},
			req, hex.EncodeToString(sum[:]), "sts", "us-east-1", time.Now().Add(-time.Hour))
	}
	if status, er := post(t, s, rawBody, stale); status != http.StatusForbidden || er.Error.Code != "SignatureDoesNotMatch" {
		t.Errorf("stale signature: %d %+v", status, er)
	}

	garbled := func(req *http.Request, _ string) { req.Header.Set("Authorization", "AWS4-HMAC-SHA256 nonsense") }
	if status, er := post(t, s, rawBody, garbled); status != http.StatusBadRequest || er.Error.Code != "IncompleteSignature" {
		t.Errorf("garbled header: %d %+v", status, er)
	}

	wrongVersion := strings.Replace(rawBody, "2011-06-15", "2099-01-01", 1)
	if status, er := post(t, s, wrongVersion, signWith(ststest.SecretAccessKey)); status != http.StatusBadRequest || er.Error.Code != "InvalidAction" {
		t.Errorf("wrong version: %d %+v", status, er)
	}

	if got := s.CallCount(); got != 6 {
		t.Errorf("CallCount = %d, want 6", got)
	}
	if c := s.Calls()[0]; c.AccessKeyID != "" || c.ErrorCode != "MissingAuthenticationToken" || c.RoleSessionName != "raw" {
		t.Errorf("unsigned call recorded as %+v", c)
	}
}

func TestValidation(t *testing.T) {
	t.Parallel()
	s := ststest.New(t)
	c := defaultClient(t, s)
	tags := func(n int) []types.Tag {
		var out []types.Tag
		for i := range n {
			out = append(out, types.Tag{Key: aws.String("k" + strings.Repeat("x", i)), Value: aws.String("v")})
		}
		return out
	}
	tests := []struct {
		name     string
		mod      func(*sts.AssumeRoleInput)
		wantCode string
	}{
		{"ok", func(*sts.AssumeRoleInput) {}, ""},
		{"duration 899", func(in *sts.AssumeRoleInput) { in.DurationSeconds = aws.Int32(899) }, "ValidationError"},
		{"duration 43201", func(in *sts.AssumeRoleInput) { in.DurationSeconds = aws.Int32(43201) }, "ValidationError"},
		{"duration 43200", func(in *sts.AssumeRoleInput) { in.DurationSeconds = aws.Int32(43200) }, ""},
		{"session name too short", func(in *sts.AssumeRoleInput) { in.RoleSessionName = aws.String("a") }, "ValidationError"},
		{"session name too long", func(in *sts.AssumeRoleInput) { in.RoleSessionName = aws.String(strings.Repeat("a", 65)) }, "ValidationError"},
		{"session name 64", func(in *sts.AssumeRoleInput) { in.RoleSessionName = aws.String(strings.Repeat("a", 64)) }, ""},
		{"session name slash", func(in *sts.AssumeRoleInput) { in.RoleSessionName = aws.String("a/b") }, "ValidationError"},
		{"session name quote", func(in *sts.AssumeRoleInput) { in.RoleSessionName = aws.String(`a"b;c`) }, "ValidationError"},
		{"session name all allowed", func(in *sts.AssumeRoleInput) { in.RoleSessionName = aws.String("a_Z9+=,.@-") }, ""},
		{"source identity bad", func(in *sts.AssumeRoleInput) { in.SourceIdentity = aws.String("a b") }, "ValidationError"},
		{"role arn not a role", func(in *sts.AssumeRoleInput) { in.RoleArn = aws.String("arn:aws:iam::123456789012:user/bob") }, "ValidationError"},
		{"role arn short account", func(in *sts.AssumeRoleInput) { in.RoleArn = aws.String("arn:aws:iam::1234:role/deploy") }, "ValidationError"},
		{"role arn with path", func(in *sts.AssumeRoleInput) {
			in.RoleArn = aws.String("arn:aws-us-gov:iam::123456789012:role/ci/deploy")
		}, ""},
		{"external id bad", func(in *sts.AssumeRoleInput) { in.ExternalId = aws.String("a b") }, "ValidationError"},
		{"policy not json", func(in *sts.AssumeRoleInput) { in.Policy = aws.String("{") }, "MalformedPolicyDocument"},
		{"policy too long", func(in *sts.AssumeRoleInput) { in.Policy = aws.String(`"` + strings.Repeat("a", 2048) + `"`) }, "ValidationError"},
		{"50 tags", func(in *sts.AssumeRoleInput) { in.Tags = tags(50) }, ""},
		{"51 tags", func(in *sts.AssumeRoleInput) { in.Tags = tags(51) }, "ValidationError"},
		{"tag value comma", func(in *sts.AssumeRoleInput) {
			in.Tags = []types.Tag{{Key: aws.String("ref"), Value: aws.String("a,b")}}
		}, "ValidationError"},
		{"tag value 257", func(in *sts.AssumeRoleInput) {
			in.Tags = []types.Tag{{Key: aws.String("ref"), Value: aws.String(strings.Repeat("é", 257))}}
		}, "ValidationError"},
		{"tag value unicode 256", func(in *sts.AssumeRoleInput) {
			in.Tags = []types.Tag{{Key: aws.String("ref"), Value: aws.String(strings.Repeat("é", 256))}}
		}, ""},
		{"tag key aws:", func(in *sts.AssumeRoleInput) {
			in.Tags = []types.Tag{{Key: aws.String("aws:x"), Value: aws.String("v")}}
		}, "ValidationError"},
		{"duplicate tag keys", func(in *sts.AssumeRoleInput) {
			in.Tags = []types.Tag{{Key: aws.String("Ref"), Value: aws.String("v")}, {Key: aws.String("ref"), Value: aws.String("w")}}
		}, "InvalidParameterValue"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("validate")}
			tt.mod(in)
			_, err := c.AssumeRole(t.Context(), in)
			if tt.wantCode == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if got := apiCode(t, err); got != tt.wantCode {
				t.Errorf("code = %q (%v), want %q", got, err, tt.wantCode)
			}
			var re interface{ HTTPStatusCode() int }
			if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusBadRequest {
				t.Errorf("status is not 400: %v", err)
			}
		})
	}
}

func TestControls(t *testing.T) {
	t.Parallel()
	s := ststest.New(t)
	c := defaultClient(t, s)
	call := func(ctx context.Context) error {
		_, err := c.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("controls")})
		return err
	}
	status := func(err error) int {
		var re interface{ HTTPStatusCode() int }
		if errors.As(err, &re) {
			return re.HTTPStatusCode()
		}
		return 0
	}

	s.Refuse("AccessDenied")
	err := call(t.Context())
	if apiCode(t, err) != "AccessDenied" || status(err) != http.StatusForbidden {
		t.Errorf("refuse: %v", err)
	}
	if err := call(t.Context()); err == nil {
		t.Error("Refuse is not sticky")
	}
	s.Reset()
	if s.CallCount() != 0 {
		t.Errorf("Reset kept %d calls", s.CallCount())
	}

	s.Throttle(2)
	for i := range 2 {
		if err := call(t.Context()); apiCode(t, err) != "Throttling" || status(err) != http.StatusBadRequest {
			t.Errorf("throttled call %d: %v", i, err)
		}
	}
	if err := call(t.Context()); err != nil {
		t.Errorf("after throttling: %v", err)
	}

	s.Fail(1, http.StatusServiceUnavailable)
	if err := call(t.Context()); apiCode(t, err) != "ServiceUnavailable" || status(err) != 503 {
		t.Errorf("fail 503: %v", err)
	}
	s.Fail(1, http.StatusInternalServerError)
	if err := call(t.Context()); apiCode(t, err) != "InternalFailure" || status(err) != 500 {
		t.Errorf("fail 500: %v", err)
	}

	s.SetLatency(50 * time.Millisecond)
	start := time.Now()
	if err := call(t.Context()); err != nil || time.Since(start) < 50*time.Millisecond {
		t.Errorf("latency: %v after %v", err, time.Since(start))
	}
	s.SetLatency(0)

	s.Hang()
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	if err := call(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hang: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("hang returned after %v", d)
	}
	s.Reset()
	if err := call(t.Context()); err != nil {
		t.Errorf("after reset: %v", err)
	}
}

// TestHandlerWithoutServer serves the Handler itself and checks that Close
// releases a hung request.
func TestHandlerWithoutServer(t *testing.T) {
	t.Parallel()
	h := ststest.NewHandler()
	h.Hang()
	form := url.Values{"Action": {"GetCallerIdentity"}, "Version": {"2011-06-15"}}.Encode()
	req, _ := http.NewRequest(http.MethodPost, "http://sts.test/", bytes.NewBufferString(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	signWith(ststest.SecretAccessKey)(req, form)
	req.Body = io.NopCloser(bytes.NewBufferString(form))
	done := make(chan int)
	go func() {
		rec := &recorder{header: http.Header{}}
		h.ServeHTTP(rec, req)
		done <- rec.status
	}()
	h.Close()
	select {
	case st := <-done:
		if st != http.StatusServiceUnavailable {
			t.Errorf("status %d after Close", st)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not release the hung request")
	}
}

type recorder struct {
	header http.Header
	status int
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *recorder) WriteHeader(s int)           { r.status = s }
