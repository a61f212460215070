package bridge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/oidc-bridge/oidc-bridge/mapping"
)

// decodeStrict reads exactly one JSON value from the request body into v,
// refusing unknown fields, wrong types and trailing data, and says which
// field is at fault.
func decodeStrict(c echo.Context, v any) error {
	if ct := c.Request().Header.Get(echo.HeaderContentType); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != echo.MIMEApplicationJSON {
			return invalid("", "the request body must be JSON (Content-Type: application/json)")
		}
	}
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return err // *http.MaxBytesError, or the client went away
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			// encoding/json names the field without its path: find it.
			var raw any
			if json.Unmarshal(body, &raw) == nil {
				if p := unknownPath(reflect.TypeOf(v), raw, ""); p != "" {
					f = p
				}
			}
			f = strings.Trim(f, `"`)
			return invalid(f, fmt.Sprintf("%s: unknown field", f))
		}
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return invalid("", "the request body must hold exactly one JSON object")
	}
	return nil
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// unknownPath returns the dotted path of the first member of raw (sorted by
// name) that type t has no field for, or "". Like encoding/json, it matches
// member names to fields case-insensitively.
func unknownPath(t reflect.Type, raw any, path string) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return "" // the type decodes itself (mapping.Values, json.RawMessage)
	}
	join := func(k string) string {
		if path == "" {
			return k
		}
		return path + "." + k
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := raw.(map[string]any)
		if !ok {
			return ""
		}
		fields := map[string]reflect.Type{}
		for f := range t.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			fields[strings.ToLower(name)] = f.Type
		}
		for _, k := range slices.Sorted(maps.Keys(obj)) {
			ft, ok := fields[strings.ToLower(k)]
			if !ok {
				return join(k)
			}
			if p := unknownPath(ft, obj[k], join(k)); p != "" {
				return p
			}
		}
	case reflect.Map:
		obj, ok := raw.(map[string]any)
		if !ok {
			return ""
		}
		for _, k := range slices.Sorted(maps.Keys(obj)) {
			if p := unknownPath(t.Elem(), obj[k], join(k)); p != "" {
				return p
			}
		}
	case reflect.Slice, reflect.Array:
		arr, ok := raw.([]any)
		if !ok {
			return ""
		}
		for i, e := range arr {
			if p := unknownPath(t.Elem(), e, fmt.Sprintf("%s[%d]", path, i)); p != "" {
				return p
			}
		}
	}
	return ""
}

func decodeError(err error) error {
	var (
		se  *json.SyntaxError
		te  *json.UnmarshalTypeError
		mbe *http.MaxBytesError
	)
	switch {
	case errors.As(err, &mbe):
		return err
	case errors.Is(err, io.EOF):
		return invalid("", "the request body is empty; send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalid("", "the request body is truncated JSON")
	case errors.As(err, &se):
		return invalid("", fmt.Sprintf("malformed JSON at byte %d", se.Offset))
	case errors.As(err, &te):
		if te.Field == "" {
			return invalid("", "the request body must be a JSON object")
		}
		return invalid(te.Field, fmt.Sprintf("%s: must be %s", te.Field, typeName(te)))
	}
	return invalid("", "malformed JSON: "+err.Error())
}

func typeName(te *json.UnmarshalTypeError) string {
	if te.Type == nil {
		return "of another type"
	}
	if te.Type == reflect.TypeFor[mapping.Values]() {
		return "a string or a list of strings"
	}
	switch te.Type.Kind().String() {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "int", "int64", "int32":
		return "an integer"
	case "slice":
		return "a list"
	case "map", "struct":
		return "an object"
	}
	return "a " + te.Type.String()
}
