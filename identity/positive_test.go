package identity

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/oidc-bridge/oidc-bridge/test/oidctest"
)

func TestVerifyGitHubSample(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpt{kind: KindGitHub})
	claims := sample(t, "github-actions.json", e.iss.URL())
	c, err := e.v.Verify(context.Background(), e.iss.Mint(t, claims))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	want := &Claims{
		Issuer:            e.iss.URL(),
		IssuerName:        "test-github",
		Kind:              KindGitHub,
		Subject:           "repo:acme/web:environment:production",
		Audience:          "https://bridge.example.com",
		JTI:               "6f0c1a2e-8b7d-4c3e-9a1f-2d4e5f6a7b8c",
		Repository:        "acme/web",
		RepositoryID:      "1339936803",
		RepositoryOwner:   "acme",
		RepositoryOwnerID: "91234567",
		Ref:               "refs/heads/main",
		RefType:           "branch",
		SHA:               "4c1b2a3d5e6f708192a3b4c5d6e7f8091a2b3c4d",
		Environment:       "production",
		EventName:         "push",
		WorkflowRef:       "acme/web/.github/workflows/deploy.yml@refs/heads/main",
		Actor:             "octocat",
		RunID:             "12345678901",
		RunAttempt:        "1",
		JobID:             "31822455555",
		IssuedAt:          time.Unix(1795712400, 0),
		NotBefore:         time.Unix(1795712100, 0),
		Expiry:            time.Unix(1795712700, 0),
		Raw:               rawOf(t, claims),
	}
	if diff := cmp.Diff(want, c, ignoreTokenHash); diff != "" {
		t.Errorf("Claims mismatch (-want +got):\n%s", diff)
	}
	if got, ok := c.Raw["runner_environment"].(string); !ok || got != "github-hosted" {
		t.Errorf("Raw[runner_environment] = %#v", c.Raw["runner_environment"])
	}
	if _, ok := c.Raw["iat"].(json.Number); !ok {
		t.Errorf("Raw[iat] is %T, want json.Number", c.Raw["iat"])
	}
}

func TestVerifyGitLabSample(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpt{kind: KindGitLab})
	claims := sample(t, "gitlab-ci.json", e.iss.URL())
	c, err := e.v.Verify(context.Background(), e.iss.Mint(t, claims))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	want := &Claims{
		Issuer:            e.iss.URL(),
		IssuerName:        "test-gitlab",
		Kind:              KindGitLab,
		Subject:           "project_path:platform/app:ref_type:branch:ref:main",
		Audience:          "https://bridge.example.com",
		JTI:               "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
		Repository:        "platform/app",
		RepositoryID:      "20",
		RepositoryOwner:   "platform",
		RepositoryOwnerID: "72",
		JobProjectPath:    "platform/app",
		Ref:               "refs/heads/main",
		RefType:           "branch",
		SHA:               "714a629c0b401fdce83e847fc9589983fc6f46bc",
		Environment:       "production",
		EventName:         "push",
		WorkflowRef:       "gitlab.com/platform/app//.gitlab-ci.yml@refs/heads/main",
		Actor:             "alice",
		RunID:             "1212",
		RunAttempt:        "",
		JobID:             "2468",
		IssuedAt:          time.Unix(1795712400, 0),
		NotBefore:         time.Unix(1795712395, 0),
		Expiry:            time.Unix(1795716000, 0),
		Raw:               rawOf(t, claims),
	}
	if diff := cmp.Diff(want, c, ignoreTokenHash); diff != "" {
		t.Errorf("Claims mismatch (-want +got):\n%s", diff)
	}
	if got, ok := c.Raw["runner_id"].(json.Number); !ok || got != "1" {
		t.Errorf("Raw[runner_id] = %#v; want the json.Number 1, never a string", c.Raw["runner_id"])
	}
}

// GitLab's bare ref becomes a full ref by ref_type when ref_path is absent.
func TestVerifyGitLabRefForms(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpt{kind: KindGitLab})
	tests := []struct {
		name       string
		overrides  map[string]any
		wantRef    string
		wantReason string
	}{
		{"ref_path wins", map[string]any{"ref": "main", "ref_type": "branch", "ref_path": "refs/heads/main"}, "refs/heads/main", ""},
		{"branch without ref_path", map[string]any{"ref": "main", "ref_type": "branch", "ref_path": nil}, "refs/heads/main", ""},
		{"tag without ref_path", map[string]any{"ref": "main", "ref_type": "tag", "ref_path": nil}, "refs/tags/main", ""},
		{"tag ref_path", map[string]any{"ref": "v1.2.3", "ref_type": "tag", "ref_path": "refs/tags/v1.2.3"}, "refs/tags/v1.2.3", ""},
		{"merge request ref_path", map[string]any{"ref_path": "refs/merge-requests/7/head"}, "refs/merge-requests/7/head", ""},
		{"no ref at all", map[string]any{"ref": nil, "ref_path": nil}, "", ReasonMissingClaim},
		{"empty ref and ref_path", map[string]any{"ref": "", "ref_path": ""}, "", ReasonMissingClaim},
		{"ref without ref_type", map[string]any{"ref": "main", "ref_type": nil, "ref_path": nil}, "", ReasonMissingClaim},
		{"unknown ref_type", map[string]any{"ref": "main", "ref_type": "weird", "ref_path": nil}, "", ReasonInvalidClaim},
		{"bare ref with dots", map[string]any{"ref": "../main", "ref_type": "branch", "ref_path": nil}, "", ReasonInvalidClaim},
		{"ref_path not full", map[string]any{"ref_path": "main"}, "", ReasonInvalidClaim},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := e.v.Verify(context.Background(), e.iss.Mint(t, e.iss.GitLabClaims(tt.overrides)))
			if tt.wantReason != "" {
				checkErr(t, err, ErrInvalidToken, tt.wantReason)
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if c.Ref != tt.wantRef {
				t.Errorf("Ref = %q, want %q", c.Ref, tt.wantRef)
			}
		})
	}
}

func TestVerifyGeneric(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpt{kind: KindGeneric})
	claims := map[string]any{
		"iss": e.iss.URL(), "aud": oidctest.DefaultAudience, "sub": "pipeline:42", "jti": "j-1",
		"iat": t0.Unix(), "exp": t0.Unix() + 600,
		"repository": "team/service", "repository_id": "b7c1e0a2-uuid-ids-are-fine",
		"ref": "refs/heads/main", "environment": "prod", "event_name": "push",
		"workflow_ref": "team/service/.pipeline.yml@refs/heads/main", "actor": "bob",
		"run_id": "r-9", "run_attempt": "2", "job_id": "j-7", "custom": true,
	}
	c, err := e.v.Verify(context.Background(), e.iss.Mint(t, claims))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	want := &Claims{
		Issuer: e.iss.URL(), IssuerName: "test-generic", Kind: KindGeneric,
		Subject: "pipeline:42", Audience: oidctest.DefaultAudience, JTI: "j-1",
		Repository: "team/service", RepositoryID: "b7c1e0a2-uuid-ids-are-fine",
		Ref: "refs/heads/main", Environment: "prod", EventName: "push",
		WorkflowRef: "team/service/.pipeline.yml@refs/heads/main", Actor: "bob",
		RunID: "r-9", RunAttempt: "2", JobID: "j-7",
		IssuedAt: t0, Expiry: t0.Add(10 * time.Minute),
		Raw: rawOf(t, claims),
	}
	if diff := cmp.Diff(want, c, ignoreTokenHash); diff != "" {
		t.Errorf("Claims mismatch (-want +got):\n%s", diff)
	}

	// Only sub, iss, exp and iat are required of a generic issuer: a token
	// without jti (Jenkins' OIDC plugin issues none) is keyed on its SHA-256.
	minimal := map[string]any{"iss": e.iss.URL(), "aud": oidctest.DefaultAudience, "sub": "s", "iat": t0.Unix(), "exp": t0.Unix() + 60}
	noJTI := e.iss.Mint(t, minimal)
	c, err = e.v.Verify(context.Background(), noJTI)
	if err != nil {
		t.Fatalf("generic token without jti: %v", err)
	}
	sum := sha256.Sum256([]byte(noJTI))
	if want := "sha256:" + hex.EncodeToString(sum[:]); c.JTI != "" || c.ReplayKey() != want {
		t.Errorf("token without jti: JTI %q, ReplayKey %q; want empty, %q", c.JTI, c.ReplayKey(), want)
	}
	minimal["jti"] = "j-2"
	if c, err := e.v.Verify(context.Background(), e.iss.Mint(t, minimal)); err != nil || c.ReplayKey() != "jti:j-2" {
		t.Errorf("minimal generic token: %v, ReplayKey %q", err, c.ReplayKey())
	}
	minimal["ref"] = "main"
	_, err = e.v.Verify(context.Background(), e.iss.Mint(t, minimal))
	checkErr(t, err, ErrInvalidToken, ReasonInvalidClaim)
}

// ignoreTokenHash leaves TokenSHA256 to TestVerifyTokenSHA256.
var ignoreTokenHash = cmpopts.IgnoreFields(Claims{}, "TokenSHA256")

// The token's SHA-256 identifies the token presented, byte for byte, and the
// replay key prefers the jti.
func TestVerifyTokenSHA256(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpt{})
	raw := e.iss.Mint(t, e.iss.GitHubClaims(map[string]any{"jti": "j-hash"}))
	c, err := e.v.Verify(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(raw))
	if c.TokenSHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("TokenSHA256 = %q, want the hex SHA-256 of the token", c.TokenSHA256)
	}
	if c.ReplayKey() != "jti:j-hash" {
		t.Errorf("ReplayKey = %q, want jti:j-hash", c.ReplayKey())
	}
	if (&Claims{}).ReplayKey() != "" {
		t.Error("claims without jti or hash have a replay key")
	}
}

// GitHub Enterprise Server issuers live under a path.
func TestVerifyPathPrefixIssuer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpt{issuer: []oidctest.Option{oidctest.WithPathPrefix("/_services/token")}})
	if _, err := e.v.Verify(context.Background(), e.iss.Mint(t, e.iss.GitHubClaims(nil))); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if e.iss.DiscoveryRequests() != 1 || e.iss.JWKSRequests() != 1 {
		t.Errorf("requests: discovery %d, jwks %d; want 1, 1", e.iss.DiscoveryRequests(), e.iss.JWKSRequests())
	}
}

// An https issuer needs no insecure flag; its certificate comes from the
// configured client.
func TestVerifyTLSIssuer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpt{
		issuer: []oidctest.Option{oidctest.WithTLS()},
		config: func(c *Config) { c.AllowInsecureIssuers = false },
	})
	if _, err := e.v.Verify(context.Background(), e.iss.Mint(t, e.iss.GitHubClaims(nil))); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

// Issuers that advertise PS256 or ES256 can use them, with keys of the
// right type.
func TestVerifyOtherAlgorithms(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpt{issuer: []oidctest.Option{oidctest.WithSigningAlgs("RS256", "PS256", "ES256", "ES384", "RS512")}})
	ecKID := e.iss.AddKey("ES256", nil)
	ec384 := e.iss.AddKey("ES384", nil)
	tests := []struct {
		name string
		opts []oidctest.MintOption
	}{
		{"PS256 with RSA key without alg", []oidctest.MintOption{oidctest.WithKey(e.iss.AddKey("PS256", map[string]any{"alg": nil}))}},
		{"PS256 with RSA key alg PS256", []oidctest.MintOption{oidctest.WithKey(e.iss.AddKey("PS256", nil))}},
		{"RS512 with RSA key alg RS512", []oidctest.MintOption{oidctest.WithKey(e.iss.AddKey("RS512", nil))}},
		{"ES256", []oidctest.MintOption{oidctest.WithKey(ecKID)}},
		{"ES384", []oidctest.MintOption{oidctest.WithKey(ec384)}},
		{"no kid, RS256 tries all keys", []oidctest.MintOption{oidctest.WithHeader("kid", nil)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := e.v.Verify(context.Background(), e.iss.Mint(t, e.iss.GitHubClaims(nil), tt.opts...)); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}
