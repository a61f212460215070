package bridge_test

import (
	"testing"
	"time"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/identity"
	"github.com/oidc-bridge/oidc-bridge/mapping"
	"github.com/oidc-bridge/oidc-bridge/providers"
	"github.com/oidc-bridge/oidc-bridge/providers/aws"
	"github.com/oidc-bridge/oidc-bridge/providers/azure"
	"github.com/oidc-bridge/oidc-bridge/providers/gcp"
	"github.com/oidc-bridge/oidc-bridge/providers/jwt"
)

// TestWireConstants: the contract's constants in bridge/api, which imports
// nothing of the server, say what the server does.
func TestWireConstants(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name      string
		api, want any
	}{
		{"DefaultMaxDurationSeconds", api.DefaultMaxDurationSeconds, mapping.DefaultMaxDuration},
		{"MinTokenLimitSeconds", api.MinTokenLimitSeconds, int(identity.MinTokenLimit / time.Second)},
		{"MaxTokenLimitSeconds", api.MaxTokenLimitSeconds, int(identity.MaxTokenLimit / time.Second)},
		{"MaxJWKSBytes", api.MaxJWKSBytes, identity.MaxStaticJWKSSize},
		{"MaxJWKSKeys", api.MaxJWKSKeys, identity.MaxStaticJWKSKeys},
		{"ReplayScopeToken", api.ReplayScopeToken, mapping.ReplayScopeToken},
		{"ReplayScopeTokenMapping", api.ReplayScopeTokenMapping, mapping.ReplayScopeTokenMapping},
		{"ModeEnforce", api.ModeEnforce, mapping.ModeEnforce},
		{"ModeAudit", api.ModeAudit, mapping.ModeAudit},
		{"ProviderAWS", api.ProviderAWS, aws.Name},
		{"ProviderGCP", api.ProviderGCP, gcp.Name},
		{"ProviderAzure", api.ProviderAzure, azure.Name},
		{"ProviderJWT", api.ProviderJWT, jwt.Name},
		{"TokenID", api.TokenID("a token"), providers.TokenID("a token")},
	} {
		if c.api != c.want {
			t.Errorf("api.%s = %v, the server's is %v", c.name, c.api, c.want)
		}
	}
}
