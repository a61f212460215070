package bridge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
)

// decodeStrict reads exactly one JSON value from the request body into v,
// refusing unknown fields, wrong types and trailing data, and says which
// field is at fault. It is the one way the service reads a JSON body.
//
// Before decoding, checkKeys refuses what encoding/json would let through
// silently: a key given twice at any depth (encoding/json keeps the last,
// so {"mapping":"a","mapping":"b"} would ask for b while a reviewer or a
// proxy that keeps the first sees a), and a key whose case does not match
// its field exactly (encoding/json matches {"MAPPING":"web"} to mapping).
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
	if err := checkKeys(body, reflect.TypeOf(v)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
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

// maxKeyDepth is how deep checkKeys follows nested values; deeper JSON is
// left to the decoder, which refuses it.
const maxKeyDepth = 10000

// checkKeys walks body's tokens alongside type t and refuses, with the
// path of the key at fault, a key repeated in any object at any depth, and
// in an object decoded into a struct a key that is not exactly one of the
// struct's JSON names (unknown, or another case of a known one). Objects
// decoded into maps, and values whose type decodes itself (api.Values,
// json.RawMessage: a mapping's target, explain's claims), have free-form
// keys, compared byte for byte: {"Foo":1,"foo":2} is two keys, as claim
// names are case-sensitive. Malformed JSON is left to the decoder to
// report.
func checkKeys(body []byte, t reflect.Type) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	err := scanValue(dec, t, "", 0)
	if errors.Is(err, errScanStop) {
		return nil
	}
	return err
}

// errScanStop stops checkKeys where the decoder will report the problem.
var errScanStop = errors.New("bridge: stop scanning")

func scanValue(dec *json.Decoder, t reflect.Type, path string, depth int) error {
	if depth > maxKeyDepth {
		return errScanStop
	}
	tok, err := dec.Token()
	if err != nil {
		return errScanStop
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && (reflect.PointerTo(t).Implements(unmarshalerType) || t.Kind() == reflect.Interface) {
		t = nil // free-form
	}
	switch tok {
	case json.Delim('{'):
		return scanObject(dec, t, path, depth)
	case json.Delim('['):
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := scanValue(dec, elem, fmt.Sprintf("%s[%d]", path, i), depth+1); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil {
			return errScanStop
		}
	}
	return nil
}

func scanObject(dec *json.Decoder, t reflect.Type, path string, depth int) error {
	var fields map[string]reflect.Type // exact names of a struct's fields
	var elem reflect.Type              // a map's values
	if t != nil {
		switch t.Kind() {
		case reflect.Struct:
			fields = jsonFields(t)
		case reflect.Map:
			elem = t.Elem()
		}
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return errScanStop
		}
		key, ok := tok.(string)
		if !ok {
			return errScanStop
		}
		p := key
		if path != "" {
			p = path + "." + key
		}
		if seen[key] {
			return invalid(p, fmt.Sprintf("%s: duplicate key: each key may appear once", p))
		}
		seen[key] = true
		vt := elem
		if fields != nil {
			ft, ok := fields[key]
			if !ok {
				for name := range fields {
					if strings.EqualFold(name, key) {
						return invalid(p, fmt.Sprintf("%s: unknown field (field names are case-sensitive: did you mean %q?)", p, name))
					}
				}
				return invalid(p, fmt.Sprintf("%s: unknown field", p))
			}
			vt = ft
		}
		if err := scanValue(dec, vt, p, depth+1); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return errScanStop
	}
	return nil
}

// jsonFields maps the JSON names of struct type t's fields, as
// encoding/json decodes them (embedded structs' fields promoted), to their
// types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for f := range t.Fields() {
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "-" {
			continue
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if f.Anonymous && tag == "" && ft.Kind() == reflect.Struct {
			for name, typ := range jsonFields(ft) {
				if _, ok := fields[name]; !ok {
					fields[name] = typ
				}
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if tag == "" {
			tag = f.Name
		}
		fields[tag] = f.Type
	}
	return fields
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
	if te.Type == reflect.TypeFor[api.Values]() {
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
