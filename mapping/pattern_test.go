package mapping

import (
	"fmt"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		pattern string
		s       string
		want    bool
	}{
		// Literals.
		{"exact", "refs/heads/main", "refs/heads/main", true},
		{"longer input", "refs/heads/main", "refs/heads/mainx", false},
		{"shorter input", "refs/heads/main", "refs/heads/mai", false},
		{"trailing slash", "refs/heads/main", "refs/heads/main/", false},
		{"double slash", "refs/heads/main", "refs/heads//main", false},
		{"dot dot not cleaned", "refs/heads/main", "refs/heads/x/../main", false},
		{"suffix only", "refs/heads/main", "refs/heads/x/refs/heads/main", false},
		{"tag is not branch", "refs/heads/main", "refs/tags/main", false},
		{"NUL suffix", "refs/heads/main", "refs/heads/main\x00", false},
		{"newline suffix", "refs/heads/main", "refs/heads/main\n", false},
		{"NUL in pattern", "refs/heads/main\x00", "refs/heads/main", false},
		{"case sensitive", "production", "Production", false},
		{"underscore is literal", "acme_corp", "acmeXcorp", false},
		{"percent is literal", "acme%", "acmeX", false},
		{"backslash is literal", `a\*b`, `a\xyzb`, true},
		{"backslash does not escape", `a\*b`, `a*b`, false},
		{"regex chars literal", "a.b", "axb", false},
		{"brackets literal", "[ab]", "a", false},
		{"brackets exact", "[ab]", "[ab]", true},
		{"empty both", "", "", true},
		{"empty pattern", "", "x", false},
		{"empty input", "x", "", false},
		{"non-ASCII exact", "café", "café", true},
		{"NFC vs NFD", "café", "cafe\u0301", false},
		{"cyrillic a", "acme/app", "\u0430cme/app", false},
		{"zero width space", "acme/app", "acme/app\u200b", false},
		{"invalid UTF-8 is not U+FFFD", "\ufffd", "\xff", false},
		{"invalid UTF-8 exact", "a\xffb", "a\xffb", true},

		// Single star.
		{"star matches run", "acme/*", "acme/web", true},
		{"star matches empty", "acme/*", "acme/", true},
		{"star stops at slash", "acme/*", "acme/x/y", false},
		{"star prefix", "acme/app*", "acme/app.evil", true},
		{"star prefix sandbox", "acme/app*", "acme/app-sandbox", true},
		{"star prefix other", "acme/app*", "acme/ap", false},
		{"star middle", "refs/heads/release-*-rc", "refs/heads/release-1.2-rc", true},
		{"star middle no slash", "refs/heads/release-*-rc", "refs/heads/release-1/2-rc", false},
		{"star only", "*", "anything", true},
		{"star only slash", "*", "a/b", false},
		{"star only empty input", "*", "", true},
		{"star NUL", "*", "a\x00b", true},
		{"star newline", "*", "a\nb", true},
		{"two single stars", "*/*", "a/b", true},
		{"two single stars deeper", "*/*", "a/b/c", false},
		{"star backtrack", "*a*a*b", "xaxaxab", true},
		{"star backtrack fail", "*a*a*b", "xaxaxa", false},
		{"star suffix", "*.yml@refs/heads/main", "deploy.yml@refs/heads/main", true},
		{"star multibyte", "caf*", "café", true},

		// Double star.
		{"dstar matches slashes", "acme/**", "acme/x/y", true},
		{"dstar matches one segment", "acme/**", "acme/web", true},
		{"dstar matches empty", "acme/**", "acme/", true},
		{"dstar needs prefix", "acme/**", "acmeX/web", false},
		{"dstar middle", "refs/heads/**/main", "refs/heads/a/b/main", true},
		{"dstar middle one", "refs/heads/**/main", "refs/heads/a/main", true},
		{"dstar middle needs slashes", "refs/heads/**/main", "refs/heads/main", false},
		{"dstar only", "**", "a/b/c", true},
		{"dstar then star", "**/*.yml", "a/b/c.yml", true},
		{"dstar then star no", "**/*.yml", "a/b/c.yaml", false},
		{"workflow any ref", "acme/web/.github/workflows/deploy.yml@**", "acme/web/.github/workflows/deploy.yml@refs/heads/feat/x", true},
		{"workflow other repo", "acme/web/.github/workflows/deploy.yml@**", "attacker/x/.github/workflows/deploy.yml@refs/heads/main", false},
		{"triple star is dstar", "a/***", "a/b/c", true},
		{"quad star is dstar", "a****z", "a/b/z", true},
		{"star slash star is not dstar", "a*/*z", "a/b/z", false},

		// Question mark.
		{"question one char", "v?", "v1", true},
		{"question not zero", "v?", "v", false},
		{"question not two", "v?", "v12", false},
		{"question not slash", "a?b", "a/b", false},
		{"question rune", "caf?", "café", true},
		{"question rune not two", "caf??", "café", false},
		{"question three-byte rune", "?", "€", true},
		{"question invalid byte", "a?b", "a\xffb", true},
		{"question two invalid bytes", "a?b", "a\xff\xfeb", false},
		{"question NUL", "a?b", "a\x00b", true},
		{"question literal", "a?b", "a?b", true},
		{"questions and stars", "?*?", "ab", true},
		{"questions and stars short", "?*?", "a", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Match(tt.pattern, tt.s); got != tt.want {
				t.Errorf("Match(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
			}
			if got, ref := Match(tt.pattern, tt.s), refMatch(tt.pattern, tt.s, false); got != ref {
				t.Errorf("Match(%q, %q) = %v, reference says %v", tt.pattern, tt.s, got, ref)
			}
		})
	}
}

func TestMatchFold(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		pattern string
		s       string
		want    bool
	}{
		{"same", "acme/web", "acme/web", true},
		{"upper input", "acme/web", "ACME/Web", true},
		{"upper pattern", "ACME/WEB", "acme/web", true},
		{"wildcard upper", "acme/*", "ACME/Web", true},
		{"wildcard does not cross slash", "acme/*", "ACME/x/y", false},
		{"dstar", "acme/**", "Acme/X/Y", true},
		{"different", "acme/web", "acme/webx", false},
		{"underscore is not X", "acme_corp/app", "acmeXcorp/app", false},
		{"underscore is not x", "acme_corp/app", "ACMEXCORP/app", false},
		{"at and backtick are not case pairs", "@", "`", false},
		{"bracket and brace are not case pairs", "[", "{", false},
		{"kelvin sign is not k", "acme/k", "acme/\u212a", false},
		{"non-ASCII not folded", "acme/é", "acme/É", false},
		{"cyrillic a", "acme/app", "\u0430cme/app", false},
		{"empty", "", "", true},
		{"question", "acme/?eb", "ACME/Web", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := MatchFold(tt.pattern, tt.s); got != tt.want {
				t.Errorf("MatchFold(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
			}
			if got, ref := MatchFold(tt.pattern, tt.s), refMatch(tt.pattern, tt.s, true); got != ref {
				t.Errorf("MatchFold(%q, %q) = %v, reference says %v", tt.pattern, tt.s, got, ref)
			}
		})
	}
}

func TestHasWildcard(t *testing.T) {
	t.Parallel()
	tests := []struct {
		p    string
		want bool
	}{
		{"", false},
		{"acme/web", false},
		{"acme/*", true},
		{"acme/**", true},
		{"v?", true},
		{`a\*`, true},
		{"[a]", false},
		{"a.b_c%d", false},
	}
	for _, tt := range tests {
		if got := HasWildcard(tt.p); got != tt.want {
			t.Errorf("HasWildcard(%q) = %v, want %v", tt.p, got, tt.want)
		}
	}
}

// TestMatchPathological checks that patterns which make backtracking
// matchers exponential still finish: each case would take astronomically
// long with naive recursion.
func TestMatchPathological(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 100_000)
	tests := []struct {
		name    string
		pattern string
		s       string
		want    bool
	}{
		{"stars", "*a*a*a*a*a*a*a*a*a*a*b", long, false},
		{"dstars", "**a**a**a**a**a**a**a**a**a**a**b", long, false},
		{"mixed", "*a**a*a**a*a**a*a**a*?*b", long + "/" + long, false},
		{"questions", strings.Repeat("?*", 60) + "b", long, false},
		{"match at end", "*a*a*a*a*a*a*a*a*a*a*b", long + "b", true},
		{"max pattern", strings.Repeat("*a", 128), long, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// O(n*m) here is at most ~25M steps; a backtracking matcher
			// would not finish in our lifetime, and the test binary's
			// -timeout names this test. No wall-clock bound: a loaded
			// machine is not a slow matcher (BenchmarkMatch measures).
			if got := Match(tt.pattern, tt.s); got != tt.want {
				t.Errorf("Match = %v, want %v", got, tt.want)
			}
		})
	}
}

// BenchmarkMatchPathological: the cost of the worst patterns against a
// 100,000-character value (ns/op grows with len(pattern)*len(s), not
// exponentially).
func BenchmarkMatchPathological(b *testing.B) {
	long := strings.Repeat("a", 100_000)
	for _, p := range []string{"*a*a*a*a*a*a*a*a*a*a*b", strings.Repeat("?*", 60) + "b", strings.Repeat("*a", 128)} {
		b.Run(fmt.Sprintf("pattern=%d", len(p)), func(b *testing.B) {
			for b.Loop() {
				Match(p, long)
			}
		})
	}
}

// refMatch is a deliberately simple reference for the pattern language: a
// memoised recursion over (pattern rest, input rest), one character (UTF-8
// rune, or a single byte of an invalid sequence) at a time.
func refMatch(pattern, s string, fold bool) bool {
	memo := map[[2]int]bool{}
	var rec func(p, s string) bool
	rec = func(p, s string) bool {
		key := [2]int{len(p), len(s)}
		if v, ok := memo[key]; ok {
			return v
		}
		var res bool
		switch {
		case p == "":
			res = s == ""
		case strings.HasPrefix(p, "**"):
			rest := strings.TrimLeft(p, "*")
			for k := 0; ; {
				if rec(rest, s[k:]) {
					res = true
					break
				}
				if k == len(s) {
					break
				}
				_, size := utf8.DecodeRuneInString(s[k:])
				k += size
			}
		case p[0] == '*':
			for k := 0; ; {
				if rec(p[1:], s[k:]) {
					res = true
					break
				}
				if k == len(s) || s[k] == '/' {
					break
				}
				_, size := utf8.DecodeRuneInString(s[k:])
				k += size
			}
		case s == "":
			res = false
		case p[0] == '?':
			_, size := utf8.DecodeRuneInString(s)
			res = s[:size] != "/" && rec(p[1:], s[size:])
		default:
			_, ps := utf8.DecodeRuneInString(p)
			_, ss := utf8.DecodeRuneInString(s)
			pc, sc := p[:ps], s[:ss]
			// Not strings.ToLower: it would turn invalid bytes into U+FFFD.
			same := pc == sc || fold && ps == 1 && ss == 1 &&
				pc[0] < utf8.RuneSelf && sc[0] < utf8.RuneSelf &&
				unicode.ToLower(rune(pc[0])) == unicode.ToLower(rune(sc[0]))
			res = same && rec(p[ps:], s[ss:])
		}
		memo[key] = res
		return res
	}
	return rec(pattern, s)
}

func FuzzMatch(f *testing.F) {
	seeds := [][2]string{
		{"acme/*", "acme/web"},
		{"acme/**", "acme/x/y"},
		{"acme/*", "ACME/x/y"},
		{"refs/heads/main", "refs/heads/mainx"},
		{"*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaa"},
		{"?", "€"},
		{"caf??", "café"},
		{"*\xa9", "é"},
		{"\xc3*", "é"},
		{"a?b", "a\xff\xfeb"},
		{"***", "a/b"},
		{"*?*?*", "ab/"},
		{"**/", "/"},
		{"", ""},
		{"\x00", "\x00"},
		{"A*b", "aXB"},
		{"A*\x81B", "A\xfeB"}, // found by fuzzing: a bad reference folded invalid bytes together
	}
	for _, s := range seeds {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, s string) {
		if len(pattern) > 64 || len(s) > 256 {
			return // keep the reference's memo small; lengths do not change the logic
		}
		got := Match(pattern, s)
		if want := refMatch(pattern, s, false); got != want {
			t.Fatalf("Match(%q, %q) = %v, reference says %v", pattern, s, got, want)
		}
		gotFold := MatchFold(pattern, s)
		if want := refMatch(pattern, s, true); gotFold != want {
			t.Fatalf("MatchFold(%q, %q) = %v, reference says %v", pattern, s, gotFold, want)
		}
		if got && !gotFold {
			t.Fatalf("Match(%q, %q) but not MatchFold", pattern, s)
		}
		if !HasWildcard(s) && !Match(s, s) {
			t.Fatalf("literal %q does not match itself", s)
		}
	})
}
