package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/bridge/client"
)

var (
	_ resource.Resource                = (*issuerResource)(nil)
	_ resource.ResourceWithConfigure   = (*issuerResource)(nil)
	_ resource.ResourceWithImportState = (*issuerResource)(nil)
	_ resource.ResourceWithModifyPlan  = (*issuerResource)(nil)
)

type issuerResource struct {
	client     *client.Client
	strictLint bool
}

func newIssuerResource() resource.Resource { return &issuerResource{} }

type issuerModel struct {
	ID        types.String `tfsdk:"id"`
	Name      types.String `tfsdk:"name"`
	URL       types.String `tfsdk:"url"`
	Audiences types.List   `tfsdk:"audiences"`
	Kind      types.String `tfsdk:"kind"`
	Enabled   types.Bool   `tfsdk:"enabled"`

	ReplayScope             types.String `tfsdk:"replay_scope"`
	MaxTokenAgeSeconds      types.Int64  `tfsdk:"max_token_age_seconds"`
	MaxTokenLifetimeSeconds types.Int64  `tfsdk:"max_token_lifetime_seconds"`
	JWKS                    types.String `tfsdk:"jwks"`
	JWKSURL                 types.String `tfsdk:"jwks_url"`
	Warnings                types.List   `tfsdk:"warnings"`
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
				Description: kindHelp + ": how the tokens' claims are read.",
				Required:    true,
			},
			"enabled": schema.BoolAttribute{
				Description: "Whether tokens of this issuer are accepted. Default true.",
				Optional:    true,
				Computed:    true,
				Default:     booldefault.StaticBool(true),
			},
			"replay_scope": schema.StringAttribute{
				Description: "token (default): a token of this issuer is exchanged once in all, whatever the mapping. " +
					"token_mapping: once per mapping, for an issuer whose one token must reach several clouds " +
					"(an HCP Terraform run token); it draws the lint warning replay_scope_token_mapping.",
				Optional:   true,
				Computed:   true,
				Default:    stringdefault.StaticString(api.ReplayScopeToken),
				Validators: []validator.String{stringvalidator.OneOf(api.ReplayScopeToken, api.ReplayScopeTokenMapping)},
			},
			"max_token_age_seconds": schema.Int64Attribute{
				Description: "The oldest token (now - iat) accepted, 60-21600 seconds. Unset: the kind's default " +
					"(github 900, gitlab and generic 21600).",
				Optional:   true,
				Validators: []validator.Int64{int64validator.Between(tokenLimitMin, tokenLimitMax)},
			},
			"max_token_lifetime_seconds": schema.Int64Attribute{
				Description: "The longest token lifetime (exp - iat) accepted, 60-21600 seconds. Unset: the kind's default " +
					"(github 900, gitlab and generic 21600).",
				Optional:   true,
				Validators: []validator.Int64{int64validator.Between(tokenLimitMin, tokenLimitMax)},
			},
			"jwks": schema.StringAttribute{
				Description: "A static JWK Set as a JSON string (jsonencode({ keys = [...] }) or file(...)): public RSA or EC " +
					"signature keys only (no private or symmetric key), at most 64 KiB and 32 keys. Its keys verify the issuer's " +
					"tokens and no discovery is fetched, for issuers whose discovery is unreachable (a private Kubernetes API " +
					"server). url stays the iss the tokens carry. Rotate by changing it. Conflicts with jwks_url.",
				Optional:   true,
				Validators: []validator.String{stringvalidator.ConflictsWith(path.MatchRoot("jwks_url"))},
			},
			"jwks_url": schema.StringAttribute{
				Description: "A URL (https) the issuer's keys are fetched from in place of its discovery document's jwks_uri; " +
					"no discovery is fetched. url stays the iss the tokens carry. Conflicts with jwks.",
				Optional: true,
			},
			"warnings": schema.ListNestedAttribute{
				Description: "The bridge's lint findings about this issuer (replay_scope_token_mapping). Read-only; also shown as warnings when planning.",
				Computed:    true,
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"code":    schema.StringAttribute{Computed: true, Description: "Stable code, e.g. replay_scope_token_mapping."},
					"field":   schema.StringAttribute{Computed: true, Description: "The field the finding is about."},
					"message": schema.StringAttribute{Computed: true, Description: "The finding, for a person."},
				}},
			},
		},
	}
}

const (
	tokenLimitMin = api.MinTokenLimitSeconds
	tokenLimitMax = api.MaxTokenLimitSeconds
)

// ModifyPlan validates a new or changed issuer at plan time (the bridge
// judges it as a write would, writing nothing: client.ValidateIssuer) and
// shows its lint findings: warnings, or errors with strict_lint (as the
// API's ?lint=strict would refuse it). Without a configured provider
// (terraform validate) nothing is asked.
func (r *issuerResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return // destroy
	}
	if !req.State.Raw.IsNull() && req.Plan.Raw.Equal(req.State.Raw) {
		return
	}
	var plan issuerModel
	if diags := req.Plan.Get(ctx, &plan); diags.HasError() || plan.ReplayScope.IsUnknown() || r.client == nil {
		return
	}
	is, err := r.client.ValidateIssuer(ctx, issuerOf(ctx, &plan))
	if err != nil {
		dryRunError(&resp.Diagnostics, "Invalid oidcbridge_issuer", "Issuer "+plan.Name.ValueString(), err, issuerFieldPath)
		return
	}
	for _, w := range is.Warnings {
		detail := w.Field + ": " + w.Message
		if r.strictLint {
			resp.Diagnostics.AddError(fmt.Sprintf("Issuer %s: %s (strict_lint)", is.Name, w.Code), detail)
		} else {
			resp.Diagnostics.AddWarning(fmt.Sprintf("Issuer %s: %s", is.Name, w.Code), detail)
		}
	}
}

func (r *issuerResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	d := dataFrom(req.ProviderData, &resp.Diagnostics)
	r.client, r.strictLint = d.client, d.strictLint
}

func issuerFieldPath(field string) (path.Path, bool) { return apiPath(field, nil, nil) }

// issuerOf builds the API object; unknown values (validation at plan time)
// become valid placeholders so that only known values are judged.
func issuerOf(ctx context.Context, m *issuerModel) api.Issuer {
	return api.Issuer{
		Name:      str(m.Name, "placeholder"),
		URL:       str(m.URL, "https://placeholder.invalid"),
		Audiences: strs(ctx, m.Audiences, "placeholder"),
		Kind:      str(m.Kind, "generic"),
		Enabled:   m.Enabled.IsNull() || m.Enabled.IsUnknown() || m.Enabled.ValueBool(),

		ReplayScope:             str(m.ReplayScope, api.ReplayScopeToken),
		MaxTokenAgeSeconds:      optInt(m.MaxTokenAgeSeconds),
		MaxTokenLifetimeSeconds: optInt(m.MaxTokenLifetimeSeconds),
		JWKS:                    jwksOf(m.JWKS),
		JWKSURL:                 m.JWKSURL.ValueString(), // "" when null or unknown
	}
}

// jwksOf is the jwks attribute as the API takes it: nil when null or
// unknown (judged once known).
func jwksOf(v types.String) json.RawMessage {
	if v.IsNull() || v.IsUnknown() {
		return nil
	}
	return json.RawMessage(v.ValueString())
}

// keepJWKS keeps the configured (or prior) jwks string in m when the
// bridge's copy is the same JSON: the bridge stores the set compacted, and
// a set written with other spacing (file(...)) is no change.
func keepJWKS(m *issuerModel, configured types.String) {
	if configured.IsNull() || configured.IsUnknown() || m.JWKS.IsNull() {
		return
	}
	var a, b any
	if json.Unmarshal([]byte(configured.ValueString()), &a) == nil && json.Unmarshal([]byte(m.JWKS.ValueString()), &b) == nil &&
		reflect.DeepEqual(a, b) {
		m.JWKS = configured
	}
}

// optInt is a known value as an *int, nil when null or unknown.
func optInt(v types.Int64) *int {
	if v.IsNull() || v.IsUnknown() {
		return nil
	}
	n := int(v.ValueInt64())
	return &n
}

// int64Of is n as a Terraform value, null when nil.
func int64Of(n *int) types.Int64 {
	if n == nil {
		return types.Int64Null()
	}
	return types.Int64Value(int64(*n))
}

func issuerModelOf(is api.Issuer) issuerModel {
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

		ReplayScope:             types.StringValue(is.ReplayScope),
		MaxTokenAgeSeconds:      int64Of(is.MaxTokenAgeSeconds),
		MaxTokenLifetimeSeconds: int64Of(is.MaxTokenLifetimeSeconds),
		JWKS:                    optString(string(is.JWKS)),
		JWKSURL:                 optString(is.JWKSURL),
		Warnings:                warningsValue(is.Warnings),
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
	keepJWKS(&state, plan.JWKS)
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
	prior := state.JWKS
	state = issuerModelOf(out)
	keepJWKS(&state, prior)
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
	keepJWKS(&state, plan.JWKS)
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

// kindHelp describes an issuer's kind. The provider does not list the kinds
// itself: the bridge it talks to knows them, and refuses an unknown kind at
// plan (its dry run, ModifyPlan) as at apply.
const kindHelp = "The CI kind of the issuer's tokens (github, gitlab, generic, and the others docs/api.md lists; the bridge refuses a kind it does not know at plan)"
