package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
)

// gitHubAppList is the body of GET /v1/admin/github-apps, on the pattern
// of the issuers' and mappings' lists ({"issuers": [...]}). bridge/api
// states no list type for the Apps yet: a bare array is read too.
type gitHubAppList struct {
	GitHubApps []api.GitHubApp `json:"github_apps"`
}

func (l *gitHubAppList) UnmarshalJSON(b []byte) error {
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '[' {
		return json.Unmarshal(t, &l.GitHubApps)
	}
	type plain gitHubAppList
	return json.Unmarshal(b, (*plain)(l))
}

// ListGitHubApps returns every GitHub App the bridge mints with, ordered by
// name, without their private keys (the API never returns them).
func (c *Client) ListGitHubApps(ctx context.Context) ([]api.GitHubApp, error) {
	var out gitHubAppList
	if err := c.do(ctx, http.MethodGet, "/v1/admin/github-apps", nil, &out); err != nil {
		return nil, err
	}
	return out.GitHubApps, nil
}

// GetGitHubApp returns the GitHub App called name: its id, base URL and the
// fingerprints of the keys the bridge holds (Keys), never a key.
func (c *Client) GetGitHubApp(ctx context.Context, name string) (api.GitHubApp, error) {
	var out api.GitHubApp
	err := c.do(ctx, http.MethodGet, gitHubAppPath(name), nil, &out)
	return out, err
}

// CreateGitHubApp registers app, whose PrivateKey is required, and returns
// it as stored (Keys filled, no PrivateKey).
func (c *Client) CreateGitHubApp(ctx context.Context, app api.GitHubApp) (api.GitHubApp, error) {
	var out api.GitHubApp
	err := c.do(ctx, http.MethodPost, "/v1/admin/github-apps", writableGitHubApp(app), &out)
	return out, err
}

// UpdateGitHubApp replaces the GitHub App called name with app. An empty
// PrivateKey keeps the App's keys; a new one becomes the signing key and
// the previous stays valid until RetirePreviousKey drops it (a rotation).
func (c *Client) UpdateGitHubApp(ctx context.Context, name string, app api.GitHubApp) (api.GitHubApp, error) {
	var out api.GitHubApp
	err := c.do(ctx, http.MethodPut, gitHubAppPath(name), writableGitHubApp(app), &out)
	return out, err
}

// DeleteGitHubApp removes the GitHub App called name.
func (c *Client) DeleteGitHubApp(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, gitHubAppPath(name), nil, nil)
}

func gitHubAppPath(name string) string { return "/v1/admin/github-apps/" + url.PathEscape(name) }

// writableGitHubApp drops the read-only fields, which the server ignores.
func writableGitHubApp(app api.GitHubApp) api.GitHubApp {
	app.Keys = nil
	app.CreatedAt, app.UpdatedAt = time.Time{}, time.Time{}
	return app
}

// RevokeCredential hands a bearer credential the bridge issued (a github
// installation token) back at POST /v1/credentials/revoke: the bridge
// revokes it at its source and records when on the ledger. Holding the
// token is the authorization, so the call carries no admin token: a Client
// made with an empty admin token serves a job's end. Revoking twice answers
// the first revocation's time; a token the bridge never issued is a 404
// (IsNotFound), a source that refuses a 502 provider_error. The call is
// idempotent, so it is retried like a PUT. The token is never in an error.
func (c *Client) RevokeCredential(ctx context.Context, token string) (api.RevokeCredentialResponse, error) {
	var out api.RevokeCredentialResponse
	if token == "" {
		return out, errors.New("client: revoke: no token")
	}
	err := c.call(ctx, http.MethodPost, "/v1/credentials/revoke", api.RevokeCredentialRequest{Token: token}, &out,
		callOptions{idempotent: true, noAdminToken: true})
	return out, err
}
