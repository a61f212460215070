// Package condvalue is the JSON form of a mapping condition's value: one
// string, boolean or number, or a list of values of one type, read back in
// the form it was written in. The wire contract (bridge/api) and the domain
// with its store (mapping) share it, so that the form exists once; it
// imports only the standard library, so that API clients link nothing of
// the server. Matching a value against claims is package mapping's.
package condvalue

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

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

// JSONType returns Type, TypeString when empty.
func (v *Values) JSONType() string {
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
		return nil, fmt.Errorf("condvalue: invalid condition value%s", v.Invalid)
	}
	raw := make([]json.RawMessage, len(v.Patterns))
	for i, p := range v.Patterns {
		switch v.JSONType() {
		case TypeString:
			b, err := json.Marshal(p)
			if err != nil {
				return nil, err
			}
			raw[i] = b
		case TypeBoolean:
			if p != "true" && p != "false" {
				return nil, fmt.Errorf("condvalue: %q is not a boolean", p)
			}
			raw[i] = json.RawMessage(p)
		case TypeNumber:
			if !ValidNumber(p) {
				return nil, fmt.Errorf("condvalue: %q is not a JSON number", p)
			}
			raw[i] = json.RawMessage(p)
		default:
			return nil, fmt.Errorf("condvalue: unknown condition value type %q", v.Type)
		}
	}
	if !v.List && len(raw) == 1 {
		return raw[0], nil
	}
	return json.Marshal(raw)
}

// ValidNumber reports whether s is exactly one JSON number (RFC 8259):
// not a string, not surrounded by space.
func ValidNumber(s string) bool {
	return s != "" && (s[0] == '-' || isDigit(s[0])) && isDigit(s[len(s)-1]) && json.Valid([]byte(s))
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
