package gcp

import (
	"encoding/json"
	"slices"

	"github.com/oidc-bridge/oidc-bridge/providers"
)

var _ providers.Downscoper = Spec{}

// CheckDownscope admits scopes that are a subset of the mapping's (its
// DefaultScope when it names none), each once: generateAccessToken then
// issues a token of those scopes only. gcp takes no session policy.
func (Spec) CheckDownscope(raw json.RawMessage, d providers.Downscope) error {
	if d.InlinePolicy != "" {
		return invalid("session_policy", "applies to aws mappings only; narrow a gcp token with scopes")
	}
	if len(d.Scopes) == 0 {
		return nil
	}
	t, err := decodeTarget(raw)
	if err != nil {
		return err
	}
	// The messages name the scope, not its position: the same request
	// arrives as a JSON array (scopes) or space-delimited (RFC 8693's
	// scope).
	for i, s := range d.Scopes {
		switch {
		case !slices.Contains(t.Scopes, s):
			return invalid("scopes", "scope %q is not one of the mapping's scopes: a request may ask for fewer scopes, never others", s)
		case slices.Contains(d.Scopes[:i], s):
			return invalid("scopes", "scope %q is asked for more than once", s)
		}
	}
	return nil
}

// scopes are the scopes a mint asks for: the client's subset, else the
// mapping's.
func scopes(t target, req providers.Request) []string {
	if len(req.Downscope.Scopes) > 0 {
		return req.Downscope.Scopes
	}
	return t.Scopes
}
