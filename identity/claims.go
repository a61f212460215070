package identity

import (
	"time"
)

// Kind selects how an issuer's claims are read into Claims.
type Kind string

// The issuer kinds. GitHub Enterprise Server and self-managed GitLab are the
// same kinds at other URLs.
const (
	KindGitHub  Kind = "github"
	KindGitLab  Kind = "gitlab"
	KindGeneric Kind = "generic"
)

// Valid reports whether k is one of the known kinds.
func (k Kind) Valid() bool {
	switch k {
	case KindGitHub, KindGitLab, KindGeneric:
		return true
	}
	return false
}

// Issuer is what verification needs to know about a registered issuer.
type Issuer struct {
	Name      string
	URL       string
	Kind      Kind
	Audiences []string
	Enabled   bool
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
	JTI        string

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
