package provider_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	fwprovider "github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"

	"github.com/oidc-bridge/oidc-bridge/terraform/internal/provider"
)

// configure runs the provider's Configure with endpoint ("" leaves it to
// the environment) and an admin token.
func configure(t *testing.T, endpoint string) fwprovider.ConfigureResponse {
	t.Helper()
	return configureWith(t, endpoint, "admin-secret")
}

// configureWith is configure with token too ("" leaves it to the
// environment).
func configureWith(t *testing.T, endpoint, token string) fwprovider.ConfigureResponse {
	t.Helper()
	ctx := t.Context()
	p := provider.New("test")()
	var sr fwprovider.SchemaResponse
	p.Schema(ctx, fwprovider.SchemaRequest{}, &sr)
	ep := tftypes.NewValue(tftypes.String, nil)
	if endpoint != "" {
		ep = tftypes.NewValue(tftypes.String, endpoint)
	}
	tok := tftypes.NewValue(tftypes.String, nil)
	if token != "" {
		tok = tftypes.NewValue(tftypes.String, token)
	}
	raw := tftypes.NewValue(sr.Schema.Type().TerraformType(ctx), map[string]tftypes.Value{
		"endpoint":    ep,
		"token":       tok,
		"strict_lint": tftypes.NewValue(tftypes.Bool, nil),
	})
	var resp fwprovider.ConfigureResponse
	p.Configure(ctx, fwprovider.ConfigureRequest{Config: tfsdk.Config{Schema: sr.Schema, Raw: raw}}, &resp)
	return resp
}

// TestConfigureEndpoint: an endpoint on plain http off loopback, from the
// block or OIDC_BRIDGE_URL, is an error diagnostic on endpoint at
// configure time, and no client is handed out; https and http on loopback
// configure.
func TestConfigureEndpoint(t *testing.T) {
	for _, ok := range []string{"https://bridge.example.com", "https://bridge.example.com/prefix/", "http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080"} {
		if resp := configure(t, ok); resp.Diagnostics.HasError() || resp.ResourceData == nil {
			t.Errorf("endpoint %s: %v", ok, resp.Diagnostics)
		}
	}
	check := func(name string, resp fwprovider.ConfigureResponse) {
		t.Helper()
		errs := resp.Diagnostics.Errors()
		if len(errs) != 1 || resp.ResourceData != nil || resp.DataSourceData != nil {
			t.Fatalf("%s: diagnostics %v, resource data %v", name, resp.Diagnostics, resp.ResourceData)
		}
		d, ok := errs[0].(diag.DiagnosticWithPath)
		if !ok || !d.Path().Equal(path.Root("endpoint")) || d.Summary() != "Invalid oidc-bridge endpoint" ||
			!strings.Contains(d.Detail(), "https://") || strings.Contains(d.Detail(), "admin-secret") {
			t.Errorf("%s: diagnostic %v", name, errs[0])
		}
	}
	check("http off loopback", configure(t, "http://bridge.example.com"))
	check("http on 127.0.0.2", configure(t, "http://127.0.0.2:8080"))
	check("not a URL", configure(t, "bridge.example.com"))
	t.Setenv(provider.EnvEndpoint, "http://bridge.example.com")
	check("http off loopback from "+provider.EnvEndpoint, configure(t, ""))
}

// TestConfigureEnvironmentNames: the provider reads OIDC_BRIDGE_URL and
// OIDC_BRIDGE_ADMIN_TOKEN, as every admin client does; the old names
// OIDC_BRIDGE_ENDPOINT and OIDC_BRIDGE_TOKEN still configure it, with a
// warning diagnostic each; the server's BRIDGE_ADMIN_TOKEN is never read.
func TestConfigureEnvironmentNames(t *testing.T) {
	for _, k := range []string{provider.EnvEndpoint, provider.EnvToken, provider.DeprecatedEnvEndpoint, provider.DeprecatedEnvToken, "BRIDGE_ADMIN_TOKEN"} {
		t.Setenv(k, "")
	}
	if provider.EnvEndpoint != "OIDC_BRIDGE_URL" || provider.EnvToken != "OIDC_BRIDGE_ADMIN_TOKEN" {
		t.Fatalf("variables %s, %s", provider.EnvEndpoint, provider.EnvToken)
	}
	warnings := func(resp fwprovider.ConfigureResponse) string {
		var b strings.Builder
		for _, d := range resp.Diagnostics.Warnings() {
			b.WriteString(d.Summary() + ": " + d.Detail() + "\n")
		}
		return b.String()
	}

	t.Setenv(provider.EnvEndpoint, "https://bridge.example.com")
	t.Setenv(provider.EnvToken, "admin-new")
	if resp := configureWith(t, "", ""); resp.Diagnostics.HasError() || resp.ResourceData == nil || warnings(resp) != "" {
		t.Errorf("new names: %v", resp.Diagnostics)
	}

	t.Setenv(provider.EnvEndpoint, "")
	t.Setenv(provider.EnvToken, "")
	t.Setenv(provider.DeprecatedEnvEndpoint, "https://bridge.example.com")
	t.Setenv(provider.DeprecatedEnvToken, "admin-old")
	resp := configureWith(t, "", "")
	if w := warnings(resp); resp.Diagnostics.HasError() || resp.ResourceData == nil ||
		!strings.Contains(w, "OIDC_BRIDGE_ENDPOINT is deprecated") || !strings.Contains(w, "set OIDC_BRIDGE_URL instead") ||
		!strings.Contains(w, "OIDC_BRIDGE_TOKEN is deprecated") || strings.Contains(w, "admin-old") {
		t.Errorf("old names: %v", resp.Diagnostics)
	}

	// Both set: the new name wins, and the old is said to be ignored.
	t.Setenv(provider.EnvToken, "admin-new")
	if w := warnings(configureWith(t, "https://bridge.example.com", "")); !strings.Contains(w, "OIDC_BRIDGE_TOKEN is deprecated and ignored") {
		t.Errorf("both names: warnings %q", w)
	}

	// The server's bootstrap variable configures nothing.
	t.Setenv(provider.EnvToken, "")
	t.Setenv(provider.DeprecatedEnvToken, "")
	t.Setenv("BRIDGE_ADMIN_TOKEN", "bootstrap-secret-bootstrap-secret")
	resp = configureWith(t, "https://bridge.example.com", "")
	if errs := resp.Diagnostics.Errors(); len(errs) != 1 || errs[0].Summary() != "Missing oidc-bridge admin token" ||
		!strings.Contains(errs[0].Detail(), "OIDC_BRIDGE_ADMIN_TOKEN") {
		t.Errorf("BRIDGE_ADMIN_TOKEN only: %v", resp.Diagnostics)
	}
}

// TestAccInsecureEndpoint: tofu shows the diagnostic and plans nothing.
func TestAccInsecureEndpoint(t *testing.T) {
	preCheck(t)
	resource.ParallelTest(t, resource.TestCase{ProtoV6ProviderFactories: factories(), Steps: []resource.TestStep{{
		Config: `
provider "oidcbridge" {
  endpoint = "http://bridge.example.com"
  token    = "admin-secret"
}

data "oidcbridge_issuer" "github" {
  name = "github"
}
`,
		ExpectError: regexp.MustCompile(`(?s)Invalid oidc-bridge endpoint.*plain\s+http://\s+is\s+allowed\s+only\s+on\s+a\s+loopback`),
	}}})
}
