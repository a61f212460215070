package provider

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/bridge/client"
)

// dataFrom takes the provider's data out of ProviderData; nil ProviderData
// (validation, before Configure) gives an empty one.
func dataFrom(data any, diags *diag.Diagnostics) *providerData {
	if data == nil {
		return &providerData{}
	}
	d, ok := data.(*providerData)
	if !ok {
		diags.AddError("Unexpected provider data", fmt.Sprintf("expected *providerData, got %T; report this bug", data))
		return &providerData{}
	}
	return d
}

// clientFrom takes the provider's client out of ProviderData (nil before
// Configure).
func clientFrom(data any, diags *diag.Diagnostics) *client.Client {
	return dataFrom(data, diags).client
}

// apiError turns a client error into a diagnostic, on the field at fault
// when the API names one.
func apiError(diags *diag.Diagnostics, what string, err error, fieldPath func(string) (path.Path, bool)) {
	var ce *client.Error
	if errors.As(err, &ce) && ce.Field != "" && fieldPath != nil {
		if p, ok := fieldPath(ce.Field); ok {
			diags.AddAttributeError(p, what, err.Error())
			return
		}
	}
	diags.AddError(what, err.Error())
}

// dryRunError reports the error of a dry-run validation at plan time: an
// object the bridge refuses (400 invalid_request) is an error, on the
// attribute at fault when the API names one; a bridge that cannot judge
// (unreachable, unavailable, an admin token it refuses) is a warning only:
// the plan goes on unvalidated, and the write validates it again at apply.
func dryRunError(diags *diag.Diagnostics, summary, what string, err error, fieldPath func(string) (path.Path, bool)) {
	var ce *client.Error
	if errors.As(err, &ce) && ce.Code == api.CodeInvalidRequest {
		if p, ok := fieldPath(ce.Field); ok {
			diags.AddAttributeError(p, summary, ce.Message)
			return
		}
		diags.AddError(summary, ce.Message)
		return
	}
	diags.AddWarning(what+" not validated",
		"The bridge could not validate it now ("+err.Error()+"); the bridge validates it again when it is applied.")
}

// apiPath turns a field as the API names it ("audiences[1]",
// "conditions.claims.team[0]", "target.role_arn") into an attribute path.
// rename maps the first segment (target → the provider's block). Under a
// map attribute (mapAttrs) the rest of the field up to a trailing index is
// the key.
func apiPath(field string, rename map[string]string, mapAttrs map[string]bool) (path.Path, bool) {
	if field == "" {
		return path.Empty(), false
	}
	var p path.Path
	last := ""
	rest := field
	for rest != "" {
		if mapAttrs[last] {
			key, idx := splitIndex(rest)
			p = p.AtMapKey(key)
			if idx >= 0 {
				p = p.AtListIndex(idx)
			}
			break
		}
		var seg string
		seg, rest, _ = strings.Cut(rest, ".")
		name, idx := splitIndex(seg)
		if last == "" {
			if r, ok := rename[name]; ok {
				name = r
			}
			if name == "" {
				return path.Empty(), false
			}
			p = path.Root(name)
		} else {
			p = p.AtName(name)
		}
		last = name
		if idx >= 0 {
			p = p.AtListIndex(idx)
		}
	}
	return p, true
}

// splitIndex splits "name[3]" into name and 3; -1 when there is no index.
func splitIndex(s string) (string, int) {
	if !strings.HasSuffix(s, "]") {
		return s, -1
	}
	i := strings.LastIndexByte(s, '[')
	if i < 0 {
		return s, -1
	}
	n, err := strconv.Atoi(s[i+1 : len(s)-1])
	if err != nil {
		return s, -1
	}
	return s[:i], n
}

// str returns a string's value, ph when it is unknown, "" when null.
func str(v types.String, ph string) string {
	if v.IsUnknown() {
		return ph
	}
	return v.ValueString()
}

// strs returns a list of strings' values with ph for unknowns; nil when
// the list is null.
func strs(ctx context.Context, l types.List, ph string) []string {
	if l.IsNull() {
		return nil
	}
	if l.IsUnknown() {
		return []string{ph}
	}
	out := make([]string, 0, len(l.Elements()))
	for _, e := range l.Elements() {
		s, ok := e.(types.String)
		if !ok || s.IsUnknown() {
			out = append(out, ph)
			continue
		}
		out = append(out, s.ValueString())
	}
	return out
}

// listOf returns the list value of ss; null when ss is empty.
func listOf(ss []string) types.List {
	if len(ss) == 0 {
		return types.ListNull(types.StringType)
	}
	elems := make([]attr.Value, len(ss))
	for i, s := range ss {
		elems[i] = types.StringValue(s)
	}
	return types.ListValueMust(types.StringType, elems)
}

// optString is null for "".
func optString(s string) types.String {
	if s == "" {
		return types.StringNull()
	}
	return types.StringValue(s)
}

// idFromName plans id as the planned name: ids are names, and a rename is
// an update in place that changes both.
type idFromName struct{}

var _ planmodifier.String = idFromName{}

func (idFromName) Description(context.Context) string {
	return "id is the name; it changes with the name."
}

func (m idFromName) MarkdownDescription(ctx context.Context) string { return m.Description(ctx) }

func (idFromName) PlanModifyString(ctx context.Context, req planmodifier.StringRequest, resp *planmodifier.StringResponse) {
	var name types.String
	resp.Diagnostics.Append(req.Plan.GetAttribute(ctx, path.Root("name"), &name)...)
	if req.Plan.Raw.IsNull() || name.IsUnknown() || name.IsNull() {
		return
	}
	resp.PlanValue = name
}
