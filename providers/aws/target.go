package aws

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
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
	fields := map[string]*string{
		"role_arn":       &t.RoleARN,
		"region":         &t.Region,
		"session_policy": &t.SessionPolicy,
		"external_id":    &t.ExternalID,
		"mode":           &t.Mode,
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return t, errors.New("aws: target is not a JSON object")
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return t, errors.New("aws: target is not valid JSON")
		}
		key, _ := tok.(string)
		dst, known := fields[key]
		if !known {
			return t, fmt.Errorf("aws: target has an unknown field %q", truncate(key, 32))
		}
		if seen[key] {
			return t, fmt.Errorf("aws: target has %s twice", key)
		}
		seen[key] = true
		tok, err = dec.Token()
		s, isString := tok.(string)
		if err != nil || !isString {
			return t, fmt.Errorf("aws: target's %s is not a string", key)
		}
		*dst = s
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return t, errors.New("aws: target is not valid JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return t, errors.New("aws: target has trailing data")
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

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
