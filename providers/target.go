package providers

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
)

// MaxTargetLen is the most bytes a mapping's target may hold.
const MaxTargetLen = 16 << 10

// Field is one key of a target object and where its value goes: a *string,
// *bool, *[]string, *map[string]string, or *map[string]any (an object of
// any JSON values, numbers kept as written, null meaning none).
type Field struct {
	Key string
	Dst any
}

// DecodeTarget reads raw, a mapping's target, strictly into fields: a JSON
// object of at most MaxTargetLen bytes whose every key is one of fields'
// (spelt exactly, at most once; encoding/json alone would accept
// "ROLE_ARN" and merge duplicates), each value of its field's JSON type
// (null is no string, list, boolean, list element or tag value). Its
// errors are the admin API's:
// *FieldError of provider naming the field at fault, never a value the
// admin did not write. A provider decodes with it when a mapping is
// written (Spec.CheckTarget) and again when it mints, so that nothing is
// read one way there and another way here.
func DecodeTarget(provider string, raw []byte, fields []Field) error {
	invalid := func(field, format string, args ...any) error { return Invalid(provider, field, format, args...) }
	if trimmed := bytes.TrimSpace(raw); len(trimmed) == 0 || bytes.Equal(trimmed, []byte("null")) {
		return invalid("target", "is required")
	}
	if len(raw) > MaxTargetLen {
		return invalid("target", "must be at most %d bytes", MaxTargetLen)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return invalid("target", "must be a JSON object")
	}
	keys := make([]string, len(fields))
	for i, f := range fields {
		keys[i] = f.Key
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil { // {
		return invalid("target", "must be a JSON object")
	}
	var order []Field
	seen := make(map[string]bool, len(obj))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return invalid("target", "must be a JSON object")
		}
		key, _ := tok.(string)
		i := indexOf(keys, key)
		if i < 0 {
			return invalid("target", "unknown field %q; target takes %s", key, strings.Join(keys, ", "))
		}
		if seen[key] {
			return invalid("target."+key, "appears more than once")
		}
		seen[key] = true
		order = append(order, fields[i])
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return invalid("target", "must be a JSON object")
		}
	}
	for _, f := range order {
		if err := decodeValue(obj[f.Key], f.Dst); err != nil {
			var te *typeError
			if errors.As(err, &te) {
				return invalid("target."+f.Key, "must be a JSON %s", te.kind)
			}
			if d, ok := err.(duplicateError); ok {
				return invalid("target."+f.Key+"."+string(d), "appears more than once")
			}
			return invalid("target", "is not a valid %s target object", provider)
		}
	}
	return nil
}

func indexOf(keys []string, key string) int {
	for i, k := range keys {
		if k == key {
			return i
		}
	}
	return -1
}

// typeError: a value is not of its field's JSON type, kind.
type typeError struct{ kind string }

func (e *typeError) Error() string { return "is not a JSON " + e.kind }

// duplicateError names a key an object holds twice.
type duplicateError string

func (e duplicateError) Error() string { return "has " + string(e) + " twice" }

// decodeValue reads v into dst (see Field), refusing null where a value is
// required.
func decodeValue(v json.RawMessage, dst any) error {
	kind := kindOf(dst)
	if bytes.Equal(v, []byte("null")) {
		if d, ok := dst.(*map[string]any); ok {
			*d = nil
			return nil
		}
		return &typeError{kind}
	}
	switch d := dst.(type) {
	case *map[string]string:
		var m map[string]*string
		if err := json.Unmarshal(v, &m); err != nil {
			return asTypeError(err, kind)
		}
		out := make(map[string]string, len(m))
		for k, s := range m {
			if s == nil {
				return &typeError{kind}
			}
			out[k] = *s
		}
		*d = out
		return nil
	case *map[string]any:
		return decodeObject(v, d)
	case *[]string:
		var list []*string
		if err := json.Unmarshal(v, &list); err != nil {
			return asTypeError(err, kind)
		}
		out := make([]string, len(list))
		for i, s := range list {
			if s == nil {
				return &typeError{kind}
			}
			out[i] = *s
		}
		*d = out
		return nil
	case *string, *bool:
		return asTypeError(json.Unmarshal(v, dst), kind)
	}
	return errors.New("providers: unsupported target field type")
}

func asTypeError(err error, kind string) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return &typeError{kind}
	}
	return err
}

// decodeObject reads a JSON object of any values, numbers as json.Number,
// refusing a key given twice.
func decodeObject(v json.RawMessage, d *map[string]any) error {
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return &typeError{"object"}
	}
	out := map[string]any{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		k, _ := tok.(string)
		if _, dup := out[k]; dup {
			return duplicateError(k)
		}
		var val any
		if err := dec.Decode(&val); err != nil {
			return err
		}
		out[k] = val
	}
	*d = out
	return nil
}

// kindOf names the JSON type a Field's destination takes.
func kindOf(dst any) string {
	switch dst.(type) {
	case *string:
		return "string"
	case *bool:
		return "boolean"
	case *[]string:
		return "list of strings"
	}
	return "object"
}

// AllBytes reports whether ok holds for every byte of s (true for ""): the
// targets' rules read ASCII alphabets byte by byte.
func AllBytes(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

// Digits reports whether s is one or more decimal digits.
func Digits(s string) bool {
	return s != "" && AllBytes(s, func(c byte) bool { return '0' <= c && c <= '9' })
}
