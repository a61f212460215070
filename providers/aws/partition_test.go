package aws_test

import (
	"testing"
	"time"

	"github.com/oidc-bridge/oidc-bridge/providers"
	"github.com/oidc-bridge/oidc-bridge/providers/aws"
	"github.com/oidc-bridge/oidc-bridge/signing/signingtest"
	"github.com/oidc-bridge/oidc-bridge/test/hosttest"
	"github.com/oidc-bridge/oidc-bridge/test/ststest"
)

// TestPartitions: with no endpoint override, the SDK resolves the
// regional STS endpoint of the role's partition (never the global
// sts.amazonaws.com); the host reaches the fake only through the test's
// map, and the fake records the Host and the signature's region. A web
// identity token carries the partition's audience.
func TestPartitions(t *testing.T) {
	for _, tt := range []struct {
		name, arn, region, mode, audience string
		wantHost, wantAud                 string
	}{
		{"aws us-east-1 is regional", "arn:aws:iam::123456789012:role/deploy", "us-east-1", "assume_role", "",
			"sts.us-east-1.amazonaws.com", ""},
		{"gov assume role", "arn:aws-us-gov:iam::123456789012:role/deploy", "us-gov-west-1", "assume_role", "",
			"sts.us-gov-west-1.amazonaws.com", ""},
		{"gov web identity", "arn:aws-us-gov:iam::123456789012:role/deploy", "us-gov-east-1", "web_identity", "",
			"sts.us-gov-east-1.amazonaws.com", "sts.amazonaws.com"},
		{"china assume role", "arn:aws-cn:iam::123456789012:role/deploy", "cn-north-1", "assume_role", "",
			"sts.cn-north-1.amazonaws.com.cn", ""},
		{"china web identity", "arn:aws-cn:iam::123456789012:role/deploy", "cn-northwest-1", "web_identity", "",
			"sts.cn-northwest-1.amazonaws.com.cn", "sts.amazonaws.com.cn"},
		{"china web identity, EKS-style audience", "arn:aws-cn:iam::123456789012:role/deploy", "cn-north-1", "web_identity",
			"sts.amazonaws.com", "sts.cn-north-1.amazonaws.com.cn", "sts.amazonaws.com"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := ststest.New(t)
			signer := signingtest.New(t)
			bridgeEnv(t)
			t.Setenv("AWS_ENDPOINT_URL_STS", "")
			t.Setenv("AWS_ENDPOINT_URL", "")
			t.Setenv("AWS_REGION", "eu-west-1") // the bridge's own region is not the target's
			client, tr := hosttest.Client(map[string]string{tt.wantHost: s.URL()}, nil)
			p, err := aws.New(t.Context(), aws.Config{HTTPClient: client, Signer: signer})
			if err != nil {
				t.Fatal(err)
			}
			tgt := map[string]string{"role_arn": tt.arn, "region": tt.region, "mode": tt.mode}
			if tt.audience != "" {
				tgt["audience"] = tt.audience
			}
			if tt.mode == "web_identity" {
				s.TrustOIDCProvider(signer.Issuer(), tt.wantAud)
			}
			cred, err := p.Mint(t.Context(), providers.Request{
				IssuanceID: "0193b9e2-6c1e-7c3a-9f1e-2a4b5c6d7e8f", Mapping: "web-prod-deploy",
				Target: target(t, tgt), Claims: githubClaims(), Duration: time.Hour,
			})
			if err != nil {
				t.Fatalf("%v (hosts asked for: %v)", err, tr.Seen())
			}
			if body := cred.Body.(providers.AWSCredentials); body.Region != tt.region {
				t.Errorf("credentials' region %q", body.Region)
			}
			calls := s.Calls()
			if len(calls) != 1 || calls[0].Host != tt.wantHost || calls[0].RoleArn != tt.arn {
				t.Fatalf("calls %+v, want one to %s", calls, tt.wantHost)
			}
			if tt.mode == "assume_role" && calls[0].Region != tt.region {
				t.Errorf("signed for region %q", calls[0].Region)
			}
			if tt.mode == "web_identity" && (len(calls[0].WebIdentityAudience) != 1 || calls[0].WebIdentityAudience[0] != tt.wantAud) {
				t.Errorf("token audience %v, want %s", calls[0].WebIdentityAudience, tt.wantAud)
			}
		})
	}
}
