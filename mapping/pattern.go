package mapping

import (
	"strings"
	"unicode/utf8"

	"github.com/oidc-bridge/oidc-bridge/identity"
)

// Match reports whether s matches pattern in its entirety, byte-exact. The
// pattern language is the contract's:
//
//	`*`   any run of characters except '/'
//	`**`  any run of characters, '/' included
//	`?`   exactly one character except '/'
//
// Everything else is literal: no escaping, no classes, no regular expressions.
//
// A character is one UTF-8 encoded rune; each byte of an invalid UTF-8
// sequence is a character of its own. Characters compare by their bytes, so an
// invalid byte never equals U+FFFD and no Unicode normalisation happens. `?`
// therefore consumes a whole rune ("caf?" matches "café"), never half of one,
// and a star never ends inside a rune. Stored patterns are printable ASCII
// (see ValidateMapping), so in practice only `?` and the stars meet non-ASCII
// input.
//
// A run of two or more stars means the same as `**` (`***` could only mean
// `**` followed by `*`, which matches exactly what `**` matches), but
// ValidateMapping refuses three or more stars in a row as a likely mistake.
//
// Matching runs the pattern as a small automaton, one step per character of
// s: time O(len(s) * len(pattern)) at worst, memory O(len(pattern)), no
// backtracking, so hostile patterns and claims cannot blow it up; the usual
// literal prefix and suffix are compared directly first.
func Match(pattern, s string) bool {
	return match(pattern, s, false)
}

// MatchFold is Match with ASCII letters compared case-insensitively; other
// bytes still compare exactly (no Unicode case folding, which would let
// look-alike names such as the Kelvin sign match 'k'). It is used for
// repository names, which GitHub and GitLab treat case-insensitively.
func MatchFold(pattern, s string) bool {
	return match(pattern, s, true)
}

// HasWildcard reports whether p contains a wildcard (`*` or `?`), that is
// whether it can match more than the one string it spells.
func HasWildcard(p string) bool {
	return strings.ContainsAny(p, "*?")
}

type tokenKind uint8

const (
	tokLit   tokenKind = iota // one literal character (lit holds its bytes)
	tokOne                    // ?
	tokStar                   // *
	tokStars                  // ** (or more)
)

type token struct {
	kind tokenKind
	lit  string
}

func match(pattern, s string, fold bool) bool {
	if !HasWildcard(pattern) {
		return equalASCII(pattern, s, fold)
	}

	// The literal ends need no automaton: compare them directly, which
	// refuses most mismatches at once. Only ASCII ends are peeled, so that
	// they end on character boundaries in s as well.
	i, j := strings.IndexAny(pattern, "*?"), strings.LastIndexAny(pattern, "*?")+1
	if prefix, suffix := pattern[:i], pattern[j:]; isASCII(prefix) && isASCII(suffix) {
		if len(s) < len(prefix)+len(suffix) ||
			!equalASCII(prefix, s[:len(prefix)], fold) || !equalASCII(suffix, s[len(s)-len(suffix):], fold) {
			return false
		}
		pattern, s = pattern[i:j], s[len(prefix):len(s)-len(suffix)]
	}

	// Small patterns (all that validation admits) keep their state on the stack.
	var tokBuf [64]token
	toks := tokenize(pattern, tokBuf[:0])
	n := len(toks) + 1
	var curBuf, nextBuf [65]bool
	var cur, next []bool
	if n <= len(curBuf) {
		cur, next = curBuf[:n], nextBuf[:n]
	} else {
		cur, next = make([]bool, n), make([]bool, n)
	}

	// cur[lo..hi] holds the live states; everything outside is false, and
	// next is all false between steps.
	cur[0] = true
	lo, hi := 0, closeStars(toks, cur, 0, 0)
	for i := 0; i < len(s); {
		_, size := utf8.DecodeRuneInString(s[i:])
		ch := s[i : i+size]
		i += size

		nlo, nhi := n, -1
		for j := lo; j <= hi && j < len(toks); j++ {
			if !cur[j] {
				continue
			}
			k := -1
			switch t := toks[j]; t.kind {
			case tokLit:
				if equalChar(t.lit, ch, fold) {
					k = j + 1
				}
			case tokOne:
				if ch != "/" {
					k = j + 1
				}
			case tokStar:
				if ch != "/" {
					k = j
				}
			case tokStars:
				k = j
			}
			if k >= 0 {
				next[k] = true
				nlo, nhi = min(nlo, k), max(nhi, k)
			}
		}
		if nhi < 0 {
			return false
		}
		nhi = closeStars(toks, next, nlo, nhi)
		clear(cur[lo : hi+1])
		cur, next = next, cur
		lo, hi = nlo, nhi
	}
	return cur[len(toks)]
}

// closeStars adds the states reached by letting stars match nothing, for
// the live states lo..hi, and returns the new hi. One ascending pass suffices
// because the empty moves only go forward.
func closeStars(toks []token, states []bool, lo, hi int) int {
	for j := lo; j <= hi && j < len(toks); j++ {
		if states[j] && (toks[j].kind == tokStar || toks[j].kind == tokStars) {
			states[j+1] = true
			hi = max(hi, j+1)
		}
	}
	return hi
}

func tokenize(pattern string, toks []token) []token {
	for i := 0; i < len(pattern); {
		switch pattern[i] {
		case '*':
			j := i
			for j < len(pattern) && pattern[j] == '*' {
				j++
			}
			if j-i == 1 {
				toks = append(toks, token{kind: tokStar})
			} else {
				toks = append(toks, token{kind: tokStars})
			}
			i = j
		case '?':
			toks = append(toks, token{kind: tokOne})
			i++
		default:
			_, size := utf8.DecodeRuneInString(pattern[i:])
			toks = append(toks, token{kind: tokLit, lit: pattern[i : i+size]})
			i += size
		}
	}
	return toks
}

func equalChar(a, b string, fold bool) bool {
	if fold && len(a) == 1 && len(b) == 1 {
		return lowerASCII(a[0]) == lowerASCII(b[0])
	}
	return a == b
}

// equalASCII compares a and b byte-wise, folding ASCII letters if fold.
func equalASCII(a, b string, fold bool) bool {
	if !fold {
		return a == b
	}
	return identity.EqualFoldASCII(a, b)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func lowerASCII(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + ('a' - 'A')
	}
	return b
}
