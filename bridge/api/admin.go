package api

import (
	"encoding/json"
	"time"

	"github.com/oidc-bridge/oidc-bridge/internal/condvalue"
)

// Issuer is a registered OIDC issuer, as the admin API reads and writes it.
type Issuer struct {
	Name      string   `json:"name"`
	URL       string   `json:"url"`
	Audiences []string `json:"audiences"`
	Kind      string   `json:"kind"`
	Enabled   bool     `json:"enabled"`
	// ReplayScope is ReplayScopeToken (the default) or
	// ReplayScopeTokenMapping.
	ReplayScope string `json:"replay_scope"`
	// MaxTokenAgeSeconds and MaxTokenLifetimeSeconds bound now-iat and
	// exp-iat of the issuer's tokens, MinTokenLimitSeconds to
	// MaxTokenLimitSeconds; nil takes the kind's default.
	MaxTokenAgeSeconds      *int `json:"max_token_age_seconds,omitempty"`
	MaxTokenLifetimeSeconds *int `json:"max_token_lifetime_seconds,omitempty"`
	// JWKS is a static JWK Set ({"keys": [...]}, public signature keys
	// only, at most MaxJWKSBytes and MaxJWKSKeys) that verifies the
	// issuer's tokens without discovery; JWKSURL is instead a URL (https)
	// the keys are fetched from in place of discovery. At most one; the
	// issuer's url stays the iss its tokens carry. A new set is an update
	// of the issuer (PUT), which every replica picks up.
	JWKS    json.RawMessage `json:"jwks,omitempty"`
	JWKSURL string          `json:"jwks_url,omitempty"`

	// Read-only: set by the server, ignored on input.
	CreatedAt time.Time `json:"created_at,omitzero"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	// Warnings are the lint findings about this issuer; read-only.
	Warnings []Warning `json:"warnings,omitempty"`
}

// The bounds of an issuer's static jwks.
const (
	MaxJWKSBytes = 64 << 10
	MaxJWKSKeys  = 32
)

// Replay scopes of an issuer: a token is exchanged once in all (token, the
// default) or once per mapping (token_mapping).
const (
	ReplayScopeToken        = "token"
	ReplayScopeTokenMapping = "token_mapping"
)

// The bounds of an issuer's max_token_age_seconds and
// max_token_lifetime_seconds.
const (
	MinTokenLimitSeconds = 60
	MaxTokenLimitSeconds = 21600
)

// Mapping says which tokens of an issuer may obtain which cloud target.
type Mapping struct {
	Name       string     `json:"name"`
	Issuer     string     `json:"issuer"`
	Enabled    bool       `json:"enabled"`
	Conditions Conditions `json:"conditions"`
	// Provider names the target's provider: ProviderAWS, ProviderGCP,
	// ProviderAzure or ProviderJWT.
	Provider string `json:"provider"`
	// Target is the provider's target object (docs/clouds.md).
	Target             json.RawMessage `json:"target"`
	MaxDurationSeconds int             `json:"max_duration_seconds"`
	Quota              *Quota          `json:"quota,omitempty"`
	// Mode is ModeEnforce (the default) or ModeAudit.
	Mode string `json:"mode"`

	// Read-only: set by the server, ignored on input.
	CreatedAt time.Time `json:"created_at,omitzero"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	// Warnings are the lint findings about this mapping; read-only.
	Warnings []Warning `json:"warnings,omitempty"`
}

// The providers, as a mapping's provider names them.
const (
	ProviderAWS   = "aws"
	ProviderGCP   = "gcp"
	ProviderAzure = "azure"
	ProviderJWT   = "jwt"
)

// Mapping modes: enforce issues; audit never issues but records what it
// would have decided.
const (
	ModeEnforce = "enforce"
	ModeAudit   = "audit"
)

// DefaultMaxDurationSeconds is a mapping's max_duration_seconds when the
// request leaves it out.
const DefaultMaxDurationSeconds = 3600

// Warning is a lint finding: a valid object that is risky.
type Warning struct {
	// Code is stable: no_immutable_id, wildcard_repository, ...
	Code string `json:"code"`
	// Field is the field the finding is about, e.g. conditions.ref.
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// Quota limits issuances of a mapping. A zero field means no limit.
type Quota struct {
	PerHour int `json:"per_hour,omitempty"`
	PerJob  int `json:"per_job,omitempty"`
}

// Conditions must all hold for a mapping to admit a token. A nil field is
// absent and imposes nothing.
type Conditions struct {
	Repository   *Values           `json:"repository,omitempty"`
	RepositoryID *Values           `json:"repository_id,omitempty"`
	Ref          *Values           `json:"ref,omitempty"`
	Environment  *Values           `json:"environment,omitempty"`
	EventName    *Values           `json:"event_name,omitempty"`
	WorkflowRef  *Values           `json:"workflow_ref,omitempty"`
	Claims       map[string]Values `json:"claims,omitempty"`
}

// Values is a condition's value: a string, boolean or number, or a list of
// one type, read back in the form it was written in. Type says which JSON
// type (empty for strings); Patterns holds each value as text.
type Values = condvalue.Values

// The JSON types of a condition value.
const (
	TypeString  = condvalue.TypeString
	TypeBoolean = condvalue.TypeBoolean
	TypeNumber  = condvalue.TypeNumber
)

// IssuerList is the body of GET /v1/admin/issuers.
type IssuerList struct {
	Issuers []Issuer `json:"issuers"`
}

// MappingList is the body of GET /v1/admin/mappings.
type MappingList struct {
	Mappings []Mapping `json:"mappings"`
}

// Usage is the body of GET /v1/admin/mappings/{name}/usage: what a
// mapping's quotas have counted, per repository in the last hour
// (per_hour) and per job in the job window (per_job).
type Usage struct {
	Mapping       string `json:"mapping"`
	WindowSeconds int    `json:"window_seconds"`
	// JobWindowSeconds is the window of the Jobs counts.
	JobWindowSeconds int               `json:"job_window_seconds"`
	PerHour          int               `json:"per_hour,omitempty"`
	PerJob           int               `json:"per_job,omitempty"`
	Issued           int               `json:"issued"`
	Repositories     []RepositoryUsage `json:"repositories"`
	Jobs             []JobUsage        `json:"jobs"`
}

// RepositoryUsage counts one repository's issuances in the last hour.
type RepositoryUsage struct {
	Repository string `json:"repository"`
	Issued     int    `json:"issued"`
	// Remaining is what per_hour leaves; absent without a per_hour quota.
	Remaining *int `json:"remaining,omitempty"`
}

// JobUsage counts one job's issuances in the job window.
type JobUsage struct {
	Issuer     string `json:"issuer"`
	RunID      string `json:"run_id"`
	RunAttempt string `json:"run_attempt,omitempty"`
	JobID      string `json:"job_id,omitempty"`
	Issued     int    `json:"issued"`
	Remaining  *int   `json:"remaining,omitempty"`
}
