package aws

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/sts/types"

	"github.com/oidc-bridge/oidc-bridge/identity"
	"github.com/oidc-bridge/oidc-bridge/providers"
)

// AWS's limits for the names and tags of a session.
const (
	maxSessionName = 64 // RoleSessionName and SourceIdentity: [\w+=,.@-]{2,64}
	maxRunPart     = 20 // run ids are numbers; anything longer is abnormal
	maxAttemptPart = 8
)

// kindPrefix says which CI system a session came from.
func kindPrefix(k identity.Kind) string {
	switch k {
	case identity.KindGitHub:
		return "gh"
	case identity.KindGitLab:
		return "gl"
	}
	return "ci"
}

// nameChars maps s into RoleSessionName's charset. Letters and digits
// stay; in repository mode "_", "-" and "." stay too and "/" becomes ".".
// Every other character (including + = , @, which AWS allows but which we
// keep for our own markers, and "-" in run mode, our separator) becomes "_".
// It reports whether a character was replaced by "_".
func nameChars(s string, repository bool) (string, bool) {
	var b strings.Builder
	lossy := false
	for _, r := range s {
		switch {
		case 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9':
			b.WriteRune(r)
		case repository && (r == '_' || r == '-' || r == '.'):
			b.WriteRune(r)
		case repository && r == '/':
			b.WriteByte('.')
		default:
			b.WriteByte('_')
			lossy = true
		}
	}
	return b.String(), lossy
}

// shortHash is n hex digits of s's SHA-256.
func shortHash(s string, n int) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:n]
}

// hashMark is the length of the "=" and six hex digits that end a name part
// whose rendering lost characters.
const hashMark = 7

// namePart renders orig for a session name in at most budget characters
// (budget > hashMark). When the rendering lost characters (replaced or cut),
// it ends in "=" and six hex digits of orig's hash, so that different inputs
// stay different.
func namePart(orig string, repository bool, budget int) string {
	s, lossy := nameChars(orig, repository)
	if !lossy && len(s) <= budget {
		return s
	}
	return s[:min(len(s), budget-hashMark)] + "=" + shortHash(orig, 6)
}

// sessionName is <kind>-<repository>-<run_id>[-<run_attempt>], built only
// from claims the CI platform sets (never ref, actor or environment), within
// AWS's [\w+=,.@-]{2,64}.
func sessionName(c *identity.Claims) string {
	prefix := kindPrefix(c.Kind) + "-"
	var tail string
	if c.RunID != "" {
		tail = "-" + namePart(c.RunID, false, maxRunPart)
		if c.RunAttempt != "" {
			tail += "-" + namePart(c.RunAttempt, false, maxAttemptPart)
		}
	}
	repo := c.Repository
	if repo == "" {
		repo = c.RepositoryID
	}
	if repo == "" {
		repo = "unknown"
	}
	return prefix + namePart(repo, true, maxSessionName-len(prefix)-len(tail)) + tail
}

// sourceIdentity is <kind>-<repository_id>: stable across a repository's
// renames and runs. Without an id it falls back to the repository's name,
// and without either it is empty (not sent).
func sourceIdentity(c *identity.Claims) string {
	prefix := kindPrefix(c.Kind) + "-"
	switch {
	case c.RepositoryID != "":
		return prefix + namePart(c.RepositoryID, true, maxSessionName-len(prefix))
	case c.Repository != "":
		return prefix + namePart(c.Repository, true, maxSessionName-len(prefix))
	}
	return ""
}

// tagValue renders s as a session tag value: characters AWS refuses become
// "_" (never dropped, so "refs/heads/ma,in" cannot become "refs/heads/main"),
// and a value over 256 characters is cut to 247 and ends in "+" and eight
// hex digits of its hash.
func tagValue(s string) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if !tagRune(r) {
			r = '_'
		}
		b.WriteRune(r)
		n++
	}
	out := b.String()
	if n <= maxTagValue {
		return out
	}
	const keep = maxTagValue - 9 // "+" + 8 hex digits
	i := 0
	for pos := range out {
		if i == keep {
			out = out[:pos]
			break
		}
		i++
	}
	return out + "+" + shortHash(s, 8)
}

// sessionTags are the claims a role's policies may condition on
// (aws:PrincipalTag/<key>), in a fixed order (sessionTagKeys),
// without empty values, followed by the target's static tags in key order.
func sessionTags(req providers.Request, t target) []types.Tag {
	c := req.Claims
	pairs := [...][2]string{
		{"repository", c.Repository},
		{"repository_id", c.RepositoryID},
		{"ref", c.Ref},
		{"environment", c.Environment},
		{"event_name", c.EventName},
		{"actor", c.Actor},
		{"run_id", c.RunID},
		{"run_attempt", c.RunAttempt},
		{"issuance_id", req.IssuanceID},
	}
	tags := make([]types.Tag, 0, len(pairs))
	for _, kv := range pairs {
		if kv[1] == "" {
			continue
		}
		k, v := kv[0], tagValue(kv[1])
		tags = append(tags, types.Tag{Key: &k, Value: &v})
	}
	for _, k := range slices.Sorted(maps.Keys(t.SessionTags)) {
		v := t.SessionTags[k]
		tags = append(tags, types.Tag{Key: &k, Value: &v})
	}
	return tags
}

// transitiveKeys are the target's transitive tag keys among tags, spelt as
// tags spell them; a claim-derived key whose claim was absent (its tag not
// sent) is left out, since STS refuses a transitive key that is not a tag.
func transitiveKeys(tags []types.Tag, t target) []string {
	var out []string
	for _, k := range t.TransitiveTagKeys {
		for _, tag := range tags {
			if strings.EqualFold(*tag.Key, k) {
				out = append(out, *tag.Key)
				break
			}
		}
	}
	return out
}
