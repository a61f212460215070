package mapping

import (
	"encoding/json"
	"strconv"
	"strings"
)

// Nested claims. A claims condition whose key starts with '/' is a JSON
// Pointer (RFC 6901) into the token's verified payload, as Vault's
// bound_claims reads one: "/kubernetes.io/namespace" is the member
// namespace of the object claim kubernetes.io, and
// "/https:~1~1sts.amazonaws.com~1/aws_account" the member aws_account of
// the claim https://sts.amazonaws.com/ ("~1" is '/', "~0" is '~').
//
// Each segment names an object member by its exact name. A segment reading
// into an array is an index, in RFC 6901's form only (0, or digits without
// a leading zero): "/groups/0" is the first element; "-" and any other
// segment name nothing in an array. The value found is matched as a plain
// claims condition matches its claim (typed: see typed.go); a path the
// token does not have, or one ending on an object, an array or null,
// matches nothing.
//
// Beyond RFC 6901, ValidateMapping refuses empty segments ("/a//b", "/"),
// pointers over maxPointerLen bytes or maxPointerDepth segments, a pointer
// into a claim a first-class condition or the verifier reads ("/sub",
// "/repository/x"), and a one-segment pointer that could be written as the
// plain key ("/runner_environment": write runner_environment), so that each
// top-level claim has one spelling for lint and the kinds' guards.
const (
	maxPointerLen   = 256
	maxPointerDepth = 8
	maxArrayIndex   = 9999
)

// isPointer reports whether the claims condition key name is a JSON Pointer.
func isPointer(name string) bool { return strings.HasPrefix(name, "/") }

// pointerError says why a claims key that starts with '/' is not a pointer
// ValidateMapping accepts.
type pointerError string

func (e pointerError) Error() string { return string(e) }

// parsePointer splits the JSON Pointer p into its unescaped segments, or says
// why it is malformed.
func parsePointer(p string) ([]string, error) {
	if !isPointer(p) {
		return nil, pointerError("a JSON Pointer starts with '/'")
	}
	if len(p) > maxPointerLen {
		return nil, pointerError("a JSON Pointer must be at most " + strconv.Itoa(maxPointerLen) + " bytes")
	}
	raw := strings.Split(p[1:], "/")
	if len(raw) > maxPointerDepth {
		return nil, pointerError("a JSON Pointer must have at most " + strconv.Itoa(maxPointerDepth) + " segments")
	}
	segs := make([]string, len(raw))
	for i, s := range raw {
		if s == "" {
			return nil, pointerError("a JSON Pointer's segments must not be empty (segment " + strconv.Itoa(i+1) + ")")
		}
		var b strings.Builder
		for j := 0; j < len(s); j++ {
			if s[j] != '~' {
				b.WriteByte(s[j])
				continue
			}
			if j+1 < len(s) && (s[j+1] == '0' || s[j+1] == '1') {
				b.WriteByte("~/"[s[j+1]-'0'])
				j++
				continue
			}
			return nil, pointerError("'~' must be followed by 0 (for '~') or 1 (for '/') in a JSON Pointer (segment " + strconv.Itoa(i+1) + ")")
		}
		segs[i] = b.String()
	}
	return segs, nil
}

// resolvePointer returns the value the pointer p names in the claims raw (as
// identity.Claims.Raw holds them), and false when p is malformed or the
// token has no such value.
func resolvePointer(raw map[string]any, p string) (any, bool) {
	segs, err := parsePointer(p)
	if err != nil || raw == nil {
		return nil, false
	}
	var cur any = raw
	for _, s := range segs {
		switch node := cur.(type) {
		case map[string]any:
			next, ok := node[s]
			if !ok {
				return nil, false
			}
			cur = next
		case []any:
			i, ok := arrayIndex(s)
			if !ok || i >= len(node) {
				return nil, false
			}
			cur = node[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// arrayIndex reads an RFC 6901 array index: "0" or digits without a leading
// zero, at most maxArrayIndex.
func arrayIndex(s string) (int, bool) {
	if s == "" || len(s) > len(strconv.Itoa(maxArrayIndex)) || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n <= maxArrayIndex
}

// checkPointer validates the claims condition key p (a pointer) and returns
// why it is refused, "" when it is accepted.
func checkPointer(p string) string {
	segs, err := parsePointer(p)
	if err != nil {
		return err.Error()
	}
	if !printableASCII(p) {
		return "a JSON Pointer must be printable ASCII"
	}
	if why, refused := refusedClaimNames[segs[0]]; refused {
		return "reads the claim " + strconv.Quote(segs[0]) + ": it " + why
	}
	// A kind may read a nested claim, named by its pointer: a pointer to it,
	// or into it, is refused as its plain name would be.
	for i := range segs {
		prefix := "/" + strings.Join(escapeSegments(segs[:i+1]), "/")
		if why, refused := refusedClaimNames[prefix]; refused {
			return "reads the claim " + strconv.Quote(prefix) + ": it " + why
		}
	}
	if len(segs) == 1 && validClaimName(segs[0]) && !isPointer(segs[0]) {
		return "names a top-level claim: write it as the plain key " + strconv.Quote(segs[0])
	}
	return ""
}

// escapeSegments escapes each segment for a JSON Pointer: '~' as "~0", '/'
// as "~1".
func escapeSegments(segs []string) []string {
	out := make([]string, len(segs))
	for i, s := range segs {
		out[i] = strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
	}
	return out
}

// claimText is a raw claim as the explainer shows it: a string as it is,
// anything else as its JSON text.
func claimText(raw any) string {
	if s, ok := raw.(string); ok {
		return s
	}
	b, _ := json.Marshal(raw)
	return string(b)
}
