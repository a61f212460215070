package main

import (
	"fmt"
	"strings"

	"github.com/oidc-bridge/oidc-bridge/ciclient"
)

// The client commands' environment: one pair for every admin client (explain
// here, the Terraform provider, the docs) and the URL alone for the pipeline
// client (exchange). No client variable shares a name with the server's
// (BRIDGE_*): an admin token exported for a client must never become the
// server's bootstrap token when `serve` is started from the same shell.
const (
	envBridgeURL  = ciclient.EnvBridgeURL
	envAdminToken = "OIDC_BRIDGE_ADMIN_TOKEN"
)

// Deprecated names, still read for one release with a warning on stderr.
const (
	deprecatedEnvEndpoint = "OIDC_BRIDGE_ENDPOINT" // use OIDC_BRIDGE_URL
	deprecatedEnvToken    = "OIDC_BRIDGE_TOKEN"    // use OIDC_BRIDGE_ADMIN_TOKEN
)

// clientEnv is env[name], else env[alias] (a deprecated name) with a warning
// on stderr; the warning also tells when alias is set but ignored.
func (a *app) clientEnv(env map[string]string, name, alias string) string {
	v, old := strings.TrimSpace(env[name]), strings.TrimSpace(env[alias])
	switch {
	case old == "":
	case v == "":
		fmt.Fprintf(a.stderr, "oidc-bridge: warning: %s is deprecated and will be removed in the next release; set %s instead\n", alias, name)
		return old
	case old != v:
		fmt.Fprintf(a.stderr, "oidc-bridge: warning: %s is deprecated and ignored: %s is set\n", alias, name)
	}
	return v
}
