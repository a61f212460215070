package api

import (
	"encoding/json"
	"time"
)

// ExplainRequest is the body of POST /v1/admin/explain: exactly one of Token
// (verified as the exchange verifies it) and Claims (a bare claims object,
// with Issuer naming its registered issuer).
type ExplainRequest struct {
	// Token is a pipeline OIDC token, the bare JWT.
	Token string `json:"token,omitempty"`
	// Issuer is the registered issuer's name, with Claims only.
	Issuer string `json:"issuer,omitempty"`
	// Claims is a token's payload: read as the issuer's tokens are, but
	// neither signed nor checked for time or audience.
	Claims json.RawMessage `json:"claims,omitempty"`
	// Mapping explains only that mapping, and the decision is the
	// exchange's for a request naming it.
	Mapping string `json:"mapping,omitempty"`
	// Provider narrows the mappings as the exchange's provider does.
	Provider string `json:"provider,omitempty"`
}

// ExplainResponse is the 200 body of POST /v1/admin/explain.
type ExplainResponse struct {
	// Issuer is the registered issuer's name.
	Issuer string `json:"issuer"`
	// IssuerPolicy is what the issuer imposes on every exchange of its
	// tokens, whatever the mapping.
	IssuerPolicy ExplainIssuerPolicy `json:"issuer_policy"`
	Claims       ExplainClaims       `json:"claims"`
	// Verified is true when a token was given and verified; false for bare
	// claims.
	Verified bool `json:"verified"`
	// Mappings explains every mapping of the issuer (enabled or not, in
	// either mode; of the provider, if given), by name; or only the named
	// one.
	Mappings []Explanation   `json:"mappings"`
	Decision ExplainDecision `json:"decision"`
}

// ExplainIssuerPolicy is the issuer's replay scope and its effective token
// age and lifetime limits (its own, or its kind's defaults).
type ExplainIssuerPolicy struct {
	// Kind is the issuer's kind (github, gitlab, buildkite, ..., generic).
	Kind string `json:"kind"`
	// AudienceHint says how a job of that kind obtains a token with the
	// bridge's audience (the step to check when a token is refused for
	// its audience).
	AudienceHint string `json:"audience_hint,omitempty"`
	// ReplayScope is token (a token is exchanged once in all) or
	// token_mapping (once per mapping).
	ReplayScope             string `json:"replay_scope"`
	MaxTokenAgeSeconds      int    `json:"max_token_age_seconds"`
	MaxTokenLifetimeSeconds int    `json:"max_token_lifetime_seconds"`
	// KeySource says where the issuer's keys come from: discovery (the
	// default), jwks_url or jwks (a static set).
	KeySource string `json:"key_source"`
	// Keys lists a static set's keys: kid, kty and alg, nothing more.
	Keys []ExplainKey `json:"keys,omitempty"`
}

// ExplainKey is what the explainer shows of a key of a static set.
type ExplainKey struct {
	KID string `json:"kid"`
	KTY string `json:"kty"`
	Alg string `json:"alg,omitempty"`
}

// ExplainClaims is a readable summary of the normalised claims: the values
// the mappings' conditions are held against, and the job's identifiers.
type ExplainClaims struct {
	Issuer            string    `json:"iss"`
	Subject           string    `json:"sub,omitempty"`
	Repository        string    `json:"repository,omitempty"`
	RepositoryID      string    `json:"repository_id,omitempty"`
	RepositoryOwner   string    `json:"repository_owner,omitempty"`
	RepositoryOwnerID string    `json:"repository_owner_id,omitempty"`
	JobProjectPath    string    `json:"job_project_path,omitempty"`
	Ref               string    `json:"ref,omitempty"`
	RefType           string    `json:"ref_type,omitempty"`
	SHA               string    `json:"sha,omitempty"`
	Environment       string    `json:"environment,omitempty"`
	EventName         string    `json:"event_name,omitempty"`
	WorkflowRef       string    `json:"workflow_ref,omitempty"`
	Actor             string    `json:"actor,omitempty"`
	RunID             string    `json:"run_id,omitempty"`
	RunAttempt        string    `json:"run_attempt,omitempty"`
	JobID             string    `json:"job_id,omitempty"`
	JTI               string    `json:"jti,omitempty"`
	IssuedAt          time.Time `json:"issued_at,omitzero"`
	ExpiresAt         time.Time `json:"expires_at,omitzero"`
}

// Outcomes of an explanation's decision.
const (
	OutcomeWouldIssue = "would_issue"
	OutcomeNoMatch    = CodeNoMatchingMapping
	OutcomeAmbiguous  = CodeAmbiguousMapping
)

// ExplainDecision is what the exchange's selection would decide for this
// token and request: the mapping it would use, or the error it would answer.
// Only the selection is explained: the request's duration, quotas, replay of
// the token and the cloud are not consulted.
type ExplainDecision struct {
	// Outcome is would_issue, no_matching_mapping or ambiguous_mapping.
	Outcome string `json:"outcome"`
	// Mapping is the mapping that would be used, for would_issue.
	Mapping string `json:"mapping,omitempty"`
	// Candidates are the mappings that admit the token, for
	// ambiguous_mapping.
	Candidates []string `json:"candidates,omitempty"`
	Message    string   `json:"message"`
}

// Explanation says what a mapping decides about a token's claims and why: the
// policy explainer's answer for one mapping.
type Explanation struct {
	Mapping  string `json:"mapping"`
	Provider string `json:"provider"`
	Enabled  bool   `json:"enabled"`
	Mode     string `json:"mode"`
	// Admitted and Reason are the exchange's verdict on this mapping.
	Admitted bool   `json:"admitted"`
	Reason   string `json:"reason,omitempty"`
	// Detail says Reason to a person, with the value seen.
	Detail string `json:"detail,omitempty"`
	// Conditions holds one result per condition of the mapping, in the
	// order the exchange checks them: repository, repository_id, ref,
	// environment, event_name, workflow_ref, then claims.<name> by name.
	Conditions []ConditionResult `json:"conditions"`
	// ResolvedTarget is, for a templated target (${repository_name}), the
	// target the exchange would use for this token; TargetError says why
	// the token cannot fill the template (the exchange then refuses it,
	// no_matching_mapping). Both absent for a target without templates.
	ResolvedTarget json.RawMessage `json:"resolved_target,omitempty"`
	TargetError    string          `json:"target_error,omitempty"`
}

// ConditionResult is one condition of a mapping held against the claims.
type ConditionResult struct {
	// Condition is repository, repository_id, ref, environment,
	// event_name, workflow_ref or claims.<name>.
	Condition string   `json:"condition"`
	Patterns  []string `json:"patterns"`
	// Type is, for claims.*, the JSON type of the condition's values:
	// string, boolean or number (a claims condition matches only a claim of
	// its type). Empty for the first-class conditions, which hold strings.
	Type string `json:"type,omitempty"`
	// Value is the value seen: the normalised claim for the first-class
	// conditions (GitLab's ref as a full ref, ...), the claim's raw form
	// for claims.* (a string as it is, anything else as its JSON text).
	Value string `json:"value"`
	// ValueType is, for claims.*, the JSON type of the claim seen when the
	// token carries it: string, boolean, number, null, array or object.
	ValueType string `json:"value_type,omitempty"`
	Present   bool   `json:"present"`
	Matched   bool   `json:"matched"`
}
