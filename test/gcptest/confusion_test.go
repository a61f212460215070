package gcptest_test

import (
	"net/http"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/providers/jwt/jwttest"
	"github.com/oidc-bridge/oidc-bridge/signing/signingtest"
	"github.com/oidc-bridge/oidc-bridge/test/gcptest"
)

// TestJWTProviderTokenRefusedByWorkloadIdentity: a token of the bridge's
// jwt provider cannot reach a service account bound, as documented, to
// principal://.../subject/oidc-bridge:gcp:mapping:deploy, whatever sub the
// pipeline's token had. The jwt provider will not sign for the pool
// provider's audience (or any Google audience); a pool provider that also
// allowed its internal audience exchanges it at STS, but for the jwt
// provider's subject, which the binding does not name.
func TestJWTProviderTokenRefusedByWorkloadIdentity(t *testing.T) {
	t.Parallel()
	signer := signingtest.New(t)
	const internal = "https://internal.example"
	s := gcptest.New(t)
	p := gcptest.WorkloadIdentityProvider{Name: wip, IssuerURI: signer.Issuer(),
		AllowedAudiences: []string{wipHTTPS, internal}}
	if err := s.AddWorkloadIdentityProvider(p); err != nil {
		t.Fatal(err)
	}
	s.Allow(p.Principal("oidc-bridge:gcp:mapping:deploy"), deploySA)
	for _, sub := range []string{"repo:x:mapping:deploy", "mapping:deploy", "oidc-bridge:gcp:mapping:deploy"} {
		for _, aud := range []string{wip, wipHTTPS, "sts.googleapis.com"} {
			if _, err := jwttest.Mint(t, signer, aud, sub); err == nil {
				t.Errorf("the jwt provider signed a token for %s", aud)
			}
		}
		tok, err := jwttest.Mint(t, signer, internal, sub)
		if err != nil {
			t.Fatal(err)
		}
		a := post(t, s.STSEndpoint()+"/v1/token", "application/x-www-form-urlencoded", stsForm(tok, nil), "")
		if a.Status != http.StatusOK {
			t.Fatalf("sub %q: STS %+v", sub, a)
		}
		federated := a.str("access_token")
		if got, _ := s.Lookup(federated); got.Principal != p.Principal("oidc-bridge:jwt:mapping:deploy") {
			t.Errorf("sub %q: federated principal %q", sub, got.Principal)
		}
		g := generate(t, s, deploySA, federated, map[string]any{"scope": []string{gcptest.CloudPlatformScope}})
		if g.Status != http.StatusForbidden || g.googleStatus() != "PERMISSION_DENIED" {
			t.Errorf("sub %q: generateAccessToken %+v, want PERMISSION_DENIED", sub, g)
		}
	}
}
