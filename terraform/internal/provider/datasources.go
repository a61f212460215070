package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/oidc-bridge/oidc-bridge/bridge/client"
)

var (
	_ datasource.DataSource              = (*issuerDataSource)(nil)
	_ datasource.DataSourceWithConfigure = (*issuerDataSource)(nil)
	_ datasource.DataSource              = (*mappingDataSource)(nil)
	_ datasource.DataSourceWithConfigure = (*mappingDataSource)(nil)
)

type issuerDataSource struct{ client *client.Client }

func newIssuerDataSource() datasource.DataSource { return &issuerDataSource{} }

func (d *issuerDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_issuer"
}

func (d *issuerDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "Reads a registered issuer by name.",
		Attributes: map[string]schema.Attribute{
			"name":      schema.StringAttribute{Required: true, Description: "The issuer's name."},
			"id":        schema.StringAttribute{Computed: true, Description: "The issuer's name."},
			"url":       schema.StringAttribute{Computed: true, Description: "The issuer URL."},
			"audiences": schema.ListAttribute{Computed: true, ElementType: types.StringType, Description: "The accepted aud values."},
			"kind":      schema.StringAttribute{Computed: true, Description: kindHelp + "."},
			"enabled":   schema.BoolAttribute{Computed: true, Description: "Whether its tokens are accepted."},
			"replay_scope": schema.StringAttribute{Computed: true,
				Description: "token (a token is exchanged once in all) or token_mapping (once per mapping)."},
			"max_token_age_seconds": schema.Int64Attribute{Computed: true,
				Description: "The issuer's own token age limit; null when it takes its kind's default."},
			"max_token_lifetime_seconds": schema.Int64Attribute{Computed: true,
				Description: "The issuer's own token lifetime limit; null when it takes its kind's default."},
			"jwks": schema.StringAttribute{Computed: true,
				Description: "The issuer's static JWK Set (JSON), which verifies its tokens without discovery; null when it has none."},
			"jwks_url": schema.StringAttribute{Computed: true,
				Description: "The URL the issuer's keys are fetched from in place of discovery; null when it has none."},
			"warnings": schema.ListNestedAttribute{Computed: true, Description: "The bridge's lint findings about this issuer.",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"code":    schema.StringAttribute{Computed: true, Description: "Stable code."},
					"field":   schema.StringAttribute{Computed: true, Description: "The field the finding is about."},
					"message": schema.StringAttribute{Computed: true, Description: "The finding, for a person."},
				}}},
		},
	}
}

func (d *issuerDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

func (d *issuerDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var name types.String
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("name"), &name)...)
	if resp.Diagnostics.HasError() || !configured(d.client, &resp.Diagnostics) {
		return
	}
	out, err := d.client.GetIssuer(ctx, name.ValueString())
	if err != nil {
		apiError(&resp.Diagnostics, "Could not read issuer "+name.ValueString(), err, nil)
		return
	}
	m := issuerModelOf(out)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

type mappingDataSource struct{ client *client.Client }

func newMappingDataSource() datasource.DataSource { return &mappingDataSource{} }

func (d *mappingDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_mapping"
}

func computedStrings(desc string) schema.ListAttribute {
	return schema.ListAttribute{Computed: true, ElementType: types.StringType, Description: desc}
}

func computedString(desc string) schema.StringAttribute {
	return schema.StringAttribute{Computed: true, Description: desc}
}

func (d *mappingDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "Reads a mapping by name. Conditions read as lists whatever form they were written in; " +
			"exactly one of aws, gcp, azure, jwt and github is set.",
		Attributes: map[string]schema.Attribute{
			"name":                 schema.StringAttribute{Required: true, Description: "The mapping's name."},
			"id":                   computedString("The mapping's name."),
			"issuer":               computedString("The issuer's name."),
			"enabled":              schema.BoolAttribute{Computed: true, Description: "Whether it takes part in exchanges."},
			"mode":                 computedString("enforce or audit."),
			"max_duration_seconds": schema.Int64Attribute{Computed: true, Description: "The longest credential lifetime."},
			"conditions": schema.SingleNestedAttribute{Computed: true, Description: "The conditions, each a list of patterns.",
				Attributes: map[string]schema.Attribute{
					"repository":    computedStrings("Repository patterns."),
					"repository_id": computedStrings("Repository ids."),
					"ref":           computedStrings("Ref patterns."),
					"environment":   computedStrings("Environment patterns."),
					"event_name":    computedStrings("Event names."),
					"workflow_ref":  computedStrings("Workflow ref patterns."),
					"claims":        schema.MapAttribute{Computed: true, ElementType: stringList, Description: "Other string claims' patterns."},
					"claims_bool":   schema.MapAttribute{Computed: true, ElementType: boolList, Description: "Boolean claims' values."},
					"claims_number": schema.MapAttribute{Computed: true, ElementType: numberList, Description: "Number claims' values."},
				}},
			"aws": schema.SingleNestedAttribute{Computed: true, Description: "The AWS target.", Attributes: map[string]schema.Attribute{
				"role_arn": computedString("Role ARN."), "region": computedString("Region."),
				"session_policy": computedString("Session policy."), "external_id": computedString("External id."), "mode": computedString("Mode."),
				"session_tags":        schema.MapAttribute{Computed: true, ElementType: types.StringType, Description: "Static session tags."},
				"transitive_tag_keys": computedStrings("Transitive tag keys."),
			}},
			"gcp": schema.SingleNestedAttribute{Computed: true, Description: "The GCP target.", Attributes: map[string]schema.Attribute{
				"service_account": computedString("Service account."), "scopes": computedStrings("Scopes."),
				"delegates": computedStrings("Delegates."), "mode": computedString("Mode."),
				"workload_identity_provider": computedString("Workload identity provider."),
				"allow_lifetime_extension":   schema.BoolAttribute{Computed: true, Description: "Whether the org policy extends the account's token lifetime to 12 hours."},
			}},
			"azure": schema.SingleNestedAttribute{Computed: true, Description: "The Azure target.", Attributes: map[string]schema.Attribute{
				"tenant_id": computedString("Tenant id."), "client_id": computedString("Client id."), "scope": computedString("Scope."),
			}},
			"jwt": schema.SingleNestedAttribute{Computed: true, Description: "The JWT target.", Attributes: map[string]schema.Attribute{
				"audience": computedString("Audience."),
				"claims":   schema.MapAttribute{Computed: true, ElementType: types.StringType, Description: "Static claims."},
			}},
			"github": schema.SingleNestedAttribute{Computed: true, Description: "The GitHub installation token target.", Attributes: map[string]schema.Attribute{
				"app": computedString("The GitHub App."), "owner": computedString("The installation's owner."),
				"repositories":     computedStrings("Repositories under owner."),
				"all_repositories": schema.BoolAttribute{Computed: true, Description: "Every repository of the installation."},
				"permissions":      schema.MapAttribute{Computed: true, ElementType: types.StringType, Description: "GitHub permissions."},
			}},
			"quota": schema.SingleNestedAttribute{Computed: true, Description: "Issuance limits.", Attributes: map[string]schema.Attribute{
				"per_hour": schema.Int64Attribute{Computed: true, Description: "Per hour and repository."},
				"per_job":  schema.Int64Attribute{Computed: true, Description: "Per job."},
			}},
			"warnings": schema.ListNestedAttribute{Computed: true, Description: "Lint findings.",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"code": computedString("Code."), "field": computedString("Field."), "message": computedString("Message."),
				}}},
		},
	}
}

func (d *mappingDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

func (d *mappingDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var name types.String
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("name"), &name)...)
	if resp.Diagnostics.HasError() || !configured(d.client, &resp.Diagnostics) {
		return
	}
	out, err := d.client.GetMapping(ctx, name.ValueString())
	if err != nil {
		apiError(&resp.Diagnostics, "Could not read mapping "+name.ValueString(), err, nil)
		return
	}
	m, diags := mappingModelOf(out)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}
