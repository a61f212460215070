package gcp

import (
	"encoding/json"

	"github.com/oidc-bridge/oidc-bridge/providers"
)

// Spec is the gcp provider's rules for its mappings (providers.Spec).
type Spec struct{}

var _ providers.Spec = Spec{}

// Name is "gcp".
func (Spec) Name() string { return Name }

// DurationBounds is 60..43200, generateAccessToken's lifetime range; above
// MaxLifetime only with target.allow_lifetime_extension (CheckMapping).
func (Spec) DurationBounds() (lo, hi int) {
	return int(minDuration.Seconds()), MaxExtendedLifetime
}

// CheckTarget decodes a gcp target as Mint does and applies its rules.
func (Spec) CheckTarget(raw json.RawMessage) error {
	_, err := decodeTarget(raw)
	return err
}

// CheckMapping: max_duration_seconds above MaxLifetime needs
// allow_lifetime_extension, and the subject of a workload_identity
// assertion must fit google.subject.
func (Spec) CheckMapping(m providers.Mapping) error {
	t, err := decodeTarget(m.Target)
	if err != nil {
		return err
	}
	if t.TokenFormat == formatIDToken && m.MaxDurationSeconds > IDTokenLifetime {
		return invalid("max_duration_seconds", "must be at most %d for a gcp target with token_format %s: Google's "+
			"generateIdToken issues ID tokens that live one hour, and takes no lifetime", IDTokenLifetime, formatIDToken)
	}
	if m.MaxDurationSeconds > MaxLifetime && !t.AllowLifetimeExtension {
		return invalid("max_duration_seconds", "must be at most %d for a gcp target: Google's generateAccessToken grants "+
			"longer tokens only to service accounts that an organisation policy enforcing %s lists; "+
			"if it lists this one, set target.allow_lifetime_extension to true (up to %d)",
			MaxLifetime, LifetimeConstraint, MaxExtendedLifetime)
	}
	if t.Mode == modeWorkloadIdentity {
		return checkSubject(m.Name)
	}
	return nil
}

// checkSubject refuses a mapping name whose assertion subject would not
// fit google.subject. Mapping names (at most 64 characters) keep it at 88
// bytes today; the check keeps that true if the prefix or the name rule
// ever change.
func checkSubject(name string) error {
	if n := len(Subject(name)); n > maxSubject {
		return invalid("name", "makes the assertion's subject %d bytes long; Google's google.subject holds at most %d", n, maxSubject)
	}
	return nil
}

// IssuesIDToken reports whether the gcp target raw mints ID tokens
// (token_format id_token) rather than access tokens; false for a target
// that does not decode.
func IssuesIDToken(raw json.RawMessage) bool {
	t, err := decodeTarget(raw)
	return err == nil && t.TokenFormat == formatIDToken
}
