package aws_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/oidc-bridge/oidc-bridge/identity"
	"github.com/oidc-bridge/oidc-bridge/providers"
	"github.com/oidc-bridge/oidc-bridge/providers/aws"
	"github.com/oidc-bridge/oidc-bridge/test/oidctest"
)

// realClaims reads a token's claims as the CI platforms issue them (the
// shared claim sets, oidctest.ClaimSet), with edits applied
// (nil deletes), normalised as the bridge's verifier does.
func realClaims(t *testing.T, file string, kind identity.Kind, edits map[string]any) *identity.Claims {
	t.Helper()
	var raw map[string]any
	if err := json.Unmarshal(oidctest.ClaimSet(file), &raw); err != nil {
		t.Fatal(err)
	}
	delete(raw, "_about")
	for k, v := range edits {
		if v == nil {
			delete(raw, k)
		} else {
			raw[k] = v
		}
	}
	b, _ := json.Marshal(raw)
	c, err := identity.NormalizeClaims(identity.Issuer{Name: string(kind), URL: raw["iss"].(string), Kind: kind}, b)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var sessionNamePattern = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)

// TestLongestClaimsAreAccepted mints, against the STS fake (which applies
// AWS's limits), with the longest values the CI platforms allow in the
// claims the session name, source identity and tags are built from, and
// with adversarial ones: the bridge's truncation and hashing keep every
// value within AWS's limits.
func TestLongestClaimsAreAccepted(t *testing.T) {
	// GitHub: owner 39 characters, repository name 100, a ref and an
	// environment name of 255, actor 39 and "[bot]", run ids as numbers.
	ghOwner, ghRepo := "a"+strings.Repeat("b-", 19), strings.Repeat("r.", 49)+"rr"
	gitlabPath := strings.Repeat("group-name-of-many-words/", 20) + "project"
	tests := []struct {
		name   string
		claims *identity.Claims
	}{
		{"github as issued", realClaims(t, "github-actions.json", identity.KindGitHub, nil)},
		{"gitlab as issued", realClaims(t, "gitlab-ci.json", identity.KindGitLab, nil)},
		{"github longest", realClaims(t, "github-actions.json", identity.KindGitHub, map[string]any{
			"repository": ghOwner + "/" + ghRepo, "repository_owner": ghOwner, "repository_id": "99999999999",
			"ref": "refs/heads/" + strings.Repeat("feature/x", 27), "environment": strings.Repeat("e", 255),
			"actor": strings.Repeat("a", 34) + "[bot]", "run_id": "99999999999", "run_attempt": "99",
			"event_name": "pull_request_review_comment",
		})},
		{"gitlab deepest", realClaims(t, "gitlab-ci.json", identity.KindGitLab, map[string]any{
			"project_path": gitlabPath, "namespace_path": strings.TrimSuffix(gitlabPath, "/project"),
			"ref": strings.Repeat("ünïcödé-", 40), "ref_path": "refs/heads/" + strings.Repeat("ünïcödé-", 40),
			"environment": strings.Repeat("review/", 36), "pipeline_id": "99999999999",
		})},
		{"adversarial", &identity.Claims{Kind: identity.KindGeneric, Repository: `a,b=c@"evil"/../` + strings.Repeat("x", 500),
			RepositoryID: strings.Repeat("9", 300), Ref: strings.Repeat("\u202e,", 600), Environment: "prod\nuction;rm -rf",
			Actor: "\x00\xff", RunID: "1-2-3" + strings.Repeat("4", 100), RunAttempt: "x/y"}},
		{"empty repository", &identity.Claims{Kind: identity.KindGeneric, RunID: "1"}},
		{"unicode repository", &identity.Claims{Kind: identity.KindGeneric, Repository: "日本/リポジトリ", RepositoryID: "é1", RunID: "1"}},
	}
	s, p := setup(t, aws.Config{})
	tg := map[string]any{"role_arn": roleARN, "region": "eu-west-1",
		"session_tags":        map[string]string{"team": "payments", "cost-center": "cc-42"},
		"transitive_tag_keys": []string{"team", "repository", "ref"}}
	target, _ := json.Marshal(tg)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := p.Mint(t.Context(), providers.Request{IssuanceID: "0193b9e2-6c1e-7c3a-9f1e-2a4b5c6d7e8f", Mapping: "m",
				Target: target, Claims: tt.claims, Duration: time.Hour})
			if err != nil {
				t.Fatalf("the fake refused: %v", err)
			}
			call := s.Calls()[i]
			if !sessionNamePattern.MatchString(call.RoleSessionName) {
				t.Errorf("session name %q", call.RoleSessionName)
			}
			if si := call.SourceIdentity; si != "" && !sessionNamePattern.MatchString(si) {
				t.Errorf("source identity %q", si)
			}
			for k, v := range call.Tags {
				if utf8.RuneCountInString(v) > 256 {
					t.Errorf("tag %s has %d characters", k, utf8.RuneCountInString(v))
				}
			}
			t.Logf("session name %q, source identity %q, %d tags", call.RoleSessionName, call.SourceIdentity, len(call.Tags))
		})
	}
}
