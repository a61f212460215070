package jwt_test

import (
	"slices"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/mapping"
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
