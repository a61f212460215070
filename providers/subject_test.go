package providers_test

import (
	"testing"

	"github.com/oidc-bridge/oidc-bridge/providers"
	"github.com/oidc-bridge/oidc-bridge/providers/aws"
	"github.com/oidc-bridge/oidc-bridge/providers/azure"
	"github.com/oidc-bridge/oidc-bridge/providers/gcp"
	"github.com/oidc-bridge/oidc-bridge/providers/jwt"
)

// TestSubjects: each provider's tokens have a subject of their own, which
// names the provider and the mapping and nothing else.
func TestSubjects(t *testing.T) {
	t.Parallel()
	got := map[string]string{
		"aws":   aws.WebIdentitySubject("deploy"),
		"gcp":   gcp.Subject("deploy"),
		"azure": azure.Subject("deploy"),
		"jwt":   jwt.Subject("deploy"),
	}
	want := map[string]string{
		"aws":   "oidc-bridge:aws:mapping:deploy",
		"gcp":   "oidc-bridge:gcp:mapping:deploy",
		"azure": "oidc-bridge:azure:mapping:deploy",
		"jwt":   "oidc-bridge:jwt:mapping:deploy",
	}
	seen := map[string]bool{}
	for p, s := range got {
		if s != want[p] {
			t.Errorf("%s subject %q, want %q", p, s, want[p])
		}
		if seen[s] {
			t.Errorf("subject %q shared", s)
		}
		seen[s] = true
	}
}

func TestCloudAudience(t *testing.T) {
	t.Parallel()
	for aud, want := range map[string]bool{
		"sts.amazonaws.com":                     true,
		" STS.amazonaws.com\t":                  true,
		"sts.amazonaws.com.cn":                  true,
		"sts.eusc-de-east-1.amazonaws.eu":       true,
		"https://user@sts.amazonaws.com:443":    true,
		"api://AzureADTokenExchangeUSGov":       true,
		"api://AzureADTokenExchangeChina":       true,
		"//iam.googleapis.com/projects/1":       true,
		"https://iam.googleapis.com/x":          true,
		"sts.googleapis.com":                    true,
		"":                                      false,
		"https://vault.example.com":             false,
		"amazonaws.com.evil.example":            false,
		"https://example.com/sts.amazonaws.com": false,
		"api://other":                           false,
	} {
		if got := providers.CloudAudience(aud); got != want {
			t.Errorf("CloudAudience(%q) = %v, want %v", aud, got, want)
		}
	}
}

func TestValidMappingName(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]bool{
		"deploy": true, "web-prod.1_a": true, "0": true,
		"": false, "Deploy": false, "a:b": false, "-a": false, ".a": false, "a/b": false,
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa":  true,
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa": false,
	} {
		if got := providers.ValidMappingName(name); got != want {
			t.Errorf("ValidMappingName(%q) = %v, want %v", name, got, want)
		}
	}
}
