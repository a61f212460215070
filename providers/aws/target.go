package aws

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/oidc-bridge/oidc-bridge/providers"
)

// Name is the provider's name in mappings.
const Name = "aws"

// The target's modes. assume_role (the default) calls sts:AssumeRole with
// the bridge's own AWS credentials; web_identity calls
// sts:AssumeRoleWithWebIdentity with a bridge-signed JWT, so the bridge
// holds no AWS key.
const (
	modeAssumeRole  = "assume_role"
	modeWebIdentity = "web_identity"
)

// target is an aws mapping's target. decodeTarget is the only way one is
// read, at write time (Spec.CheckTarget) as at mint time.
type target struct {
	RoleARN       string
	Region        string
	SessionPolicy string
	// ExternalID applies to assume_role only.
	ExternalID string
	// Mode is modeAssumeRole or modeWebIdentity; decodeTarget turns an
	// empty mode into modeAssumeRole.
	Mode string
	// SessionTags are static session tags (key to value) the admin adds to
	// the ones the bridge derives from the claims (sessionTagKeys, which
	// they may not name). assume_role sends them as AssumeRole's Tags;
	// web_identity in the signed token's https://aws.amazon.com/tags claim.
	SessionTags map[string]string
	// TransitiveTagKeys are the session tag keys (the bridge's or
	// SessionTags') that the session passes on in role chaining.
	TransitiveTagKeys []string
	// Audience is the aud of web_identity tokens: a client id of the
	// bridge's IAM OIDC provider in the role's account. Empty means the
	// partition's convention (webIdentityAudience).
	Audience string
}

// AWS's limits on what an aws target sends, each with its source. The
// session name and source identity are built from claims within AWS's
// limits (naming.go), not written by the admin.
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
	// maxSessionTags is the most session tags one AssumeRole or
	// AssumeRoleWithWebIdentity may carry, the bridge's own included ("You
	// can pass up to 50 session tags", API_Tag.html).
	maxSessionTags = 50
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
)

// sessionTagKeys are the keys of the session tags the provider derives from
// every mint's claims (sessionTags), in the order it sends them. They are
// reserved even when a claim is absent and its tag is not sent: a mapping's
// static session_tags may not use them, in any case (AWS compares tag keys
// without case), so that a role's aws:PrincipalTag/environment always comes
// from the pipeline's token.
var sessionTagKeys = []string{
	"repository", "repository_id", "ref", "environment", "event_name",
	"actor", "run_id", "run_attempt", "issuance_id",
}

// bridgeTagKey reports whether key is, without case, one of sessionTagKeys.
func bridgeTagKey(key string) bool {
	return slices.ContainsFunc(sessionTagKeys, func(k string) bool { return strings.EqualFold(k, key) })
}

// tagRune reports whether r may appear in a session tag key or value the
// bridge sends: AWS's [\p{L}\p{Z}\p{N}_.:/=+\-@] (Tag's Key and Value
// patterns, API_Tag.html), of \p{Z} only the ASCII space: line and
// paragraph separators and odd spaces only serve to mislead readers.
func tagRune(r rune) bool {
	if r == utf8.RuneError {
		return false
	}
	return r == ' ' || strings.ContainsRune("_.:/=+-@", r) || unicode.IsLetter(r) || unicode.IsNumber(r)
}

// decodeTarget reads raw strictly (providers.DecodeTarget) and applies the
// target's rules; its errors are the admin API's (*providers.FieldError).
// The admin API ran it when the mapping was written; Mint runs it again, so
// that a target changed behind the API's back fails closed.
func decodeTarget(raw []byte) (target, error) {
	var t target
	if err := providers.DecodeTarget(Name, raw, []providers.Field{
		{Key: "role_arn", Dst: &t.RoleARN},
		{Key: "region", Dst: &t.Region},
		{Key: "session_policy", Dst: &t.SessionPolicy},
		{Key: "external_id", Dst: &t.ExternalID},
		{Key: "mode", Dst: &t.Mode},
		{Key: "session_tags", Dst: &t.SessionTags},
		{Key: "transitive_tag_keys", Dst: &t.TransitiveTagKeys},
		{Key: "audience", Dst: &t.Audience},
	}); err != nil {
		return t, err
	}
	if err := t.check(raw); err != nil {
		return t, err
	}
	if t.Mode == "" {
		t.Mode = modeAssumeRole
	}
	return t, nil
}

func invalid(field, format string, args ...any) error {
	return providers.Invalid(Name, field, format, args...)
}

var partitions = []string{"aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f", "aws-eusc"}

// regionPrefixes are the region name prefixes of each partition but aws,
// longest first: us-gov-west-1 is aws-us-gov, cn-north-1 aws-cn,
// us-isob-east-1 aws-iso-b. The SDK's endpoint rules use the same
// patterns (its partitions.json regionRegex).
var regionPrefixes = []struct{ prefix, partition string }{
	{"us-gov-", "aws-us-gov"},
	{"us-isob-", "aws-iso-b"},
	{"us-isof-", "aws-iso-f"},
	{"eu-isoe-", "aws-iso-e"},
	{"us-iso-", "aws-iso"},
	{"eusc-", "aws-eusc"},
	{"cn-", "aws-cn"},
}

// partitionExampleRegion names a region of each partition, for messages.
var partitionExampleRegion = map[string]string{
	"aws": "eu-west-1", "aws-cn": "cn-north-1", "aws-us-gov": "us-gov-west-1", "aws-iso": "us-iso-east-1",
	"aws-iso-b": "us-isob-east-1", "aws-iso-e": "eu-isoe-west-1", "aws-iso-f": "us-isof-south-1", "aws-eusc": "eusc-de-east-1",
}

// regionPartition is the partition of a valid region.
func regionPartition(region string) string {
	for _, p := range regionPrefixes {
		if strings.HasPrefix(region, p.prefix) {
			return p.partition
		}
	}
	return "aws"
}

// arnPartition is the partition of a valid ARN.
func arnPartition(arn string) string {
	parts := strings.SplitN(arn, ":", 3)
	if len(parts) < 2 {
		return ""
	}
	return parts[1]
}

// validAudience: an IAM OIDC provider's client id is 1-255 characters
// (CreateOpenIDConnectProvider's ClientIDList); the bridge takes printable
// ASCII without spaces.
func validAudience(s string) bool {
	return s != "" && len(s) <= 255 && providers.AllBytes(s, func(c byte) bool { return c > ' ' && c < 0x7f })
}

func (t *target) check(raw json.RawMessage) error {
	switch t.Mode {
	case "", modeAssumeRole:
	case modeWebIdentity:
		if t.ExternalID != "" {
			return invalid("target.external_id", "applies to mode assume_role only: AssumeRoleWithWebIdentity takes no external id")
		}
	default:
		return invalid("target.mode", "must be %s (the default) or %s", modeAssumeRole, modeWebIdentity)
	}
	if err := checkRoleARN(t.RoleARN); err != nil {
		return err
	}
	if !validRegion(t.Region) {
		return invalid("target.region", "must be an AWS region like eu-west-1")
	}
	// STS answers for a partition's roles only in that partition's regions
	// (sts.us-gov-west-1.amazonaws.com, sts.cn-north-1.amazonaws.com.cn):
	// a region of another partition would send the call where the role
	// does not exist.
	if p, rp := arnPartition(t.RoleARN), regionPartition(t.Region); p != rp {
		return invalid("target.region", "is a region of partition %s, but the role is in partition %s (%s); "+
			"choose one of its regions, like %s", rp, p, "arn:"+p+":", partitionExampleRegion[p])
	}
	if t.Audience != "" {
		if t.Mode != modeWebIdentity {
			return invalid("target.audience", "applies to mode web_identity only")
		}
		if !validAudience(t.Audience) {
			return invalid("target.audience", "must be 1-255 printable ASCII characters without spaces: a client id "+
				"(audience) of the bridge's IAM OIDC provider, like %s", webIdentityAudience("aws"))
		}
	}
	if t.SessionPolicy != "" {
		if err := checkSessionPolicy("target.session_policy", t.SessionPolicy); err != nil {
			return err
		}
	}
	// ExternalId: 2-1224 characters of [\w+=,.@:\/-]
	// (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html).
	if t.ExternalID != "" {
		if n := len(t.ExternalID); n < 2 || n > 1224 || !providers.AllBytes(t.ExternalID, isExternalIDChar) {
			return invalid("target.external_id", "must be 2-1224 characters of A-Z, a-z, 0-9, '_', '+', '=', ',', '.', '@', ':', '/' and '-'")
		}
	}
	if err := t.checkSessionTags(raw); err != nil {
		return err
	}
	return t.checkPackedSize()
}

// checkRoleARN accepts arn:<partition>:iam::<12 digits>:role/<path><name>,
// with AWS's rules for role names ([\w+=,.@-]{1,64}) and paths (printable
// ASCII segments, 512 bytes at most).
func checkRoleARN(arn string) error {
	const field = "target.role_arn"
	const want = "must be an IAM role ARN like arn:aws:iam::123456789012:role/deploy"
	if arn == "" {
		return invalid(field, "is required")
	}
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || !slices.Contains(partitions, parts[1]) ||
		parts[2] != "iam" || parts[3] != "" || len(parts[4]) != 12 || !providers.Digits(parts[4]) {
		return invalid(field, want)
	}
	resource, ok := strings.CutPrefix(parts[5], "role/")
	if !ok {
		return invalid(field, want)
	}
	path, name := "", resource
	i := strings.LastIndexByte(resource, '/')
	if i >= 0 {
		path, name = resource[:i], resource[i+1:]
	}
	if name == "" || len(name) > 64 || !providers.AllBytes(name, isRoleNameChar) {
		return invalid(field, "the role name must be 1-64 characters of A-Z, a-z, 0-9, '_', '+', '=', ',', '.', '@' and '-'")
	}
	if i >= 0 {
		if len(path) > 510 {
			return invalid(field, "the role path is too long")
		}
		for seg := range strings.SplitSeq(path, "/") {
			if seg == "" || !providers.AllBytes(seg, func(c byte) bool { return c > ' ' && c < 0x7f }) {
				return invalid(field, "the role path must be non-empty segments of printable ASCII")
			}
		}
	}
	return nil
}

// validRegion accepts <2-4 letters>(-<letters>)+-<1-2 digits>: eu-west-1,
// us-gov-west-1, cn-north-1, us-isob-east-1, eusc-de-east-1.
func validRegion(r string) bool {
	parts := strings.Split(r, "-")
	if len(parts) < 3 || len(parts[0]) < 2 || len(parts[0]) > 4 {
		return false
	}
	last := parts[len(parts)-1]
	if len(last) == 0 || len(last) > 2 || !providers.Digits(last) {
		return false
	}
	for _, p := range parts[:len(parts)-1] {
		if p == "" || !providers.AllBytes(p, func(c byte) bool { return 'a' <= c && c <= 'z' }) {
			return false
		}
	}
	return true
}

// policyRune reports whether AWS accepts r in a policy:
// [\u0009\u000A\u000D\u0020-\u00FF].
func policyRune(r rune) bool {
	return r == '\t' || r == '\n' || r == '\r' || r >= 0x20 && r <= 0xff
}

// checkSessionPolicy requires an inline session policy AWS would parse: at
// most 2,048 characters of its character set, a JSON policy document with
// Version and Statement, each statement an object with an Effect and
// without a Principal (a session policy is an identity policy).
func checkSessionPolicy(field, p string) error {
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
// (tagRune).
func tagText(s string, max int) bool {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > max {
		return false
	}
	for _, r := range s {
		if !tagRune(r) {
			return false
		}
	}
	return true
}

const tagCharset = "letters, digits, spaces and _ . : / = + - @"

// checkSessionTags checks session_tags and transitive_tag_keys against
// AWS's rules for the whole set the session will carry: the bridge's own
// tags (sessionTagKeys, counted and reserved even when a claim is absent)
// and the static ones. raw is the target as written, for repeated keys,
// which decoding would silently merge.
func (t *target) checkSessionTags(raw json.RawMessage) error {
	const field = "target.session_tags"
	bridge := sessionTagKeys
	if dup, ok := repeatedTagKey(raw); ok {
		return invalid(field+"."+dup, "appears more than once")
	}
	if n := len(t.SessionTags); n > maxSessionTags-len(bridge) {
		return invalid(field, "at most %d tags: AWS allows %d session tags and the bridge sends %d of its own (%s)",
			maxSessionTags-len(bridge), maxSessionTags, len(bridge), strings.Join(bridge, ", "))
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
		case bridgeTagKey(k):
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
		carried := bridgeTagKey(k) || slices.ContainsFunc(keys, func(s string) bool { return strings.EqualFold(s, k) })
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
func (t *target) checkPackedSize() error {
	n := t.packedEstimate()
	if n <= maxPackedEstimate || len(t.SessionTags) == 0 {
		return nil // a policy alone is held to its own limit
	}
	return invalid("target.session_tags", "the session policy (minified) and the static session tags come to %d characters, "+
		"over the %d the bridge allows: AWS packs the policy and the tags into one size-limited form and would refuse "+
		"the session (PackedPolicyTooLarge); shorten the policy or the tags", n, maxPackedEstimate)
}

// packedEstimate is the size in characters of what the target adds to
// AWS's packed policy form by itself: its session policy minified
// (json.Compact) plus the keys and values of its static session tags.
func (t *target) packedEstimate() int {
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

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isRoleNameChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || isDigit(c) || strings.IndexByte("_+=,.@-", c) >= 0
}

func isExternalIDChar(c byte) bool {
	return isRoleNameChar(c) || c == ':' || c == '/'
}
