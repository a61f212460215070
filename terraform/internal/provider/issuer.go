package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/oidc-bridge/oidc-bridge/bridge/client"
	"github.com/oidc-bridge/oidc-bridge/mapping"
)

var (
	_ resource.Resource                   = (*issuerResource)(nil)
	_ resource.ResourceWithConfigure      = (*issuerResource)(nil)
	_ resource.ResourceWithImportState    = (*issuerResource)(nil)
	_ resource.ResourceWithValidateConfig = (*issuerResource)(nil)
)

type issuerResource struct {
	client *client.Client
}

func newIssuerResource() resource.Resource { return &issuerResource{} }

type issuerModel struct {
	ID        types.String `tfsdk:"id"`
	Name      types.String `tfsdk:"name"`
	URL       types.String `tfsdk:"url"`
	Audiences types.List   `tfsdk:"audiences"`
	Kind      types.String `tfsdk:"kind"`
	Enabled   types.Bool   `tfsdk:"enabled"`
}

func (r *issuerResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_issuer"
}

func (r *issuerResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "An OIDC issuer whose tokens the bridge accepts (GitHub Actions, GitLab, or a generic one).",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Description:   "The issuer's name.",
				Computed:      true,
				PlanModifiers: []planmodifier.String{idFromName{}},
			},
			"name": schema.StringAttribute{
				Description: "1-64 characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit. " +
					"Changing it renames the issuer in place; its mappings follow.",
				Required: true,
			},
			"url": schema.StringAttribute{
				Description: "The issuer URL, compared byte-for-byte with the tokens' iss (https://, no query or fragment).",
				Required:    true,
			},
			"audiences": schema.ListAttribute{
				Description: "The aud values the bridge accepts from this issuer (at least one).",
				ElementType: types.StringType,
				Required:    true,
				Validators:  []validator.List{listvalidator.SizeAtLeast(1)},
			},
			"kind": schema.StringAttribute{
				Description: "github, gitlab or generic: how the tokens' claims are read.",
				Required:    true,
				Validators:  []validator.String{stringvalidator.OneOf("github", "gitlab", "generic")},
			},
			"enabled": schema.BoolAttribute{
				Description: "Whether tokens of this issuer are accepted. Default true.",
				Optional:    true,
				Computed:    true,
				Default:     booldefault.StaticBool(true),
			},
		},
	}
}

func (r *issuerResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

func issuerFieldPath(field string) (path.Path, bool) { return apiPath(field, nil, nil) }

// issuerOf builds the API object; unknown values (validation at plan time)
// become valid placeholders so that only known values are judged.
func issuerOf(ctx context.Context, m *issuerModel) mapping.Issuer {
	return mapping.Issuer{
		Name:      str(m.Name, "placeholder"),
		URL:       str(m.URL, "https://placeholder.invalid"),
		Audiences: strs(ctx, m.Audiences, "placeholder"),
		Kind:      str(m.Kind, "generic"),
		Enabled:   m.Enabled.IsNull() || m.Enabled.IsUnknown() || m.Enabled.ValueBool(),
	}
}

func issuerModelOf(is mapping.Issuer) issuerModel {
	aud := listOf(is.Audiences)
	if aud.IsNull() {
		aud = listOf([]string{})
	}
	return issuerModel{
		ID:        types.StringValue(is.Name),
		Name:      types.StringValue(is.Name),
		URL:       types.StringValue(is.URL),
		Audiences: aud,
		Kind:      types.StringValue(is.Kind),
		Enabled:   types.BoolValue(is.Enabled),
	}
}

func (r *issuerResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var m issuerModel
	if diags := req.Config.Get(ctx, &m); diags.HasError() {
		return // the framework reports type errors itself
	}
	is := issuerOf(ctx, &m)
	if err := mapping.ValidateIssuer(&is); err != nil {
		validationError(&resp.Diagnostics, "Invalid oidcbridge_issuer", err, issuerFieldPath)
	}
}

func (r *issuerResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan issuerModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() || !configured(r.client, &resp.Diagnostics) {
		return
	}
	out, err := r.client.CreateIssuer(ctx, issuerOf(ctx, &plan))
	if err != nil {
		apiError(&resp.Diagnostics, "Could not create issuer "+plan.Name.ValueString(), err, issuerFieldPath)
		return
	}
	state := issuerModelOf(out)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *issuerResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state issuerModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || !configured(r.client, &resp.Diagnostics) {
		return
	}
	out, err := r.client.GetIssuer(ctx, state.Name.ValueString())
	if client.IsNotFound(err) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		apiError(&resp.Diagnostics, "Could not read issuer "+state.Name.ValueString(), err, nil)
		return
	}
	state = issuerModelOf(out)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *issuerResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, prior issuerModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &prior)...)
	if resp.Diagnostics.HasError() || !configured(r.client, &resp.Diagnostics) {
		return
	}
	out, err := r.client.UpdateIssuer(ctx, prior.Name.ValueString(), issuerOf(ctx, &plan))
	if err != nil {
		apiError(&resp.Diagnostics, "Could not update issuer "+prior.Name.ValueString(), err, issuerFieldPath)
		return
	}
	state := issuerModelOf(out)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *issuerResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state issuerModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || !configured(r.client, &resp.Diagnostics) {
		return
	}
	err := r.client.DeleteIssuer(ctx, state.Name.ValueString())
	if err != nil && !client.IsNotFound(err) {
		apiError(&resp.Diagnostics, "Could not delete issuer "+state.Name.ValueString(), err, nil)
	}
}

func (r *issuerResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resource.ImportStatePassthroughID(ctx, path.Root("name"), req, resp)
}
