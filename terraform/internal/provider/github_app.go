package provider

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/bridge/client"
)

var (
	_ resource.Resource                   = (*gitHubAppResource)(nil)
	_ resource.ResourceWithConfigure      = (*gitHubAppResource)(nil)
	_ resource.ResourceWithImportState    = (*gitHubAppResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*gitHubAppResource)(nil)
	_ resource.ResourceWithValidateConfig = (*gitHubAppResource)(nil)
)

// gitHubAppResource is oidcbridge_github_app: a GitHub App the bridge mints
// installation tokens with. Its private key is write-only at the API: the
// bridge never returns it, only its fingerprint (GitHub's form). The key is
// in the state (sensitive), as OpenTofu 1.10 has no write-only attributes;
// private_key_fingerprint is the key's fingerprint, planned from the
// configured key and read from the bridge's signing key, so a key changed
// behind Terraform's back shows as a change that puts the configured key back.
type gitHubAppResource struct{ client *client.Client }

func newGitHubAppResource() resource.Resource { return &gitHubAppResource{} }

type gitHubAppModel struct {
	ID                    types.String `tfsdk:"id"`
	Name                  types.String `tfsdk:"name"`
	AppID                 types.Int64  `tfsdk:"app_id"`
	BaseURL               types.String `tfsdk:"base_url"`
	PrivateKey            types.String `tfsdk:"private_key"`
	RetirePreviousKey     types.Bool   `tfsdk:"retire_previous_key"`
	PrivateKeyFingerprint types.String `tfsdk:"private_key_fingerprint"`
	Keys                  types.List   `tfsdk:"keys"`
}

var (
	gitHubKeyAttrs = map[string]attr.Type{"fingerprint": types.StringType, "signing": types.BoolType, "added_at": types.StringType}
	gitHubKeyType  = types.ObjectType{AttrTypes: gitHubKeyAttrs}
)

func (r *gitHubAppResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_github_app"
}

func (r *gitHubAppResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "A GitHub App the bridge mints installation tokens with (mappings' github block names it in app). " +
			"Several Apps per bridge: one per organisation, or a GitHub Enterprise Server's.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Description:   "The App's name.",
				Computed:      true,
				PlanModifiers: []planmodifier.String{idFromName{}},
			},
			"name": schema.StringAttribute{
				Description:   "The name mappings use for the App. Changing it replaces the App.",
				Required:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"app_id": schema.Int64Attribute{
				Description: "The App's numeric id (its settings page's \"App ID\").",
				Required:    true,
				Validators:  []validator.Int64{int64validator.AtLeast(1)},
			},
			"base_url": schema.StringAttribute{
				Description: "The GitHub REST API the App lives on: unset for github.com, https://HOST/api/v3/ for a GitHub Enterprise Server.",
				Optional:    true,
			},
			"private_key": schema.StringAttribute{
				Description: "The App's private key, the PEM file GitHub generates (file(...) or a secret store's data source). " +
					"The bridge encrypts it at rest and never returns it; it is kept in the Terraform state, marked sensitive: " +
					"keep the state encrypted. Changing it rotates: the new key signs, the previous stays valid until " +
					"retire_previous_key.",
				Required:  true,
				Sensitive: true,
			},
			"retire_previous_key": schema.BoolAttribute{
				Description: "Drop the key the last rotation replaced (once GitHub no longer knows it). Default false: " +
					"during a rotation the bridge holds both keys.",
				Optional: true, Computed: true, Default: booldefault.StaticBool(false),
			},
			"private_key_fingerprint": schema.StringAttribute{
				Description: "The configured key's fingerprint as GitHub shows it (SHA256:...); after a refresh, the bridge's " +
					"signing key's, so a key changed outside Terraform shows as a change.",
				Computed: true,
			},
			"keys": schema.ListNestedAttribute{
				Description: "The keys the bridge holds for the App, the signing key first.",
				Computed:    true,
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"fingerprint": schema.StringAttribute{Computed: true, Description: "GitHub's fingerprint (SHA256:...)."},
					"signing":     schema.BoolAttribute{Computed: true, Description: "Whether the bridge signs App JWTs with it."},
					"added_at":    schema.StringAttribute{Computed: true, Description: "When the bridge got it (RFC 3339)."},
				}},
			},
		},
	}
}

func (r *gitHubAppResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.client = dataFrom(req.ProviderData, &resp.Diagnostics).client
}

// ValidateConfig checks offline what bridge/api states of an App: a base URL
// that is an https URL, a private key that is a PEM RSA private key. The
// admin API has no dry run for Apps: the rest (name rules, the key's
// acceptance) is judged at apply.
func (r *gitHubAppResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var m gitHubAppModel
	if diags := req.Config.Get(ctx, &m); diags.HasError() {
		return
	}
	if v := m.BaseURL; !v.IsNull() && !v.IsUnknown() {
		if err := checkGitHubBaseURL(v.ValueString()); err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("base_url"), "Invalid base_url", err.Error())
		}
	}
	if v := m.PrivateKey; !v.IsNull() && !v.IsUnknown() {
		if _, err := gitHubKeyFingerprint(v.ValueString()); err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("private_key"), "Invalid private_key", err.Error())
		}
	}
}

func checkGitHubBaseURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("base_url must be an https URL without user info, query or fragment, e.g. https://ghe.example.com/api/v3/")
	}
	return nil
}

// gitHubKeyFingerprint is the fingerprint GitHub shows for an App's private
// key: SHA256: and the base64 of the SHA-256 of the public key's DER
// (SubjectPublicKeyInfo), as `openssl rsa -pubout -outform DER | openssl
// sha256 -binary | base64` prints it. The key is never in an error.
func gitHubKeyFingerprint(pemText string) (string, error) {
	block, _ := pem.Decode([]byte(strings.TrimSpace(pemText)))
	if block == nil {
		return "", errors.New("private_key is not PEM: give the .pem file GitHub generated for the App")
	}
	var key *rsa.PrivateKey
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return "", errors.New("private_key: the RSA PRIVATE KEY block does not parse")
		}
		key = k
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return "", errors.New("private_key: the PRIVATE KEY block does not parse")
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return "", errors.New("private_key: not an RSA key (GitHub Apps sign with RSA)")
		}
		key = rk
	default:
		return "", errors.New("private_key: a PEM block of type " + block.Type + ", not a private key")
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return "", errors.New("private_key: its public key does not encode")
	}
	sum := sha256.Sum256(der)
	return "SHA256:" + base64.StdEncoding.EncodeToString(sum[:]), nil
}

// ModifyPlan plans private_key_fingerprint from the configured key, and
// the keys as unknown when they will change: a new key (a rotation) or
// retire_previous_key with a previous key still held.
func (r *gitHubAppResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return
	}
	var plan gitHubAppModel
	if resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...); resp.Diagnostics.HasError() {
		return
	}
	var state *gitHubAppModel
	if !req.State.Raw.IsNull() {
		state = &gitHubAppModel{}
		if resp.Diagnostics.Append(req.State.Get(ctx, state)...); resp.Diagnostics.HasError() {
			return
		}
	}
	fp := types.StringUnknown()
	if !plan.PrivateKey.IsUnknown() {
		if f, err := gitHubKeyFingerprint(plan.PrivateKey.ValueString()); err == nil {
			fp = types.StringValue(f)
		}
	}
	plan.PrivateKeyFingerprint = fp
	if state == nil || !fp.Equal(state.PrivateKeyFingerprint) ||
		plan.RetirePreviousKey.ValueBool() && len(state.Keys.Elements()) > 1 {
		plan.Keys = types.ListUnknown(gitHubKeyType)
	} else {
		plan.Keys = state.Keys
	}
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}

// gitHubAppOf is the API object of plan; the key is sent when sendKey.
func gitHubAppOf(m *gitHubAppModel, sendKey bool) api.GitHubApp {
	app := api.GitHubApp{
		Name:              m.Name.ValueString(),
		AppID:             m.AppID.ValueInt64(),
		BaseURL:           m.BaseURL.ValueString(),
		RetirePreviousKey: m.RetirePreviousKey.ValueBool(),
	}
	if sendKey {
		app.PrivateKey = m.PrivateKey.ValueString()
	}
	return app
}

// gitHubAppModelOf is what the bridge answered, with what it never returns
// (the key, retire_previous_key) and what it may normalise (base_url: the
// configured spelling is kept when it names the same URL) from prior.
func gitHubAppModelOf(app api.GitHubApp, prior *gitHubAppModel) gitHubAppModel {
	m := gitHubAppModel{
		ID:                    types.StringValue(app.Name),
		Name:                  types.StringValue(app.Name),
		AppID:                 types.Int64Value(app.AppID),
		BaseURL:               optString(app.BaseURL),
		PrivateKey:            prior.PrivateKey,
		RetirePreviousKey:     prior.RetirePreviousKey,
		PrivateKeyFingerprint: types.StringNull(),
		Keys:                  gitHubKeysValue(app.Keys),
	}
	if m.RetirePreviousKey.IsNull() || m.RetirePreviousKey.IsUnknown() {
		m.RetirePreviousKey = types.BoolValue(false)
	}
	if b := prior.BaseURL; !b.IsNull() && !b.IsUnknown() && sameURL(b.ValueString(), app.BaseURL) {
		m.BaseURL = b
	}
	for _, k := range app.Keys {
		if k.Signing {
			m.PrivateKeyFingerprint = types.StringValue(k.Fingerprint)
			break
		}
	}
	return m
}

func sameURL(a, b string) bool { return strings.TrimRight(a, "/") == strings.TrimRight(b, "/") }

func gitHubKeysValue(keys []api.GitHubAppKey) types.List {
	elems := make([]attr.Value, 0, len(keys))
	for _, k := range keys {
		elems = append(elems, types.ObjectValueMust(gitHubKeyAttrs, map[string]attr.Value{
			"fingerprint": types.StringValue(k.Fingerprint),
			"signing":     types.BoolValue(k.Signing),
			"added_at":    types.StringValue(k.AddedAt.UTC().Format(time.RFC3339)),
		}))
	}
	return types.ListValueMust(gitHubKeyType, elems)
}

func (r *gitHubAppResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan gitHubAppModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() || !configured(r.client, &resp.Diagnostics) {
		return
	}
	out, err := r.client.CreateGitHubApp(ctx, gitHubAppOf(&plan, true))
	if err != nil {
		apiError(&resp.Diagnostics, "Could not create GitHub App "+plan.Name.ValueString(), err, gitHubAppFieldPath)
		return
	}
	state := gitHubAppModelOf(out, &plan)
	checkSigningKey(&resp.Diagnostics, &state, plan.PrivateKeyFingerprint, out)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// checkSigningKey: after a write that sent the key, the bridge must sign
// with it; its fingerprint in the state is then the planned one.
func checkSigningKey(diags *diag.Diagnostics, state *gitHubAppModel, planned types.String, out api.GitHubApp) {
	if planned.IsUnknown() || planned.IsNull() {
		return
	}
	if state.PrivateKeyFingerprint.Equal(planned) {
		return
	}
	diags.AddError("GitHub App "+out.Name+": unexpected signing key",
		"The bridge signs with the key "+state.PrivateKeyFingerprint.ValueString()+", not the configured "+planned.ValueString()+
			". Report this: the bridge and the provider disagree on GitHub's key fingerprint.")
}

func gitHubAppFieldPath(field string) (path.Path, bool) { return apiPath(field, nil, nil) }

func (r *gitHubAppResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state gitHubAppModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || !configured(r.client, &resp.Diagnostics) {
		return
	}
	out, err := r.client.GetGitHubApp(ctx, state.Name.ValueString())
	if client.IsNotFound(err) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		apiError(&resp.Diagnostics, "Could not read GitHub App "+state.Name.ValueString(), err, nil)
		return
	}
	next := gitHubAppModelOf(out, &state)
	resp.Diagnostics.Append(resp.State.Set(ctx, &next)...)
}

func (r *gitHubAppResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, prior gitHubAppModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &prior)...)
	if resp.Diagnostics.HasError() || !configured(r.client, &resp.Diagnostics) {
		return
	}
	// The key goes only when it is not the bridge's signing key already: a
	// PUT with a key is a rotation.
	sendKey := !plan.PrivateKeyFingerprint.Equal(prior.PrivateKeyFingerprint)
	out, err := r.client.UpdateGitHubApp(ctx, prior.Name.ValueString(), gitHubAppOf(&plan, sendKey))
	if err != nil {
		apiError(&resp.Diagnostics, "Could not update GitHub App "+prior.Name.ValueString(), err, gitHubAppFieldPath)
		return
	}
	state := gitHubAppModelOf(out, &plan)
	checkSigningKey(&resp.Diagnostics, &state, plan.PrivateKeyFingerprint, out)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *gitHubAppResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state gitHubAppModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || !configured(r.client, &resp.Diagnostics) {
		return
	}
	err := r.client.DeleteGitHubApp(ctx, state.Name.ValueString())
	if err != nil && !client.IsNotFound(err) {
		apiError(&resp.Diagnostics, "Could not delete GitHub App "+state.Name.ValueString(), err, nil)
	}
}

// ImportState imports by name; the key is not readable, so the first plan
// after an import sets private_key (sent only if its fingerprint is not the
// bridge's signing key's).
func (r *gitHubAppResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resource.ImportStatePassthroughID(ctx, path.Root("name"), req, resp)
}
