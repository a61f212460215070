package azure_test

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/providers"
	"github.com/oidc-bridge/oidc-bridge/providers/azure"
	"github.com/oidc-bridge/oidc-bridge/test/entratest"
	"github.com/oidc-bridge/oidc-bridge/test/hosttest"
)

// TestClouds: a target's cloud fixes the authority host (azidentity's
// cloud configuration), the assertion's audience and the default scope.
// The authority's host reaches the fake only through the test's map (over
// the fake's TLS, verified with its certificate); the fake records the Host
// each request was for and accepts the assertion only with the cloud's
// audience.
func TestClouds(t *testing.T) {
	for _, tt := range []struct {
		cloud, wantHost, wantAud, wantScope string
	}{
		{"us_government", "login.microsoftonline.us", "api://AzureADTokenExchangeUSGov", "https://management.core.usgovcloudapi.net/.default"},
		{"china", "login.chinacloudapi.cn", "api://AzureADTokenExchangeChina", "https://management.core.chinacloudapi.cn/.default"},
		{"public", "login.microsoftonline.com", azure.DefaultAudience, azure.DefaultScope},
	} {
		t.Run(tt.cloud, func(t *testing.T) {
			var tr *hosttest.Transport
			e := setup(t, func(c *azure.Config) {
				// The deployment's own authority stays the fake's address:
				// the target's cloud must replace it.
				c.HTTPClient, tr = hosttest.Client(map[string]string{}, e0Transport(c))
			})
			tr.Hosts[tt.wantHost] = e.fake.URL()
			e.fake.AddFederatedCredential(tenantID, clientID, entratest.FederatedCredential{
				Name: "bridge-" + tt.cloud, Issuer: e.signer.Issuer(), Subject: azure.Subject("sovereign"),
				Audiences: []string{tt.wantAud},
			})
			tgt := fmt.Sprintf(`{"tenant_id": %q, "client_id": %q, "cloud": %q}`, tenantID, clientID, tt.cloud)
			cred, err := e.prov.Mint(t.Context(), request("sovereign", tgt))
			if err != nil {
				t.Fatalf("%v (hosts asked for: %v)", err, tr.Seen())
			}
			if body := cred.Body.(providers.AzureCredentials); body.Scope != tt.wantScope {
				t.Errorf("scope %q, want %q", body.Scope, tt.wantScope)
			}
			var hosts []string
			for _, c := range e.fake.Calls() {
				hosts = append(hosts, c.Host)
			}
			if len(hosts) == 0 || slices.ContainsFunc(hosts, func(h string) bool { return h != tt.wantHost }) {
				t.Errorf("the fake saw hosts %v, want only %s", hosts, tt.wantHost)
			}
			tok := e.fake.TokenCalls()
			if len(tok) != 1 || tok[0].Assertion["aud"] != tt.wantAud || tok[0].Scope == "" ||
				!strings.Contains(tok[0].Scope, tt.wantScope) {
				t.Fatalf("token calls %+v", tok)
			}
		})
	}
}

// e0Transport is the fake's TLS transport that setup's config carries.
func e0Transport(c *azure.Config) http.RoundTripper { return c.HTTPClient.Transport }

// TestCloudScopeOfAnotherCloud: a scope of one cloud's resource with
// another cloud is refused when the mapping is written.
func TestCloudScopeOfAnotherCloud(t *testing.T) {
	t.Parallel()
	for _, tgt := range []string{
		fmt.Sprintf(`{"tenant_id": %q, "client_id": %q, "cloud": "us_government", "scope": "https://management.azure.com/.default"}`, tenantID, clientID),
		fmt.Sprintf(`{"tenant_id": %q, "client_id": %q, "cloud": "china", "scope": "https://vault.usgovcloudapi.net/.default"}`, tenantID, clientID),
		fmt.Sprintf(`{"tenant_id": %q, "client_id": %q, "cloud": "public", "scope": "https://management.chinacloudapi.cn/.default"}`, tenantID, clientID),
		fmt.Sprintf(`{"tenant_id": %q, "client_id": %q, "cloud": "germany"}`, tenantID, clientID),
		fmt.Sprintf(`{"tenant_id": %q, "client_id": %q, "cloud": "AzureUSGovernment"}`, tenantID, clientID),
	} {
		var fe *providers.FieldError
		if err := (azure.Spec{}).CheckTarget([]byte(tgt)); !errors.As(err, &fe) || (fe.Field != "target.scope" && fe.Field != "target.cloud") {
			t.Errorf("%s: %v", tgt, err)
		}
	}
	for _, tgt := range []string{
		fmt.Sprintf(`{"tenant_id": %q, "client_id": %q, "cloud": "us_government", "scope": "https://vault.usgovcloudapi.net/.default"}`, tenantID, clientID),
		fmt.Sprintf(`{"tenant_id": %q, "client_id": %q, "cloud": "china", "scope": "api://my-app/.default"}`, tenantID, clientID),
	} {
		if err := (azure.Spec{}).CheckTarget([]byte(tgt)); err != nil {
			t.Errorf("%s: %v", tgt, err)
		}
	}
}
