package aws

import (
	"encoding/json"

	"github.com/oidc-bridge/oidc-bridge/providers"
)

// Spec is the aws provider's rules for its mappings (providers.Spec). The
// zero value is the lenient reading, for callers that cannot know the
// deployment (Terraform's offline plan): the bridge's server, which does,
// may still refuse what it admits.
type Spec struct {
	// RoleChaining says that the bridge's own AWS credentials are a role
	// session (BRIDGE_AWS_ROLE_CHAINING, see Config.RoleChaining), so that
	// its AssumeRole is role chaining, which AWS refuses for DurationSeconds
	// over 3600: an assume_role mapping may then not ask for more.
	RoleChaining bool
}

var _ providers.Spec = Spec{}

// Name is "aws".
func (Spec) Name() string { return Name }

// DurationBounds is 900..43200: AssumeRole's and
// AssumeRoleWithWebIdentity's own limits (15 min to 12 h; the role's
// MaxSessionDuration may still cut it shorter).
func (Spec) DurationBounds() (lo, hi int) {
	return int(minDuration.Seconds()), int(maxDuration.Seconds())
}

// CheckTarget decodes an aws target as Mint does and applies its rules.
func (Spec) CheckTarget(raw json.RawMessage) error {
	_, err := decodeTarget(raw)
	return err
}

// CheckMapping refuses, when the bridge's AssumeRole is role chaining, an
// assume_role mapping whose max_duration_seconds is over AWS's one hour for
// chained sessions. web_identity is not chaining: AssumeRoleWithWebIdentity
// is anonymous.
func (s Spec) CheckMapping(m providers.Mapping) error {
	limit := int(maxChainedDuration.Seconds())
	if !s.RoleChaining || m.MaxDurationSeconds <= limit {
		return nil
	}
	t, err := decodeTarget(m.Target)
	if err != nil || t.Mode == modeWebIdentity {
		return err
	}
	return invalid("max_duration_seconds", "must be at most %d for an aws mapping in mode assume_role: the bridge's own AWS "+
		"credentials are a role session (BRIDGE_AWS_ROLE_CHAINING=true), and AWS refuses a chained role session longer "+
		"than one hour. Use mode web_identity (up to 43200), or set BRIDGE_AWS_ROLE_CHAINING=false if the bridge runs "+
		"with an IAM user's keys", limit)
}
