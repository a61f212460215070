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

// The providers and their target objects.
const (
	ProviderAWS   = "aws"
	ProviderGCP   = "gcp"
	ProviderAzure = "azure"
	ProviderJWT   = "jwt"
)

// AWS target modes. assume_role (the default) calls sts:AssumeRole with
// the bridge's own AWS credentials; web_identity calls
// sts:AssumeRoleWithWebIdentity with a bridge-signed JWT, so the bridge
// holds no AWS key.
const (
	AWSModeAssumeRole  = "assume_role"
	AWSModeWebIdentity = "web_identity"
)

// AWSTarget is the target of an aws mapping.
type AWSTarget struct {
	RoleARN       string `json:"role_arn"`
	Region        string `json:"region"`
	SessionPolicy string `json:"session_policy,omitempty"`
	ExternalID    string `json:"external_id,omitempty"`
	// Mode is assume_role (default when empty) or web_identity. An
	// external_id applies to assume_role only.
	Mode string `json:"mode,omitempty"`
	// SessionTags are static session tags (key to value) the admin adds to
	// the ones the bridge derives from the claims
	// (providers.AWSSessionTagKeys, which they may not name). assume_role
	// sends them as AssumeRole's Tags; web_identity in the signed token's
	// https://aws.amazon.com/tags claim (principal_tags).
	SessionTags map[string]string `json:"session_tags,omitempty"`
	// TransitiveTagKeys are the session tag keys (the bridge's or
	// SessionTags') that the session passes on when it assumes another role
	// (role chaining).
	TransitiveTagKeys []string `json:"transitive_tag_keys,omitempty"`
}

// GCP target modes. impersonate (the default) calls generateAccessToken
// with the bridge's Application Default Credentials; workload_identity
// first exchanges a bridge-signed JWT at Google's STS for a federated token
// (through WorkloadIdentityProvider), so the bridge holds no Google key.
const (
	GCPModeImpersonate      = "impersonate"
	GCPModeWorkloadIdentity = "workload_identity"
)

// GCPTarget is the target of a gcp mapping.
type GCPTarget struct {
	ServiceAccount string   `json:"service_account"`
	Scopes         []string `json:"scopes,omitempty"`
	Delegates      []string `json:"delegates,omitempty"`
	// Mode is impersonate (default when empty) or workload_identity.
	Mode string `json:"mode,omitempty"`
	// WorkloadIdentityProvider is the full resource name of the workload
	// identity pool provider that trusts the bridge, required for
	// workload_identity: //iam.googleapis.com/projects/NUMBER/locations/
	// global/workloadIdentityPools/POOL/providers/PROVIDER.
	WorkloadIdentityProvider string `json:"workload_identity_provider,omitempty"`
	// AllowLifetimeExtension says that the organisation policy
	// constraints/iam.allowServiceAccountCredentialLifetimeExtension lists
	// the service account, so that Google grants it tokens of up to 12
	// hours; without it max_duration_seconds is at most 3600 (GCPMaxLifetime).
	AllowLifetimeExtension bool `json:"allow_lifetime_extension,omitempty"`
}

// AzureTarget is the target of an azure mapping.
type AzureTarget struct {
	TenantID string `json:"tenant_id"`
	ClientID string `json:"client_id"`
	Scope    string `json:"scope,omitempty"`
}

// JWTTarget is the target of a jwt mapping: a token the bridge signs itself.
type JWTTarget struct {
	Audience string         `json:"audience"`
	Claims   map[string]any `json:"claims,omitempty"`
}
