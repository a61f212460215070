package aws

import "github.com/oidc-bridge/oidc-bridge/providers"

var _ providers.Templater = Spec{}

// TemplateFields: role_arn may hold variables after ":role/" (in the role's
// path or name, never its partition or account), each value of the role
// name's characters less ',' (kept out so that a value never reads as a
// list in a policy or a log): A-Z, a-z, 0-9 and _ + = . @ -. Neither ':'
// nor '/' can come in, so a value never adds a path segment or changes the
// resource type; the resolved ARN must still pass checkRoleARN (the role
// name at most 64 characters).
func (Spec) TemplateFields() []providers.TemplateField {
	return []providers.TemplateField{{
		Key:      "role_arn",
		Allowed:  isTemplateValueChar,
		Charset:  "A-Z, a-z, 0-9 and _ + = . @ -",
		MaxValue: 64,
		After:    ":role/",
	}}
}

func isTemplateValueChar(c byte) bool { return c != ',' && isRoleNameChar(c) }
