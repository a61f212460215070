package identity

import (
	"net/url"
	"strings"
	"time"
)

// KindJenkins is the ID tokens of Jenkins' OpenID Connect Provider plugin
// (oidc-provider), which a build obtains by binding an "OpenID Connect id
// token" credential (withCredentials, the Credentials Binding plugin): a
// fresh token at each binding. The plugin is documented at
// https://plugins.jenkins.io/oidc-provider/ (its README). The issuer is the
// Jenkins root URL and /oidc for a credential at the root, or the folder's
// URL (<root>/job/<folder>/job/<subfolder>) and /oidc for a credential in a
// folder; an administrator may designate another issuer URI that serves the
// two discovery files, so the kind sets no path rule. The default claim
// templates of a build's token are sub, the job's URL (${JOB_URL}, such as
// https://jenkins.example.com/job/payments/job/deploy-web/), and
// build_number, an integer (${BUILD_NUMBER}); the plugin's global
// configuration can change them, and sends no jti.
// test/oidctest/claimsets/jenkins-build.json is a token's claim set.
const KindJenkins Kind = "jenkins"

type jenkins struct{}

func (jenkins) Kind() Kind { return KindJenkins }

// Defaults: an hour of age and lifetime, the plugin's default token
// lifetime (tokenLifetime, 3600 seconds): a build may hold the bound token
// through the withCredentials block. No jti: the replay guard keys each
// token on its SHA-256, and a token serves one exchange.
func (jenkins) Defaults() Defaults {
	return Defaults{TokenAge: time.Hour, TokenLifetime: time.Hour, ReplayScope: ReplayScopeToken}
}

// Conditions: workflow_ref is sub, the job's URL, which read checks is one
// (claims.sub cannot be matched); job names are case-sensitive, so it
// compares exactly. A multibranch job's URL names its branch
// (.../job/web/job/main/, a slash in the branch name encoded as %252F).
// The default tokens carry no ref, environment or event.
func (jenkins) Conditions() []Condition {
	return []Condition{
		{ConditionWorkflowRef, []string{"sub"}, Exact},
	}
}

func (jenkins) Breadth() Breadth {
	return Breadth{
		AnyOf: []string{ConditionWorkflowRef},
		Message: "a mapping of a jenkins issuer must constrain the job: " +
			"set workflow_ref (the job's URL, https://<jenkins>/job/<folder>/job/<job>/)",
		Detail: "the mapping does not constrain the job: it admits nothing",
	}
}

func (jenkins) Guards(*Claims) []Guard { return nil }

// Lint: every job of the instance (or of the folder, for a folder's
// issuer) gets tokens from the one issuer, and whoever may configure any
// job there obtains a mapping whose job path is a pattern: pin it.
func (jenkins) Lint() LintRules {
	return LintRules{
		TenantPin: []string{ConditionWorkflowRef},
		TenantPinMessage: "every job of the Jenkins instance (or folder) gets tokens from its issuer: without the job's URL pinned, " +
			"another job that matches the pattern (one created later, or in another folder) obtains this mapping; set workflow_ref to the job's URL, literally",
		RefProtectedCaveat: "Jenkins tokens name no ref: a multibranch job's URL names the branch, and whoever may push a branch builds it",
	}
}

func (jenkins) Issuer() IssuerRules {
	return IssuerRules{
		AudienceHint: "an \"OpenID Connect id token\" credential with audience <the bridge's audience>, bound with withCredentials"}
}

// read: sub must be a job's URL, http(s) with a path of /job/<name>
// segments (after any context path) and a trailing slash, as ${JOB_URL}
// is; the job's full name (folders and job, slash-separated, still
// URL-encoded) becomes the repository, its top folder the owner.
// build_number, when present, is a non-negative integer.
func (jenkins) read(r *claimReader, c *Claims) {
	if raw, ok := r.obj["build_number"]; ok && r.err == nil {
		n := strings.TrimSpace(string(raw))
		if n != "null" {
			if !isDigits(n) {
				r.err = fail(ReasonInvalidClaim, "build_number is not a non-negative integer")
				return
			}
			c.RunID = n
		}
	}
	if r.err != nil {
		return
	}
	name, ok := jenkinsJobName(c.Subject)
	if !ok {
		r.err = fail(ReasonInvalidClaim, "sub %s is not a Jenkins job's URL (https://<jenkins>/job/<name>/...)", quote(c.Subject))
		return
	}
	c.Repository = name
	c.RepositoryOwner, _, _ = strings.Cut(name, "/")
	c.WorkflowRef = c.Subject
}

// jenkinsJobName returns the full name of the job whose URL is u:
// https://host[/context]/job/a/job/b/ is a/b. The names stay as the URL
// writes them; a name that is empty, . or .., or holds a wildcard, a
// backslash or a space, is refused.
func jenkinsJobName(u string) (string, bool) {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" || p.User != nil ||
		p.RawQuery != "" || p.Fragment != "" || !strings.HasSuffix(p.EscapedPath(), "/") {
		return "", false
	}
	path := strings.TrimSuffix(p.EscapedPath(), "/")
	i := strings.Index(path, "/job/")
	if i < 0 {
		return "", false
	}
	segs := strings.Split(path[i+1:], "/")
	if len(segs)%2 != 0 {
		return "", false
	}
	names := make([]string, 0, len(segs)/2)
	for j := 0; j < len(segs); j += 2 {
		n := segs[j+1]
		if segs[j] != "job" || n == "" || n == "." || n == ".." || strings.ContainsAny(n, `*?\ `) {
			return "", false
		}
		names = append(names, n)
	}
	return strings.Join(names, "/"), true
}
