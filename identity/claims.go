package identity

import (
	"strconv"
	"time"
)

// Kind selects how an issuer's claims are read into Claims: one of the
// registered kinds (Platforms), each in its file kind_<kind>.go. GitHub
// Enterprise Server and self-managed GitLab are the same kinds at other URLs.
type Kind string

// Issuer is what verification needs to know about a registered issuer.
type Issuer struct {
	Name      string
	URL       string
	Kind      Kind
	Audiences []string
	Enabled   bool
	// MaxTokenAge and MaxTokenLifetime bound now-iat and exp-iat for this
	// issuer's tokens; zero takes the kind's default (KindLimits). Both are
	// also capped by the Verifier's Config.
	MaxTokenAge      time.Duration
	MaxTokenLifetime time.Duration
	// JWKS, when set, is the issuer's static JWK Set (its JSON, checked by
	// ParseStaticJWKS): its keys verify the tokens and nothing is fetched.
	// JWKSURL, when set instead, is where the keys are fetched, in place of
	// the discovery document's jwks_uri (no discovery is fetched). Neither
	// changes the iss a token must carry: URL. See jwks.go.
	JWKS    []byte
	JWKSURL string
}

// Bounds of an issuer's token age and lifetime limits.
const (
	MinTokenLimit = time.Minute
	MaxTokenLimit = 6 * time.Hour
)

// Limits returns the issuer's effective age and lifetime limits: its own,
// or its kind's defaults.
func (is Issuer) Limits() (age, lifetime time.Duration) {
	age, lifetime = KindLimits(is.Kind)
	if is.MaxTokenAge > 0 {
		age = is.MaxTokenAge
	}
	if is.MaxTokenLifetime > 0 {
		lifetime = is.MaxTokenLifetime
	}
	return age, lifetime
}

// Claims is a verified pipeline token, normalised across CI systems. Every
// string field is empty when the token does not carry the claim. Matching
// never uses Subject: its format varies between issuers and over time.
type Claims struct {
	Issuer     string // iss, byte-exact
	IssuerName string // the registered issuer's name
	Kind       Kind
	Subject    string // sub, recorded for audit only
	Audience   string // the single audience the token was issued for
	// JTI is the token's jti; empty when it has none (generic issuers only:
	// GitHub and GitLab always send one, and a token of theirs without is
	// refused).
	JTI string
	// TokenSHA256 is the hex SHA-256 of the whole token as presented: an
	// identifier that does not reveal the token, the replay key of a token
	// without a jti.
	TokenSHA256 string

	// Repository is GitHub's repository or GitLab's project_path.
	Repository string
	// RepositoryID is GitHub's repository_id or GitLab's project_id.
	RepositoryID string
	// RepositoryOwner is GitHub's repository_owner or GitLab's namespace_path.
	RepositoryOwner   string
	RepositoryOwnerID string
	// JobProjectPath is GitLab's job_project_path: the project the job runs
	// in. It differs from Repository in fork merge-request pipelines.
	JobProjectPath string
	// SourceProjectPath is GitLab's source_project_path where a token
	// carries it: a merge request's source project, which differs from
	// JobProjectPath when the merge request comes from a fork.
	SourceProjectPath string
	// Ref is always the full ref: refs/heads/x, refs/tags/v1, refs/pull/1/merge.
	Ref     string
	RefType string // branch or tag
	SHA     string
	// Environment is the deployment environment, when the job declares one.
	Environment string
	// EventName is GitHub's event_name or GitLab's pipeline_source.
	EventName string
	// WorkflowRef is GitHub's job_workflow_ref or GitLab's ci_config_ref_uri.
	WorkflowRef string
	Actor       string // GitHub's actor, GitLab's user_login
	RunID       string // GitHub's run_id, GitLab's pipeline_id
	RunAttempt  string // GitHub's run_attempt; empty for GitLab
	// JobID is GitLab's job_id or GitHub's check_run_id.
	JobID string

	IssuedAt  time.Time
	NotBefore time.Time
	Expiry    time.Time

	// Raw holds every claim of the token as decoded JSON (numbers as
	// json.Number), for the `claims` conditions of mappings. Those match a
	// claim only of their own JSON type, so Raw keeps each claim's type:
	// nothing turns a boolean or a number into a string.
	Raw map[string]any
}

// ReplayKey is the one key of the replay guard for this token: "jti:" and
// its jti, or, when it has none, "sha256:" and the hex SHA-256 of the token.
// The prefixes keep the two forms apart. It is empty when neither is known
// (claims that did not come from Verify).
func (c *Claims) ReplayKey() string {
	switch {
	case c.JTI != "":
		return "jti:" + c.JTI
	case c.TokenSHA256 != "":
		return "sha256:" + c.TokenSHA256
	}
	return ""
}

// ConditionValue returns the normalised claim that the first-class mapping
// condition name (a Condition constant) reads, "" for another name.
func (c *Claims) ConditionValue(name string) string {
	switch name {
	case ConditionRepository:
		return c.Repository
	case ConditionRepositoryID:
		return c.RepositoryID
	case ConditionRef:
		return c.Ref
	case ConditionEnvironment:
		return c.Environment
	case ConditionEventName:
		return c.EventName
	case ConditionWorkflowRef:
		return c.WorkflowRef
	}
	return ""
}

// QuoteValue quotes a claim value for a message: escaped, and cut to a
// length that keeps messages bounded.
func QuoteValue(s string) string {
	const max = 200
	if len(s) > max {
		return strconv.Quote(s[:max]) + "..."
	}
	return strconv.Quote(s)
}

// EqualFoldASCII reports whether a and b are equal with ASCII letters
// compared case-insensitively; nothing else folds (not the Kelvin sign).
func EqualFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
