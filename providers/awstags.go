package providers

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// awsSessionTagKeys are the keys of the session tags the aws provider
// derives from every mint's claims (providers/aws sessionTags), in the
// order it sends them. They are reserved even when a claim is absent and
// its tag is not sent: a mapping's static session_tags may not use them, in
// any case (AWS compares tag keys without case), so that a role's
// aws:PrincipalTag/environment always comes from the pipeline's token.
var awsSessionTagKeys = []string{
	"repository", "repository_id", "ref", "environment", "event_name",
	"actor", "run_id", "run_attempt", "issuance_id",
}

// AWSSessionTagKeys returns the keys of the session tags the bridge derives
// from claims on every AWS mint.
func AWSSessionTagKeys() []string { return slices.Clone(awsSessionTagKeys) }

// AWSBridgeTagKey reports whether key is, without case, one of
// AWSSessionTagKeys.
func AWSBridgeTagKey(key string) bool {
	return slices.ContainsFunc(awsSessionTagKeys, func(k string) bool { return strings.EqualFold(k, key) })
}

// MaxAWSSessionTags is the most session tags one AssumeRole or
// AssumeRoleWithWebIdentity may carry, the bridge's own included. Source:
// https://docs.aws.amazon.com/STS/latest/APIReference/API_Tag.html ("You can
// pass up to 50 session tags").
const MaxAWSSessionTags = 50

// AWSTagRune reports whether r may appear in a session tag key or value the
// bridge sends: AWS's [\p{L}\p{Z}\p{N}_.:/=+\-@] (Tag's Key and Value
// patterns, https://docs.aws.amazon.com/STS/latest/APIReference/API_Tag.html),
// of \p{Z} only the ASCII space: line and paragraph separators and odd
// spaces only serve to mislead readers.
func AWSTagRune(r rune) bool {
	if r == utf8.RuneError {
		return false
	}
	return r == ' ' || strings.ContainsRune("_.:/=+-@", r) || unicode.IsLetter(r) || unicode.IsNumber(r)
}
