package api

import "time"

// GitHubApp is a GitHub App the bridge mints installation tokens with, as
// the admin API reads and writes it (GET|POST /v1/admin/github-apps,
// GET|PUT|DELETE /v1/admin/github-apps/{name}). Mappings of the github
// provider name it in their target's app.
type GitHubApp struct {
	Name string `json:"name"`
	// AppID is the App's numeric id (its settings page's "App ID").
	AppID int64 `json:"app_id"`
	// BaseURL is the GitHub REST API the App lives on: empty for
	// github.com (https://api.github.com/), or a GitHub Enterprise
	// Server's https://HOST/api/v3/.
	BaseURL string `json:"base_url,omitempty"`
	// PrivateKey is write-only: a PEM RSA private key as GitHub generates
	// it for the App. It is encrypted at rest with the key-encryption key
	// and never returned. On POST it is required; on PUT it is optional:
	// a new key becomes the App's signing key and the previous one stays
	// valid (tried when GitHub refuses the new one) until the next
	// rotation or until a PUT with RetirePreviousKey.
	PrivateKey string `json:"private_key,omitempty"`
	// RetirePreviousKey, on PUT, drops the previous key (the end of a
	// rotation, once GitHub no longer knows it). Write-only.
	RetirePreviousKey bool `json:"retire_previous_key,omitempty"`

	// Read-only: set by the server, ignored on input.
	// Keys are the keys the bridge holds for the App, the signing key
	// first, named by GitHub's fingerprint form ("SHA256:<base64 of the
	// SHA-256 of the public key's DER>", as the App's settings page shows).
	Keys      []GitHubAppKey `json:"keys,omitempty"`
	CreatedAt time.Time      `json:"created_at,omitzero"`
	UpdatedAt time.Time      `json:"updated_at,omitzero"`
}

// GitHubAppKey is what the admin API shows of an App's private key.
type GitHubAppKey struct {
	Fingerprint string    `json:"fingerprint"`
	AddedAt     time.Time `json:"added_at"`
	// Signing is true for the key the bridge signs App JWTs with.
	Signing bool `json:"signing"`
}

// GitHubCredentials is the `credentials` object of a github exchange: an
// installation access token. The ledger's credential_id is TokenID(Token).
type GitHubCredentials struct {
	Token     string    `json:"token"`
	TokenType string    `json:"token_type"` // "Bearer"
	ExpiresAt time.Time `json:"expires_at"`
	// Repositories are the full names ("acme/web") the token reaches, as
	// GitHub answered; empty for all of the installation's.
	Repositories []string `json:"repositories"`
	// Permissions are the permissions GitHub granted.
	Permissions map[string]string `json:"permissions"`
	// APIURL is the REST API the token works against
	// (https://api.github.com/ or https://HOST/api/v3/), ServerURL the
	// web and git host (https://github.com/ or https://HOST/): what git's
	// credential helper is configured for.
	APIURL    string `json:"api_url"`
	ServerURL string `json:"server_url"`
}

// RevokeCredentialRequest is the body of POST /v1/credentials/revoke: a job
// hands back a bearer credential the bridge issued to it (a github
// installation token) at its end. Holding the token is the authorization:
// the bridge revokes it at its source (GitHub's DELETE /installation/token)
// and records revoked_at on the ledger row whose credential_id is
// TokenID(Token).
type RevokeCredentialRequest struct {
	Token string `json:"token"`
}

// RevokeCredentialResponse answers a RevokeCredentialRequest (200): the
// credential's id and when it was revoked. Revoking a revoked (or expired)
// credential answers 200 again with the first revocation's time. No issued
// credential with that id: 404 not_found. The source refusing for another
// reason than the token being already invalid: 502 provider_error, and the
// ledger row is left as it was.
type RevokeCredentialResponse struct {
	CredentialID string    `json:"credential_id"`
	RevokedAt    time.Time `json:"revoked_at"`
}

// GitHubAppList is the answer of GET /v1/admin/github-apps, by name.
type GitHubAppList struct {
	GitHubApps []GitHubApp `json:"github_apps"`
}
