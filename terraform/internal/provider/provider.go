package provider

import (
	"context"
	"os"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/oidc-bridge/oidc-bridge/bridge/client"
)

// Address is the provider's source address.
const Address = "registry.terraform.io/oidc-bridge/oidcbridge"

// Environment variables that configure the provider when its block does
// not: the same pair as every admin client of the bridge (oidc-bridge
// explain, the docs). They never share a name with the server's
// BRIDGE_ADMIN_TOKEN.
const (
	EnvEndpoint = "OIDC_BRIDGE_URL"
	EnvToken    = "OIDC_BRIDGE_ADMIN_TOKEN"
)

// Deprecated names of EnvEndpoint and EnvToken, still read for one release
// with a warning.
const (
	DeprecatedEnvEndpoint = "OIDC_BRIDGE_ENDPOINT"
	DeprecatedEnvToken    = "OIDC_BRIDGE_TOKEN"
)

// getenv is the variable name, else its deprecated alias with a warning
// diagnostic on attr; the warning also tells when alias is set but ignored.
func getenv(diags *diag.Diagnostics, attr, name, alias string) string {
	v, old := os.Getenv(name), os.Getenv(alias)
	switch {
	case old == "":
	case v == "":
		diags.AddAttributeWarning(path.Root(attr), "Deprecated environment variable "+alias,
			alias+" is deprecated and will be removed in the next release; set "+name+" instead.")
		return old
	case old != v:
		diags.AddAttributeWarning(path.Root(attr), "Deprecated environment variable "+alias,
			alias+" is deprecated and ignored: "+name+" is set.")
	}
	return v
}

var _ provider.Provider = (*bridgeProvider)(nil)

type bridgeProvider struct {
	version string
}

type providerModel struct {
	Endpoint   types.String `tfsdk:"endpoint"`
	Token      types.String `tfsdk:"token"`
	StrictLint types.Bool   `tfsdk:"strict_lint"`
}

// providerData is what Configure hands the resources and data sources.
type providerData struct {
	client *client.Client
	// strictLint makes the lint findings of a new or changed mapping plan
	// errors rather than warnings (the API's ?lint=strict).
	strictLint bool
}

// New returns the provider's constructor for providerserver.
func New(version string) func() provider.Provider {
	return func() provider.Provider { return &bridgeProvider{version: version} }
}

func (p *bridgeProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "oidcbridge"
	resp.Version = p.version
}

func (p *bridgeProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "Manages oidc-bridge issuers and mappings through the admin API.",
		Attributes: map[string]schema.Attribute{
			"endpoint": schema.StringAttribute{
				Description: "Base URL of the bridge, e.g. https://bridge.example.com: https, or plain http only on a loopback address (localhost, 127.0.0.1, [::1]). Redirects are not followed. Default: the " + EnvEndpoint + " environment variable.",
				Optional:    true,
			},
			"token": schema.StringAttribute{
				Description: "Admin bearer token. Default: the " + EnvToken + " environment variable.",
				Optional:    true,
				Sensitive:   true,
			},
			"strict_lint": schema.BoolAttribute{
				Description: "Make the lint findings of a new or changed mapping (no immutable-id pin, unprotected production, risky events, self-hosted runners, ...) plan errors instead of warnings, and have the API refuse them too. Default false.",
				Optional:    true,
			},
		},
	}
}

func (p *bridgeProvider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	var cfg providerModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if cfg.Endpoint.IsUnknown() {
		resp.Diagnostics.AddAttributeError(path.Root("endpoint"), "Unknown oidc-bridge endpoint",
			"The endpoint depends on a value known only after apply; set it statically or through "+EnvEndpoint+".")
	}
	if cfg.Token.IsUnknown() {
		resp.Diagnostics.AddAttributeError(path.Root("token"), "Unknown oidc-bridge admin token",
			"The token depends on a value known only after apply; set it statically or through "+EnvToken+".")
	}
	if resp.Diagnostics.HasError() {
		return
	}
	var endpoint, token string
	if !cfg.Endpoint.IsNull() {
		endpoint = cfg.Endpoint.ValueString()
	} else {
		endpoint = getenv(&resp.Diagnostics, "endpoint", EnvEndpoint, DeprecatedEnvEndpoint)
	}
	if !cfg.Token.IsNull() {
		token = cfg.Token.ValueString()
	} else {
		token = getenv(&resp.Diagnostics, "token", EnvToken, DeprecatedEnvToken)
	}
	if endpoint == "" {
		resp.Diagnostics.AddAttributeError(path.Root("endpoint"), "Missing oidc-bridge endpoint",
			"Set endpoint in the provider block or the "+EnvEndpoint+" environment variable.")
	} else if _, err := client.CheckEndpoint(endpoint); err != nil {
		// The admin token must not cross the network in clear text: https,
		// or plain http only on a loopback address.
		resp.Diagnostics.AddAttributeError(path.Root("endpoint"), "Invalid oidc-bridge endpoint",
			err.Error()+". The endpoint comes from the provider block or the "+EnvEndpoint+" environment variable.")
	}
	if token == "" {
		resp.Diagnostics.AddAttributeError(path.Root("token"), "Missing oidc-bridge admin token",
			"Set token in the provider block or the "+EnvToken+" environment variable.")
	}
	if resp.Diagnostics.HasError() {
		return
	}
	opts := []client.Option{client.WithUserAgent("terraform-provider-oidcbridge/" + p.version)}
	if cfg.StrictLint.ValueBool() {
		opts = append(opts, client.WithStrictLint())
	}
	c := client.New(endpoint, token, opts...)
	data := &providerData{client: c, strictLint: cfg.StrictLint.ValueBool()}
	resp.ResourceData = data
	resp.DataSourceData = data
}

func (p *bridgeProvider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{newIssuerResource, newMappingResource, newGitHubAppResource}
}

func (p *bridgeProvider) DataSources(context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{newIssuerDataSource, newMappingDataSource}
}
