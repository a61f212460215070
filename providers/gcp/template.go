package gcp

import "github.com/oidc-bridge/oidc-bridge/providers"

var _ providers.Templater = Spec{}

// TemplateFields: service_account may hold variables before "@" (the
// account id, never the project or domain), each value of the account id's
// characters, a-z, 0-9 and '-': an '@' or '.' cannot come in, so a value
// never moves the account to another project. The resolved email must still
// pass validServiceAccount (an account id of 6-30 characters starting with
// a letter).
func (Spec) TemplateFields() []providers.TemplateField {
	return []providers.TemplateField{{
		Key:      "service_account",
		Allowed:  func(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' },
		Charset:  "a-z, 0-9 and -",
		MaxValue: 30,
		Before:   "@",
	}}
}
