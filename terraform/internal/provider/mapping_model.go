package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
)

// The target objects of a mapping, as the API carries them (docs/clouds.md);
// the bridge's providers (providers/<cloud>) own their rules, which the
// provider asks the bridge to apply (ValidateMapping).
type (
	awsTarget struct {
		RoleARN           string            `json:"role_arn"`
		Region            string            `json:"region"`
		SessionPolicy     string            `json:"session_policy,omitempty"`
		ExternalID        string            `json:"external_id,omitempty"`
		Mode              string            `json:"mode,omitempty"`
		SessionTags       map[string]string `json:"session_tags,omitempty"`
		TransitiveTagKeys []string          `json:"transitive_tag_keys,omitempty"`
	}
	gcpTarget struct {
		ServiceAccount           string   `json:"service_account"`
		Scopes                   []string `json:"scopes,omitempty"`
		Delegates                []string `json:"delegates,omitempty"`
		Mode                     string   `json:"mode,omitempty"`
		WorkloadIdentityProvider string   `json:"workload_identity_provider,omitempty"`
		AllowLifetimeExtension   bool     `json:"allow_lifetime_extension,omitempty"`
	}
	azureTarget struct {
		TenantID string `json:"tenant_id"`
		ClientID string `json:"client_id"`
		Scope    string `json:"scope,omitempty"`
	}
	jwtTarget struct {
		Audience string         `json:"audience"`
		Claims   map[string]any `json:"claims,omitempty"`
	}
	// githubTarget: an installation token of a registered GitHub App
	// (oidcbridge_github_app) for repositories of owner, or all of the
	// installation's, with GitHub's permissions.
	githubTarget struct {
		App             string            `json:"app"`
		Owner           string            `json:"owner"`
		Repositories    []string          `json:"repositories,omitempty"`
		AllRepositories bool              `json:"all_repositories,omitempty"`
		Permissions     map[string]string `json:"permissions,omitempty"`
	}
)

// providerGitHub is the github provider's name (bridge/api names the
// others).
const providerGitHub = "github"

// The target modes the schema offers.
const (
	awsModeAssumeRole       = "assume_role"
	awsModeWebIdentity      = "web_identity"
	gcpModeImpersonate      = "impersonate"
	gcpModeWorkloadIdentity = "workload_identity"
)

// mappingModel is oidcbridge_mapping, resource and data source alike.
// conditions, the target blocks and quota are objects that are null when
// absent; exactly one of aws, gcp, azure and jwt is set, and it is the
// mapping's provider.
type mappingModel struct {
	ID                 types.String     `tfsdk:"id"`
	Name               types.String     `tfsdk:"name"`
	Issuer             types.String     `tfsdk:"issuer"`
	Enabled            types.Bool       `tfsdk:"enabled"`
	Mode               types.String     `tfsdk:"mode"`
	Conditions         *conditionsModel `tfsdk:"conditions"`
	AWS                *awsModel        `tfsdk:"aws"`
	GCP                *gcpModel        `tfsdk:"gcp"`
	Azure              *azureModel      `tfsdk:"azure"`
	JWT                *jwtModel        `tfsdk:"jwt"`
	GitHub             *githubModel     `tfsdk:"github"`
	MaxDurationSeconds types.Int64      `tfsdk:"max_duration_seconds"`
	Quota              *quotaModel      `tfsdk:"quota"`
	Warnings           types.List       `tfsdk:"warnings"`
}

type conditionsModel struct {
	Repository   types.List `tfsdk:"repository"`
	RepositoryID types.List `tfsdk:"repository_id"`
	Ref          types.List `tfsdk:"ref"`
	Environment  types.List `tfsdk:"environment"`
	EventName    types.List `tfsdk:"event_name"`
	WorkflowRef  types.List `tfsdk:"workflow_ref"`
	// Claims holds string conditions (patterns); ClaimsBool and
	// ClaimsNumber the boolean and number ones: a claims condition matches
	// only a claim of its JSON type, and Terraform would turn true into
	// "true" in a map of strings without a word.
	Claims       types.Map `tfsdk:"claims"`
	ClaimsBool   types.Map `tfsdk:"claims_bool"`
	ClaimsNumber types.Map `tfsdk:"claims_number"`
}

type awsModel struct {
	RoleARN       types.String `tfsdk:"role_arn"`
	Region        types.String `tfsdk:"region"`
	SessionPolicy types.String `tfsdk:"session_policy"`
	ExternalID    types.String `tfsdk:"external_id"`
	Mode          types.String `tfsdk:"mode"`
	// SessionTags and TransitiveTagKeys are the target's session_tags and
	// transitive_tag_keys.
	SessionTags       types.Map  `tfsdk:"session_tags"`
	TransitiveTagKeys types.List `tfsdk:"transitive_tag_keys"`
}

type gcpModel struct {
	ServiceAccount           types.String `tfsdk:"service_account"`
	Scopes                   types.List   `tfsdk:"scopes"`
	Delegates                types.List   `tfsdk:"delegates"`
	Mode                     types.String `tfsdk:"mode"`
	WorkloadIdentityProvider types.String `tfsdk:"workload_identity_provider"`
	AllowLifetimeExtension   types.Bool   `tfsdk:"allow_lifetime_extension"`
}

type azureModel struct {
	TenantID types.String `tfsdk:"tenant_id"`
	ClientID types.String `tfsdk:"client_id"`
	Scope    types.String `tfsdk:"scope"`
}

type jwtModel struct {
	Audience types.String `tfsdk:"audience"`
	Claims   types.Map    `tfsdk:"claims"`
}

type githubModel struct {
	App             types.String `tfsdk:"app"`
	Owner           types.String `tfsdk:"owner"`
	Repositories    types.List   `tfsdk:"repositories"`
	AllRepositories types.Bool   `tfsdk:"all_repositories"`
	Permissions     types.Map    `tfsdk:"permissions"`
}

type quotaModel struct {
	PerHour types.Int64 `tfsdk:"per_hour"`
	PerJob  types.Int64 `tfsdk:"per_job"`
}

var (
	stringList   = types.ListType{ElemType: types.StringType}
	boolList     = types.ListType{ElemType: types.BoolType}
	numberList   = types.ListType{ElemType: types.NumberType}
	warningAttrs = map[string]attr.Type{"code": types.StringType, "field": types.StringType, "message": types.StringType}
	warningType  = types.ObjectType{AttrTypes: warningAttrs}
)

// provider returns the mapping's provider: the name of its target block.
func (m *mappingModel) provider() string {
	switch {
	case m.AWS != nil:
		return api.ProviderAWS
	case m.GCP != nil:
		return api.ProviderGCP
	case m.Azure != nil:
		return api.ProviderAzure
	case m.JWT != nil:
		return api.ProviderJWT
	case m.GitHub != nil:
		return providerGitHub
	}
	return ""
}

// mappingFieldPath turns a field as the API and package mapping name it into
// the attribute path of a mapping of provider prov whose claims conditions
// are claims (conditions.claims.x is under claims_bool or claims_number when
// x is a boolean or number condition there).
func mappingFieldPath(prov string, claims map[string]api.Values) func(string) (path.Path, bool) {
	rename := map[string]string{"target": prov, "provider": prov}
	mapAttrs := map[string]bool{"claims": true, "claims_bool": true, "claims_number": true}
	return func(field string) (path.Path, bool) {
		if prov == "" && (field == "target" || len(field) > 7 && field[:7] == "target.") {
			return path.Empty(), false
		}
		if rest, ok := strings.CutPrefix(field, "conditions.claims."); ok {
			name, _ := splitIndex(rest)
			if v, ok := claims[name]; ok {
				switch v.Type {
				case api.TypeBoolean:
					field = "conditions.claims_bool." + rest
				case api.TypeNumber:
					field = "conditions.claims_number." + rest
				}
			}
		}
		return apiPath(field, rename, mapAttrs)
	}
}

// Placeholders stand for values unknown at plan time: each is valid where
// it stands, so that validation judges only the known values.
const (
	phName      = "placeholder"
	phPattern   = "placeholder"
	phRepo      = "placeholder/placeholder"
	phRepoID    = "1"
	phRef       = "refs/heads/placeholder"
	phRoleARN   = "arn:aws:iam::000000000000:role/placeholder"
	phRegion    = "us-east-1"
	phSA        = "placeholder@placeholder.iam.gserviceaccount.com"
	phScope     = "https://www.googleapis.com/auth/cloud-platform"
	phWIP       = "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/placeholder/providers/placeholder"
	phGUID      = "00000000-0000-0000-0000-000000000000"
	phAzScope   = "https://management.azure.com/.default"
	phAudience  = "placeholder"
	phClaimName = "placeholder"
)

// toMapping builds the API object of m. Unknown values (only at plan time)
// become placeholders.
func (m *mappingModel) toMapping(ctx context.Context) (api.Mapping, diag.Diagnostics) {
	var diags diag.Diagnostics
	out := api.Mapping{
		Name:    str(m.Name, phName),
		Issuer:  str(m.Issuer, phName),
		Enabled: m.Enabled.IsNull() || m.Enabled.IsUnknown() || m.Enabled.ValueBool(),
		Mode:    str(m.Mode, ""),
	}
	if !m.MaxDurationSeconds.IsUnknown() {
		out.MaxDurationSeconds = int(m.MaxDurationSeconds.ValueInt64())
	}
	if c := m.Conditions; c != nil {
		vals := func(l types.List, ph string) *api.Values {
			if l.IsNull() {
				return nil
			}
			return &api.Values{Patterns: strs(ctx, l, ph), List: true}
		}
		out.Conditions = api.Conditions{
			Repository:   vals(c.Repository, phRepo),
			RepositoryID: vals(c.RepositoryID, phRepoID),
			Ref:          vals(c.Ref, phRef),
			Environment:  vals(c.Environment, phPattern),
			EventName:    vals(c.EventName, phPattern),
			WorkflowRef:  vals(c.WorkflowRef, phPattern),
		}
		claims, d := claimsConditions(ctx, c)
		diags.Append(d...)
		out.Conditions.Claims = claims
	}
	var target any
	switch out.Provider = m.provider(); out.Provider {
	case api.ProviderAWS:
		t := awsTarget{
			RoleARN:       str(m.AWS.RoleARN, phRoleARN),
			Region:        str(m.AWS.Region, phRegion),
			SessionPolicy: str(m.AWS.SessionPolicy, ""),
			ExternalID:    str(m.AWS.ExternalID, ""),
			Mode:          str(m.AWS.Mode, ""),
		}
		if tags := m.AWS.SessionTags; !tags.IsNull() && !tags.IsUnknown() {
			t.SessionTags = map[string]string{}
			for k, v := range tags.Elements() {
				if s, ok := v.(types.String); ok && !s.IsNull() {
					t.SessionTags[k] = str(s, phPattern)
				}
			}
		}
		if keys := m.AWS.TransitiveTagKeys; !keys.IsNull() && !keys.IsUnknown() {
			// Unknown keys are left out: which key is valid depends on the
			// tags, and a placeholder could repeat a known one.
			for _, e := range keys.Elements() {
				if s, ok := e.(types.String); ok && !s.IsNull() && !s.IsUnknown() {
					t.TransitiveTagKeys = append(t.TransitiveTagKeys, s.ValueString())
				}
			}
		}
		target = t
	case api.ProviderGCP:
		t := gcpTarget{
			ServiceAccount:           str(m.GCP.ServiceAccount, phSA),
			Scopes:                   strs(ctx, m.GCP.Scopes, phScope),
			Delegates:                strs(ctx, m.GCP.Delegates, phSA),
			Mode:                     str(m.GCP.Mode, ""),
			WorkloadIdentityProvider: str(m.GCP.WorkloadIdentityProvider, ""),
			// Unknown until apply: judge max_duration_seconds as if allowed.
			AllowLifetimeExtension: m.GCP.AllowLifetimeExtension.IsUnknown() || m.GCP.AllowLifetimeExtension.ValueBool(),
		}
		if m.GCP.Mode.IsUnknown() || m.GCP.WorkloadIdentityProvider.IsUnknown() {
			// Which of the two is valid depends on the other: judge neither.
			t.Mode, t.WorkloadIdentityProvider = gcpModeWorkloadIdentity, phWIP
		}
		target = t
	case api.ProviderAzure:
		target = azureTarget{
			TenantID: str(m.Azure.TenantID, phGUID),
			ClientID: str(m.Azure.ClientID, phGUID),
			Scope:    str(m.Azure.Scope, phAzScope),
		}
	case api.ProviderJWT:
		t := jwtTarget{Audience: str(m.JWT.Audience, phAudience)}
		if !m.JWT.Claims.IsNull() && !m.JWT.Claims.IsUnknown() {
			t.Claims = map[string]any{}
			for k, v := range m.JWT.Claims.Elements() {
				if s, ok := v.(types.String); ok && !s.IsNull() {
					t.Claims[k] = str(s, phPattern)
				}
			}
		}
		target = t
	case providerGitHub:
		t := githubTarget{
			App:          str(m.GitHub.App, phName),
			Owner:        str(m.GitHub.Owner, phName),
			Repositories: strs(ctx, m.GitHub.Repositories, phName),
			// Unknown until apply: judged as the installation's all.
			AllRepositories: m.GitHub.AllRepositories.IsUnknown() && m.GitHub.Repositories.IsNull() || m.GitHub.AllRepositories.ValueBool(),
		}
		if p := m.GitHub.Permissions; !p.IsNull() && !p.IsUnknown() {
			t.Permissions = map[string]string{}
			for k, v := range p.Elements() {
				if s, ok := v.(types.String); ok && !s.IsNull() && !s.IsUnknown() {
					t.Permissions[k] = s.ValueString()
				}
			}
		}
		target = t
	}
	if target != nil {
		b, err := json.Marshal(target)
		if err != nil {
			diags.AddError("Could not encode the target", err.Error())
		}
		out.Target = b
	}
	if q := m.Quota; q != nil {
		out.Quota = &api.Quota{}
		if !q.PerHour.IsUnknown() {
			out.Quota.PerHour = int(q.PerHour.ValueInt64())
		}
		if !q.PerJob.IsUnknown() {
			out.Quota.PerJob = int(q.PerJob.ValueInt64())
		}
	}
	return out, diags
}

// mappingModelOf is what the API answered, normalised: conditions are
// always lists (the API gives back a single string as the admin wrote it),
// empty optional values are null.
func mappingModelOf(m api.Mapping) (mappingModel, diag.Diagnostics) {
	var diags diag.Diagnostics
	mode := m.Mode
	if mode == "" {
		mode = api.ModeEnforce
	}
	out := mappingModel{
		ID:                 types.StringValue(m.Name),
		Name:               types.StringValue(m.Name),
		Issuer:             types.StringValue(m.Issuer),
		Enabled:            types.BoolValue(m.Enabled),
		Mode:               types.StringValue(mode),
		MaxDurationSeconds: types.Int64Value(int64(m.MaxDurationSeconds)),
	}
	c := m.Conditions
	values := func(v *api.Values) types.List {
		if v == nil {
			return types.ListNull(types.StringType)
		}
		return listOf(v.Patterns)
	}
	cm := &conditionsModel{
		Repository:   values(c.Repository),
		RepositoryID: values(c.RepositoryID),
		Ref:          values(c.Ref),
		Environment:  values(c.Environment),
		EventName:    values(c.EventName),
		WorkflowRef:  values(c.WorkflowRef),
		Claims:       types.MapNull(stringList),
		ClaimsBool:   types.MapNull(boolList),
		ClaimsNumber: types.MapNull(numberList),
	}
	strElems, boolElems, numElems := map[string]attr.Value{}, map[string]attr.Value{}, map[string]attr.Value{}
	for _, k := range slices.Sorted(maps.Keys(c.Claims)) {
		v := c.Claims[k]
		switch v.Type {
		case "", api.TypeString:
			strElems[k] = listOf(v.Patterns)
		case api.TypeBoolean:
			elems := make([]attr.Value, len(v.Patterns))
			for i, p := range v.Patterns {
				elems[i] = types.BoolValue(p == "true")
			}
			boolElems[k] = types.ListValueMust(types.BoolType, elems)
		case api.TypeNumber:
			elems := make([]attr.Value, len(v.Patterns))
			for i, p := range v.Patterns {
				f, _, err := big.ParseFloat(p, 10, 512, big.ToNearestEven)
				if err != nil {
					diags.AddError("Unexpected condition from the API",
						fmt.Sprintf("mapping %q: claims condition %q holds %q, which is not a number: %v", m.Name, k, p, err))
					f = new(big.Float)
				}
				elems[i] = types.NumberValue(f)
			}
			numElems[k] = types.ListValueMust(types.NumberType, elems)
		default:
			diags.AddError("Unexpected condition from the API",
				fmt.Sprintf("mapping %q: claims condition %q has type %q, which this version of the provider does not know", m.Name, k, v.Type))
		}
	}
	if len(strElems) > 0 {
		cm.Claims = types.MapValueMust(stringList, strElems)
	}
	if len(boolElems) > 0 {
		cm.ClaimsBool = types.MapValueMust(boolList, boolElems)
	}
	if len(numElems) > 0 {
		cm.ClaimsNumber = types.MapValueMust(numberList, numElems)
	}
	out.Conditions = cm
	if cm.Repository.IsNull() && cm.RepositoryID.IsNull() && cm.Ref.IsNull() && cm.Environment.IsNull() &&
		cm.EventName.IsNull() && cm.WorkflowRef.IsNull() && cm.Claims.IsNull() && cm.ClaimsBool.IsNull() && cm.ClaimsNumber.IsNull() {
		out.Conditions = nil
	}

	decode := func(v any) bool {
		if err := json.Unmarshal(m.Target, v); err != nil {
			diags.AddError("Unexpected target from the API", fmt.Sprintf("the %s target of mapping %q could not be read: %v", m.Provider, m.Name, err))
			return false
		}
		return true
	}
	switch m.Provider {
	case api.ProviderAWS:
		var t awsTarget
		if decode(&t) {
			out.AWS = &awsModel{
				RoleARN: types.StringValue(t.RoleARN), Region: types.StringValue(t.Region),
				SessionPolicy: optString(t.SessionPolicy), ExternalID: optString(t.ExternalID), Mode: optString(t.Mode),
				SessionTags: types.MapNull(types.StringType), TransitiveTagKeys: listOf(t.TransitiveTagKeys),
			}
			if len(t.SessionTags) > 0 {
				elems := make(map[string]attr.Value, len(t.SessionTags))
				for k, v := range t.SessionTags {
					elems[k] = types.StringValue(v)
				}
				out.AWS.SessionTags = types.MapValueMust(types.StringType, elems)
			}
		}
	case api.ProviderGCP:
		var t gcpTarget
		if decode(&t) {
			out.GCP = &gcpModel{
				ServiceAccount: types.StringValue(t.ServiceAccount), Scopes: listOf(t.Scopes), Delegates: listOf(t.Delegates),
				Mode: optString(t.Mode), WorkloadIdentityProvider: optString(t.WorkloadIdentityProvider),
				AllowLifetimeExtension: types.BoolValue(t.AllowLifetimeExtension),
			}
		}
	case api.ProviderAzure:
		var t azureTarget
		if decode(&t) {
			out.Azure = &azureModel{TenantID: types.StringValue(t.TenantID), ClientID: types.StringValue(t.ClientID), Scope: optString(t.Scope)}
		}
	case api.ProviderJWT:
		var t jwtTarget
		if decode(&t) {
			jm := &jwtModel{Audience: types.StringValue(t.Audience), Claims: types.MapNull(types.StringType)}
			if len(t.Claims) > 0 {
				elems := make(map[string]attr.Value, len(t.Claims))
				for k, v := range t.Claims {
					s, ok := v.(string)
					if !ok {
						// Set through the API as another JSON type: shown as
						// its JSON text; writing it back makes it a string.
						b, _ := json.Marshal(v)
						s = string(b)
						diags.AddWarning("Non-string JWT claim",
							fmt.Sprintf("mapping %q: jwt claim %q is the JSON %s; the provider manages string claims only and shows it as text", m.Name, k, s))
					}
					elems[k] = types.StringValue(s)
				}
				jm.Claims = types.MapValueMust(types.StringType, elems)
			}
			out.JWT = jm
		}
	case providerGitHub:
		var t githubTarget
		if decode(&t) {
			gm := &githubModel{App: types.StringValue(t.App), Owner: types.StringValue(t.Owner), Repositories: listOf(t.Repositories),
				AllRepositories: types.BoolValue(t.AllRepositories), Permissions: types.MapNull(types.StringType)}
			if len(t.Permissions) > 0 {
				elems := make(map[string]attr.Value, len(t.Permissions))
				for k, v := range t.Permissions {
					elems[k] = types.StringValue(v)
				}
				gm.Permissions = types.MapValueMust(types.StringType, elems)
			}
			out.GitHub = gm
		}
	default:
		diags.AddError("Unknown provider", fmt.Sprintf("mapping %q has provider %q, which this version of the provider does not know", m.Name, m.Provider))
	}

	if q := m.Quota; q != nil && (q.PerHour > 0 || q.PerJob > 0) {
		out.Quota = &quotaModel{PerHour: types.Int64Null(), PerJob: types.Int64Null()}
		if q.PerHour > 0 {
			out.Quota.PerHour = types.Int64Value(int64(q.PerHour))
		}
		if q.PerJob > 0 {
			out.Quota.PerJob = types.Int64Value(int64(q.PerJob))
		}
	}
	out.Warnings = warningsValue(m.Warnings)
	return out, diags
}

func warningsValue(ws []api.Warning) types.List {
	elems := make([]attr.Value, 0, len(ws))
	for _, w := range ws {
		elems = append(elems, types.ObjectValueMust(warningAttrs, map[string]attr.Value{
			"code": types.StringValue(w.Code), "field": optString(w.Field), "message": types.StringValue(w.Message),
		}))
	}
	return types.ListValueMust(warningType, elems)
}

// Placeholders of typed claims conditions unknown at plan time.
const (
	phBool   = "true"
	phNumber = "1"
)

// claimsConditions reads claims, claims_bool and claims_number into the
// API's claims conditions, typed. A claim named in more than one of them is
// an error: a condition has one type.
func claimsConditions(ctx context.Context, c *conditionsModel) (map[string]api.Values, diag.Diagnostics) {
	var diags diag.Diagnostics
	var out map[string]api.Values
	add := func(attrName string, m types.Map, typ string, conv func(attr.Value) (string, bool)) {
		switch {
		case m.IsNull():
			return
		case m.IsUnknown():
			if out == nil {
				out = map[string]api.Values{}
			}
			ph := phPattern
			switch typ {
			case api.TypeBoolean:
				ph = phBool
			case api.TypeNumber:
				ph = phNumber
			}
			out[phClaimName+"_"+attrName] = api.Values{Patterns: []string{ph}, List: true, Type: typ}
			return
		}
		if out == nil {
			out = map[string]api.Values{}
		}
		for _, k := range slices.Sorted(maps.Keys(m.Elements())) {
			at := path.Root("conditions").AtName(attrName).AtMapKey(k)
			l, ok := m.Elements()[k].(types.List)
			if !ok {
				diags.AddAttributeError(at, "Unexpected value type", fmt.Sprintf("%T", m.Elements()[k]))
				continue
			}
			if l.IsNull() {
				continue
			}
			if prev, dup := out[k]; dup {
				diags.AddAttributeError(at, "Claim condition given twice",
					fmt.Sprintf("claim %q is already a %s condition; a claims condition has one type (claims: strings, claims_bool: booleans, claims_number: numbers)", k, typeWord(prev.Type)))
				continue
			}
			var vals []string
			if l.IsUnknown() {
				vals = []string{placeholderOf(typ)}
			} else {
				for _, e := range l.Elements() {
					s, known := conv(e)
					if !known {
						s = placeholderOf(typ)
					}
					vals = append(vals, s)
				}
			}
			out[k] = api.Values{Patterns: vals, List: true, Type: typ}
		}
	}
	add("claims", c.Claims, "", func(v attr.Value) (string, bool) {
		s, ok := v.(types.String)
		if !ok || s.IsUnknown() {
			return "", false
		}
		return s.ValueString(), true
	})
	add("claims_bool", c.ClaimsBool, api.TypeBoolean, func(v attr.Value) (string, bool) {
		b, ok := v.(types.Bool)
		if !ok || b.IsUnknown() || b.IsNull() {
			return "", false
		}
		return strconv.FormatBool(b.ValueBool()), true
	})
	add("claims_number", c.ClaimsNumber, api.TypeNumber, func(v attr.Value) (string, bool) {
		n, ok := v.(types.Number)
		if !ok || n.IsUnknown() || n.IsNull() {
			return "", false
		}
		return numberText(n.ValueBigFloat()), true
	})
	return out, diags
}

func placeholderOf(typ string) string {
	switch typ {
	case api.TypeBoolean:
		return phBool
	case api.TypeNumber:
		return phNumber
	}
	return phPattern
}

func typeWord(typ string) string {
	switch typ {
	case api.TypeBoolean:
		return "claims_bool"
	case api.TypeNumber:
		return "claims_number"
	}
	return "claims"
}

// numberText is a Terraform number as a JSON number: integers of up to 40
// digits in full, others in the shortest form that reads back the same.
func numberText(f *big.Float) string {
	if f == nil {
		return phNumber
	}
	if f.IsInt() {
		if s := f.Text('f', 0); len(s) <= 40 {
			return s
		}
	}
	return f.Text('g', -1)
}
