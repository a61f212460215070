package mapping_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/identity"
	"github.com/oidc-bridge/oidc-bridge/mapping"
	"github.com/oidc-bridge/oidc-bridge/test/oidctest"
)

// TestVerifiedTokenSelectsMapping joins the pieces the exchange will use:
// real tokens signed by a local issuer, verified against issuers registered
// in Postgres, then matched against that issuer's stored mappings.
func TestVerifiedTokenSelectsMapping(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := mapping.NewPGStore(runtimePool(t), 0)
	gh := oidctest.New(t)
	gl := oidctest.New(t, oidctest.WithPathPrefix("/gitlab"))
	for _, is := range []mapping.Issuer{
		{Name: "gh", URL: gh.URL(), Kind: "github", Audiences: []string{oidctest.DefaultAudience}, Enabled: true},
		{Name: "gl", URL: gl.URL(), Kind: "gitlab", Audiences: []string{oidctest.DefaultAudience}, Enabled: true},
	} {
		if _, err := store.CreateIssuer(ctx, testActor, is); err != nil {
			t.Fatal(err)
		}
	}
	target := json.RawMessage(`{"role_arn": "arn:aws:iam::123456789012:role/deploy", "region": "eu-west-1"}`)
	for _, m := range []mapping.Mapping{
		{Name: "web-prod", Issuer: "gh", Conditions: mapping.Conditions{
			Repository: mapping.One("ACME/web"), RepositoryID: mapping.One("1339936803"),
			Ref: mapping.One("refs/heads/main"), Environment: mapping.One("production")}},
		{Name: "web-any-branch", Issuer: "gh", Conditions: mapping.Conditions{
			Repository: mapping.One("acme/*"), Ref: mapping.One("refs/heads/feature/**")}},
		{Name: "app-main", Issuer: "gl", Conditions: mapping.Conditions{
			Repository: mapping.One("platform/app"), Ref: mapping.One("refs/heads/main")}},
	} {
		m.Enabled, m.Provider, m.Target, m.MaxDurationSeconds = true, "aws", target, 3600
		check := func(k identity.Kind) error { return mapping.ValidateMapping(&m, k) }
		if _, err := store.CreateMapping(ctx, testActor, m, check); err != nil {
			t.Fatal(err)
		}
	}
	v := identity.NewVerifier(identity.Config{AllowInsecureIssuers: true}, store)

	tests := []struct {
		name  string
		token string
		want  []string
	}{
		{"github main in production", gh.Mint(t, gh.GitHubClaims(nil)), []string{"web-prod"}},
		{"github feature branch", gh.Mint(t, gh.GitHubClaims(map[string]any{"ref": "refs/heads/feature/x/y"})), []string{"web-any-branch"}},
		{"github main without environment", gh.Mint(t, gh.GitHubClaims(map[string]any{"environment": nil})), nil},
		{"github repository name reused under another id", gh.Mint(t, gh.GitHubClaims(map[string]any{"repository_id": "999"})), nil},
		{"github tag named main", gh.Mint(t, gh.GitHubClaims(map[string]any{"ref": "refs/tags/main", "ref_type": "tag"})), nil},
		{"gitlab main", gl.Mint(t, gl.GitLabClaims(nil)), []string{"app-main"}},
		{"gitlab tag named main", gl.Mint(t, gl.GitLabClaims(map[string]any{"ref_type": "tag", "ref_path": "refs/tags/main"})), nil},
		{"gitlab fork pipeline", gl.Mint(t, gl.GitLabClaims(map[string]any{"project_path": "platform/app", "job_project_path": "evil/app"})), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := v.Verify(ctx, tt.token)
			if err != nil {
				t.Fatalf("verify: %v", err)
			}
			ms, err := store.ListMappings(ctx, mapping.Filter{Issuer: c.IssuerName, EnabledOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range mapping.Select(ms, c) {
				got = append(got, m.Name)
			}
			if len(got) != len(tt.want) || (len(got) > 0 && got[0] != tt.want[0]) {
				t.Fatalf("selected %v, want %v", got, tt.want)
			}
		})
	}

	// A disabled issuer's tokens are untrusted at once; an unregistered one
	// is never fetched from.
	if _, err := store.UpdateIssuer(ctx, testActor, "gh", mapping.Issuer{Name: "gh", URL: gh.URL(), Kind: "github",
		Audiences: []string{oidctest.DefaultAudience}, Enabled: false}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, gh.Mint(t, gh.GitHubClaims(nil))); !errors.Is(err, identity.ErrUntrustedIssuer) {
		t.Fatalf("disabled issuer: %v", err)
	}
	other := oidctest.New(t)
	if _, err := v.Verify(ctx, other.Mint(t, other.GitHubClaims(nil))); !errors.Is(err, identity.ErrUntrustedIssuer) {
		t.Fatalf("unregistered issuer: %v", err)
	}
	if n := other.DiscoveryRequests() + other.JWKSRequests(); n != 0 {
		t.Fatalf("the unregistered issuer was fetched from %d times", n)
	}
}
