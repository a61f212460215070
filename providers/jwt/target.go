package jwt

import (
	"encoding/json"
	"slices"

	"github.com/oidc-bridge/oidc-bridge/providers"
)

// Name is the provider's name in mappings.
const Name = "jwt"

// target is a jwt mapping's target: a token the bridge signs itself.
// decodeTarget is the only way one is read, at write time
// (Spec.CheckTarget) as at mint time.
type target struct {
	Audience string
	// Claims are static claims, numbers as written (json.Number).
	Claims map[string]any
}

// reserved are the claims the bridge sets; a target's static claims may not
// name them.
var reserved = []string{
	"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "act",
	"src_iss", "src_sub", "mapping",
	// Claims of the bridge's cloud assertions, so that no static value
	// makes a jwt token read like one.
	"ci_issuer", "ci_subject", "ci_kind", "service_account", "issuance_id",
	"repository", "repository_id", "repository_owner", "ref", "ref_type", "sha",
	"environment", "event_name", "workflow_ref", "actor", "run_id", "run_attempt", "job_id",
}

// ReservedClaims returns the names of the claims the bridge sets in every
// token (when it has a value for them) or in its cloud assertions, and
// which a target's static claims therefore may not name. Names a cloud
// reads from federated tokens (providers.CloudClaim) are refused too.
func ReservedClaims() []string { return slices.Clone(reserved) }

// decodeTarget reads {"audience": string, "claims"?: object|null} strictly
// (providers.DecodeTarget: keys spelt exactly, each once, also within
// claims; numbers kept as written) and applies the target's rules; its
// errors are the admin API's (*providers.FieldError).
func decodeTarget(raw []byte) (target, error) {
	var t target
	if err := providers.DecodeTarget(Name, raw, []providers.Field{
		{Key: "audience", Dst: &t.Audience},
		{Key: "claims", Dst: &t.Claims},
	}); err != nil {
		return t, err
	}
	if t.Audience == "" {
		return t, invalid("target.audience", "is required")
	}
	if why := providers.AudienceProblem(t.Audience); why != "" {
		return t, invalid("target.audience", "%s", why)
	}
	// The bridge signs its cloud assertions with the same key and issuer:
	// a jwt token for a cloud's audience could be presented there.
	if providers.CloudAudience(t.Audience) {
		return t, invalid("target.audience", "is a cloud's federation audience (AWS STS, Entra ID, Google); "+
			"the jwt provider signs tokens for the bridge's own internal services only")
	}
	names := make([]string, 0, len(t.Claims))
	for name := range t.Claims {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if name == "" {
			return t, invalid("target.claims", "claim names must not be empty")
		}
		if slices.Contains(reserved, name) || providers.CloudClaim(name) {
			return t, invalid("target.claims."+name, "is set by the bridge and cannot be overridden")
		}
	}
	return t, nil
}

func invalid(field, format string, args ...any) error {
	return providers.Invalid(Name, field, format, args...)
}

// Spec is the jwt provider's rules for its mappings (providers.Spec).
type Spec struct{}

var _ providers.Spec = Spec{}

// Name is "jwt".
func (Spec) Name() string { return Name }

// DurationBounds is 60..86400 (minDuration, maxDuration).
func (Spec) DurationBounds() (lo, hi int) {
	return int(minDuration.Seconds()), int(maxDuration.Seconds())
}

// CheckTarget decodes a jwt target as Mint does and applies its rules.
func (Spec) CheckTarget(raw json.RawMessage) error {
	_, err := decodeTarget(raw)
	return err
}

// CheckMapping has nothing to add: a jwt mapping's name and duration are
// the bridge's own business.
func (Spec) CheckMapping(providers.Mapping) error { return nil }
