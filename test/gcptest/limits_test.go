package gcptest_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	iamcredentials "cloud.google.com/go/iam/credentials/apiv1"
	"cloud.google.com/go/iam/credentials/apiv1/credentialspb"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/oidc-bridge/oidc-bridge/test/gcptest"
)

// bearerTransport adds a fixed bearer token, as the bridge's own transport
// does.
type bearerTransport string

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+string(b))
	return http.DefaultTransport.RoundTrip(r)
}

// TestLimitsThroughTheSDK asks generateAccessToken through Google's own
// REST client for what Google refuses, and reads the refusal as the client
// does: the HTTP status and google.rpc status of each limit.
func TestLimitsThroughTheSDK(t *testing.T) {
	t.Parallel()
	const extendedSA = "long-lived@acme-prod.iam.gserviceaccount.com"
	s := gcptest.New(t, gcptest.WithLifetimeExtension(extendedSA))
	s.Allow(bridgeSA, deploySA, middleSA, extendedSA)
	bearer := oauthToken(t, s, bridgeSA, gcptest.CloudPlatformScope)
	client, err := iamcredentials.NewIamCredentialsRESTClient(t.Context(),
		option.WithEndpoint(s.IAMCredentialsEndpoint()),
		option.WithHTTPClient(&http.Client{Transport: bearerTransport(bearer)}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })

	tests := []struct {
		name      string
		account   string
		delegates []string
		lifetime  time.Duration
		status    int    // 0 for success
		code      string // google.rpc status
	}{
		{"an hour", deploySA, nil, time.Hour, 0, ""},
		{"over an hour", deploySA, nil, time.Hour + time.Second, 400, "INVALID_ARGUMENT"},
		{"12 hours, listed by the org policy", extendedSA, nil, 12 * time.Hour, 0, ""},
		{"over 12 hours, listed", extendedSA, nil, 12*time.Hour + time.Second, 400, "INVALID_ARGUMENT"},
		{"not an account", "deploy", nil, time.Hour, 400, "INVALID_ARGUMENT"},
		{"two @", "a@b@acme-prod.iam.gserviceaccount.com", nil, time.Hour, 400, "INVALID_ARGUMENT"},
		{"a person's e-mail", "deploy@example.com", nil, time.Hour, 404, "NOT_FOUND"},
		{"a short number", "12345", nil, time.Hour, 404, "NOT_FOUND"},
		{"malformed delegate", deploySA, []string{"projects/-/serviceAccounts/middle"}, time.Hour, 400, "INVALID_ARGUMENT"},
		{"delegate not a service account", deploySA, []string{"projects/-/serviceAccounts/middle@example.com"}, time.Hour, 404, "NOT_FOUND"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := &credentialspb.GenerateAccessTokenRequest{
				Name:     "projects/-/serviceAccounts/" + tt.account,
				Scope:    []string{gcptest.CloudPlatformScope},
				Lifetime: durationpb.New(tt.lifetime),
				// delegates get the resource-name prefix as the bridge sends them
				Delegates: tt.delegates,
			}
			out, err := client.GenerateAccessToken(t.Context(), in, gax.WithRetry(nil))
			if tt.status == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if d := time.Until(out.GetExpireTime().AsTime()); d < tt.lifetime-5*time.Second || d > tt.lifetime+5*time.Second {
					t.Errorf("token lives %s, want %s", d, tt.lifetime)
				}
				return
			}
			var ge *googleapi.Error
			if !errors.As(err, &ge) {
				t.Fatalf("error %v is not a Google API error", err)
			}
			var body struct {
				Error struct {
					Code   int    `json:"code"`
					Status string `json:"status"`
				} `json:"error"`
			}
			if ge.Code != tt.status || json.Unmarshal([]byte(ge.Body), &body) != nil ||
				body.Error.Code != tt.status || body.Error.Status != tt.code {
				t.Errorf("HTTP %d %s, want %d %s", ge.Code, ge.Body, tt.status, tt.code)
			}
		})
	}
	if got := s.CallsTo(gcptest.IAMCredentials); len(got) != len(tests) {
		t.Errorf("%d calls, want %d", len(got), len(tests))
	}
}

// TestAllowedAudienceLimits: a pool provider holds at most 10 allowed
// audiences of at most 256 characters each, as Google's API.
func TestAllowedAudienceLimits(t *testing.T) {
	t.Parallel()
	h := gcptest.NewHandler()
	ok := gcptest.WorkloadIdentityProvider{Name: wip, IssuerURI: "https://x", AllowedAudiences: []string{strings.Repeat("a", 256)}}
	if err := h.AddWorkloadIdentityProvider(ok); err != nil {
		t.Errorf("256 characters refused: %v", err)
	}
	for _, auds := range [][]string{
		{strings.Repeat("a", 257)},
		{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"},
		{""},
	} {
		p := gcptest.WorkloadIdentityProvider{Name: wip, IssuerURI: "https://x", AllowedAudiences: auds}
		if err := h.AddWorkloadIdentityProvider(p); err == nil {
			t.Errorf("allowed audiences %q accepted", auds)
		}
	}
}
