package mapping

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/oidc-bridge/oidc-bridge/providers"
)

// AWS's limits on what an aws target sends, each with its source. The
// session name and source identity are built by the provider from claims
// within AWS's limits (providers/aws naming.go), not written by the admin.
const (
	// maxSessionPolicy: "The plaintext that you use for both inline and
	// managed session policies can't exceed 2,048 characters" (characters,
	// of U+0020-U+00FF, tab, line feed and carriage return), AssumeRole's
	// and AssumeRoleWithWebIdentity's Policy,
	// https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html.
	maxSessionPolicy = 2048
	// maxTagKey and maxTagValue: Tag's Key 1-128 and Value 0-256
	// characters of [\p{L}\p{Z}\p{N}_.:/=+\-@],
	// https://docs.aws.amazon.com/STS/latest/APIReference/API_Tag.html.
	maxTagKey   = 128
	maxTagValue = 256
	// maxPackedEstimate bounds the static part of what AWS packs into the
	// session token: the minified session policy plus every static tag's
	// key and value, in characters. AWS compresses the policy and the tags
	// into a packed form whose limit it does not publish (PackedPolicySize,
	// PackedPolicyTooLarge: "Your request can fail for this limit even if
	// your plaintext meets the other requirements", API_AssumeRole.html;
	// https://repost.aws/knowledge-center/iam-role-aws-sts-error). The bridge
	// keeps the static part within the policy's own plaintext limit, so a
	// mapping may carry a full-size policy or static tags, not both; the
	// claim-derived tags come on top at each mint and can still exceed it
	// (the exchange then answers 502 provider_error PackedPolicyTooLarge).
	maxPackedEstimate = 2048
	// maxChainedDuration: "if you assume a role using role chaining and
	// provide a DurationSeconds parameter value greater than one hour, the
	// operation fails", API_AssumeRole.html.
	maxChainedDuration = 3600
)

// policyRune reports whether AWS accepts r in a policy:
// [\u0009\u000A\u000D\u0020-\u00FF].
func policyRune(r rune) bool {
	return r == '\t' || r == '\n' || r == '\r' || r >= 0x20 && r <= 0xff
}

// checkSessionPolicy requires an inline session policy AWS would parse: at
// most 2,048 characters of its character set, a JSON policy document with
// Version and Statement, each statement an object with an Effect and
// without a Principal (a session policy is an identity policy).
func checkSessionPolicy(p string) error {
	const field = "target.session_policy"
	if !utf8.ValidString(p) {
		return invalid(field, "must be valid UTF-8")
	}
	if n := utf8.RuneCountInString(p); n > maxSessionPolicy {
		return invalid(field, "must be at most %d characters (AWS's limit for an inline session policy), not %d", maxSessionPolicy, n)
	}
	for _, r := range p {
		if !policyRune(r) {
			return invalid(field, "may hold only the characters U+0020-U+00FF, tab, line feed and carriage return (AWS's policy character set), not %U", r)
		}
	}
	var doc map[string]json.RawMessage
	if json.Unmarshal([]byte(p), &doc) != nil || doc == nil {
		return invalid(field, "must be a JSON policy document (an object) in a string")
	}
	for k := range doc {
		if k != "Version" && k != "Id" && k != "Statement" {
			return invalid(field, "a policy document has Version, Statement and optionally Id, not %q", k)
		}
	}
	var version string
	if json.Unmarshal(doc["Version"], &version) != nil || version != "2012-10-17" && version != "2008-10-17" {
		return invalid(field, `must have "Version": "2012-10-17"`)
	}
	stmts := []json.RawMessage{doc["Statement"]}
	if b := bytes.TrimSpace(doc["Statement"]); len(b) > 0 && b[0] == '[' {
		if json.Unmarshal(b, &stmts) != nil {
			return invalid(field, "Statement must be a statement object or a list of them")
		}
	}
	for i, raw := range stmts {
		var st map[string]json.RawMessage
		if len(raw) == 0 || json.Unmarshal(raw, &st) != nil || st == nil {
			return invalid(field, "Statement must be a statement object or a list of them")
		}
		var effect string
		if json.Unmarshal(st["Effect"], &effect) != nil || effect != "Allow" && effect != "Deny" {
			return invalid(field, `statement %d must have "Effect": "Allow" or "Deny"`, i)
		}
		if _, ok := st["Principal"]; ok {
			return invalid(field, "statement %d has a Principal: a session policy applies to the session and names none", i)
		}
		if _, ok := st["NotPrincipal"]; ok {
			return invalid(field, "statement %d has a NotPrincipal: a session policy applies to the session and names none", i)
		}
	}
	return nil
}

// tagText reports whether s is at most max characters of the tag set
// (providers.AWSTagRune).
func tagText(s string, max int) bool {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > max {
		return false
	}
	for _, r := range s {
		if !providers.AWSTagRune(r) {
			return false
		}
	}
	return true
}

const tagCharset = "letters, digits, spaces and _ . : / = + - @"

// checkAWSSessionTags checks session_tags and transitive_tag_keys against
// AWS's rules for the whole set the session will carry: the bridge's own
// tags (providers.AWSSessionTagKeys, counted and reserved even when a
// claim is absent) and the static ones. raw is the target as written, for
// repeated keys, which decoding would silently merge.
func checkAWSSessionTags(t *AWSTarget, raw json.RawMessage) error {
	const field = "target.session_tags"
	bridge := providers.AWSSessionTagKeys()
	if dup, ok := repeatedTagKey(raw); ok {
		return invalid(field+"."+dup, "appears more than once")
	}
	if n := len(t.SessionTags); n > providers.MaxAWSSessionTags-len(bridge) {
		return invalid(field, "at most %d tags: AWS allows %d session tags and the bridge sends %d of its own (%s)",
			providers.MaxAWSSessionTags-len(bridge), providers.MaxAWSSessionTags, len(bridge), strings.Join(bridge, ", "))
	}
	keys := make([]string, 0, len(t.SessionTags))
	for k := range t.SessionTags {
		keys = append(keys, k)
	}
	slices.Sort(keys) // the first error must not depend on map order
	for i, k := range keys {
		f := field + "." + k
		switch {
		case k == "" || !tagText(k, maxTagKey):
			return invalid(field, "tag keys must be 1-%d characters of %s, got %q", maxTagKey, tagCharset, k)
		case strings.HasPrefix(strings.ToLower(k), "aws:"):
			return invalid(f, "keys starting with aws: are reserved for AWS")
		case providers.AWSBridgeTagKey(k):
			return invalid(f, "is a tag the bridge sets from the token's claims (%s); choose another key", strings.Join(bridge, ", "))
		case !tagText(t.SessionTags[k], maxTagValue):
			return invalid(f, "tag values must be at most %d characters of %s", maxTagValue, tagCharset)
		}
		for _, prev := range keys[:i] {
			if strings.EqualFold(prev, k) {
				return invalid(f, "differs from %q only in case: AWS compares tag keys without case", prev)
			}
		}
	}
	for i, k := range t.TransitiveTagKeys {
		f := fmt.Sprintf("target.transitive_tag_keys[%d]", i)
		carried := providers.AWSBridgeTagKey(k) || slices.ContainsFunc(keys, func(s string) bool { return strings.EqualFold(s, k) })
		switch {
		case !carried:
			return invalid(f, "must be a key the session carries: one of the bridge's tags (%s) or a key of session_tags", strings.Join(bridge, ", "))
		case slices.ContainsFunc(t.TransitiveTagKeys[:i], func(s string) bool { return strings.EqualFold(s, k) }):
			return invalid(f, "appears more than once (AWS compares tag keys without case)")
		}
	}
	return nil
}

// repeatedTagKey returns a key that session_tags of the target object raw
// holds more than once.
func repeatedTagKey(raw json.RawMessage) (string, bool) {
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil || len(obj["session_tags"]) == 0 {
		return "", false
	}
	dec := json.NewDecoder(bytes.NewReader(obj["session_tags"]))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return "", false
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		k, _ := tok.(string)
		if seen[k] {
			return k, true
		}
		seen[k] = true
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return "", false
		}
	}
	return "", false
}

// checkPackedSize applies the bridge's packed-size rule (maxPackedEstimate)
// to the target's static part: the policy minified, plus each static tag's
// key and value, in characters.
func checkPackedSize(t *AWSTarget) error {
	n := packedEstimate(t)
	if n <= maxPackedEstimate || len(t.SessionTags) == 0 {
		return nil // a policy alone is held to its own limit
	}
	return invalid("target.session_tags", "the session policy (minified) and the static session tags come to %d characters, "+
		"over the %d the bridge allows: AWS packs the policy and the tags into one size-limited form and would refuse "+
		"the session (PackedPolicyTooLarge); shorten the policy or the tags", n, maxPackedEstimate)
}

// packedEstimate is the size in characters of what an aws target adds to
// AWS's packed policy form by itself: its session policy minified
// (json.Compact) plus the keys and values of its static session tags.
func packedEstimate(t *AWSTarget) int {
	n := 0
	if t.SessionPolicy != "" {
		var b bytes.Buffer
		if json.Compact(&b, []byte(t.SessionPolicy)) == nil {
			n = utf8.RuneCount(b.Bytes())
		} else {
			n = utf8.RuneCountInString(t.SessionPolicy)
		}
	}
	for k, v := range t.SessionTags {
		n += utf8.RuneCountInString(k) + utf8.RuneCountInString(v)
	}
	return n
}

// checkAWSChainedDuration refuses, when the bridge's AssumeRole is role
// chaining (opts.AWSRoleChaining), an assume_role mapping whose
// max_duration_seconds is over AWS's one hour for chained sessions.
// web_identity is not chaining: AssumeRoleWithWebIdentity is anonymous.
func checkAWSChainedDuration(m *Mapping, opts ValidateOptions) error {
	if m.Provider != ProviderAWS || !opts.AWSRoleChaining || m.MaxDurationSeconds <= maxChainedDuration {
		return nil
	}
	var t AWSTarget
	if json.Unmarshal(m.Target, &t) != nil || t.Mode == AWSModeWebIdentity {
		return nil
	}
	return invalid("max_duration_seconds", "must be at most %d for an aws mapping in mode assume_role: the bridge's own AWS "+
		"credentials are a role session (BRIDGE_AWS_ROLE_CHAINING=true), and AWS refuses a chained role session longer "+
		"than one hour. Use mode web_identity (up to 43200), or set BRIDGE_AWS_ROLE_CHAINING=false if the bridge runs "+
		"with an IAM user's keys", maxChainedDuration)
}
