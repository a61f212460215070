package aws

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/oidc-bridge/oidc-bridge/identity"
	"github.com/oidc-bridge/oidc-bridge/providers"
)

// AWS's own patterns.
var (
	awsSessionName = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)
	awsTagValue    = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`)
)

func TestSessionName(t *testing.T) {
	t.Parallel()
	long := "acme/" + strings.Repeat("very-long-repository-name-", 4)
	tests := []struct {
		name   string
		claims identity.Claims
		want   string
	}{
		{"github", identity.Claims{Kind: identity.KindGitHub, Repository: "acme/web", RunID: "12345678901", RunAttempt: "1"}, "gh-acme.web-12345678901-1"},
		{"gitlab", identity.Claims{Kind: identity.KindGitLab, Repository: "platform/app", RunID: "1212"}, "gl-platform.app-1212"},
		{"gitlab subgroups", identity.Claims{Kind: identity.KindGitLab, Repository: "group/sub/app", RunID: "7"}, "gl-group.sub.app-7"},
		{"generic", identity.Claims{Kind: identity.KindGeneric, Repository: "x/y", RunID: "9"}, "ci-x.y-9"},
		{"no run", identity.Claims{Kind: identity.KindGitHub, Repository: "acme/web"}, "gh-acme.web"},
		{"attempt without run is dropped", identity.Claims{Kind: identity.KindGitHub, Repository: "acme/web", RunAttempt: "2"}, "gh-acme.web"},
		{"id when no name", identity.Claims{Kind: identity.KindGitHub, RepositoryID: "42", RunID: "1", RunAttempt: "1"}, "gh-42-1-1"},
		{"nothing", identity.Claims{}, "ci-unknown"},
		// Claims a pipeline author controls never reach the name.
		{"hostile ref and actor ignored", identity.Claims{
			Kind: identity.KindGitHub, Repository: "acme/web", RunID: "5", RunAttempt: "1",
			Ref: "refs/heads/a,b=c@evil/../", Actor: `x"; DROP TABLE--`, Environment: "prod;rm",
		}, "gh-acme.web-5-1"},
		// A generic issuer's odd repository cannot forge separators or markers.
		{"hostile repository", identity.Claims{Kind: identity.KindGeneric, Repository: "a,b=c@evil/../x", RunID: "1"}, "ci-a_b_c_evil....x=" + shortHash("a,b=c@evil/../x", 6) + "-1"},
		{"quote and semicolon", identity.Claims{Kind: identity.KindGeneric, Repository: `a"b;c`, RunID: "1"}, "ci-a_b_c=" + shortHash(`a"b;c`, 6) + "-1"},
		{"hostile run id", identity.Claims{Kind: identity.KindGitHub, Repository: "acme/web", RunID: "1-2-3", RunAttempt: "x/y"}, "gh-acme.web-1_2_3=" + shortHash("1-2-3", 6) + "-x=" + shortHash("x/y", 6)},
		{"long run id", identity.Claims{Kind: identity.KindGitHub, Repository: "acme/web", RunID: strings.Repeat("1", 30), RunAttempt: "1"}, "gh-acme.web-" + strings.Repeat("1", 13) + "=" + shortHash(strings.Repeat("1", 30), 6) + "-1"},
		{"long repository", identity.Claims{Kind: identity.KindGitHub, Repository: long, RunID: "12345678901", RunAttempt: "3"},
			"gh-" + strings.ReplaceAll(long, "/", ".")[:64-3-14-7] + "=" + shortHash(long, 6) + "-12345678901-3"},
		{"unicode repository", identity.Claims{Kind: identity.KindGeneric, Repository: "acmé/wéb", RunID: "1"}, "ci-acm_.w_b=" + shortHash("acmé/wéb", 6) + "-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := sessionName(&tt.claims)
			if got != tt.want {
				t.Errorf("sessionName = %q, want %q", got, tt.want)
			}
			if !awsSessionName.MatchString(got) {
				t.Errorf("sessionName %q breaks AWS's pattern", got)
			}
		})
	}
}

func TestLongRepositoriesStayDistinct(t *testing.T) {
	t.Parallel()
	base := "acme/" + strings.Repeat("x", 80)
	a := sessionName(&identity.Claims{Kind: identity.KindGitHub, Repository: base + "-prod", RunID: "1", RunAttempt: "1"})
	b := sessionName(&identity.Claims{Kind: identity.KindGitHub, Repository: base + "-dev", RunID: "1", RunAttempt: "1"})
	if a == b || len(a) != 64 || len(b) != 64 {
		t.Errorf("%q and %q", a, b)
	}
}

func TestSourceIdentity(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		claims identity.Claims
		want   string
	}{
		{"github", identity.Claims{Kind: identity.KindGitHub, Repository: "acme/web", RepositoryID: "987654321"}, "gh-987654321"},
		{"gitlab", identity.Claims{Kind: identity.KindGitLab, Repository: "platform/app", RepositoryID: "4242"}, "gl-4242"},
		{"name fallback", identity.Claims{Kind: identity.KindGeneric, Repository: "acme/web"}, "ci-acme.web"},
		{"none", identity.Claims{Kind: identity.KindGeneric}, ""},
		{"hostile id", identity.Claims{Kind: identity.KindGeneric, RepositoryID: "1,2@x"}, "ci-1_2_x=" + shortHash("1,2@x", 6)},
		{"long id", identity.Claims{Kind: identity.KindGitHub, RepositoryID: strings.Repeat("9", 100)}, "gh-" + strings.Repeat("9", 54) + "=" + shortHash(strings.Repeat("9", 100), 6)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := sourceIdentity(&tt.claims)
			if got != tt.want {
				t.Errorf("sourceIdentity = %q, want %q", got, tt.want)
			}
			if got != "" && !awsSessionName.MatchString(got) {
				t.Errorf("sourceIdentity %q breaks AWS's pattern", got)
			}
		})
	}
}

func TestTagValue(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in, want string }{
		{"plain", "refs/heads/main", "refs/heads/main"},
		{"allowed punctuation", "a_b.c:d/e=f+g-h@i j", "a_b.c:d/e=f+g-h@i j"},
		{"hostile ref", "refs/heads/a,b=c@evil/../", "refs/heads/a_b=c@evil/../"},
		{"comma is replaced, not dropped", "refs/heads/ma,in", "refs/heads/ma_in"},
		{"quote semicolon", `a"b;c'd`, "a_b_c_d"},
		{"bot actor", "dependabot[bot]", "dependabot_bot_"},
		{"newline and tab", "a\nb\tc\r", "a_b_c_"},
		{"line separator", "a\u2028b\u00a0c", "a_b_c"},
		{"bidi override", "main\u202egnp.exe", "main_gnp.exe"},
		{"unicode letters kept", "refs/heads/fünf-日本", "refs/heads/fünf-日本"},
		{"invalid utf8", "a\xffb", "a_b"},
		{"exactly 256", strings.Repeat("é", 256), strings.Repeat("é", 256)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tagValue(tt.in); got != tt.want {
				t.Errorf("tagValue(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	t.Run("long", func(t *testing.T) {
		t.Parallel()
		in := strings.Repeat("é", 300)
		got := tagValue(in)
		if utf8.RuneCountInString(got) != 256 || !strings.HasSuffix(got, "+"+shortHash(in, 8)) || !strings.HasPrefix(got, strings.Repeat("é", 247)) {
			t.Errorf("tagValue(300 é) = %q", got)
		}
		if other := tagValue(strings.Repeat("é", 299) + "x"); other == got {
			t.Error("two long values share a tag value")
		}
	})
}

func TestSessionTags(t *testing.T) {
	t.Parallel()
	req := providers.Request{
		IssuanceID: "iss-1",
		Claims: &identity.Claims{
			Kind: identity.KindGitHub, Repository: "acme/web", Ref: "refs/heads/a,b", Actor: "eve;", RunID: "1",
			Subject: "repo:acme/web:ref:refs/heads/a,b", JTI: "secret-ish-jti",
		},
	}
	got := map[string]string{}
	var keys []string
	for _, tag := range sessionTags(req, target{}) {
		got[*tag.Key] = *tag.Value
		keys = append(keys, *tag.Key)
	}
	want := map[string]string{"repository": "acme/web", "ref": "refs/heads/a_b", "actor": "eve_", "run_id": "1", "issuance_id": "iss-1"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("tags (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"repository", "ref", "actor", "run_id", "issuance_id"}, keys); d != "" {
		t.Errorf("tag order (-want +got):\n%s", d)
	}
}

// FuzzNaming checks that whatever the claims, the session name, source
// identity and tags satisfy AWS's rules.
func FuzzNaming(f *testing.F) {
	f.Add("acme/web", "987", "refs/heads/a,b=c@evil/../", "dependabot[bot]", "123", "1")
	f.Add(`a"b;c`, "", "\u202e", "\x00\xff", "1-2", "x/y")
	f.Add(strings.Repeat("ü/", 100), strings.Repeat("9", 90), strings.Repeat("r", 400), "", strings.Repeat("1", 40), "")
	f.Fuzz(func(t *testing.T, repo, repoID, ref, actor, run, attempt string) {
		for _, kind := range []identity.Kind{identity.KindGitHub, identity.KindGitLab, identity.KindGeneric} {
			c := &identity.Claims{Kind: kind, Repository: repo, RepositoryID: repoID, Ref: ref, Actor: actor, RunID: run, RunAttempt: attempt}
			if n := sessionName(c); !awsSessionName.MatchString(n) {
				t.Fatalf("sessionName = %q", n)
			}
			if si := sourceIdentity(c); si != "" && !awsSessionName.MatchString(si) {
				t.Fatalf("sourceIdentity = %q", si)
			}
			for _, tag := range sessionTags(providers.Request{Claims: c, IssuanceID: run}, target{}) {
				v := *tag.Value
				if v == "" || !awsTagValue.MatchString(v) || utf8.RuneCountInString(v) > 256 || !utf8.ValidString(v) {
					t.Fatalf("tag %s = %q", *tag.Key, v)
				}
			}
		}
	})
}
