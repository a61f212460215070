package mapping

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
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
// which may match. It remembers which form it was written in, so that what an
// admin wrote reads back the same.
//
// Every condition but claims holds strings only. A claims condition may
// instead hold booleans or numbers (a list holds one type): Type says which,
// and Patterns holds their JSON text ("true", "false", "7", "7.0"), which
// reads back as written (though PostgreSQL's jsonb may store a number in
// another form of the same value: 1e3 reads back as 1000). Such a value
// matches only a claim of the same JSON type (see Admits).
type Values struct {
	Patterns []string
	List     bool
	// Type is the JSON type of every value: TypeString (also when empty),
	// TypeBoolean or TypeNumber.
	Type string
	// Invalid, set by UnmarshalJSON, says why the JSON could not be a
	// condition value (null, an object, a nested list, a list mixing
	// types), as "[i]: why" or ": why"; ValidateMapping refuses such a
	// Values with the field at fault, and it matches nothing.
	Invalid string
}

// The JSON types a condition value may have.
const (
	TypeString  = "string"
	TypeBoolean = "boolean"
	TypeNumber  = "number"
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
func (v *Values) typ() string {
	if v.Type == "" {
		return TypeString
	}
	return v.Type
}

// UnmarshalJSON accepts a string, a boolean, a number, or an array of one of
// these. Anything else (null, an object, a nested array, an array mixing
// types) decodes into a Values that ValidateMapping refuses and that matches
// nothing, so that the refusal can name the field exactly.
func (v *Values) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '[' {
		var list []json.RawMessage
		if err := json.Unmarshal(b, &list); err != nil {
			return err
		}
		*v = Values{Patterns: make([]string, 0, len(list)), List: true}
		for i, e := range list {
			typ, text, bad := scalar(e)
			switch {
			case bad != "":
				*v = Values{List: true, Invalid: fmt.Sprintf("[%d]: %s", i, bad)}
				return nil
			case i == 0:
				v.Type = typ
			case typ != v.Type:
				*v = Values{List: true, Invalid: fmt.Sprintf(": a list must hold values of one type, not %ss and %ss", v.Type, typ)}
				return nil
			}
			v.Patterns = append(v.Patterns, text)
		}
		if v.Type == TypeString {
			v.Type = ""
		}
		return nil
	}
	typ, text, bad := scalar(b)
	if bad != "" {
		*v = Values{Invalid: ": " + bad}
		return nil
	}
	if typ == TypeString {
		typ = ""
	}
	*v = Values{Patterns: []string{text}, Type: typ}
	return nil
}

// scalar reads one JSON value: its type and its text (a string's decoded
// value, a boolean's or number's JSON text), or why it cannot be a value.
func scalar(b []byte) (typ, text, bad string) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return "", "", "is empty"
	}
	switch b[0] {
	case '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return "", "", "is not a valid JSON string"
		}
		return TypeString, s, ""
	case 't', 'f':
		var x bool
		if err := json.Unmarshal(b, &x); err != nil {
			return "", "", "is not valid JSON"
		}
		return TypeBoolean, strconv.FormatBool(x), ""
	case 'n':
		return "", "", "null is not a value: give a string, a boolean or a number"
	case '{':
		return "", "", "an object is not a value: give a string, a boolean or a number"
	case '[':
		return "", "", "a list may not hold lists: give strings, booleans or numbers"
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return "", "", "is not valid JSON"
	}
	return TypeNumber, string(b), ""
}

// MarshalJSON writes the form the value was given in: strings as strings,
// booleans and numbers as their JSON text.
func (v Values) MarshalJSON() ([]byte, error) {
	if v.Invalid != "" {
		return nil, fmt.Errorf("mapping: invalid condition value%s", v.Invalid)
	}
	raw := make([]json.RawMessage, len(v.Patterns))
	for i, p := range v.Patterns {
		switch v.typ() {
		case TypeString:
			b, err := json.Marshal(p)
			if err != nil {
				return nil, err
			}
			raw[i] = b
		case TypeBoolean:
			if p != "true" && p != "false" {
				return nil, fmt.Errorf("mapping: %q is not a boolean", p)
			}
			raw[i] = json.RawMessage(p)
		case TypeNumber:
			if _, ok := canonicalNumber(p); !ok {
				return nil, fmt.Errorf("mapping: %q is not a JSON number", p)
			}
			raw[i] = json.RawMessage(p)
		default:
			return nil, fmt.Errorf("mapping: unknown condition value type %q", v.Type)
		}
	}
	if !v.List && len(raw) == 1 {
		return raw[0], nil
	}
	return json.Marshal(raw)
}
