package aws

import (
	"encoding/json"

	"github.com/oidc-bridge/oidc-bridge/providers"
)

var _ providers.Downscoper = Spec{}

// CheckDownscope admits a client's inline session_policy (AssumeRole's and
// AssumeRoleWithWebIdentity's Policy: AWS grants the intersection of the
// role's policies and it, so it can only narrow) when the mapping has no
// session policy of its own. STS takes one inline policy: sending the
// client's in place of the mapping's would widen the session to the role,
// and the bridge cannot intersect two policies itself, so a client policy
// on a mapping with one is refused. The policy obeys the mapping's limits
// (checkSessionPolicy) and, with the mapping's static session tags, the
// packed-size rule. aws takes no scopes.
func (Spec) CheckDownscope(raw json.RawMessage, d providers.Downscope) error {
	if len(d.Scopes) > 0 {
		return invalid("scopes", "applies to gcp mappings only; narrow an aws session with session_policy")
	}
	if d.InlinePolicy == "" {
		return nil
	}
	t, err := decodeTarget(raw)
	if err != nil {
		return err
	}
	if t.SessionPolicy != "" {
		return invalid("session_policy", "the mapping has a session policy of its own and STS takes only one inline policy: "+
			"the bridge will not replace it (that could widen the session); ask the admin to narrow the mapping's policy instead")
	}
	if err := checkSessionPolicy("session_policy", d.InlinePolicy); err != nil {
		return err
	}
	t.SessionPolicy = d.InlinePolicy
	if n := t.packedEstimate(); len(t.SessionTags) > 0 && n > maxPackedEstimate {
		return invalid("session_policy", "with the mapping's static session tags it comes to %d characters, over the %d the bridge allows "+
			"(AWS packs the policy and the tags into one size-limited form); send a shorter policy", n, maxPackedEstimate)
	}
	return nil
}

// sessionPolicy is the inline policy a mint sends: the mapping's, else the
// client's (CheckDownscope admitted at most one of them).
func sessionPolicy(t target, req providers.Request) string {
	if t.SessionPolicy != "" {
		return t.SessionPolicy
	}
	return req.Downscope.InlinePolicy
}
