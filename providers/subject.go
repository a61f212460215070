package providers

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// SubjectPrefix begins the sub of every token the bridge signs.
const SubjectPrefix = "oidc-bridge:"

// Subject is the sub of the tokens the bridge signs for provider's mints of
// mapping: "oidc-bridge:<provider>:mapping:<mapping>", e.g.
// "oidc-bridge:aws:mapping:web-prod-deploy". Nothing of the pipeline's token
// is in it: a cloud's trust condition on the whole subject (StringEquals)
// names one provider and one mapping, and no CI-supplied value can produce
// or extend it. Mapping names are [a-z0-9._-], without ":", so one
// provider's subject is never another's, nor a prefix of another mapping's.
// The pipeline's own sub travels in a claim of its own (src_sub, ci_subject).
func Subject(provider, mapping string) string {
	return SubjectPrefix + provider + ":mapping:" + mapping
}

// CloudAudience reports whether aud is, or could be taken for, an audience
// that a cloud accepts in federation, or that the bridge's own assertions
// carry: AWS STS (sts.amazonaws.com and every host under amazonaws.com,
// amazonaws.com.cn, amazonaws.eu and the ISO partitions), Entra's
// api://AzureADTokenExchange and its sovereign variants, and every Google
// API host (//iam.googleapis.com/..., https://iam.googleapis.com/...,
// sts.googleapis.com). It compares without case, without surrounding
// spaces, without a scheme, port, path or trailing dot. A jwt target may not
// name such an audience: its tokens, signed with the bridge's key under the
// bridge's issuer, would otherwise be presentable where the bridge's cloud
// assertions are.
func CloudAudience(aud string) bool {
	a := strings.ToLower(strings.TrimFunc(aud, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }))
	if a == "" {
		return false
	}
	if strings.HasPrefix(a, "api://azureadtokenexchange") {
		return true
	}
	host := a
	if i := strings.Index(host, "://"); i >= 0 {
		host = host[i+3:]
	}
	host = strings.TrimLeft(host, "/")
	if i := strings.IndexAny(host, "/?#"); i >= 0 {
		host = host[:i]
	}
	if i := strings.LastIndex(host, "@"); i >= 0 {
		host = host[i+1:]
	}
	if i := strings.LastIndex(host, ":"); i >= 0 && !strings.Contains(host[i:], "]") {
		host = host[:i]
	}
	host = strings.TrimRight(host, ".")
	for _, d := range cloudDomains {
		if host == d || strings.HasSuffix(host, "."+d) {
			return true
		}
	}
	return false
}

// cloudDomains are the domains under which the clouds' token services and
// federation audiences live.
var cloudDomains = []string{
	"amazonaws.com", "amazonaws.com.cn", "amazonaws.eu", "c2s.ic.gov", "sc2s.sgov.gov",
	"googleapis.com",
	"azureadtokenexchange",
}

// CloudClaim reports whether a claim name is one a cloud reads from a
// federated token with a meaning of its own (AWS's session tags and source
// identity under https://aws.amazon.com/). A jwt target's static claims may
// not name one.
func CloudClaim(name string) bool {
	n := strings.ToLower(strings.TrimSpace(name))
	return strings.HasPrefix(n, "https://aws.amazon.com/") || strings.HasPrefix(n, "http://aws.amazon.com/")
}

// ValidMappingName is the admin API's rule for mapping names
// (mapping.ValidName): 1 to 64 of [a-z0-9._-], starting with a letter or
// digit. Providers check it again before they build a subject from a name,
// so that a name changed behind the API's back cannot carry a ":".
func ValidMappingName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// MaxAudienceLen is the most bytes an audience may hold: an issuer's, or
// the one of a jwt target.
const MaxAudienceLen = 512

// AudienceProblem says what is wrong with a non-empty audience as the admin
// API reads audiences, or "" when nothing is.
func AudienceProblem(a string) string {
	switch {
	case a == "":
		return "must not be empty"
	case len(a) > MaxAudienceLen:
		return fmt.Sprintf("must be at most %d bytes", MaxAudienceLen)
	case !utf8.ValidString(a):
		return "must be valid UTF-8"
	case strings.ContainsFunc(a, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		return "must not contain whitespace or control characters"
	}
	return ""
}
