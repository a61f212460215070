package gcp

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/api/googleapi"

	"github.com/oidc-bridge/oidc-bridge/identity"
	"github.com/oidc-bridge/oidc-bridge/providers"
)

const (
	sa  = "deploy@acme-prod.iam.gserviceaccount.com"
	wip = "//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/oidc-bridge/providers/bridge"
)

func TestDecodeTarget(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		raw     string
		want    target
		wantErr string
	}{
		{"minimal", `{"service_account":"` + sa + `"}`,
			target{ServiceAccount: sa, Scopes: []string{DefaultScope}, Mode: modeImpersonate}, ""},
		{"unique id", `{"service_account":"123456789012345678901"}`,
			target{ServiceAccount: "123456789012345678901", Scopes: []string{DefaultScope}, Mode: modeImpersonate}, ""},
		{"full impersonate", `{"service_account":"` + sa + `","scopes":["https://www.googleapis.com/auth/iam"],"delegates":["hop-account@acme-prod.iam.gserviceaccount.com"],"mode":"impersonate"}`,
			target{ServiceAccount: sa, Scopes: []string{"https://www.googleapis.com/auth/iam"}, Delegates: []string{"hop-account@acme-prod.iam.gserviceaccount.com"}, Mode: modeImpersonate}, ""},
		{"lifetime extension", `{"service_account":"` + sa + `","allow_lifetime_extension":true}`,
			target{ServiceAccount: sa, Scopes: []string{DefaultScope}, Mode: modeImpersonate, AllowLifetimeExtension: true}, ""},
		{"compute default", `{"service_account":"123456789012-compute@developer.gserviceaccount.com","delegates":["acme-prod@appspot.gserviceaccount.com"]}`,
			target{ServiceAccount: "123456789012-compute@developer.gserviceaccount.com", Delegates: []string{"acme-prod@appspot.gserviceaccount.com"},
				Scopes: []string{DefaultScope}, Mode: modeImpersonate}, ""},
		{"lifetime extension string", `{"service_account":"` + sa + `","allow_lifetime_extension":"yes"}`, target{}, "target.allow_lifetime_extension: must be a JSON boolean"},
		{"empty scopes", `{"service_account":"` + sa + `","scopes":[]}`,
			target{ServiceAccount: sa, Scopes: []string{DefaultScope}, Mode: modeImpersonate}, ""},
		{"workload identity", `{"service_account":"` + sa + `","mode":"workload_identity","workload_identity_provider":"` + wip + `"}`,
			target{ServiceAccount: sa, Scopes: []string{DefaultScope}, Mode: modeWorkloadIdentity, WorkloadIdentityProvider: wip}, ""},

		{"not an object", `["x"]`, target{}, "target: must be a JSON object"},
		{"trailing", `{"service_account":"` + sa + `"} {}`, target{}, "target: must be a JSON object"},
		{"unknown field", `{"service_account":"` + sa + `","role_arn":"x"}`, target{}, `unknown field "role_arn"`},
		{"case", `{"SERVICE_ACCOUNT":"` + sa + `"}`, target{}, "unknown field"},
		{"duplicate", `{"service_account":"` + sa + `","service_account":"x@y.iam.gserviceaccount.com"}`, target{}, "target.service_account: appears more than once"},
		{"null", `{"service_account":"` + sa + `","scopes":null}`, target{}, "target.scopes: must be a JSON list of strings"},
		{"null element", `{"service_account":"` + sa + `","delegates":[null]}`, target{}, "target.delegates: must be a JSON list of strings"},
		{"number", `{"service_account":42}`, target{}, "target.service_account: must be a JSON string"},
		{"no account", `{}`, target{}, "target.service_account: is required"},
		{"bad account", `{"service_account":"root@example.com"}`, target{}, "target.service_account: must be a service account email"},
		{"bad scope", `{"service_account":"` + sa + `","scopes":["cloud-platform"]}`, target{}, "target.scopes[0]: must be an https URL"},
		{"http scope", `{"service_account":"` + sa + `","scopes":["http://www.googleapis.com/auth/iam"]}`, target{}, "target.scopes[0]: must be an https URL"},
		{"bad delegate", `{"service_account":"` + sa + `","delegates":["projects/-/serviceAccounts/` + sa + `"]}`, target{}, "target.delegates[0]: must be a service account email"},
		{"bad mode", `{"service_account":"` + sa + `","mode":"keys"}`, target{}, "target.mode: must be impersonate (the default) or workload_identity"},
		{"wip without mode", `{"service_account":"` + sa + `","workload_identity_provider":"` + wip + `"}`, target{}, "applies to mode workload_identity only"},
		{"mode without wip", `{"service_account":"` + sa + `","mode":"workload_identity"}`, target{}, "target.workload_identity_provider: must be //iam.googleapis.com/"},
		{"wip without //", `{"service_account":"` + sa + `","mode":"workload_identity","workload_identity_provider":"` + strings.TrimPrefix(wip, "//iam.googleapis.com/") + `"}`, target{}, "target.workload_identity_provider: must be //iam.googleapis.com/"},
		{"too many scopes", `{"service_account":"` + sa + `","scopes":[` + strings.Repeat(`"https://www.googleapis.com/auth/iam",`, 64) + `"https://www.googleapis.com/auth/iam"]}`, target{}, "target.scopes: at most 64 scopes"},
		{"too many delegates", `{"service_account":"` + sa + `","delegates":[` + strings.Repeat(`"`+sa+`",`, 16) + `"` + sa + `"]}`, target{}, "target.delegates: at most 16 delegates"},

		{"id token", `{"service_account":"` + sa + `","token_format":"id_token","id_token_audience":"https://hello-abc123-ew.a.run.app","include_email":true}`,
			target{ServiceAccount: sa, Mode: modeImpersonate, TokenFormat: formatIDToken, IDTokenAudience: "https://hello-abc123-ew.a.run.app", IncludeEmail: true}, ""},
		{"id token, IAP client id", `{"service_account":"` + sa + `","token_format":"id_token","id_token_audience":"123-abc.apps.googleusercontent.com","mode":"workload_identity","workload_identity_provider":"` + wip + `"}`,
			target{ServiceAccount: sa, Mode: modeWorkloadIdentity, WorkloadIdentityProvider: wip, TokenFormat: formatIDToken, IDTokenAudience: "123-abc.apps.googleusercontent.com"}, ""},
		{"explicit access token", `{"service_account":"` + sa + `","token_format":"access_token"}`,
			target{ServiceAccount: sa, Scopes: []string{DefaultScope}, Mode: modeImpersonate}, ""},
		{"id token without audience", `{"service_account":"` + sa + `","token_format":"id_token"}`, target{}, "target.id_token_audience: is required with token_format id_token"},
		{"id token with scopes", `{"service_account":"` + sa + `","token_format":"id_token","id_token_audience":"x","scopes":["https://www.googleapis.com/auth/iam"]}`, target{}, "target.scopes: apply to token_format access_token only"},
		{"id token with lifetime extension", `{"service_account":"` + sa + `","token_format":"id_token","id_token_audience":"x","allow_lifetime_extension":true}`, target{}, "target.allow_lifetime_extension: applies to token_format access_token only"},
		{"id token audience with space", `{"service_account":"` + sa + `","token_format":"id_token","id_token_audience":"a b"}`, target{}, "target.id_token_audience: must be"},
		{"id token audience bad URL", `{"service_account":"` + sa + `","token_format":"id_token","id_token_audience":"ftp://x.example"}`, target{}, "target.id_token_audience: must be"},
		{"id token audience with user", `{"service_account":"` + sa + `","token_format":"id_token","id_token_audience":"https://u:p@x.example"}`, target{}, "target.id_token_audience: must be"},
		{"id token audience too long", `{"service_account":"` + sa + `","token_format":"id_token","id_token_audience":"` + strings.Repeat("a", 2049) + `"}`, target{}, "target.id_token_audience: must be"},
		{"audience without id token", `{"service_account":"` + sa + `","id_token_audience":"x"}`, target{}, "target.id_token_audience: applies to token_format id_token only"},
		{"include_email without id token", `{"service_account":"` + sa + `","include_email":true}`, target{}, "target.include_email: applies to token_format id_token only"},
		{"bad token format", `{"service_account":"` + sa + `","token_format":"jwt"}`, target{}, "target.token_format: must be access_token (the default) or id_token"},

		{"universe", `{"service_account":"` + sa + `","universe_domain":"s3nsapis.fr"}`,
			target{ServiceAccount: sa, Scopes: []string{DefaultScope}, Mode: modeImpersonate, UniverseDomain: "s3nsapis.fr"}, ""},
		{"universe with scheme", `{"service_account":"` + sa + `","universe_domain":"https://s3nsapis.fr"}`, target{}, "target.universe_domain: must be"},
		{"universe with port", `{"service_account":"` + sa + `","universe_domain":"s3nsapis.fr:443"}`, target{}, "target.universe_domain: must be"},
		{"universe one label", `{"service_account":"` + sa + `","universe_domain":"localhost"}`, target{}, "target.universe_domain: must be"},
		{"universe upper case", `{"service_account":"` + sa + `","universe_domain":"GoogleAPIs.com"}`, target{}, "target.universe_domain: must be"},
		{"universe trailing dot", `{"service_account":"` + sa + `","universe_domain":"googleapis.com."}`, target{}, "target.universe_domain: must be"},
		{"universe IP", `{"service_account":"` + sa + `","universe_domain":"10.0.0.1"}`, target{}, "target.universe_domain: must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := decodeTarget([]byte(tt.raw))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "gcp: ") {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "root@example.com") {
					t.Errorf("error %v names the value", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.want.TokenFormat == "" {
				tt.want.TokenFormat = formatAccessToken
			}
			if tt.want.UniverseDomain == "" {
				tt.want.UniverseDomain = DefaultUniverseDomain
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("target (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAssertionClaims(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	tg := target{ServiceAccount: sa, Mode: modeWorkloadIdentity, WorkloadIdentityProvider: wip}
	got := assertionClaims(tg, providers.Request{
		IssuanceID: "iss-1",
		Mapping:    "web-prod-deploy",
		Claims: &identity.Claims{
			Issuer: "https://gitlab.com", Subject: "project_path:platform/app:ref_type:tag:ref:v1",
			Kind: identity.KindGitLab, Repository: "platform/app", RepositoryID: "4242",
			Ref: "refs/tags/v1", RunID: "1212", JobID: "77", Actor: "alice",
		},
	}, now)
	jti, _ := got["jti"].(string)
	if len(jti) != 36 {
		t.Errorf("jti %q", jti)
	}
	delete(got, "jti")
	want := map[string]any{
		"sub":             "oidc-bridge:gcp:mapping:web-prod-deploy",
		"aud":             "https://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/oidc-bridge/providers/bridge",
		"exp":             now.Add(5 * time.Minute).Unix(),
		"mapping":         "web-prod-deploy",
		"service_account": sa,
		"issuance_id":     "iss-1",
		"ci_issuer":       "https://gitlab.com",
		"ci_subject":      "project_path:platform/app:ref_type:tag:ref:v1",
		"ci_kind":         "gitlab",
		"repository":      "platform/app",
		"repository_id":   "4242",
		"ref":             "refs/tags/v1",
		"run_id":          "1212",
		"job_id":          "77",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("claims (-want +got):\n%s", diff)
	}
	if n := len(Subject(strings.Repeat("m", 64))); n > 127 {
		t.Errorf("a subject of %d bytes", n)
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	gerr := func(status int, body string) error { return &googleapi.Error{Code: status, Body: body} }
	deadline, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	dial := &url.Error{Op: "Post", URL: "https://x", Err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}}
	reset := &url.Error{Op: "Post", URL: "https://x", Err: &net.OpError{Op: "read", Err: errors.New("connection reset")}}
	tests := []struct {
		name          string
		ctx           context.Context
		err           error
		code          codeOf
		mayIssue      bool
		class         error
		want          string
		indeterminate bool
	}{
		{"denied", context.Background(), gerr(403, `{"error":{"code":403,"status":"PERMISSION_DENIED"}}`), googleCode, true, providers.ErrRefused, "PERMISSION_DENIED", false},
		{"status from http", context.Background(), gerr(404, `not json`), googleCode, true, providers.ErrRefused, "NOT_FOUND", false},
		{"message as status", context.Background(), gerr(400, `{"error":{"status":"deploy@x.iam is bad"}}`), googleCode, true, providers.ErrRefused, "INVALID_ARGUMENT", false},
		{"unavailable", context.Background(), gerr(503, `{"error":{"status":"UNAVAILABLE"}}`), googleCode, true, providers.ErrUnavailable, "UNAVAILABLE", false},
		{"429", context.Background(), gerr(429, ``), googleCode, true, providers.ErrUnavailable, "RESOURCE_EXHAUSTED", false},
		{"502", context.Background(), gerr(502, ``), googleCode, true, providers.ErrUnavailable, "INTERNAL", false},
		{"504 may have minted", context.Background(), gerr(504, ``), googleCode, true, providers.ErrUnavailable, "DEADLINE_EXCEEDED", true},
		{"504 at sts", context.Background(), gerr(504, ``), stsCode, false, providers.ErrUnavailable, "DEADLINE_EXCEEDED", false},
		{"sts oauth", context.Background(), gerr(400, `{"error":"invalid_grant","error_description":"x"}`), stsCode, false, providers.ErrRefused, "invalid_grant", false},
		{"sts google shape", context.Background(), gerr(503, `{"error":{"code":503,"status":"UNAVAILABLE"}}`), stsCode, false, providers.ErrUnavailable, "UNAVAILABLE", false},
		{"deadline", deadline, context.DeadlineExceeded, googleCode, true, providers.ErrUnavailable, "Timeout", true},
		{"deadline at sts", deadline, context.DeadlineExceeded, stsCode, false, providers.ErrUnavailable, "Timeout", false},
		{"dial", context.Background(), dial, googleCode, true, providers.ErrUnavailable, "ConnectionError", false},
		{"reset", context.Background(), reset, googleCode, true, providers.ErrUnavailable, "ConnectionError", true},
		{"garbage", context.Background(), errors.New("proto: syntax error"), googleCode, true, providers.ErrUnavailable, "InvalidResponse", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := classify(tt.ctx, tt.err, tt.code, tt.mayIssue)
			if !errors.Is(e, tt.class) || e.Code != tt.want || e.Indeterminate != tt.indeterminate {
				t.Errorf("got %v (code %s, indeterminate %v)", e, e.Code, e.Indeterminate)
			}
		})
	}
}

func TestNoRetry(t *testing.T) {
	t.Parallel()
	r := noRetry()
	for _, err := range []error{&googleapi.Error{Code: 503}, &googleapi.Error{Code: 429}, &net.OpError{Op: "dial"}} {
		if _, ok := r.Retry(err); ok {
			t.Errorf("retried %v", err)
		}
	}
}
