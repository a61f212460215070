package e2e

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/test/entratest"
	"github.com/oidc-bridge/oidc-bridge/test/gcptest"
	"github.com/oidc-bridge/oidc-bridge/test/proxytest"
)

// TestCloudBreadthTargets: through the real binary, the admin API (and
// so Terraform's plan, which validates with dry_run) refuses the targets a
// cloud would refuse: scopes with a GCP ID token, a bad universe, an AWS
// region of another partition than the role's, an Azure scope of another
// cloud; and a gcp id_token mapping issues a Google ID token at both
// exchange endpoints (RFC 8693 types it id_token).
func TestCloudBreadthTargets(t *testing.T) {
	t.Parallel()
	c := newCloudsEnv(t)
	s := startServer(t, c.env)
	s.must(201, "POST", "/v1/admin/issuers", issuerBody("github", c.gh.URL(), "github"))
	for _, tt := range []struct{ provider, target, field string }{
		{"gcp", fmt.Sprintf(`{"service_account": %q, "token_format": "id_token", "id_token_audience": "https://x.a.run.app", "scopes": ["https://www.googleapis.com/auth/iam"]}`, deploySA), "target.scopes"},
		{"gcp", fmt.Sprintf(`{"service_account": %q, "token_format": "id_token"}`, deploySA), "target.id_token_audience"},
		{"gcp", fmt.Sprintf(`{"service_account": %q, "universe_domain": "https://s3nsapis.fr"}`, deploySA), "target.universe_domain"},
		{"aws", `{"role_arn": "arn:aws-us-gov:iam::123456789012:role/deploy", "region": "us-east-1"}`, "target.region"},
		{"aws", `{"role_arn": "arn:aws:iam::123456789012:role/deploy", "region": "cn-north-1"}`, "target.region"},
		{"azure", fmt.Sprintf(`{"tenant_id": %q, "client_id": %q, "cloud": "us_government", "scope": "https://management.azure.com/.default"}`, azureTenant, azureClient), "target.scope"},
		{"azure", fmt.Sprintf(`{"tenant_id": %q, "client_id": %q, "cloud": "germany"}`, azureTenant, azureClient), "target.cloud"},
	} {
		body := fmt.Sprintf(`{"name": "bad", "issuer": "github", "conditions": {"repository": "acme/web", "ref": "refs/heads/main"},
			"provider": %q, "target": %s, "max_duration_seconds": 3600}`, tt.provider, tt.target)
		r := s.call("POST", "/v1/admin/mappings?dry_run=true", body)
		if r.status != 400 || !strings.Contains(string(r.body), `"field":"`+tt.field+`"`) {
			t.Errorf("%s %s: %d %s, want 400 on %s", tt.provider, tt.target, r.status, r.body, tt.field)
		}
	}

	const aud = "https://hello-abc123-ew.a.run.app"
	c.addMapping(s, "gcp-id", "gcp", fmt.Sprintf(`{"service_account": %q, "token_format": "id_token", "id_token_audience": %q, "include_email": true}`, deploySA, aud))
	tok := c.gh.Mint(t, c.gh.GitHubClaims(nil))
	r := s.must(200, "POST", "/v1/exchange", `{"mapping": "gcp-id"}`, tok)
	var resp struct {
		Credentials struct {
			IDToken     string `json:"id_token"`
			AccessToken string `json:"access_token"`
			Audience    string `json:"audience"`
		} `json:"credentials"`
	}
	if err := json.Unmarshal(r.body, &resp); err != nil || resp.Credentials.IDToken == "" || resp.Credentials.AccessToken != "" ||
		resp.Credentials.Audience != aud {
		t.Fatalf("exchange: %v %s", err, r.body)
	}
	calls := c.gcp.Calls()
	if last := calls[len(calls)-1]; last.IAMMethod != "generateIdToken" || last.IDTokenAudience != aud || !last.IncludeEmail {
		t.Errorf("the fake's last call %+v", last)
	}

	r = s.callForm("/oauth2/token", url.Values{
		"grant_type":         {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token":      {c.gh.Mint(t, c.gh.GitHubClaims(nil))},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:jwt"},
		"audience":           {"gcp-id"},
	})
	var te struct {
		AccessToken     string `json:"access_token"`
		IssuedTokenType string `json:"issued_token_type"`
	}
	if err := json.Unmarshal(r.body, &te); err != nil || r.status != 200 || te.IssuedTokenType != "urn:ietf:params:oauth:token-type:id_token" ||
		strings.Count(te.AccessToken, ".") != 2 {
		t.Errorf("token exchange: %d %s", r.status, r.body)
	}
}

// TestPartitionHostsThroughProxy: through the real binary, mappings of
// the sovereign partitions reach their own clouds' hosts and nothing else.
// The bridge runs with no endpoint override and only the machine's proxy
// settings, as behind a corporate proxy: HTTPS_PROXY is a CONNECT proxy
// that routes the partitions' real host names (and only those) to a TLS
// front certified by a test CA (SSL_CERT_FILE), which passes each request,
// Host header unchanged, to the fake of its cloud. Each fake records the
// host it was asked for; the proxy records every tunnel, so a request for
// a global endpoint (sts.amazonaws.com, login.microsoftonline.com,
// googleapis.com) would show there (and fail).
func TestPartitionHostsThroughProxy(t *testing.T) {
	t.Parallel()
	c := newCloudsEnv(t)
	const (
		govRole = "arn:aws-us-gov:iam::123456789012:role/deploy"
		cnRole  = "arn:aws-cn:iam::123456789012:role/deploy"
		s3ns    = "s3nsapis.fr"
	)
	c.sts.TrustOIDCProvider(c.publicURL, "sts.amazonaws.com.cn")
	for cloud, aud := range map[string]string{"us_government": "api://AzureADTokenExchangeUSGov", "china": "api://AzureADTokenExchangeChina"} {
		c.entra.AddFederatedCredential(azureTenant, azureClient, entratest.FederatedCredential{Name: "bridge-" + cloud,
			Issuer: c.publicURL, Subject: "oidc-bridge:azure:mapping:azure-" + cloud, Audiences: []string{aud}})
	}
	c.gcp.Allow(gcptest.WorkloadIdentityProvider{Name: wip, IssuerURI: c.publicURL}.Principal("oidc-bridge:gcp:mapping:gcp-s3ns"), wifSA)

	// The Entra fake serves TLS with a certificate of its own: a plain
	// hop in front of it, trusting that certificate, keeps the Host.
	entraURL, err := url.Parse(c.entra.URL())
	if err != nil {
		t.Fatal(err)
	}
	entraHop := httptest.NewServer(&httputil.ReverseProxy{Transport: c.entra.Client().Transport, Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(entraURL)
		pr.Out.Host = pr.In.Host
	}})
	t.Cleanup(entraHop.Close)
	backends := map[string]string{
		"sts.us-gov-west-1.amazonaws.com": c.sts.URL(),
		"sts.cn-north-1.amazonaws.com.cn": c.sts.URL(),
		"login.microsoftonline.us":        entraHop.URL,
		"login.chinacloudapi.cn":          entraHop.URL,
		"sts." + s3ns:                     c.gcp.URL(),
		"iamcredentials." + s3ns:          c.gcp.URL(),
	}
	front := proxytest.NewFront(t, backends)
	routes := map[string]string{}
	for host := range backends {
		routes[host+":443"] = front.Addr()
	}
	proxy := proxytest.NewProxy(t, routes)

	// No endpoint override: the SDKs resolve the partitions' hosts. Go's
	// environment proxy never applies to loopback addresses, so the
	// issuers, the bridge's own discovery and Postgres stay direct.
	env := append(slices.Clone(c.env), slices.Clone(noProxyEnv)...)
	env = append(env, "AWS_ENDPOINT_URL_STS=", "AWS_ENDPOINT_URL=", "BRIDGE_GCP_IAMCREDENTIALS_ENDPOINT=", "BRIDGE_GCP_STS_ENDPOINT=",
		"AZURE_AUTHORITY_HOST=", "HTTPS_PROXY="+proxy.URL(), "SSL_CERT_FILE="+front.CAFile,
		// The AWS SDK would trust only AWS_CA_BUNDLE's certificates (the
		// machine may set it): unset, it takes Go's roots, SSL_CERT_FILE's.
		"AWS_CA_BUNDLE=")
	s := startServer(t, env)
	s.must(201, "POST", "/v1/admin/issuers", issuerBody("github", c.gh.URL(), "github"))
	c.addMapping(s, "aws-gov", "aws", `{"role_arn": "`+govRole+`", "region": "us-gov-west-1"}`)
	c.addMapping(s, "aws-cn", "aws", `{"role_arn": "`+cnRole+`", "region": "cn-north-1", "mode": "web_identity"}`)
	for _, cloud := range []string{"us_government", "china"} {
		c.addMapping(s, "azure-"+cloud, "azure", fmt.Sprintf(`{"tenant_id": %q, "client_id": %q, "cloud": %q}`, azureTenant, azureClient, cloud))
	}
	c.addMapping(s, "gcp-s3ns", "gcp", fmt.Sprintf(`{"service_account": %q, "mode": "workload_identity", "workload_identity_provider": %q, "universe_domain": %q}`,
		wifSA, wip, s3ns))

	for _, tt := range []struct {
		mapping string
		tunnels []string
	}{
		{"aws-gov", []string{"sts.us-gov-west-1.amazonaws.com:443"}},
		{"aws-cn", []string{"sts.cn-north-1.amazonaws.com.cn:443"}},
		// azidentity reads the authority's metadata, then asks for the
		// token, on one connection or two.
		{"azure-us_government", []string{"login.microsoftonline.us:443"}},
		{"azure-china", []string{"login.chinacloudapi.cn:443"}},
		{"gcp-s3ns", []string{"sts." + s3ns + ":443", "iamcredentials." + s3ns + ":443"}},
	} {
		before := len(proxy.Targets())
		r := exchange(s, c.gh.Mint(t, c.gh.GitHubClaims(nil)), fmt.Sprintf(`{"mapping": %q}`, tt.mapping))
		if r.status != 200 {
			t.Fatalf("%s: %d %s (tunnels %v)", tt.mapping, r.status, r.body, proxy.Targets()[before:])
		}
		if got := slices.Compact(proxy.Targets()[before:]); !slices.Equal(got, tt.tunnels) {
			t.Errorf("%s: CONNECT targets %v, want %v", tt.mapping, got, tt.tunnels)
		}
	}

	var stsHosts []string
	for _, call := range c.sts.Calls() {
		stsHosts = append(stsHosts, call.Action+" "+call.Host+" "+call.RoleArn+" "+call.Region)
	}
	if want := []string{"AssumeRole sts.us-gov-west-1.amazonaws.com " + govRole + " us-gov-west-1",
		"AssumeRoleWithWebIdentity sts.cn-north-1.amazonaws.com.cn " + cnRole + " "}; !slices.Equal(stsHosts, want) {
		t.Errorf("the STS fake saw %q, want %q", stsHosts, want)
	}
	if calls := c.sts.Calls(); len(calls) == 2 && !slices.Equal(calls[1].WebIdentityAudience, []string{"sts.amazonaws.com.cn"}) {
		t.Errorf("the aws-cn web identity token's audience %v", calls[1].WebIdentityAudience)
	}
	var entra []string
	for _, call := range c.entra.TokenCalls() {
		entra = append(entra, fmt.Sprint(call.Host, " ", call.Assertion["aud"]))
	}
	if want := []string{"login.microsoftonline.us api://AzureADTokenExchangeUSGov", "login.chinacloudapi.cn api://AzureADTokenExchangeChina"}; !slices.Equal(entra, want) {
		t.Errorf("the Entra fake's token calls %q, want %q", entra, want)
	}
	var gcp []string
	for _, call := range c.gcp.Calls() {
		gcp = append(gcp, string(call.Endpoint)+" "+call.Host)
	}
	if want := []string{"sts sts." + s3ns, "iamcredentials iamcredentials." + s3ns}; !slices.Equal(gcp, want) {
		t.Errorf("the GCP fake saw %q, want %q", gcp, want)
	}
	for _, target := range proxy.Targets() {
		if host, _, _ := strings.Cut(target, ":"); backends[host] == "" {
			t.Errorf("a tunnel to %s, which no partition's mapping should reach", target)
		}
	}
}
