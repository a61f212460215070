package bridge

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/githubapp"
	"github.com/oidc-bridge/oidc-bridge/ledger"
	"github.com/oidc-bridge/oidc-bridge/mapping"
	"github.com/oidc-bridge/oidc-bridge/providers"
	"github.com/oidc-bridge/oidc-bridge/providers/github"
)

// GitHubApps stores the GitHub Apps of the github provider
// (githubapp.Store).
type GitHubApps interface {
	List(ctx context.Context) ([]githubapp.App, error)
	Get(ctx context.Context, name string) (githubapp.App, error)
	Create(ctx context.Context, by mapping.Actor, in githubapp.Input, key *rsa.PrivateKey) (githubapp.App, error)
	Update(ctx context.Context, by mapping.Actor, name string, in githubapp.Input, key *rsa.PrivateKey) (githubapp.App, error)
	Delete(ctx context.Context, by mapping.Actor, name, provider string, usedBy func(json.RawMessage) bool) error
}

// CredentialLedger finds an issued credential by its id and records its
// revocation by its holder (ledger.Ledger). The server uses its
// Options.Ledger when that implements it.
type CredentialLedger interface {
	FindCredential(ctx context.Context, provider, credentialID string) (ledger.IssuedCredential, error)
	MarkCredentialRevoked(ctx context.Context, issuanceID, by, reason string) (time.Time, error)
}

// TokenRevoker revokes a bearer token at its source (github.Provider:
// GitHub's DELETE /installation/token). The server uses its
// Options.Providers[provider] when that implements it.
type TokenRevoker interface {
	RevokeToken(ctx context.Context, target json.RawMessage, token string) error
}

// What the ledger records of a revocation by the credential's holder.
const (
	holderRevoker    = "credential-holder"
	holderRevocation = "returned by its holder (POST /v1/credentials/revoke)"
)

func apiGitHubApp(a githubapp.App) api.GitHubApp {
	out := api.GitHubApp{Name: a.Name, AppID: a.AppID, BaseURL: a.BaseURL, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt}
	for _, k := range a.Keys {
		out.Keys = append(out.Keys, api.GitHubAppKey{Fingerprint: k.Fingerprint, AddedAt: k.AddedAt, Signing: k.Signing})
	}
	return out
}

func (s *Server) githubApps() (GitHubApps, error) {
	if s.opts.GitHubApps == nil {
		return nil, unavailableBecause("this bridge keeps no GitHub Apps: it has no key-encryption key (BRIDGE_KEY_ENCRYPTION_KEY) to encrypt their keys with")
	}
	return s.opts.GitHubApps, nil
}

func (s *Server) listGitHubApps(c echo.Context) error {
	st, err := s.githubApps()
	if err != nil {
		return err
	}
	as, err := st.List(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, api.GitHubAppList{GitHubApps: each(as, apiGitHubApp)})
}

func (s *Server) getGitHubApp(c echo.Context) error {
	st, err := s.githubApps()
	if err != nil {
		return err
	}
	a, err := st.Get(c.Request().Context(), c.Param("name"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, apiGitHubApp(a))
}

// readGitHubApp decodes and validates an App; the key is parsed (nil when
// none is given on an update). Read-only fields are ignored.
func readGitHubApp(c echo.Context, pathName string) (githubapp.Input, *rsa.PrivateKey, error) {
	var in api.GitHubApp
	if err := decodeStrict(c, &in); err != nil {
		return githubapp.Input{}, nil, err
	}
	gi := githubapp.Input{Name: in.Name, AppID: in.AppID, BaseURL: in.BaseURL, PrivateKey: in.PrivateKey,
		RetirePreviousKey: in.RetirePreviousKey}
	if pathName != "" {
		if gi.Name != "" && gi.Name != pathName {
			return gi, nil, invalid("name", "name: an App cannot be renamed; create one under the new name and move the mappings")
		}
		gi.Name = pathName
	}
	key, err := gi.Validate(pathName == "")
	return gi, key, err
}

func (s *Server) createGitHubApp(c echo.Context) error {
	st, err := s.githubApps()
	if err != nil {
		return err
	}
	in, key, err := readGitHubApp(c, "")
	if err != nil {
		return err
	}
	out, err := st.Create(c.Request().Context(), actor(c), in, key)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, "/v1/admin/github-apps/"+url.PathEscape(out.Name))
	return c.JSON(http.StatusCreated, apiGitHubApp(out))
}

func (s *Server) updateGitHubApp(c echo.Context) error {
	st, err := s.githubApps()
	if err != nil {
		return err
	}
	in, key, err := readGitHubApp(c, c.Param("name"))
	if err != nil {
		return err
	}
	out, err := st.Update(c.Request().Context(), actor(c), in.Name, in, key)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, apiGitHubApp(out))
}

func (s *Server) deleteGitHubApp(c echo.Context) error {
	st, err := s.githubApps()
	if err != nil {
		return err
	}
	name := c.Param("name")
	if err := st.Delete(c.Request().Context(), actor(c), name, github.Name,
		func(t json.RawMessage) bool { return github.AppName(t) == name }); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// checkGitHubApp refuses a github mapping whose target names an App that
// is not registered. A target that does not decode is left to the
// mapping's validation, which names its fault.
func (s *Server) checkGitHubApp(ctx context.Context, m mapping.Mapping) error {
	if m.Provider != github.Name {
		return nil
	}
	name := github.AppName(m.Target)
	if name == "" {
		return nil
	}
	st, err := s.githubApps()
	if err != nil {
		return err
	}
	if _, err := st.Get(ctx, name); errors.Is(err, mapping.ErrNotFound) {
		return &mapping.ValidationError{Field: "target.app",
			Message: fmt.Sprintf("target.app: no GitHub App %q is registered; register it first (POST /v1/admin/github-apps)", name)}
	} else if err != nil {
		return err
	}
	return nil
}

// revokeCredential is POST /v1/credentials/revoke: a job hands back a
// bearer credential the bridge issued to it (a github installation token).
// Holding the token is the authorization. The bridge finds the issued row
// by the token's id, revokes the token at its source and marks the row
// revoked; a revoked or expired credential answers its revocation again.
// The token is never logged or stored.
func (s *Server) revokeCredential(c echo.Context) error {
	if ok, wait := s.limiter.allow(clientKey(c.RealIP())); !ok {
		return rateLimited(wait, "too many requests from this client; retry later")
	}
	var req api.RevokeCredentialRequest
	if err := decodeStrict(c, &req); err != nil {
		return err
	}
	token := strings.TrimSpace(req.Token)
	if token == "" {
		return invalid("token", "token: required: the credential's token, as the exchange answered it")
	}
	cl, ok := s.opts.Ledger.(CredentialLedger)
	if !ok {
		return errors.New("revoke credential: the server's ledger cannot find credentials")
	}
	ctx := c.Request().Context()
	id := providers.TokenID(token)
	row, err := cl.FindCredential(ctx, github.Name, id)
	if err != nil {
		return err
	}
	log := s.log.With("request_id", c.Response().Header().Get(echo.HeaderXRequestID), "credential_id", id,
		"issuance_id", row.IssuanceID, "mapping", row.Mapping)
	// A row already marked revoked is revoked at its source all the same:
	// an admin revocation (POST /v1/admin/issuances/revoke) marks github
	// rows but cannot reach GitHub, which revokes a token only when shown
	// it; a token GitHub no longer knows answers 401, which is success.
	if row.ExpiresAt.After(time.Now()) {
		tr, ok := s.opts.Providers[row.Provider].(TokenRevoker)
		if !ok {
			return errors.New("revoke credential: the provider cannot revoke tokens")
		}
		rctx, cancel := context.WithTimeout(ctx, s.opts.MintTimeout)
		err := tr.RevokeToken(rctx, row.Target, token)
		cancel()
		if err != nil {
			log.Warn("credential not revoked at its source; the ledger row is left as it was", "err", err)
			return err
		}
	}
	at, err := cl.MarkCredentialRevoked(ctx, row.IssuanceID, holderRevoker, holderRevocation)
	if err != nil {
		return err
	}
	log.Info("credential revoked by its holder", "revoked_at", at)
	return c.JSON(http.StatusOK, api.RevokeCredentialResponse{CredentialID: id, RevokedAt: at})
}
