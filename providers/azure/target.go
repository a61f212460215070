package azure

import (
	"encoding/json"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/oidc-bridge/oidc-bridge/providers"
)

// Name is the provider's name in mappings.
const Name = "azure"

// target is an azure mapping's target. decodeTarget is the only way one is
// read, at write time (Spec.CheckTarget) as at mint time.
type target struct {
	TenantID string
	ClientID string
	// Scope is empty for the cloud's Azure Resource Manager .default
	// scope (DefaultScope in the public cloud).
	Scope string
	// Cloud is empty for the deployment's configured authority host and
	// audience (Config), else one of clouds' keys, which fixes both.
	Cloud string
}

// The target's clouds: each fixes the authority host (azidentity's cloud
// configuration), the audience Entra recommends for federated identity
// credentials in that cloud, the default scope (the cloud's Azure Resource
// Manager) and the DNS suffixes of its services, by which a scope of
// another cloud is recognised. Sources: azcore/cloud;
// https://learn.microsoft.com/entra/workload-id/workload-identity-federation-create-trust
// ("api://AzureADTokenExchange" public, "api://AzureADTokenExchangeUSGov",
// "api://AzureADTokenExchangeChina").
const (
	CloudPublic       = "public"
	CloudUSGovernment = "us_government"
	CloudChina        = "china"
)

type cloudInfo struct {
	config   cloud.Configuration
	audience string
	suffixes []string
}

var clouds = map[string]cloudInfo{
	CloudPublic: {cloud.AzurePublic, DefaultAudience,
		[]string{".azure.com", ".windows.net", ".microsoft.com", ".azure.net"}},
	CloudUSGovernment: {cloud.AzureGovernment, "api://AzureADTokenExchangeUSGov",
		[]string{".usgovcloudapi.net", ".azure.us", ".microsoft.us"}},
	CloudChina: {cloud.AzureChina, "api://AzureADTokenExchangeChina",
		[]string{".chinacloudapi.cn", ".azure.cn"}},
}

// defaultScope is the .default scope of the cloud's Azure Resource Manager.
func (c cloudInfo) defaultScope() string {
	if c.audience == DefaultAudience {
		return DefaultScope
	}
	return strings.TrimRight(c.config.Services[cloud.ResourceManager].Audience, "/") + "/.default"
}

// scopeCloud is the cloud whose service domain the https scope s names, or
// "" when none of the known ones.
func scopeCloud(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" {
		return ""
	}
	host := "." + strings.ToLower(u.Hostname())
	for name, c := range clouds {
		for _, suf := range c.suffixes {
			if strings.HasSuffix(host, suf) {
				return name
			}
		}
	}
	return ""
}

// decodeTarget reads raw strictly (providers.DecodeTarget) and applies the
// target's rules: tenant and client ids are GUIDs (the bridge addresses the
// tenant by id, never by domain), and the scope is the client credentials
// grant's only form, <resource>/.default: Entra refuses any other scope in
// that grant with AADSTS1002012 ("Client credential flows must have a scope
// value with /.default suffixed to the resource identifier"),
// https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow.
// Its errors are the admin API's (*providers.FieldError).
func decodeTarget(raw []byte) (target, error) {
	var t target
	if err := providers.DecodeTarget(Name, raw, []providers.Field{
		{Key: "tenant_id", Dst: &t.TenantID},
		{Key: "client_id", Dst: &t.ClientID},
		{Key: "scope", Dst: &t.Scope},
		{Key: "cloud", Dst: &t.Cloud},
	}); err != nil {
		return t, err
	}
	switch {
	case !validGUID(t.TenantID):
		return t, invalid("target.tenant_id", "must be a GUID like 00000000-0000-0000-0000-000000000000")
	case !validGUID(t.ClientID):
		return t, invalid("target.client_id", "must be a GUID like 00000000-0000-0000-0000-000000000000")
	case t.Scope != "" && !validScope(t.Scope):
		return t, invalid("target.scope", "must be a resource's .default scope, like https://management.azure.com/.default or api://<app id>/.default")
	}
	if t.Cloud != "" {
		if _, ok := clouds[t.Cloud]; !ok {
			return t, invalid("target.cloud", "must be %s, %s or %s (absent: the bridge's configured authority host)",
				CloudPublic, CloudUSGovernment, CloudChina)
		}
		// A token of one cloud's Entra is for that cloud's resources: the
		// other clouds' service domains are refused here rather than by
		// Entra at each exchange.
		if c := scopeCloud(t.Scope); c != "" && c != t.Cloud {
			return t, invalid("target.scope", "names a resource of the %s cloud, but target.cloud is %s; use %s",
				c, t.Cloud, clouds[t.Cloud].defaultScope())
		}
	}
	return t, nil
}

func invalid(field, format string, args ...any) error {
	return providers.Invalid(Name, field, format, args...)
}

func validGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// validScope accepts the client-credentials scope form
// <resource URI>/.default, where the resource URI is https://host[/path] or
// api://<app id or name>; no query, fragment or user information.
func validScope(s string) bool {
	if len(s) > 2048 || !utf8.ValidString(s) || !strings.HasSuffix(s, "/.default") ||
		strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return false
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Opaque != "" || u.User != nil || u.RawQuery != "" || u.ForceQuery ||
		u.Fragment != "" || strings.Contains(s, "#") {
		return false
	}
	return u.Scheme == "https" || u.Scheme == "api"
}

// Spec is the azure provider's rules for its mappings (providers.Spec).
//
// The bridge's client assertion carries iss = the bridge's issuer URL, sub =
// Subject(mapping name), aud = api://AzureADTokenExchange (or the sovereign
// cloud's value), nbf/iat now and exp at most assertionLifetime later: a
// mapping decides only the subject, through its name, and the tenant,
// application and scope. max_duration_seconds never lengthens the
// assertion: Entra decides the access token's lifetime itself.
type Spec struct{}

var _ providers.Spec = Spec{}

// Name is "azure".
func (Spec) Name() string { return Name }

// DurationBounds is 60..86400: Entra ID decides an access token's lifetime
// itself (typically 60-90 minutes); the value only caps what a caller may
// ask for and bounds the client assertion.
func (Spec) DurationBounds() (lo, hi int) { return 60, 86400 }

// CheckTarget decodes an azure target as Mint does and applies its rules.
func (Spec) CheckTarget(raw json.RawMessage) error {
	_, err := decodeTarget(raw)
	return err
}

// CheckMapping refuses a mapping name whose assertion subject no federated
// identity credential could hold (maxFederationField). Mapping names (at
// most 64 characters) keep it at 90 characters today; the check keeps that
// true if the prefix or the name rule ever change.
func (Spec) CheckMapping(m providers.Mapping) error {
	if n := len(Subject(m.Name)); n > maxFederationField {
		return invalid("name", "makes the client assertion's subject %d characters long; an Entra federated identity credential's subject holds at most %d", n, maxFederationField)
	}
	return nil
}
