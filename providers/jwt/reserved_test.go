package jwt_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/identity"
	"github.com/oidc-bridge/oidc-bridge/mapping"
	"github.com/oidc-bridge/oidc-bridge/providers"
	"github.com/oidc-bridge/oidc-bridge/providers/jwt"
)

// TestReservedClaimsRefused: the admin API refuses every static claim the
// provider reserves, naming it, since both run the provider's one decode.
func TestReservedClaimsRefused(t *testing.T) {
	t.Parallel()
	for _, name := range jwt.ReservedClaims() {
		m := &mapping.Mapping{Name: "m", Issuer: "github", Enabled: true, Provider: "jwt",
			Conditions: mapping.Conditions{Repository: mapping.One("acme/web")}, MaxDurationSeconds: 3600,
			Target: json.RawMessage(`{"audience":"https://vault.example.com","claims":{"` + name + `":"x"}}`)}
		var ve *mapping.ValidationError
		if err := mapping.ValidateMapping(m, identity.KindGitHub); !errors.As(err, &ve) || ve.Field != "target.claims."+name {
			t.Errorf("claim %q: %v, want a refusal of target.claims.%s", name, err, name)
		}
	}
}

// TestMappingNamesAgree: providers.ValidMappingName, which guards the
// subjects the providers build, accepts exactly the names the admin API
// accepts, none of which can carry a ":".
func TestMappingNamesAgree(t *testing.T) {
	t.Parallel()
	names := []string{"", "a", "deploy", "web-prod.deploy_1", "0abc", "-a", ".a", "_a", "A", "a:b", "a/b", "a b",
		"é", strings.Repeat("a", 64), strings.Repeat("a", 65), "a\x00"}
	for c := 0; c < 128; c++ {
		names = append(names, "a"+string(rune(c)), string(rune(c))+"a")
	}
	for _, n := range names {
		if got, want := providers.ValidMappingName(n), mapping.ValidName(n); got != want {
			t.Errorf("%q: providers %v, mapping %v", n, got, want)
		}
		if providers.ValidMappingName(n) && strings.Contains(n, ":") {
			t.Errorf("%q has a colon", n)
		}
	}
}
