package aws

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"

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
	// SessionTags are the mapping's static session tags, added to the
	// claim-derived ones; TransitiveTagKeys the keys (of either) that the
	// session passes on in role chaining.
	SessionTags       map[string]string
	TransitiveTagKeys []string
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
		"role_arn":            &t.RoleARN,
		"region":              &t.Region,
		"session_policy":      &t.SessionPolicy,
		"external_id":         &t.ExternalID,
		"mode":                &t.Mode,
		"session_tags":        &t.SessionTags,
		"transitive_tag_keys": &t.TransitiveTagKeys,
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
	return t, checkTags(t)
}

// checkTags re-checks what the admin API's rules for session_tags and
// transitive_tag_keys (mapping's checkAWSSessionTags) guard that STS would
// not: a static tag may not stand in for a claim-derived one (it could
// satisfy aws:PrincipalTag/environment for a token without an
// environment), and a transitive key must be a tag the bridge may send.
// AWS checks the rest (lengths, characters, count) itself.
func checkTags(t target) error {
	if len(t.SessionTags) > providers.MaxAWSSessionTags-len(providers.AWSSessionTagKeys()) {
		return errors.New("aws: target has too many session_tags")
	}
	for k := range t.SessionTags {
		if providers.AWSBridgeTagKey(k) || strings.HasPrefix(strings.ToLower(k), "aws:") {
			return errors.New("aws: target's session_tags name a reserved key")
		}
	}
	for _, k := range t.TransitiveTagKeys {
		if _, static := staticKey(t.SessionTags, k); !static && !providers.AWSBridgeTagKey(k) {
			return errors.New("aws: target's transitive_tag_keys name a key the session does not carry")
		}
	}
	return nil
}

// staticKey returns the key of tags equal to k without case.
func staticKey(tags map[string]string, k string) (string, bool) {
	for key := range tags {
		if strings.EqualFold(key, k) {
			return key, true
		}
	}
	return "", false
}
