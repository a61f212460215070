package aws

import (
	"encoding/json"
	"errors"
	"regexp"

	"github.com/oidc-bridge/oidc-bridge/providers"
)

// target mirrors mapping.AWSTarget; it is decoded here, strictly, so that this
// package does not depend on mapping.
type target struct {
	RoleARN       string
	Region        string
	SessionPolicy string
	ExternalID    string
	// Mode is modeAssumeRole or modeWebIdentity; decodeTarget turns an
	// empty mode into modeAssumeRole.
	Mode string
}

// The target's modes, as mapping.AWSModeAssumeRole and
// mapping.AWSModeWebIdentity.
const (
	modeAssumeRole  = "assume_role"
	modeWebIdentity = "web_identity"
)

var (
	roleARNPattern    = regexp.MustCompile(`^arn:aws(?:-[a-z]+)*:iam::[0-9]{12}:role/(?:[\x21-\x7E]*/)?[\w+=,.@-]{1,64}$`)
	regionPattern     = regexp.MustCompile(`^[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}$`)
	externalIDPattern = regexp.MustCompile(`^[\w+=,.@:/-]+$`)
)

// decodeTarget reads a flat JSON object of strings with exactly the keys of
// mapping.AWSTarget, each at most once and spelled exactly (encoding/json
// alone would accept "ROLE_ARN" and duplicates), then checks each value's
// shape; an empty session_policy or external_id means none, as omitempty
// writes it. The admin API validated the target already; this fails closed if
// the stored target was changed behind its back. Errors name the field, not
// its value.
func decodeTarget(raw []byte) (target, error) {
	var t target
	if err := providers.DecodeTarget("aws", raw, map[string]any{
		"role_arn":       &t.RoleARN,
		"region":         &t.Region,
		"session_policy": &t.SessionPolicy,
		"external_id":    &t.ExternalID,
		"mode":           &t.Mode,
	}); err != nil {
		return t, err
	}

	switch t.Mode {
	case "", modeAssumeRole:
		t.Mode = modeAssumeRole
	case modeWebIdentity:
		if t.ExternalID != "" {
			return t, errors.New("aws: target's external_id applies to mode assume_role only")
		}
	default:
		return t, errors.New("aws: target's mode is neither assume_role nor web_identity")
	}
	switch {
	case len(t.RoleARN) > 2048 || !roleARNPattern.MatchString(t.RoleARN):
		return t, errors.New("aws: target's role_arn is not an IAM role ARN")
	case !regionPattern.MatchString(t.Region):
		return t, errors.New("aws: target's region is not an AWS region")
	case t.SessionPolicy != "" && !json.Valid([]byte(t.SessionPolicy)):
		return t, errors.New("aws: target's session_policy is not JSON")
	case t.ExternalID != "" && (len(t.ExternalID) < 2 || len(t.ExternalID) > 1224 || !externalIDPattern.MatchString(t.ExternalID)):
		return t, errors.New("aws: target's external_id is not a valid external id")
	}
	return t, nil
}
