package entratest_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/oidc-bridge/oidc-bridge/test/entratest"
)

// TestFederatedCredentialLimits: the fake refuses the credentials Entra
// refuses to create.
func TestFederatedCredentialLimits(t *testing.T) {
	t.Parallel()
	max := strings.Repeat("s", entratest.MaxCredentialField)
	ok := entratest.FederatedCredential{Issuer: "https://bridge.example.com", Subject: subject}
	for _, fc := range []entratest.FederatedCredential{
		ok,
		{Issuer: "https://bridge.example.com/" + max[:600-len("https://bridge.example.com/")], Subject: max, Audiences: []string{"api://" + max[:600-6]}},
	} {
		if err := entratest.ValidateFederatedCredential(fc); err != nil {
			t.Errorf("%+v refused: %v", fc, err)
		}
	}
	for name, fc := range map[string]entratest.FederatedCredential{
		"subject 601":     {Issuer: ok.Issuer, Subject: max + "s"},
		"issuer 601":      {Issuer: "https://" + max, Subject: subject},
		"audience 601":    {Issuer: ok.Issuer, Subject: subject, Audiences: []string{"api://" + max}},
		"two audiences":   {Issuer: ok.Issuer, Subject: subject, Audiences: []string{entratest.DefaultAudience, "api://other"}},
		"wildcard":        {Issuer: ok.Issuer, Subject: "oidc-bridge:azure:mapping:*"},
		"issuer space":    {Issuer: ok.Issuer + " ", Subject: subject},
		"no subject":      {Issuer: ok.Issuer},
		"empty audience":  {Issuer: ok.Issuer, Subject: subject, Audiences: []string{""}},
		"subject newline": {Issuer: ok.Issuer, Subject: "\n" + subject},
	} {
		if err := entratest.ValidateFederatedCredential(fc); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}

	s := entratest.New(t)
	mustPanic := func(what string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s: no panic", what)
			}
		}()
		f()
	}
	mustPanic("invalid", func() {
		s.AddFederatedCredential(tenant, client, entratest.FederatedCredential{Issuer: ok.Issuer, Subject: max + "s"})
	})
	for i := range entratest.MaxFederatedCredentials {
		s.AddFederatedCredential(tenant, client, entratest.FederatedCredential{Issuer: ok.Issuer, Subject: subject + strings.Repeat("x", i)})
	}
	mustPanic("21st", func() {
		s.AddFederatedCredential(tenant, client, entratest.FederatedCredential{Issuer: ok.Issuer, Subject: "another"})
	})
	mustPanic("same issuer and subject", func() {
		s.AddFederatedCredential(tenant, "00000000-1111-4222-8333-444455556666", ok)
		s.AddFederatedCredential(tenant, "00000000-1111-4222-8333-444455556666", ok)
	})
}

// TestAssertionLimitsThroughAzidentity presents, through azidentity's
// ClientAssertionCredential (what the bridge uses), assertions that break
// Entra's rules, and reads the AADSTS code Entra answers each with.
func TestAssertionLimitsThroughAzidentity(t *testing.T) {
	t.Parallel()
	s, sg := setup(t, entratest.WithMaxAssertionLifetime(10*time.Minute))
	long := strings.Repeat("x", entratest.MaxCredentialField+1)
	tests := []struct {
		name   string
		mutate func(map[string]any)
		code   string // "" for success
	}{
		{"valid", nil, ""},
		{"ten minutes", func(c map[string]any) { c["exp"] = time.Now().Add(10 * time.Minute).Unix() }, ""},
		{"longer than the test allows", func(c map[string]any) { c["exp"] = time.Now().Add(11 * time.Minute).Unix() }, "AADSTS700024"},
		{"expired", func(c map[string]any) { c["exp"] = time.Now().Add(-6 * time.Minute).Unix() }, "AADSTS700024"},
		{"not yet valid", func(c map[string]any) { c["nbf"] = time.Now().Add(6 * time.Minute).Unix() }, "AADSTS700024"},
		{"subject beyond 600 characters", func(c map[string]any) { c["sub"] = subject + long }, "AADSTS700213"},
		{"subject in another case", func(c map[string]any) { c["sub"] = strings.ToUpper(subject) }, "AADSTS700213"},
		{"audience of another cloud", func(c map[string]any) { c["aud"] = "api://AzureADTokenExchangeUSGov" }, "AADSTS700212"},
		{"audience in another case", func(c map[string]any) { c["aud"] = "api://azureadtokenexchange" }, "AADSTS700212"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cred, err := azidentity.NewClientAssertionCredential(tenant, client,
				func(context.Context) (string, error) { return assertion(t, sg, tt.mutate), nil },
				&azidentity.ClientAssertionCredentialOptions{
					ClientOptions: azcore.ClientOptions{
						Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: s.URL()}, Transport: s.Client(),
						Retry: policy.RetryOptions{MaxRetries: -1},
					},
					DisableInstanceDiscovery: true,
				})
			if err != nil {
				t.Fatal(err)
			}
			_, err = cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}})
			if tt.code == "" {
				if err != nil {
					t.Fatalf("GetToken: %v", err)
				}
				return
			}
			var afe *azidentity.AuthenticationFailedError
			if !errors.As(err, &afe) || afe.RawResponse == nil || !strings.Contains(err.Error(), tt.code) {
				t.Errorf("GetToken: %v, want %s", err, tt.code)
			}
		})
	}
}
