package github

import (
	"context"
	"encoding/json"
	"net/http"

	gh "github.com/google/go-github/v88/github"

	"github.com/oidc-bridge/oidc-bridge/providers"
)

// RevokeToken revokes an installation token the provider issued for
// target: GitHub's DELETE /installation/token, authenticated with the
// token itself, against the REST API of the App the target names (read
// now: an App's base URL does not change under its tokens in practice, and
// a token GitHub does not know answers 401 anywhere). A token GitHub
// answers 401 for is already invalid (expired or revoked): that is success.
func (p *Provider) RevokeToken(ctx context.Context, raw json.RawMessage, token string) error {
	log := p.log.With("credential_id", providers.TokenID(token))
	t, err := decodeTarget(raw)
	if err != nil {
		log.Error("github: revoking a token of a target that does not decode", "error", err)
		return refused("InvalidTarget", "")
	}
	app, _, err := p.app(ctx, t.App, false)
	if err != nil {
		return p.appError(log, t.App, err)
	}
	c, err := newClient(app.BaseURL, p.transport, gh.WithAuthToken(token))
	if err != nil {
		return unavailable("ClientError")
	}
	_, err = c.Apps.RevokeInstallationToken(ctx)
	switch status(err) {
	case 0:
		if err != nil {
			return p.failed(ctx, log, "token revocation", err, false)
		}
		return nil
	case http.StatusUnauthorized:
		log.Info("github: the token was already invalid at GitHub")
		return nil
	}
	return p.failed(ctx, log, "token revocation", err, false)
}
