package azure

import (
	"errors"
	"net/url"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/oidc-bridge/oidc-bridge/providers"
)

// target mirrors mapping.AzureTarget; it is decoded here, strictly, so that
// this package does not depend on mapping.
type target struct {
	TenantID string
	ClientID string
	Scope    string
}

var guidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// decodeTarget reads a flat JSON object of strings with exactly the keys of
// mapping.AzureTarget, each at most once and spelled exactly, then checks
// each value's shape as the admin API does: GUIDs for tenant_id and
// client_id, a <resource>/.default scope (empty means DefaultScope). It fails
// closed if the stored target was changed behind the admin API's back.
// Errors name the field, not its value.
func decodeTarget(raw []byte) (target, error) {
	var t target
	if err := providers.DecodeTarget("azure", raw, map[string]any{
		"tenant_id": &t.TenantID,
		"client_id": &t.ClientID,
		"scope":     &t.Scope,
	}); err != nil {
		return t, err
	}
	switch {
	case !guidPattern.MatchString(t.TenantID):
		return t, errors.New("azure: target's tenant_id is not a GUID")
	case !guidPattern.MatchString(t.ClientID):
		return t, errors.New("azure: target's client_id is not a GUID")
	case t.Scope != "" && !validScope(t.Scope):
		return t, errors.New("azure: target's scope is not a <resource>/.default scope")
	}
	return t, nil
}

// validScope accepts the client credentials scope form <resource URI>/.default
// with an https:// or api:// resource, as the admin API does.
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

// mappingNamePattern is the admin API's rule for mapping names; the name
// becomes the assertion's subject, so anything else is refused.
var mappingNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
