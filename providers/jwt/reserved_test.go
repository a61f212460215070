package jwt_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/mapping"
	"github.com/oidc-bridge/oidc-bridge/providers"
	"github.com/oidc-bridge/oidc-bridge/providers/jwt"
)

// TestReservedClaimsAgree: the admin API refuses exactly the static claims
// the provider would refuse at mint time, so no accepted mapping fails later.
func TestReservedClaimsAgree(t *testing.T) {
	t.Parallel()
	a, b := jwt.ReservedClaims(), mapping.ReservedJWTClaims()
	slices.Sort(a)
	slices.Sort(b)
	if !slices.Equal(a, b) {
		t.Fatalf("providers/jwt reserves %v, mapping validation %v", a, b)
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
