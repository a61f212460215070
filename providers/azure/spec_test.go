package azure

import (
	"errors"
	"strings"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/providers"
)

// TestSubjectLimit checks the subject rule itself (a mapping name that
// passes the admin API's name rule cannot break it) and that the longest
// mapping name fits Entra's subject limit.
func TestSubjectLimit(t *testing.T) {
	t.Parallel()
	check := func(name string) error { return Spec{}.CheckMapping(providers.Mapping{Name: name}) }
	longest := strings.Repeat("x", 64)
	if !providers.ValidMappingName(longest) {
		t.Fatal("the longest name is not valid")
	}
	if err := check(longest); err != nil {
		t.Errorf("the longest mapping name breaks Entra's subject limit: %v", err)
	}
	fits := strings.Repeat("x", maxFederationField-len(Subject("")))
	if err := check(fits); err != nil {
		t.Errorf("a 600-character subject refused: %v", err)
	}
	var fe *providers.FieldError
	if err := check(fits + "x"); !errors.As(err, &fe) || fe.Field != "name" {
		t.Errorf("a 601-character subject: %v, want a refusal of name", err)
	}
}
