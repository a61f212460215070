package providers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"github.com/oidc-bridge/oidc-bridge/identity"
)

// Provider mints credentials on one cloud.
type Provider interface {
	// Name is the provider's name in mappings: aws, gcp, azure or jwt.
	Name() string
	// Mint returns a credential for req with at most one call to the
	// cloud that issues it: no SDK retries, so that one issuance record
	// stands for at most one credential (the client retries, with a fresh
	// token). Its errors wrap ErrRefused when the cloud said no or
	// ErrUnavailable when the cloud is failing; an ambiguous outcome is
	// an Error with Indeterminate set.
	Mint(ctx context.Context, req Request) (Credential, error)
}

// Request is one mint.
type Request struct {
	// IssuanceID is the ledger row this mint belongs to.
	IssuanceID string
	// Mapping is the mapping's name; Target its provider's target object.
	Mapping string
	Target  json.RawMessage
	// Claims are the verified token's claims, for session names and tags.
	Claims *identity.Claims
	// Duration is the credential's requested lifetime.
	Duration time.Duration
	// Downscope is what the client asked for below the mapping, already
	// checked by the provider's CheckDownscope.
	Downscope Downscope
}

// Credential is what the exchange returns, with what the ledger records.
type Credential struct {
	// ID identifies the credential without revealing it (an AWS access key
	// id, a hash prefix of a token). It is recorded in the ledger.
	ID        string
	ExpiresAt time.Time
	// Body is the provider's `credentials` object of the contract. It is
	// never logged or stored.
	Body any
}

var (
	// ErrRefused: the cloud refused the request (access denied, bad
	// target). The bridge answers 502 provider_error and does not retry.
	ErrRefused = errors.New("providers: refused")
	// ErrUnavailable: the cloud failed or timed out (not retried).
	ErrUnavailable = errors.New("providers: unavailable")
)

// Error carries the provider's own error code for the client's message,
// stripped of account details.
type Error struct {
	Provider string
	Code     string
	Err      error // ErrRefused or ErrUnavailable, possibly wrapped
	// Indeterminate means the cloud may have issued a credential that never
	// reached the bridge (a timeout or broken connection after the request
	// was sent, an unreadable answer). The bridge then keeps the token spent
	// and leaves the issuance pending, to be marked unknown, rather than
	// recording a failure that would let the token be used again.
	Indeterminate bool
	// Detail, when set, is a sentence for the client about what the cloud
	// refused, built by the provider from names the mapping's target holds
	// (a permission, a repository), never from the cloud's own text.
	Detail string
	// RetryAfter, when set, is how long the cloud asked to wait (a rate
	// limit's Retry-After or reset); the bridge answers it as its own
	// Retry-After.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	return "providers: " + e.Provider + ": " + e.Code + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// AWSCredentials is the `credentials` object of an aws exchange.
type AWSCredentials struct {
	AccessKeyID     string    `json:"access_key_id"`
	SecretAccessKey string    `json:"secret_access_key"`
	SessionToken    string    `json:"session_token"`
	Expiration      time.Time `json:"expiration"`
	Region          string    `json:"region"`
	// AccountID is the AWS account of the assumed role, read from the
	// mapping's role ARN (what GetCallerIdentity's Account would say).
	AccountID string `json:"account_id"`
}

// GCPCredentials is the `credentials` object of a gcp exchange.
type GCPCredentials struct {
	// AccessToken is set for token_format access_token (the default),
	// IDToken (with Audience, its aud) for id_token: exactly one is.
	AccessToken    string    `json:"access_token,omitempty"`
	IDToken        string    `json:"id_token,omitempty"`
	TokenType      string    `json:"token_type"`
	ExpiresAt      time.Time `json:"expires_at"`
	ServiceAccount string    `json:"service_account"`
	Audience       string    `json:"audience,omitempty"`
}

// AzureCredentials is the `credentials` object of an azure exchange.
type AzureCredentials struct {
	AccessToken string    `json:"access_token"`
	TokenType   string    `json:"token_type"`
	ExpiresAt   time.Time `json:"expires_at"`
	TenantID    string    `json:"tenant_id"`
	ClientID    string    `json:"client_id"`
	Scope       string    `json:"scope"`
}

// JWTCredentials is the `credentials` object of a jwt exchange.
type JWTCredentials struct {
	Token     string    `json:"token"`
	TokenType string    `json:"token_type"`
	ExpiresAt time.Time `json:"expires_at"`
	Audience  string    `json:"audience"`
}

// TokenID identifies a bearer token in the ledger without revealing it:
// "sha256:" and the first 16 hex digits of its SHA-256, enough to match a
// token found elsewhere, useless to present.
func TokenID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "sha256:" + hex.EncodeToString(sum[:8])
}

// GitHubCredentials is the `credentials` object of a github exchange: an
// installation access token (api.GitHubCredentials).
type GitHubCredentials struct {
	Token        string            `json:"token"`
	TokenType    string            `json:"token_type"`
	ExpiresAt    time.Time         `json:"expires_at"`
	Repositories []string          `json:"repositories"`
	Permissions  map[string]string `json:"permissions"`
	APIURL       string            `json:"api_url"`
	ServerURL    string            `json:"server_url"`
}
