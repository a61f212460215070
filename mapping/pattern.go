package mapping

import (
	"strings"
	"unicode/utf8"
)

// The pattern language of mapping conditions, as the contract defines it:
//
//	*   any run of characters except '/'
//	**  any run of characters, '/' included
//	?   exactly one character except '/'
//	    everything else is literal: no escaping, no classes, no regular expressions
//
// A character is one UTF-8 encoded rune; each byte of an invalid UTF-8
// sequence is a character of its own. Characters compare by their bytes, so an
// invalid byte never equals U+FFFD and no Unicode normalisation happens. `?`
// therefore consumes a whole rune ("caf?" matches "café"), never half of one.
// Stored patterns are ASCII (see ValidateMapping), so in practice only `?` and
// the stars ever meet non-ASCII input.
//
// A run of two or more stars means the same as `**` (`***` could only mean
// `**` followed by `*`, which matches exactly what `**` matches), but
// ValidateMapping refuses three or more stars in a row as a likely mistake.
//
// Matching simulates the pattern as a small automaton, one step per input
// character: time O(len(s) * len(pattern)), memory O(len(pattern)), with no
// backtracking, so hostile patterns and claims cannot blow it up.

// Match reports whether s matches pattern in its entirety, byte-exact.
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
		if fold {
			return equalFoldASCII(pattern, s)
		}
		return pattern == s
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

	cur[0] = true
	closeStars(toks, cur)
	for i := 0; i < len(s); {
		_, size := utf8.DecodeRuneInString(s[i:])
		ch := s[i : i+size]
		i += size

		clear(next)
		alive := false
		for j, t := range toks {
			if !cur[j] {
				continue
			}
			switch t.kind {
			case tokLit:
				if equalChar(t.lit, ch, fold) {
					next[j+1], alive = true, true
				}
			case tokOne:
				if ch != "/" {
					next[j+1], alive = true, true
				}
			case tokStar:
				if ch != "/" {
					next[j], alive = true, true
				}
			case tokStars:
				next[j], alive = true, true
			}
		}
		if !alive {
			return false
		}
		closeStars(toks, next)
		cur, next = next, cur
	}
	return cur[len(toks)]
}

// closeStars adds the states reached by letting stars match nothing. One
// ascending pass suffices because the empty moves only go forward.
func closeStars(toks []token, states []bool) {
	for j, t := range toks {
		if states[j] && (t.kind == tokStar || t.kind == tokStars) {
			states[j+1] = true
		}
	}
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

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lowerASCII(a[i]) != lowerASCII(b[i]) {
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
