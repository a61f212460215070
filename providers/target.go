package providers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// DecodeTarget reads raw, a mapping's target, strictly into fields: a JSON
// object whose every key is one of fields' (spelled exactly, at most once;
// encoding/json alone would accept "ROLE_ARN" and duplicates), with nothing
// after it. A *string field takes a JSON string; a *[]string an array of
// strings (no nulls); a *map[string]string an object of strings (no nulls,
// no key twice). The admin API validated the target when it was
// written; providers decode it again so that a target changed behind the
// API's back fails closed. Errors start with provider and name the key,
// never a value.
func DecodeTarget(provider string, raw []byte, fields map[string]any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return fmt.Errorf("%s: target is not a JSON object", provider)
	}
	seen := make(map[string]bool, len(fields))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("%s: target is not valid JSON", provider)
		}
		key, _ := tok.(string)
		dst, known := fields[key]
		if !known {
			return fmt.Errorf("%s: target has an unknown field %q", provider, truncate(key, 32))
		}
		if seen[key] {
			return fmt.Errorf("%s: target has %s twice", provider, key)
		}
		seen[key] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return fmt.Errorf("%s: target is not valid JSON", provider)
		}
		if err := decodeValue(v, dst); err != nil {
			return fmt.Errorf("%s: target's %s %w", provider, key, err)
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return fmt.Errorf("%s: target is not valid JSON", provider)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%s: target has trailing data", provider)
	}
	return nil
}

// decodeValue reads a string into *string, a boolean into *bool or an array
// of strings into *[]string, refusing null and every other type.
func decodeValue(v json.RawMessage, dst any) error {
	switch d := dst.(type) {
	case *string:
		if len(v) == 0 || v[0] != '"' || json.Unmarshal(v, d) != nil {
			return errors.New("is not a string")
		}
	case *bool:
		if len(v) == 0 || (v[0] != 't' && v[0] != 'f') || json.Unmarshal(v, d) != nil {
			return errors.New("is not a boolean")
		}
	case *[]string:
		var list []*string
		if len(v) == 0 || v[0] != '[' || json.Unmarshal(v, &list) != nil {
			return errors.New("is not an array of strings")
		}
		out := make([]string, 0, len(list))
		for _, s := range list {
			if s == nil {
				return errors.New("is not an array of strings")
			}
			out = append(out, *s)
		}
		*d = out
	case *map[string]string:
		m, err := stringObject(v)
		if err != nil {
			return err
		}
		*d = m
	default:
		return fmt.Errorf("has an unsupported destination %T", dst)
	}
	return nil
}

// stringObject reads a JSON object of strings, refusing a key given twice
// (which encoding/json would silently merge), null and other types.
func stringObject(v json.RawMessage) (map[string]string, error) {
	const shape = "is not an object of strings"
	dec := json.NewDecoder(bytes.NewReader(v))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New(shape)
	}
	out := map[string]string{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, errors.New(shape)
		}
		k, _ := tok.(string)
		if _, dup := out[k]; dup {
			return nil, errors.New("has a key twice")
		}
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil || len(val) == 0 || val[0] != '"' {
			return nil, errors.New(shape)
		}
		var s string
		if err := json.Unmarshal(val, &s); err != nil {
			return nil, errors.New(shape)
		}
		out[k] = s
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, errors.New(shape)
	}
	return out, nil
}

// truncate cuts a key for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
