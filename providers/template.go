package providers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/oidc-bridge/oidc-bridge/identity"
)

// Templated targets: one mapping serving many repositories, e.g.
// "role_arn": "arn:aws:iam::123456789012:role/ci-${repository_name}". A
// provider declares which target fields may hold ${variable} and which
// characters a substituted value may have there (Templater); this file is
// the one engine that parses, checks and substitutes them.
//
// The variables are a fixed list of verified, normalised claims (Variables).
// A value is checked against its field's character set before it is used,
// and a value with any other character is refused, never escaped: a
// repository named "x/../admin" or "a:b" cannot change an ARN's account, path
// or resource type, only fail the exchange.

// Variable is one name a template may use.
type Variable struct {
	// Name is what the template writes inside ${...}.
	Name string
	// Sample is the value substituted when a template is validated at
	// write time: typical of the claim, of the characters every target
	// field admits (lowercase letters, digits, '-').
	Sample string
	// Conditions are the mapping conditions any of which constrains the
	// variable's values (lint's unconstrained_template).
	Conditions []string
	value      func(*identity.Claims) string
}

// Variables are the template variables, in order. Each is a claim the
// platform sets (never the pipeline's code), after normalisation:
//
//   - repository_owner: GitHub's repository_owner, GitLab's namespace_path;
//   - repository_name: the last segment of the repository (GitHub's name
//     part of owner/name, GitLab's project name without its groups);
//   - repository_id: GitHub's repository_id, GitLab's project_id, stable
//     across renames;
//   - environment: the job's deployment environment.
//
// Refs and actors are left out: anyone who can push a branch or act in the
// repository chooses them, which would let a pipeline pick its target.
var Variables = []Variable{
	{Name: "repository_owner", Sample: "sample-owner", Conditions: []string{"repository", "repository_id", "claims.repository_owner", "claims.repository_owner_id"},
		value: func(c *identity.Claims) string { return c.RepositoryOwner }},
	{Name: "repository_name", Sample: "sample-repo", Conditions: []string{"repository", "repository_id"},
		value: repositoryName},
	{Name: "repository_id", Sample: "123456789", Conditions: []string{"repository", "repository_id"},
		value: func(c *identity.Claims) string { return c.RepositoryID }},
	{Name: "environment", Sample: "production", Conditions: []string{"environment"},
		value: func(c *identity.Claims) string { return c.Environment }},
}

// repositoryName is the repository's last path segment.
func repositoryName(c *identity.Claims) string {
	r := c.Repository
	if i := strings.LastIndexByte(r, '/'); i >= 0 {
		return r[i+1:]
	}
	return r
}

func variable(name string) (Variable, bool) {
	i := slices.IndexFunc(Variables, func(v Variable) bool { return v.Name == name })
	if i < 0 {
		return Variable{}, false
	}
	return Variables[i], true
}

func variableNames() string {
	names := make([]string, len(Variables))
	for i, v := range Variables {
		names[i] = v.Name
	}
	return strings.Join(names, ", ")
}

// TemplateField is a target field (a JSON string) that may hold variables.
type TemplateField struct {
	// Key is the target's key, e.g. role_arn.
	Key string
	// Allowed reports whether a substituted value may hold the byte c at
	// this field: never a character that structures the field (':' or '/'
	// in an ARN, '@' or '.' in an email).
	Allowed func(c byte) bool
	// Charset says Allowed in words, for messages.
	Charset string
	// MaxValue bounds a substituted value's length in bytes.
	MaxValue int
	// After, when set, is the literal text a variable must follow: only the
	// template's text after its first occurrence may hold variables
	// (":role/": no variable in an ARN's partition or account).
	After string
	// Before, when set, is the literal text after every variable: only the
	// text before its first occurrence may hold variables ("@": no
	// variable in an email's domain).
	Before string
}

// Templater is a Spec whose targets may hold templates.
type Templater interface {
	Spec
	// TemplateFields are the target fields that may hold variables.
	TemplateFields() []TemplateField
}

// ErrTemplate is wrapped by a TemplateError: a template cannot be resolved
// for a token (a claim absent, or a value outside the field's characters).
var ErrTemplate = errors.New("providers: template cannot be resolved")

// TemplateError says why a template could not be resolved for a token,
// naming the field and the variable, never the value.
type TemplateError struct {
	Field    string // target.<key>
	Variable string
	Reason   string
}

func (e *TemplateError) Error() string {
	return "providers: " + e.Field + ": ${" + e.Variable + "}: " + e.Reason
}

func (e *TemplateError) Unwrap() error { return ErrTemplate }

// part is a template's literal text or a variable.
type part struct {
	text     string
	variable string // "" for text
}

// parseTemplate splits s into text and ${variable} parts. A "${" that does
// not open a known variable is an error; a "$" without "{" is text.
func parseTemplate(s string) ([]part, error) {
	var out []part
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			if s != "" {
				out = append(out, part{text: s})
			}
			return out, nil
		}
		if i > 0 {
			out = append(out, part{text: s[:i]})
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return nil, fmt.Errorf("a ${ without its closing }")
		}
		name := s[i+2 : i+end]
		if _, ok := variable(name); !ok {
			return nil, fmt.Errorf("unknown variable ${%s}; a template may use %s", name, variableNames())
		}
		out = append(out, part{variable: name})
		s = s[i+end+1:]
	}
}

// templated is one field's template of a target.
type templated struct {
	field TemplateField
	parts []part
}

// templatesOf reads the templated fields of raw (a target object): those of
// fields whose value is a JSON string holding "${". Errors are *FieldError.
func templatesOf(provider string, raw json.RawMessage, fields []TemplateField) (map[string]json.RawMessage, []templated, error) {
	if len(fields) == 0 || !bytes.Contains(raw, []byte("${")) {
		return nil, nil, nil
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil {
		return nil, nil, nil // the provider's own decode says why
	}
	var out []templated
	for _, f := range fields {
		var s string
		if json.Unmarshal(obj[f.Key], &s) != nil || !strings.Contains(s, "${") {
			continue
		}
		field := "target." + f.Key
		parts, err := parseTemplate(s)
		if err != nil {
			return nil, nil, Invalid(provider, field, "%v", err)
		}
		prefix := ""
		for _, p := range parts {
			if p.variable == "" {
				prefix += p.text
				continue
			}
			if f.After != "" && !strings.Contains(prefix, f.After) {
				return nil, nil, Invalid(provider, field, "a variable may appear only after %q", f.After)
			}
		}
		if f.Before != "" {
			i := strings.Index(s, f.Before)
			if i < 0 || strings.Contains(s[i:], "${") {
				return nil, nil, Invalid(provider, field, "a variable may appear only before %q", f.Before)
			}
		}
		out = append(out, templated{field: f, parts: parts})
	}
	return obj, out, nil
}

// fieldsOf are spec's templatable fields, none if it is no Templater.
func fieldsOf(spec Spec) []TemplateField {
	if t, ok := spec.(Templater); ok {
		return t.TemplateFields()
	}
	return nil
}

// IsTemplate reports whether raw, a target of spec, holds a template.
func IsTemplate(spec Spec, raw json.RawMessage) bool {
	_, ts, err := templatesOf(spec.Name(), raw, fieldsOf(spec))
	return err == nil && len(ts) > 0
}

// CheckTarget is spec.CheckTarget for a target that may hold templates,
// what the admin API runs when a mapping is written: a templated field may
// use only the known variables, where its provider allows them, and the
// target with every variable replaced by its sample value must pass the
// provider's own rules. It returns the target checked (raw, or raw with the
// sample values), for the rules that read it further (Spec.CheckMapping).
// Errors are *FieldError.
func CheckTarget(spec Spec, raw json.RawMessage) (json.RawMessage, error) {
	obj, ts, err := templatesOf(spec.Name(), raw, fieldsOf(spec))
	if err != nil {
		return nil, err
	}
	if len(ts) == 0 {
		return raw, spec.CheckTarget(raw)
	}
	sample := func(name string) string { v, _ := variable(name); return v.Sample }
	resolved, err := substitute(obj, ts, sample)
	if err != nil {
		return nil, err
	}
	if err := spec.CheckTarget(resolved); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			return nil, Invalid(fe.Provider, fe.Field, "%s (checked with the template's variables set to sample values: %s)", fe.Message, samples(ts))
		}
		return nil, err
	}
	return resolved, nil
}

func samples(ts []templated) string {
	var out []string
	for _, t := range ts {
		for _, p := range t.parts {
			if v, ok := variable(p.variable); ok && !slices.Contains(out, v.Name+"="+v.Sample) {
				out = append(out, v.Name+"="+v.Sample)
			}
		}
	}
	return strings.Join(out, ", ")
}

// substitute writes each template of ts into obj with value's values and
// returns the target object.
func substitute(obj map[string]json.RawMessage, ts []templated, value func(string) string) (json.RawMessage, error) {
	out := make(map[string]json.RawMessage, len(obj))
	for k, v := range obj {
		out[k] = v
	}
	for _, t := range ts {
		var b strings.Builder
		for _, p := range t.parts {
			if p.variable == "" {
				b.WriteString(p.text)
			} else {
				b.WriteString(value(p.variable))
			}
		}
		enc, err := json.Marshal(b.String())
		if err != nil {
			return nil, err
		}
		out[t.field.Key] = enc
	}
	return json.Marshal(out)
}

// TemplateVariables returns the variables raw's templated fields use, by
// field (target.<key>), for lint; nil for a target without templates.
func TemplateVariables(spec Spec, raw json.RawMessage) map[string][]string {
	_, ts, err := templatesOf(spec.Name(), raw, fieldsOf(spec))
	if err != nil || len(ts) == 0 {
		return nil
	}
	out := map[string][]string{}
	for _, t := range ts {
		for _, p := range t.parts {
			f := "target." + t.field.Key
			if p.variable != "" && !slices.Contains(out[f], p.variable) {
				out[f] = append(out[f], p.variable)
			}
		}
	}
	return out
}

// ResolveTarget returns raw, a target of spec, with its templates resolved
// from c: raw itself when it holds none. Each variable's value must be
// present and of its field's characters (TemplateField.Allowed, MaxValue),
// checked before it is substituted, and the resolved target must pass
// spec's own rules. Errors wrap ErrTemplate (*TemplateError).
func ResolveTarget(spec Spec, raw json.RawMessage, c *identity.Claims) (json.RawMessage, error) {
	obj, ts, err := templatesOf(spec.Name(), raw, fieldsOf(spec))
	if err != nil {
		return nil, &TemplateError{Field: "target", Reason: err.Error()}
	}
	if len(ts) == 0 {
		return raw, nil
	}
	if c == nil {
		return nil, &TemplateError{Field: "target", Reason: "no claims"}
	}
	for _, t := range ts {
		for _, p := range t.parts {
			if p.variable == "" {
				continue
			}
			v, _ := variable(p.variable)
			if err := CheckValue(t.field, v.value(c)); err != nil {
				return nil, &TemplateError{Field: "target." + t.field.Key, Variable: v.Name, Reason: err.Error()}
			}
		}
	}
	resolved, err := substitute(obj, ts, func(name string) string { v, _ := variable(name); return v.value(c) })
	if err != nil {
		return nil, &TemplateError{Field: "target", Reason: err.Error()}
	}
	if err := spec.CheckTarget(resolved); err != nil {
		return nil, &TemplateError{Field: "target", Reason: "the resolved target is refused: " + err.Error()}
	}
	return resolved, nil
}

// CheckValue reports why value cannot be substituted into field f: empty
// (the token lacks the claim), too long, or holding a character f does not
// allow. The value is never quoted: it is the pipeline's.
func CheckValue(f TemplateField, value string) error {
	switch {
	case value == "":
		return errors.New("the token has no value for it")
	case f.MaxValue > 0 && len(value) > f.MaxValue:
		return fmt.Errorf("its value is longer than %d characters", f.MaxValue)
	case !AllBytes(value, f.Allowed):
		return fmt.Errorf("its value has a character outside %s, which this field cannot hold", f.Charset)
	}
	return nil
}
