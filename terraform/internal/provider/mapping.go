package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/mapvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/resourcevalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/bridge/client"
)

var (
	_ resource.Resource                     = (*mappingResource)(nil)
	_ resource.ResourceWithConfigure        = (*mappingResource)(nil)
	_ resource.ResourceWithImportState      = (*mappingResource)(nil)
	_ resource.ResourceWithValidateConfig   = (*mappingResource)(nil)
	_ resource.ResourceWithConfigValidators = (*mappingResource)(nil)
	_ resource.ResourceWithModifyPlan       = (*mappingResource)(nil)
)

type mappingResource struct {
	client     *client.Client
	strictLint bool
}

func newMappingResource() resource.Resource { return &mappingResource{} }

func (r *mappingResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_mapping"
}

// optString is an optional, non-empty string attribute.
func optStringAttr(desc string, more ...validator.String) schema.StringAttribute {
	return schema.StringAttribute{
		Description: desc,
		Optional:    true,
		Validators:  append([]validator.String{stringvalidator.LengthAtLeast(1)}, more...),
	}
}

func patternList(desc string) schema.ListAttribute {
	return schema.ListAttribute{
		Description: desc + " A list of patterns, any of which may match.",
		ElementType: types.StringType,
		Optional:    true,
		Validators:  []validator.List{listvalidator.SizeAtLeast(1)},
	}
}

func (r *mappingResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "A mapping: which tokens of an issuer may obtain which cloud target. " +
			"Exactly one of the aws, gcp, azure, jwt and github blocks is set; it is the mapping's provider.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Description:   "The mapping's name.",
				Computed:      true,
				PlanModifiers: []planmodifier.String{idFromName{}},
			},
			"name": schema.StringAttribute{
				Description: "1-64 characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit. " +
					"Changing it renames the mapping in place, keeping its quota counts and history.",
				Required: true,
			},
			"issuer": schema.StringAttribute{
				Description: "The name of the issuer whose tokens this mapping admits.",
				Required:    true,
			},
			"enabled": schema.BoolAttribute{
				Description: "Whether the mapping takes part in exchanges. Default true.",
				Optional:    true,
				Computed:    true,
				Default:     booldefault.StaticBool(true),
			},
			"mode": schema.StringAttribute{
				Description: "enforce (the default: the mapping issues) or audit (it never issues, but records what it would have decided).",
				Optional:    true,
				Computed:    true,
				Default:     stringdefault.StaticString(api.ModeEnforce),
				Validators:  []validator.String{stringvalidator.OneOf(api.ModeEnforce, api.ModeAudit)},
			},
			"max_duration_seconds": schema.Int64Attribute{
				Description: "The longest credential lifetime a caller may ask for. Default 3600; " +
					"aws 900-43200, gcp 60-3600 (43200 with allow_lifetime_extension), azure and jwt 60-86400.",
				Optional: true,
				Computed: true,
				Default:  int64default.StaticInt64(api.DefaultMaxDurationSeconds),
			},
			"warnings": schema.ListNestedAttribute{
				Description: "The bridge's lint findings about this mapping: valid but risky configurations. Read-only; also shown as warnings when planning.",
				Computed:    true,
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"code":    schema.StringAttribute{Computed: true, Description: "Stable code, e.g. no_immutable_id."},
					"field":   schema.StringAttribute{Computed: true, Description: "The field the finding is about, e.g. conditions.ref."},
					"message": schema.StringAttribute{Computed: true, Description: "The finding, for a person."},
				}},
			},
		},
		Blocks: map[string]schema.Block{
			"conditions": schema.SingleNestedBlock{
				Description: "Every condition set must hold. Patterns: * any run of characters except /, ** any run including /, ? one character except /.",
				Attributes: map[string]schema.Attribute{
					"repository":    patternList("GitHub's repository or GitLab's project_path (owner literal: acme/* yes, */web no), case-insensitive."),
					"repository_id": patternList("The repository's (project's) numeric id, exactly."),
					"ref":           patternList("The full ref: refs/heads/main, refs/tags/v*."),
					"environment":   patternList("The deployment environment."),
					"event_name":    patternList("GitHub's event_name (GitLab: pipeline_source)."),
					"workflow_ref":  patternList("GitHub's job_workflow_ref (GitLab: ci_config_ref_uri)."),
					"claims": schema.MapAttribute{
						Description: "Any other string claim by name, each a list of patterns. A condition matches only a claim of its JSON type: " +
							"for a boolean or number claim use claims_bool or claims_number (the string \"true\" never matches the boolean true). " +
							"A key starting with / is a JSON Pointer to a nested claim (\"/kubernetes.io/namespace\").",
						ElementType: stringList,
						Optional:    true,
						Validators:  []validator.Map{mapvalidator.SizeAtLeast(1), mapvalidator.ValueListsAre(listvalidator.SizeAtLeast(1))},
					},
					"claims_bool": schema.MapAttribute{
						Description: "Boolean claims by name, each a list of the values admitted (true, false): matches only a boolean claim.",
						ElementType: boolList,
						Optional:    true,
						Validators:  []validator.Map{mapvalidator.SizeAtLeast(1), mapvalidator.ValueListsAre(listvalidator.SizeAtLeast(1))},
					},
					"claims_number": schema.MapAttribute{
						Description: "Number claims by name, each a list of the values admitted: matches only a number claim of the same value (7 and 7.0 are equal).",
						ElementType: numberList,
						Optional:    true,
						Validators:  []validator.Map{mapvalidator.SizeAtLeast(1), mapvalidator.ValueListsAre(listvalidator.SizeAtLeast(1))},
					},
				},
			},
			"aws": schema.SingleNestedBlock{
				Description: "An AWS IAM role.",
				Attributes: map[string]schema.Attribute{
					"role_arn":       optStringAttr("The role's ARN, e.g. arn:aws:iam::123456789012:role/deploy. Required in the block."),
					"region":         optStringAttr("The region of the credentials, e.g. eu-west-1. Required in the block."),
					"session_policy": optStringAttr("A JSON session policy (use jsonencode) that narrows the role."),
					"external_id":    optStringAttr("The external id the role's trust policy requires (mode assume_role only)."),
					"mode":           optStringAttr("assume_role (default) or web_identity.", stringvalidator.OneOf(awsModeAssumeRole, awsModeWebIdentity)),
					"session_tags": schema.MapAttribute{
						Description: "Static session tags (key to value) added to the ones the bridge derives from the token " +
							"(repository, repository_id, ref, environment, event_name, actor, run_id, run_attempt, issuance_id), " +
							"which they may not name; 50 in all with the bridge's 9.",
						ElementType: types.StringType, Optional: true,
						Validators: []validator.Map{mapvalidator.SizeAtLeast(1)},
					},
					"transitive_tag_keys": schema.ListAttribute{
						Description: "Session tag keys (the bridge's or session_tags') that the session passes on in role chaining.",
						ElementType: types.StringType, Optional: true,
						Validators: []validator.List{listvalidator.SizeAtLeast(1)},
					},
				},
			},
			"gcp": schema.SingleNestedBlock{
				Description: "A Google Cloud service account.",
				Attributes: map[string]schema.Attribute{
					"service_account": optStringAttr("The service account's email or unique id. Required in the block."),
					"scopes": schema.ListAttribute{
						Description: "OAuth scopes (https URLs); default cloud-platform.", ElementType: types.StringType, Optional: true,
						Validators: []validator.List{listvalidator.SizeAtLeast(1)},
					},
					"delegates": schema.ListAttribute{
						Description: "Service accounts of a delegation chain.", ElementType: types.StringType, Optional: true,
						Validators: []validator.List{listvalidator.SizeAtLeast(1)},
					},
					"mode":                       optStringAttr("impersonate (default) or workload_identity.", stringvalidator.OneOf(gcpModeImpersonate, gcpModeWorkloadIdentity)),
					"workload_identity_provider": optStringAttr("For workload_identity: //iam.googleapis.com/projects/NUMBER/locations/global/workloadIdentityPools/POOL/providers/PROVIDER."),
					"allow_lifetime_extension": schema.BoolAttribute{
						Description: "Set when the organisation policy constraints/iam.allowServiceAccountCredentialLifetimeExtension " +
							"lists the service account: max_duration_seconds may then exceed 3600 (up to 43200). Default false.",
						Optional: true, Computed: true, Default: booldefault.StaticBool(false),
					},
				},
			},
			"azure": schema.SingleNestedBlock{
				Description: "An Entra ID application (federated client assertion).",
				Attributes: map[string]schema.Attribute{
					"tenant_id": optStringAttr("The tenant's GUID. Required in the block."),
					"client_id": optStringAttr("The application's client id (GUID). Required in the block."),
					"scope":     optStringAttr("The .default scope of the resource, e.g. https://management.azure.com/.default."),
				},
			},
			"jwt": schema.SingleNestedBlock{
				Description: "A JWT the bridge signs for an internal service.",
				Attributes: map[string]schema.Attribute{
					"audience": optStringAttr("The token's aud. Required in the block."),
					"claims": schema.MapAttribute{
						Description: "Static string claims added to the token.", ElementType: types.StringType, Optional: true,
						Validators: []validator.Map{mapvalidator.SizeAtLeast(1)},
					},
				},
			},
			"github": schema.SingleNestedBlock{
				Description: "A GitHub App installation token (provider github), for pushing to or reading other repositories.",
				Attributes: map[string]schema.Attribute{
					"app":   optStringAttr("The oidcbridge_github_app's name. Required in the block."),
					"owner": optStringAttr("The organisation or user whose installation of the App mints. Required in the block."),
					"repositories": schema.ListAttribute{
						Description: "Repository names under owner (web, not acme/web) the token reaches. Set this or all_repositories.",
						ElementType: types.StringType, Optional: true,
						Validators: []validator.List{listvalidator.SizeAtLeast(1)},
					},
					"all_repositories": schema.BoolAttribute{
						Description: "The token reaches every repository of the installation, said explicitly. Default false.",
						Optional:    true, Computed: true, Default: booldefault.StaticBool(false),
					},
					"permissions": schema.MapAttribute{
						Description: `GitHub's permissions of the token, e.g. { contents = "write", pull_requests = "write" }.`,
						ElementType: types.StringType, Optional: true,
						Validators: []validator.Map{mapvalidator.SizeAtLeast(1)},
					},
				},
			},
			"quota": schema.SingleNestedBlock{
				Description: "Issuance limits; an absent limit means none.",
				Attributes: map[string]schema.Attribute{
					"per_hour": schema.Int64Attribute{
						Description: "Credentials per mapping and repository in a sliding hour.", Optional: true,
						Validators: []validator.Int64{int64validator.AtLeast(1)},
					},
					"per_job": schema.Int64Attribute{
						Description: "Credentials per job (issuer, run id, run attempt, job id).", Optional: true,
						Validators: []validator.Int64{int64validator.AtLeast(1)},
					},
				},
			},
		},
	}
}

func (r *mappingResource) ConfigValidators(context.Context) []resource.ConfigValidator {
	return []resource.ConfigValidator{
		resourcevalidator.ExactlyOneOf(path.MatchRoot("aws"), path.MatchRoot("gcp"), path.MatchRoot("azure"), path.MatchRoot("jwt"), path.MatchRoot("github")),
	}
}

func (r *mappingResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	d := dataFrom(req.ProviderData, &resp.Diagnostics)
	r.client, r.strictLint = d.client, d.strictLint
}

// ValidateConfig checks offline what needs no bridge: one complete target
// block, a quota that limits something, one type per claims condition. The
// bridge's own rules (names, patterns, ARNs, service accounts, durations,
// lint) are applied at plan time by ModifyPlan, which asks the bridge.
func (r *mappingResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var m mappingModel
	if diags := req.Config.Get(ctx, &m); diags.HasError() {
		return // a whole block unknown, or a type error the framework reports
	}
	prov := m.provider()
	if prov == "" || m.multipleTargets() {
		return // ExactlyOneOf says so
	}
	switch {
	case prov == api.ProviderAWS && (m.AWS.RoleARN.IsNull() || m.AWS.Region.IsNull()):
		resp.Diagnostics.AddAttributeError(path.Root("aws"), "Incomplete aws block", "aws needs role_arn and region.")
	case prov == api.ProviderGCP && m.GCP.ServiceAccount.IsNull():
		resp.Diagnostics.AddAttributeError(path.Root("gcp"), "Incomplete gcp block", "gcp needs service_account.")
	case prov == api.ProviderAzure && (m.Azure.TenantID.IsNull() || m.Azure.ClientID.IsNull()):
		resp.Diagnostics.AddAttributeError(path.Root("azure"), "Incomplete azure block", "azure needs tenant_id and client_id.")
	case prov == api.ProviderJWT && m.JWT.Audience.IsNull():
		resp.Diagnostics.AddAttributeError(path.Root("jwt"), "Incomplete jwt block", "jwt needs audience.")
	case prov == providerGitHub && (m.GitHub.App.IsNull() || m.GitHub.Owner.IsNull()):
		resp.Diagnostics.AddAttributeError(path.Root("github"), "Incomplete github block", "github needs app and owner.")
	case prov == providerGitHub && !m.GitHub.AllRepositories.IsUnknown() && !m.GitHub.Repositories.IsUnknown() &&
		m.GitHub.Repositories.IsNull() == !m.GitHub.AllRepositories.ValueBool():
		resp.Diagnostics.AddAttributeError(path.Root("github"), "Repositories of the github block",
			"Set exactly one of repositories (names under owner) and all_repositories = true.")
	}
	if q := m.Quota; q != nil && q.PerHour.IsNull() && q.PerJob.IsNull() {
		resp.Diagnostics.AddAttributeError(path.Root("quota"), "Empty quota block", "Set per_hour, per_job or both, or leave the quota block out (no limits).")
	}
	if resp.Diagnostics.HasError() {
		return
	}
	if _, diags := m.toMapping(ctx); diags.HasError() {
		resp.Diagnostics.Append(diags...)
	}
}

func (m *mappingModel) multipleTargets() bool {
	n := 0
	for _, set := range []bool{m.AWS != nil, m.GCP != nil, m.Azure != nil, m.JWT != nil, m.GitHub != nil} {
		if set {
			n++
		}
	}
	return n > 1
}

// ModifyPlan validates a new or changed mapping at plan time: the bridge
// judges it as a write would, writing nothing (client.ValidateMapping: its
// issuer's kind's rules, the generic kind's while the issuer is not
// registered), and its lint findings show as warnings (errors with
// strict_lint). Unchanged, a mapping shows the bridge's findings as the last
// refresh read them. Unknown values are placeholders that the bridge
// accepts, so that only the known ones are judged. Without a configured
// provider (terraform validate) nothing is asked.
func (r *mappingResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return // destroy
	}
	if !req.State.Raw.IsNull() && req.Plan.Raw.Equal(req.State.Raw) {
		var ws types.List
		var name types.String
		resp.Diagnostics.Append(req.State.GetAttribute(ctx, path.Root("warnings"), &ws)...)
		resp.Diagnostics.Append(req.State.GetAttribute(ctx, path.Root("name"), &name)...)
		addWarnings(&resp.Diagnostics, name.ValueString(), ws)
		return
	}
	var plan mappingModel
	if diags := req.Plan.Get(ctx, &plan); diags.HasError() || plan.provider() == "" || plan.multipleTargets() {
		return
	}
	m, diags := plan.toMapping(ctx)
	if diags.HasError() || r.client == nil {
		return // ValidateConfig has said why; or no bridge to ask
	}
	out, err := r.client.ValidateMapping(ctx, m)
	if err != nil {
		dryRunError(&resp.Diagnostics, "Invalid oidcbridge_mapping", "Mapping "+m.Name, err, mappingFieldPath(m.Provider, m.Conditions.Claims))
		return
	}
	for _, w := range out.Warnings {
		detail := w.Message
		if w.Field != "" {
			detail = w.Field + ": " + detail
		}
		if r.strictLint {
			resp.Diagnostics.AddError(fmt.Sprintf("Mapping %s: %s (strict_lint)", m.Name, w.Code), detail)
		} else {
			resp.Diagnostics.AddWarning(fmt.Sprintf("Mapping %s: %s", m.Name, w.Code), detail)
		}
	}
}

func addWarnings(diags *diag.Diagnostics, name string, ws types.List) {
	if ws.IsNull() || ws.IsUnknown() {
		return
	}
	for _, e := range ws.Elements() {
		o, ok := e.(types.Object)
		if !ok {
			continue
		}
		a := o.Attributes()
		code, _ := a["code"].(types.String)
		field, _ := a["field"].(types.String)
		msg, _ := a["message"].(types.String)
		detail := msg.ValueString()
		if f := field.ValueString(); f != "" {
			detail = f + ": " + detail
		}
		diags.AddWarning(fmt.Sprintf("Mapping %s: %s", name, code.ValueString()), detail)
	}
}

func (r *mappingResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan mappingModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() || !configured(r.client, &resp.Diagnostics) {
		return
	}
	m, diags := plan.toMapping(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	out, err := r.client.CreateMapping(ctx, m)
	if err != nil {
		apiError(&resp.Diagnostics, "Could not create mapping "+m.Name, err, mappingFieldPath(m.Provider, m.Conditions.Claims))
		return
	}
	r.setState(ctx, out, &resp.State, &resp.Diagnostics)
}

func (r *mappingResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var name types.String
	resp.Diagnostics.Append(req.State.GetAttribute(ctx, path.Root("name"), &name)...)
	if resp.Diagnostics.HasError() || !configured(r.client, &resp.Diagnostics) {
		return
	}
	out, err := r.client.GetMapping(ctx, name.ValueString())
	if client.IsNotFound(err) {
		resp.State.RemoveResource(ctx)
		return
	}
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

func (r *mappingResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan mappingModel
	var prior types.String
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.GetAttribute(ctx, path.Root("name"), &prior)...)
	if resp.Diagnostics.HasError() || !configured(r.client, &resp.Diagnostics) {
		return
	}
	m, diags := plan.toMapping(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	// PUT replaces the whole object under its current name; a new name in
	// the body renames it, keeping its id, quota counts and history.
	out, err := r.client.UpdateMapping(ctx, prior.ValueString(), m)
	if err != nil {
		apiError(&resp.Diagnostics, "Could not update mapping "+prior.ValueString(), err, mappingFieldPath(m.Provider, m.Conditions.Claims))
		return
	}
	r.setState(ctx, out, &resp.State, &resp.Diagnostics)
}

func (r *mappingResource) setState(ctx context.Context, out api.Mapping, state interface {
	Set(context.Context, any) diag.Diagnostics
}, diags *diag.Diagnostics) {
	m, d := mappingModelOf(out)
	diags.Append(d...)
	if diags.HasError() {
		return
	}
	diags.Append(state.Set(ctx, &m)...)
	addWarnings(diags, out.Name, m.Warnings)
}

func (r *mappingResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var name types.String
	resp.Diagnostics.Append(req.State.GetAttribute(ctx, path.Root("name"), &name)...)
	if resp.Diagnostics.HasError() || !configured(r.client, &resp.Diagnostics) {
		return
	}
	if err := r.client.DeleteMapping(ctx, name.ValueString()); err != nil && !client.IsNotFound(err) {
		apiError(&resp.Diagnostics, "Could not delete mapping "+name.ValueString(), err, nil)
	}
}

func (r *mappingResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resource.ImportStatePassthroughID(ctx, path.Root("name"), req, resp)
}

func configured(c *client.Client, diags *diag.Diagnostics) bool {
	if c == nil {
		diags.AddError("Provider not configured", fmt.Sprintf("the oidcbridge provider has no client; set endpoint and token (or %s and %s)", EnvEndpoint, EnvToken))
		return false
	}
	return true
}
