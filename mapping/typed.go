package mapping

import (
	"encoding/json"
	"math/big"
	"strconv"
	"strings"

	"github.com/oidc-bridge/oidc-bridge/identity"
	"github.com/oidc-bridge/oidc-bridge/internal/condvalue"
)

// Typed claims conditions. A claims condition's values have one JSON type
// (Values.Type) and match only a claim of that type:
//
//   - strings match string claims with the pattern language (Match); an
//     empty string claim matches nothing, as for every condition;
//   - booleans match a boolean claim of the same value: true never matches
//     the string "true";
//   - numbers match a number claim of the same value, compared exactly as
//     decimal numbers: 7, 7.0, 7e0 and 70e-1 are the same number (JSON does
//     not tell them apart), 9007199254740993 is not 9007199254740992 (no
//     rounding through float64), -0 is 0; a number never matches the string
//     "7". Patterns never apply to booleans or numbers.
//
// A claim holding null, an array or an object matches nothing.

// matchesClaim reports whether any value of v matches the raw claim x (as
// identity.Claims.Raw holds it: string, bool, json.Number, ...). present is
// false for a claim the token does not carry, which matches nothing.
func (v *Values) matchesClaim(x any, present bool) bool {
	if !present || v.Invalid != "" {
		return false
	}
	switch v.typ() {
	case TypeString:
		s, ok := x.(string)
		return ok && v.matches(s, Match)
	case TypeBoolean:
		b, ok := x.(bool)
		if !ok {
			return false
		}
		return v.lists(strconv.FormatBool(b))
	case TypeNumber:
		n, ok := x.(json.Number)
		if !ok {
			return false
		}
		want, ok := canonicalNumber(string(n))
		if !ok {
			return false
		}
		for _, p := range v.Patterns {
			if c, ok := canonicalNumber(p); ok && c == want {
				return true
			}
		}
	}
	return false
}

// claimType is the JSON type of a raw claim: string, boolean, number, null,
// array or object.
func claimType(x any) string {
	switch x.(type) {
	case string:
		return TypeString
	case bool:
		return TypeBoolean
	case json.Number, float64:
		return TypeNumber
	case nil:
		return "null"
	case []any:
		return "array"
	}
	return "object"
}

// rawClaim returns the claim name of c as identity.Claims.Raw holds it; a
// name starting with '/' is a JSON Pointer into the claims (pointer.go).
func rawClaim(c *identity.Claims, name string) (any, bool) {
	if c == nil {
		return nil, false
	}
	if isPointer(name) {
		return resolvePointer(c.Raw, name)
	}
	x, ok := c.Raw[name]
	return x, ok
}

// canonicalNumber returns a form of the JSON number s that two numbers share
// exactly when they are equal as decimal numbers: the sign, the significant
// digits without leading or trailing zeros, and the power of ten ("7e0" for
// 7, 7.0 and 70e-1; "0" for 0, -0 and 0.0e5). It never builds the number
// itself, so a huge exponent costs no more than its digits. ok is false when
// s is not a JSON number.
func canonicalNumber(s string) (canon string, ok bool) {
	if !condvalue.ValidNumber(s) {
		return "", false
	}
	neg := s[0] == '-'
	s = strings.TrimPrefix(s, "-")
	mant, expText := s, "0"
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant, expText = s[:i], strings.TrimPrefix(s[i+1:], "+")
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	digits := strings.TrimLeft(intPart+frac, "0")
	if digits == "" {
		return "0", true
	}
	exp, okExp := new(big.Int).SetString(expText, 10)
	if !okExp {
		return "", false
	}
	// value = digits × 10^(exp - len(frac)); trailing zeros move into the
	// exponent.
	exp.Sub(exp, big.NewInt(int64(len(frac))))
	trimmed := strings.TrimRight(digits, "0")
	exp.Add(exp, big.NewInt(int64(len(digits)-len(trimmed))))
	sign := ""
	if neg {
		sign = "-"
	}
	return sign + trimmed + "e" + exp.String(), true
}

// maxNumberExp bounds the power of ten of a number condition (in the
// canonical form's terms), so that PostgreSQL's jsonb, whose numeric type
// stops well short of JSON's unbounded numbers, stores every valid mapping.
const maxNumberExp = 1000

// numberInRange reports whether the canonical number c has an exponent
// within ±maxNumberExp.
func numberInRange(c string) bool {
	_, exp, ok := strings.Cut(c, "e")
	if !ok {
		return true // "0"
	}
	e, ok := new(big.Int).SetString(exp, 10)
	return ok && e.CmpAbs(big.NewInt(maxNumberExp)) <= 0
}
