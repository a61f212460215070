package identity

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestNormalizeClaimsAgreesWithVerify checks that bare claims read into the
// same Claims as the verified token carrying them, times and audience aside.
func TestNormalizeClaimsAgreesWithVerify(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		kind   Kind
		sample string
		edit   map[string]any
	}{
		{KindGitHub, "github-actions.json", nil},
		{KindGitHub, "github-actions.json", map[string]any{"environment": nil, "event_name": "pull_request_target"}},
		{KindGitLab, "gitlab-ci.json", nil},
		{KindGitLab, "gitlab-ci.json", map[string]any{"ref_path": nil, "ref": "v1.2", "ref_type": "tag"}},
		{KindGeneric, "github-actions.json", nil},
	} {
		t.Run(string(tt.kind)+"/"+tt.sample, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOpt{kind: tt.kind})
			claims := sample(t, tt.sample, e.iss.URL())
			for k, v := range tt.edit {
				if v == nil {
					delete(claims, k)
				} else {
					claims[k] = v
				}
			}
			verified, err := e.v.Verify(context.Background(), e.iss.Mint(t, claims))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			raw, err := json.Marshal(claims)
			if err != nil {
				t.Fatal(err)
			}
			iss := Issuer{Name: "test-" + string(tt.kind), URL: e.iss.URL(), Kind: tt.kind}
			got, err := NormalizeClaims(iss, raw)
			if err != nil {
				t.Fatalf("NormalizeClaims: %v", err)
			}
			verified.Audience, verified.TokenSHA256 = "", ""
			verified.IssuedAt, verified.NotBefore, verified.Expiry = time.Time{}, time.Time{}, time.Time{}
			if diff := cmp.Diff(verified, got); diff != "" {
				t.Errorf("NormalizeClaims differs from Verify (-verify +normalize):\n%s", diff)
			}
		})
	}
}

func TestNormalizeClaimsErrors(t *testing.T) {
	t.Parallel()
	const url = "https://token.actions.githubusercontent.com"
	gh := Issuer{Name: "github", URL: url, Kind: KindGitHub}
	base := sample(t, "github-actions.json", url)
	with := func(edit map[string]any) []byte {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range edit {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name     string
		iss      Issuer
		raw      []byte
		sentinel error
		reason   string
	}{
		{"not JSON", gh, []byte(`{"iss":`), ErrInvalidToken, ReasonMalformedToken},
		{"not an object", gh, []byte(`["iss"]`), ErrInvalidToken, ReasonMalformedToken},
		{"null", gh, []byte(`null`), ErrInvalidToken, ReasonMalformedToken},
		{"duplicate member", gh, []byte(`{"iss":"a","iss":"b"}`), ErrInvalidToken, ReasonMalformedToken},
		{"members differing in case", gh, []byte(`{"ref":"refs/heads/main","REF":"refs/heads/evil"}`), ErrInvalidToken, ReasonMalformedToken},
		{"too large", gh, []byte(`{"x":"` + strings.Repeat("a", MaxTokenSize) + `"}`), ErrInvalidToken, ReasonTokenTooLarge},
		{"no repository_id", gh, with(map[string]any{"repository_id": nil}), ErrInvalidToken, ReasonMissingClaim},
		{"empty jti", gh, with(map[string]any{"jti": ""}), ErrInvalidToken, ReasonMissingClaim},
		{"ref path trick", gh, with(map[string]any{"ref": "refs/heads/x/../main"}), ErrInvalidToken, ReasonInvalidClaim},
		{"repository not a string", gh, with(map[string]any{"repository": 1}), ErrInvalidToken, ReasonInvalidClaim},
		{"other issuer's iss", gh, with(map[string]any{"iss": "https://gitlab.com"}), ErrInvalidToken, ReasonInvalidClaim},
		{"iss with a trailing slash", gh, with(map[string]any{"iss": url + "/"}), ErrInvalidToken, ReasonInvalidClaim},
		{"unknown kind", Issuer{Name: "x", URL: url, Kind: "teamcity"}, with(nil), ErrUntrustedIssuer, ReasonUntrustedIssuer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := NormalizeClaims(tt.iss, tt.raw)
			if c != nil {
				t.Errorf("claims %+v with an error", c)
			}
			checkErr(t, err, tt.sentinel, tt.reason)
		})
	}

	t.Run("no time or audience checks", func(t *testing.T) {
		t.Parallel()
		raw := with(map[string]any{"exp": 1, "iat": nil, "nbf": "soon", "aud": []string{"a", "b"}})
		c, err := NormalizeClaims(gh, raw)
		if err != nil {
			t.Fatalf("NormalizeClaims: %v", err)
		}
		if c.IssuerName != "github" || c.Repository != "acme/web" || c.Audience != "" || !c.Expiry.IsZero() {
			t.Errorf("claims %+v", c)
		}
	})
}
