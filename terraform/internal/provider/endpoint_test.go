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
	ctx := t.Context()
	p := provider.New("test")()
	var sr fwprovider.SchemaResponse
	p.Schema(ctx, fwprovider.SchemaRequest{}, &sr)
	ep := tftypes.NewValue(tftypes.String, nil)
	if endpoint != "" {
		ep = tftypes.NewValue(tftypes.String, endpoint)
	}
	raw := tftypes.NewValue(sr.Schema.Type().TerraformType(ctx), map[string]tftypes.Value{
		"endpoint":    ep,
		"token":       tftypes.NewValue(tftypes.String, "admin-secret"),
		"strict_lint": tftypes.NewValue(tftypes.Bool, nil),
	})
	var resp fwprovider.ConfigureResponse
	p.Configure(ctx, fwprovider.ConfigureRequest{Config: tfsdk.Config{Schema: sr.Schema, Raw: raw}}, &resp)
	return resp
}

// TestConfigureEndpoint: an endpoint on plain http off loopback, from the
// block or OIDC_BRIDGE_ENDPOINT, is an error diagnostic on endpoint at
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
