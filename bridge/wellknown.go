package bridge

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/labstack/echo/v4"

	"github.com/oidc-bridge/oidc-bridge/signing"
)

// KeySource publishes the bridge's signing keys (signing.Manager).
type KeySource interface {
	JWKS(ctx context.Context) (jose.JSONWebKeySet, error)
}

const (
	jwksPath      = "/.well-known/jwks.json"
	discoveryPath = "/.well-known/openid-configuration"
	// keysMaxAge is how long verifiers may cache the JWKS: well under the
	// signing package's publish lead, so a new key is seen before it signs.
	keysMaxAge = 5 * time.Minute
)

var cacheControl = fmt.Sprintf("public, max-age=%d", int(keysMaxAge.Seconds()))

// discovery is GET /.well-known/openid-configuration: the bridge as an
// OIDC issuer, for the clouds and services that verify its tokens.
func (s *Server) discovery(c echo.Context) error {
	iss := s.opts.PublicURL
	c.Response().Header().Set("Cache-Control", cacheControl)
	return c.JSON(http.StatusOK, map[string]any{
		"issuer":                                iss,
		"jwks_uri":                              iss + jwksPath,
		"token_endpoint":                        iss + "/oauth2/token",
		"grant_types_supported":                 []string{grantTokenExchange},
		"response_types_supported":              []string{"id_token"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{signing.RS256, signing.ES256},
		"claims_supported": []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "act",
			"repository", "repository_id", "ref", "environment", "event_name", "workflow_ref", "actor", "run_id", "run_attempt"},
	})
}

// jwks is GET /.well-known/jwks.json: the public keys verifiers need,
// including the next key (before it signs) and recently retired ones.
func (s *Server) jwks(c echo.Context) error {
	set, err := s.opts.Keys.JWKS(c.Request().Context())
	if err != nil {
		s.log.Warn("jwks unavailable", "err", err)
		return unavailableBecause("the signing keys cannot be read right now; retry later")
	}
	for _, k := range set.Keys {
		if !k.IsPublic() {
			// Never publish a private part, whatever the source returned.
			s.log.Error("jwks: refusing to publish a non-public key", "kid", k.KeyID)
			return echo.NewHTTPError(http.StatusInternalServerError)
		}
	}
	if set.Keys == nil {
		set.Keys = []jose.JSONWebKey{}
	}
	c.Response().Header().Set("Cache-Control", cacheControl)
	return c.JSON(http.StatusOK, set)
}
