package aws_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/oidc-bridge/oidc-bridge/providers"
	"github.com/oidc-bridge/oidc-bridge/providers/aws"
	"github.com/oidc-bridge/oidc-bridge/test/ststest"
)

// tagsTarget is an aws target with static session tags and transitive keys:
// environment is transitive but the claims below carry none, so it is not
// sent (STS refuses a transitive key that is not a tag).
func tagsTarget(t *testing.T, mode string) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"role_arn": roleARN, "region": "eu-west-1", "mode": mode,
		"session_tags":        map[string]string{"team": "payments", "cost-center": "cc 42/x"},
		"transitive_tag_keys": []string{"Team", "repository", "environment"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMintStaticSessionTags(t *testing.T) {
	s, p := setup(t, aws.Config{})
	c := githubClaims()
	c.Environment = ""
	if _, err := p.Mint(t.Context(), providers.Request{IssuanceID: "iss-1", Mapping: "web-prod-deploy",
		Target: tagsTarget(t, "assume_role"), Claims: c, Duration: time.Hour}); err != nil {
		t.Fatal(err)
	}
	got := s.Calls()[0]
	if got.Tags["team"] != "payments" || got.Tags["cost-center"] != "cc 42/x" || got.Tags["repository"] != "acme/web" {
		t.Errorf("tags %v", got.Tags)
	}
	if _, ok := got.Tags["environment"]; ok {
		t.Errorf("tags %v carry an environment the claims lack", got.Tags)
	}
	if d := cmp.Diff([]string{"team", "repository"}, got.TransitiveTagKeys); d != "" {
		t.Errorf("transitive keys (-want +got):\n%s", d)
	}
}

func TestWebIdentityStaticSessionTags(t *testing.T) {
	s, signer, p := webSetup(t, aws.Config{})
	s.TrustRole(roleARN, ststest.TrustPolicy{Issuer: signer.Issuer(), Audience: "sts.amazonaws.com",
		Subject: "oidc-bridge:aws:mapping:web-prod-deploy"})
	req := webRequest(t)
	req.Claims.Environment = ""
	req.Target = tagsTarget(t, "web_identity")
	if _, err := p.Mint(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	got := s.Calls()[0]
	if got.Tags["team"] != "payments" || got.Tags["cost-center"] != "cc 42/x" || got.Tags["repository"] != "acme/web" {
		t.Errorf("tags from the token %v", got.Tags)
	}
	if d := cmp.Diff([]string{"team", "repository"}, got.TransitiveTagKeys); d != "" {
		t.Errorf("transitive keys from the token (-want +got):\n%s", d)
	}
}

// A target changed behind the admin API's back fails closed: a static tag
// may not stand in for a claim-derived one, nor a transitive key name a tag
// the session lacks.
func TestMintRefusesReservedStaticTags(t *testing.T) {
	s, p := setup(t, aws.Config{})
	for _, raw := range []string{
		`{"role_arn":"` + roleARN + `","region":"eu-west-1","session_tags":{"Environment":"production"}}`,
		`{"role_arn":"` + roleARN + `","region":"eu-west-1","session_tags":{"aws:x":"y"}}`,
		`{"role_arn":"` + roleARN + `","region":"eu-west-1","session_tags":{"a":"1"},"transitive_tag_keys":["b"]}`,
		`{"role_arn":"` + roleARN + `","region":"eu-west-1","session_tags":{"a":"1","a":"2"}}`,
		`{"role_arn":"` + roleARN + `","region":"eu-west-1","session_tags":{"a":1}}`,
	} {
		_, err := p.Mint(t.Context(), providers.Request{IssuanceID: "iss-1", Mapping: "m", Target: json.RawMessage(raw),
			Claims: githubClaims(), Duration: time.Hour})
		var pe *providers.Error
		if !errors.As(err, &pe) || pe.Code != "InvalidTarget" {
			t.Errorf("%s: %v, want InvalidTarget", raw, err)
		}
	}
	if n := s.CallCount(); n != 0 {
		t.Errorf("%d calls reached STS", n)
	}
}

// With role chaining (the bridge's own credentials a role session), an
// assume_role session is cut to an hour, which STS would otherwise refuse;
// web_identity is not chaining.
func TestRoleChainingCutsAssumeRoleToAnHour(t *testing.T) {
	s, p := setup(t, aws.Config{RoleChaining: true})
	s.SetRoleChainingCaller(true)
	cred, err := p.Mint(t.Context(), providers.Request{IssuanceID: "iss-1", Mapping: "m",
		Target: target(t, map[string]string{"role_arn": roleARN, "region": "eu-west-1"}), Claims: githubClaims(), Duration: 4 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if d := s.Calls()[0].DurationSeconds; d != 3600 {
		t.Errorf("DurationSeconds %d, want 3600", d)
	}
	if d := time.Until(cred.ExpiresAt); d > time.Hour {
		t.Errorf("expires in %v", d)
	}

	// Without the setting, the fake (a role-session caller) refuses, as STS.
	s2, p2 := setup(t, aws.Config{})
	s2.SetRoleChainingCaller(true)
	_, err = p2.Mint(t.Context(), providers.Request{IssuanceID: "iss-2", Mapping: "m",
		Target: target(t, map[string]string{"role_arn": roleARN, "region": "eu-west-1"}), Claims: githubClaims(), Duration: 4 * time.Hour})
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Code != "ValidationError" {
		t.Errorf("%v, want STS's ValidationError", err)
	}
}

func TestWebIdentityIsNotChaining(t *testing.T) {
	s, signer, p := webSetup(t, aws.Config{RoleChaining: true})
	s.TrustRole(roleARN, ststest.TrustPolicy{Issuer: signer.Issuer(), Audience: "sts.amazonaws.com",
		Subject: "oidc-bridge:aws:mapping:web-prod-deploy"})
	req := webRequest(t)
	req.Duration = 4 * time.Hour
	if _, err := p.Mint(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	if d := s.Calls()[0].DurationSeconds; d != 4*3600 {
		t.Errorf("DurationSeconds %d, want %d", d, 4*3600)
	}
}
