package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/providers"
	"github.com/oidc-bridge/oidc-bridge/test/entratest"
	"github.com/oidc-bridge/oidc-bridge/test/gcptest"
	"github.com/oidc-bridge/oidc-bridge/test/oidctest"
	"github.com/oidc-bridge/oidc-bridge/test/pgtest"
	"github.com/oidc-bridge/oidc-bridge/test/ststest"
)

const (
	bridgeSA = "oidc-bridge@ops-proj.iam.gserviceaccount.com"
	deploySA = "deploy@acme-prod.iam.gserviceaccount.com"
	wifSA    = "wif-deploy@acme-prod.iam.gserviceaccount.com"
	wip      = "//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/oidc-bridge/providers/bridge"
)

// cloudsEnv is a signing bridge with every cloud's fake behind it.
type cloudsEnv struct {
	dbURL     string
	publicURL string
	env       []string
	gh        *oidctest.Issuer
	sts       *ststest.Server
	gcp       *gcptest.Server
	entra     *entratest.Server
}

const (
	azureTenant = "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
	azureClient = "0b1c2d3e-4f5a-4b6c-9d8e-7f6a5b4c3d2e"
)

func newCloudsEnv(t *testing.T) *cloudsEnv {
	t.Helper()
	c := &cloudsEnv{dbURL: pgtest.NewDatabase(t), gh: oidctest.New(t), sts: ststest.New(t), gcp: gcptest.New(t),
		entra: entratest.New(t)}
	env, publicURL := issuerEnv(t, c.dbURL)
	c.publicURL = publicURL
	// AWS: the bridge's key for assume_role; the bridge as a trusted OIDC
	// provider for web_identity.
	c.sts.TrustOIDCProvider(publicURL, "sts.amazonaws.com")
	// GCP: the bridge's ADC service account may impersonate deploySA; the
	// pool provider trusts the bridge, and its principal for mapping
	// gcp-wif may impersonate wifSA.
	c.gcp.Allow(bridgeSA, deploySA)
	p := gcptest.WorkloadIdentityProvider{Name: wip, IssuerURI: publicURL}
	if err := c.gcp.AddWorkloadIdentityProvider(p); err != nil {
		t.Fatal(err)
	}
	c.gcp.Allow(p.Principal("oidc-bridge:gcp:mapping:gcp-wif"), wifSA)
	// Azure: the app's federated credential trusts the bridge for mapping azure.
	c.entra.AddFederatedCredential(azureTenant, azureClient, entratest.FederatedCredential{Name: "oidc-bridge",
		Issuer: publicURL, Subject: "oidc-bridge:azure:mapping:azure", Audiences: []string{"api://AzureADTokenExchange"}})
	c.env = append(env, awsEnv(c.sts)...)
	c.env = append(c.env,
		"BRIDGE_LISTEN_ADDR="+strings.TrimPrefix(publicURL, "http://"),
		"GOOGLE_APPLICATION_CREDENTIALS="+c.gcp.WriteCredentialsFile(t, bridgeSA),
		"BRIDGE_GCP_IAMCREDENTIALS_ENDPOINT="+c.gcp.IAMCredentialsEndpoint(),
		"BRIDGE_GCP_STS_ENDPOINT="+c.gcp.STSEndpoint(),
		"AZURE_AUTHORITY_HOST="+c.entra.URL(),
		"SSL_CERT_FILE="+c.entra.WriteCertFile(t), // the Entra fake is TLS
		"CLOUDSDK_CONFIG="+t.TempDir(), "GCE_METADATA_HOST=", "GOOGLE_AUTH_TRUST_BOUNDARY_ENABLED=", "GOOGLE_CLOUD_UNIVERSE_DOMAIN=",
	)
	return c
}

func (c *cloudsEnv) addMapping(s *server, name, provider, target string) {
	s.must(201, "POST", "/v1/admin/mappings", fmt.Sprintf(`{"name": %q, "issuer": "github",
		"conditions": {"repository": "acme/web", "ref": "refs/heads/main"},
		"provider": %q, "target": %s, "max_duration_seconds": 3600}`, name, provider, target))
}

// TestAllClouds: one pipeline token exchanges, mapping by mapping, for AWS
// (assume_role and web_identity), GCP (impersonate and workload_identity),
// Azure and an internal JWT, through the real binary, the real SDKs and the fakes;
// every issuance is in the audit view with its credential id.
func TestAllClouds(t *testing.T) {
	t.Parallel()
	c := newCloudsEnv(t)
	s := startServer(t, c.env)
	s.must(201, "POST", "/v1/admin/issuers", issuerBody("github", c.gh.URL(), "github"))
	c.addMapping(s, "aws-ar", "aws", `{"role_arn": "arn:aws:iam::123456789012:role/ar", "region": "eu-west-1"}`)
	c.addMapping(s, "aws-wi", "aws", `{"role_arn": "arn:aws:iam::123456789012:role/wi", "region": "eu-west-1", "mode": "web_identity"}`)
	c.addMapping(s, "gcp-imp", "gcp", fmt.Sprintf(`{"service_account": %q}`, deploySA))
	c.addMapping(s, "gcp-wif", "gcp", fmt.Sprintf(`{"service_account": %q, "mode": "workload_identity", "workload_identity_provider": %q}`, wifSA, wip))
	c.addMapping(s, "internal", "jwt", `{"audience": "https://deploy.internal.example"}`)
	c.addMapping(s, "azure", "azure", fmt.Sprintf(`{"tenant_id": %q, "client_id": %q, "scope": "https://management.azure.com/.default"}`,
		azureTenant, azureClient))

	ids := map[string]string{}
	for _, m := range []string{"aws-ar", "aws-wi", "gcp-imp", "gcp-wif", "internal", "azure"} {
		// A fresh token per exchange, as the clients do: a token is
		// exchanged once in all.
		token := c.gh.Mint(t, c.gh.GitHubClaims(nil))
		r := exchange(s, token, fmt.Sprintf(`{"mapping": %q, "duration_seconds": 900}`, m))
		if r.status != 200 {
			t.Fatalf("%s: %d %s", m, r.status, r.body)
		}
		var resp api.ExchangeResponse
		r.json(t, &resp)
		var id string
		switch resp.Provider {
		case "aws":
			var cr providers.AWSCredentials
			_ = json.Unmarshal(resp.Credentials, &cr)
			id = cr.AccessKeyID
		case "gcp":
			var cr providers.GCPCredentials
			_ = json.Unmarshal(resp.Credentials, &cr)
			id = providers.TokenID(cr.AccessToken)
			if cr.TokenType != "Bearer" || !strings.HasSuffix(cr.ServiceAccount, "@acme-prod.iam.gserviceaccount.com") {
				t.Errorf("%s credentials %s", m, resp.Credentials)
			}
		case "jwt":
			var cr providers.JWTCredentials
			_ = json.Unmarshal(resp.Credentials, &cr)
			id = providers.TokenID(cr.Token)
		case "azure":
			var cr providers.AzureCredentials
			_ = json.Unmarshal(resp.Credentials, &cr)
			id = providers.TokenID(cr.AccessToken)
			if cr.TenantID != azureTenant || cr.ClientID != azureClient || cr.TokenType != "Bearer" {
				t.Errorf("azure credentials %s", resp.Credentials)
			}
		}
		if id == "" || id == "sha256:" {
			t.Fatalf("%s: no credential in %s", m, r.body)
		}
		ids[resp.IssuanceID] = id
	}
	// What the fakes saw: the web identity token came from the bridge; the
	// workload identity exchange went through STS with the bridge's JWT.
	calls := c.sts.Calls()
	if len(calls) != 2 || calls[0].Action != "AssumeRole" || calls[1].Action != "AssumeRoleWithWebIdentity" ||
		calls[1].WebIdentityIssuer != c.publicURL || calls[1].WebIdentitySubject != "oidc-bridge:aws:mapping:aws-wi" {
		t.Fatalf("STS calls %+v", calls)
	}
	if sts := c.gcp.CallsTo(gcptest.STS); len(sts) != 1 {
		t.Fatalf("Google STS calls %+v", sts)
	}
	if calls := c.entra.TokenCalls(); len(calls) != 1 {
		t.Fatalf("Entra token calls %+v", calls)
	}

	// RFC 8693: the same token for the GCP mapping is a replay; a fresh one
	// works and returns the access token in OAuth's shape.
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token": {c.gh.Mint(t, c.gh.GitHubClaims(nil))}, "subject_token_type": {"urn:ietf:params:oauth:token-type:jwt"},
		"audience": {"gcp-imp"}}
	r := s.callForm("/oauth2/token", form)
	var te api.TokenExchangeResponse
	if err := json.Unmarshal(r.body, &te); r.status != 200 || err != nil ||
		te.IssuedTokenType != "urn:ietf:params:oauth:token-type:access_token" || te.AccessToken == "" {
		t.Fatalf("token exchange: %d %s", r.status, r.body)
	}
	ids[te.IssuanceID] = providers.TokenID(te.AccessToken)

	// The audit view has every issuance with its credential id.
	rows, err := openDB(t, c.dbURL).Query(context.Background(),
		`SELECT id::text, outcome, credential_id FROM audit.issuances`)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for rows.Next() {
		var id, outcome, cred string
		if err := rows.Scan(&id, &outcome, &cred); err != nil {
			t.Fatal(err)
		}
		if want, ok := ids[id]; ok {
			seen++
			if outcome != "issued" || cred != want {
				t.Errorf("audit row %s: %s %s, want issued %s", id, outcome, cred, want)
			}
		}
	}
	if seen != len(ids) {
		t.Fatalf("audit rows found for %d of %d issuances", seen, len(ids))
	}
	s.stopClean()
}

// TestAWSSessionTagsAndRoleChaining: with BRIDGE_AWS_ROLE_CHAINING at its
// default (true) and an STS whose callers are role sessions, the real
// binary refuses an assume_role mapping over an hour when it is written,
// and sends static session tags and transitive keys in both modes.
func TestAWSSessionTagsAndRoleChaining(t *testing.T) {
	t.Parallel()
	c := newCloudsEnv(t)
	c.sts.SetRoleChainingCaller(true)
	var env []string
	for _, kv := range c.env {
		if !strings.HasPrefix(kv, "BRIDGE_AWS_ROLE_CHAINING=") {
			env = append(env, kv)
		}
	}
	s := startServer(t, env)
	s.must(201, "POST", "/v1/admin/issuers", issuerBody("github", c.gh.URL(), "github"))
	mapping := func(name, mode string, d int) string {
		return fmt.Sprintf(`{"name": %q, "issuer": "github", "conditions": {"repository": "acme/web"}, "provider": "aws",
			"target": {"role_arn": "arn:aws:iam::123456789012:role/%s", "region": "eu-west-1", "mode": %q,
			           "session_tags": {"team": "payments"}, "transitive_tag_keys": ["team", "repository"]},
			"max_duration_seconds": %d}`, name, name, mode, d)
	}
	r := s.call("POST", "/v1/admin/mappings", mapping("aws-ar", "assume_role", 7200), adminToken)
	var e api.Error
	r.json(t, &e)
	if r.status != 400 || e.Field != "max_duration_seconds" || !strings.Contains(e.Message, "BRIDGE_AWS_ROLE_CHAINING") {
		t.Fatalf("an assume_role mapping of 2 h: %d %s", r.status, r.body)
	}
	s.must(201, "POST", "/v1/admin/mappings", mapping("aws-ar", "assume_role", 3600))
	s.must(201, "POST", "/v1/admin/mappings", mapping("aws-wi", "web_identity", 43200))

	for _, tc := range []struct {
		mapping  string
		duration int
	}{{"aws-ar", 3600}, {"aws-wi", 43200}} {
		token := c.gh.Mint(t, c.gh.GitHubClaims(nil))
		r := exchange(s, token, fmt.Sprintf(`{"mapping": %q, "duration_seconds": %d}`, tc.mapping, tc.duration))
		if r.status != 200 {
			t.Fatalf("%s: %d %s", tc.mapping, r.status, r.body)
		}
		calls := c.sts.Calls()
		call := calls[len(calls)-1]
		if call.Tags["team"] != "payments" || call.Tags["repository"] != "acme/web" || call.DurationSeconds != tc.duration ||
			strings.Join(call.TransitiveTagKeys, ",") != "team,repository" {
			t.Errorf("%s: tags %v, transitive %v, duration %d", tc.mapping, call.Tags, call.TransitiveTagKeys, call.DurationSeconds)
		}
	}
}
