package mapping

import (
	"encoding/json"
	"strconv"
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
	// ReplayScope is token (the default: a token is exchanged once in all)
	// or token_mapping (once per mapping, for issuers whose one token must
	// reach several clouds); see ReplayScopeToken.
	ReplayScope string `json:"replay_scope"`
	// MaxTokenAgeSeconds and MaxTokenLifetimeSeconds bound now-iat and
	// exp-iat of the issuer's tokens, 60 to 21600; nil takes the kind's
	// default (identity.KindLimits).
	MaxTokenAgeSeconds      *int `json:"max_token_age_seconds,omitempty"`
	MaxTokenLifetimeSeconds *int `json:"max_token_lifetime_seconds,omitempty"`
	// JWKS is a static JWK Set (public keys only) that verifies the
	// issuer's tokens in place of discovery; JWKSURL, instead, a URL the
	// keys are fetched from in place of the discovery document's jwks_uri.
	// At most one; the issuer URL stays the iss its tokens carry. Rotating
	// a static set is an update of the issuer.
	JWKS    json.RawMessage `json:"jwks,omitempty"`
	JWKSURL string          `json:"jwks_url,omitempty"`

	// Read-only: set by the store, ignored on input.
	CreatedAt time.Time `json:"created_at,omitzero"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	// Warnings are the lint findings about this issuer (LintIssuer);
	// read-only, ignored on input.
	Warnings []Warning `json:"warnings,omitempty"`
}

// Mapping says which tokens of an issuer may obtain which cloud target.
type Mapping struct {
	// ID is the store's key; the ledger records it so that quotas follow a
	// mapping through renames. It is not part of the API.
	ID         int64      `json:"-"`
	Name       string     `json:"name"`
	Issuer     string     `json:"issuer"`
	Enabled    bool       `json:"enabled"`
	Conditions Conditions `json:"conditions"`
	Provider   string     `json:"provider"`
	// Target is the provider's target object, kept as the admin wrote it
	// once it has been validated against the provider's schema.
	Target             json.RawMessage `json:"target"`
	MaxDurationSeconds int             `json:"max_duration_seconds"`
	Quota              *Quota          `json:"quota,omitempty"`
	// Mode is enforce (the default: the mapping issues) or audit: the
	// mapping never issues, but every exchange of its issuer evaluates it
	// and records what it would have decided (would_issue / would_deny), so
	// that admins can roll a new mapping out safely.
	Mode string `json:"mode"`

	// Read-only: set by the store, ignored on input.
	CreatedAt time.Time `json:"created_at,omitzero"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	// Warnings are the lint findings about this mapping (risky but valid
	// configurations); read-only, ignored on input.
	Warnings []Warning `json:"warnings,omitempty"`
}

// Mapping modes.
const (
	ModeEnforce = "enforce"
	ModeAudit   = "audit"
)

// Warning is a lint finding: a valid mapping that is risky.
type Warning struct {
	// Code is stable: no_immutable_id, unprotected_production,
	// risky_event, self_hosted_runner, wildcard_repository, ...
	Code string `json:"code"`
	// Field is the field the finding is about, e.g. conditions.ref.
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// Quota limits issuances of a mapping. A zero field means no limit.
type Quota struct {
	// PerHour counts issuances per mapping and repository in a sliding hour.
	PerHour int `json:"per_hour,omitempty"`
	// PerJob counts issuances per job: issuer, run id, run attempt and job id.
	PerJob int `json:"per_job,omitempty"`
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

// Values is a condition's value: one pattern or a list of patterns, any of
// which may match. Its JSON form, shared with the wire contract, is
// condvalue.Values (a string, boolean or number, or a list of one type,
// read back as written); a value that could not be one (Invalid) is refused
// by ValidateMapping with the field at fault, and matches nothing. A
// boolean or number value matches only a claim of the same JSON type (see
// Admits).
type Values condvalue.Values

// The JSON types a condition value may have.
const (
	TypeString  = condvalue.TypeString
	TypeBoolean = condvalue.TypeBoolean
	TypeNumber  = condvalue.TypeNumber
)

// One returns a single-pattern Values.
func One(p string) *Values { return &Values{Patterns: []string{p}} }

// Any returns a list Values.
func Any(p ...string) *Values { return &Values{Patterns: p, List: true} }

// OneBool returns a single-boolean Values, for a claims condition.
func OneBool(b bool) *Values {
	return &Values{Patterns: []string{strconv.FormatBool(b)}, Type: TypeBoolean}
}

// OneNumber returns a single-number Values, for a claims condition; n is the
// number's JSON text.
func OneNumber(n string) *Values { return &Values{Patterns: []string{n}, Type: TypeNumber} }

// AnyOf returns a list Values of type typ (TypeString, TypeBoolean or
// TypeNumber), each value given by its text as Values.Patterns holds it.
func AnyOf(typ string, p ...string) *Values { return &Values{Patterns: p, List: true, Type: typ} }

// typ returns Type, TypeString when empty.
func (v *Values) typ() string { return (*condvalue.Values)(v).JSONType() }

// UnmarshalJSON reads condvalue's JSON form.
func (v *Values) UnmarshalJSON(b []byte) error { return (*condvalue.Values)(v).UnmarshalJSON(b) }

// MarshalJSON writes the form the value was given in.
func (v Values) MarshalJSON() ([]byte, error) { return condvalue.Values(v).MarshalJSON() }
