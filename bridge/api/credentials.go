package api

import (
	"crypto/sha256"
	"encoding/hex"
	"time"
)

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

// TokenID is how the ledger (and a credential's id in the audit view)
// names a bearer token without revealing it:
// "sha256:" and the first 16 hex digits of its SHA-256, enough to match a
// token found elsewhere, useless to present.
func TokenID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "sha256:" + hex.EncodeToString(sum[:8])
}
