package identity

import (
	"bytes"
	"encoding/json"
	"strings"
)

// claimReader reads string claims, remembering the first problem.
type claimReader struct {
	obj jsonObject
	err *Error
}

// str returns the string claim name, "" when absent. A present claim that is
// not a string, or that holds control characters (which no CI system puts in
// these claims, and which would forge log lines), is invalid_claim.
func (r *claimReader) str(name string) string {
	if r.err != nil {
		return ""
	}
	raw, ok := r.obj[name]
	if !ok {
		return ""
	}
	var s string
	if raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		r.err = fail(ReasonInvalidClaim, "%s is not a string", name)
		return ""
	}
	if hasControl(s) {
		r.err = fail(ReasonInvalidClaim, "%s contains control characters", name)
		return ""
	}
	return s
}

// nullable is str for a platform that sends null for a claim it has no
// value for (Buildkite's build_tag, step_key): null reads as absent.
func (r *claimReader) nullable(name string) string {
	if raw, ok := r.obj[name]; ok && strings.TrimSpace(string(raw)) == "null" {
		return ""
	}
	return r.str(name)
}

// required is str, with absent and empty both missing_claim.
func (r *claimReader) required(name string) string {
	s := r.str(name)
	if r.err == nil && s == "" {
		r.err = fail(ReasonMissingClaim, "token has no %s", name)
	}
	return s
}

// check records an invalid_claim when ok is false and the claim is set.
func (r *claimReader) check(name, value string, ok func(string) bool) {
	if r.err == nil && value != "" && !ok(value) {
		r.err = fail(ReasonInvalidClaim, "%s %s is malformed", name, quote(value))
	}
}

// normalize reads the claims of a signature-checked token into Claims
// according to the issuer's kind (its Platform's read). Times and audience
// are checked elsewhere.
func normalize(kind Kind, obj jsonObject, payload []byte) (*Claims, *Error) {
	p := PlatformOf(kind)
	r := &claimReader{obj: obj}
	c := &Claims{Kind: kind}
	c.Issuer = r.required("iss")
	c.Subject = r.required("sub")
	if p.Defaults().JTIRequired {
		c.JTI = r.required("jti")
	} else {
		c.JTI = r.str("jti")
	}
	p.read(r, c)
	if r.err != nil {
		return nil, r.err
	}

	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&c.Raw); err != nil {
		return nil, fail(ReasonMalformedToken, "decode claims: %v", err)
	}
	return c, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func validPathSegment(s string) bool {
	if s == "" || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isAlnum(c) || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// validRef applies git check-ref-format's rules to a full ref. It never
// cleans or decodes: a ref that would need it is refused.
func validRef(s string) bool {
	if !strings.HasPrefix(s, "refs/") || s == "@" {
		return false
	}
	if strings.Contains(s, "..") || strings.Contains(s, "//") || strings.Contains(s, "@{") ||
		strings.HasSuffix(s, "/") || strings.HasSuffix(s, ".") {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c == 0x7f:
			return false
		case c == ' ' || c == '~' || c == '^' || c == ':' || c == '?' || c == '*' || c == '[' || c == '\\':
			return false
		}
	}
	for _, comp := range strings.Split(s, "/") {
		if comp == "" || strings.HasPrefix(comp, ".") || strings.HasSuffix(comp, ".lock") {
			return false
		}
	}
	return true
}

// nested is str for a claim nested in JSON objects: path[0] a claim of the
// token, each further name a member of the object before (Kubernetes'
// kubernetes.io.namespace). Absent anywhere along the path: "". A member on
// the way that is no object (or has duplicate member names), or a leaf
// that is no string, is invalid_claim, named by the dotted path.
func (r *claimReader) nested(path ...string) string {
	if r.err != nil {
		return ""
	}
	name := strings.Join(path, ".")
	obj := r.obj
	for i, member := range path[:len(path)-1] {
		raw, ok := obj[member]
		if !ok {
			return ""
		}
		sub, err := parseObject(raw)
		if err != nil {
			r.err = fail(ReasonInvalidClaim, "%s is not an object: %v", strings.Join(path[:i+1], "."), err)
			return ""
		}
		obj = sub
	}
	leaf := &claimReader{obj: obj}
	s := leaf.str(path[len(path)-1])
	if leaf.err != nil {
		r.err = fail(ReasonInvalidClaim, "%s is not a string without control characters", name)
	}
	return s
}

// requiredNested is nested, with absent and empty both missing_claim.
func (r *claimReader) requiredNested(path ...string) string {
	s := r.nested(path...)
	if r.err == nil && s == "" {
		r.err = fail(ReasonMissingClaim, "token has no %s", strings.Join(path, "."))
	}
	return s
}
