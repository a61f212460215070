package entratest_test

import (
	"testing"

	"github.com/oidc-bridge/oidc-bridge/providers/jwt/jwttest"
	"github.com/oidc-bridge/oidc-bridge/signing/signingtest"
	"github.com/oidc-bridge/oidc-bridge/test/entratest"
)

// TestJWTProviderTokenRefusedAsClientAssertion: a token of the bridge's jwt
// provider is not a client assertion Entra accepts for a federated identity
// credential whose subject is, as documented, oidc-bridge:azure:mapping:deploy,
// whatever sub the pipeline's token had. The jwt provider will not sign for
// api://AzureADTokenExchange (or a sovereign variant); a credential that
// accepted its internal audience refuses its subject (AADSTS700213).
func TestJWTProviderTokenRefusedAsClientAssertion(t *testing.T) {
	t.Parallel()
	const internal = "https://internal.example"
	s := entratest.New(t)
	sg := signingtest.New(t)
	s.AddFederatedCredential(tenant, client, entratest.FederatedCredential{Issuer: sg.Issuer(), Subject: subject,
		Audiences: []string{internal}})
	for _, sub := range []string{"repo:x:mapping:deploy", "oidc-bridge:mapping:deploy", subject} {
		for _, aud := range []string{entratest.DefaultAudience, "api://azureadtokenexchange", "api://AzureADTokenExchangeUSGov"} {
			if _, err := jwttest.Mint(t, sg, aud, sub); err == nil {
				t.Errorf("the jwt provider signed a token for %s", aud)
			}
		}
		tok, err := jwttest.Mint(t, sg, internal, sub)
		if err != nil {
			t.Fatal(err)
		}
		a := post(t, s, tenant, form(tok))
		checkError(t, a, 401, "invalid_client", 700213)
	}
	// The same credential accepts the subject it names.
	if a := post(t, s, tenant, form(assertion(t, sg, func(c map[string]any) { c["aud"] = internal }))); a.status != 200 {
		t.Fatalf("the trusted subject: %+v", a)
	}
}
