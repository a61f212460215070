package providers

import "encoding/json"

// Downscope is what an exchange request asks for below what its mapping
// allows: never more. The bridge checks it against the mapping's (resolved)
// target with the provider's Downscoper before the ledger reserves the
// issuance, and passes it to Mint in Request.
type Downscope struct {
	// InlinePolicy is an AWS inline session policy (STS's Policy), which
	// AWS intersects with the role's policies.
	InlinePolicy string `json:"session_policy,omitempty"` // targetlint:allow the client's narrowing, checked by the aws provider
	// Scopes are a subset of a gcp mapping's scopes.
	Scopes []string `json:"scopes,omitempty"`
}

// IsZero reports whether d asks for nothing.
func (d Downscope) IsZero() bool { return d.InlinePolicy == "" && len(d.Scopes) == 0 }

// Downscoper is a Spec whose exchanges may be narrowed by the client.
type Downscoper interface {
	Spec
	// CheckDownscope refuses a d that target (a resolved target that
	// passed CheckTarget) cannot honour or that would ask for more than it
	// allows. Errors are *FieldError naming the request's field
	// (session_policy, scopes).
	CheckDownscope(target json.RawMessage, d Downscope) error
}

// CheckDownscope applies spec's rules to d; a spec that is no Downscoper
// takes none: a non-zero d is refused on its first field.
func CheckDownscope(spec Spec, target json.RawMessage, d Downscope) error {
	if ds, ok := spec.(Downscoper); ok {
		return ds.CheckDownscope(target, d)
	}
	switch {
	case d.InlinePolicy != "":
		return Invalid(spec.Name(), "session_policy", "applies to aws mappings only")
	case len(d.Scopes) > 0:
		return Invalid(spec.Name(), "scopes", "applies to gcp mappings only")
	}
	return nil
}
