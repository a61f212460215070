package mapping

import (
	"github.com/oidc-bridge/oidc-bridge/providers"
	"github.com/oidc-bridge/oidc-bridge/providers/aws"
	"github.com/oidc-bridge/oidc-bridge/providers/azure"
	"github.com/oidc-bridge/oidc-bridge/providers/gcp"
	"github.com/oidc-bridge/oidc-bridge/providers/github"
	"github.com/oidc-bridge/oidc-bridge/providers/jwt"
)

// defaultProviders is every provider a mapping may name, one line each, in
// the order the admin API's messages list them. Adding a provider is its
// package under providers/ (see providers/doc.go) and its line here.
var defaultProviders = providers.NewRegistry(
	aws.Spec{},
	gcp.Spec{},
	azure.Spec{},
	jwt.Spec{},
	github.Spec{},
)

// Providers returns the registry of every provider a mapping may name,
// each spec in its lenient reading (no deployment settings); see
// ValidateOptions for the server's.
func Providers() providers.Registry { return defaultProviders }

// KnownProvider reports whether name is a provider Providers knows.
func KnownProvider(name string) bool {
	_, ok := defaultProviders.Lookup(name)
	return ok
}
