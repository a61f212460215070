package api

import (
	"encoding/json"
	"time"
)

// Error codes of the contract.
const (
	CodeInvalidRequest    = "invalid_request"
	CodeInvalidToken      = "invalid_token"
	CodeUntrustedIssuer   = "untrusted_issuer"
	CodeNoMatchingMapping = "no_matching_mapping"
	CodeAmbiguousMapping  = "ambiguous_mapping"
	CodeTokenReplayed     = "token_replayed"
	CodeQuotaExceeded     = "quota_exceeded"
	CodeRateLimited       = "rate_limited"
	CodeProviderError     = "provider_error"
	CodeUnavailable       = "unavailable"
	CodeUnauthorized      = "unauthorized"
	CodeNotFound          = "not_found"
	CodeConflict          = "conflict"
	// CodeForbidden: a valid admin token without the scope the request
	// needs (read for GET and HEAD, write for the rest).
	CodeForbidden = "forbidden"
	// Codes of transport-level refusals, beyond the contract's table.
	CodeMethodNotAllowed = "method_not_allowed"
	CodeRequestTooLarge  = "request_too_large"
	CodeInternal         = "internal_error"
)

// Error is every error response's body.
type Error struct {
	Error   string `json:"error"`
	Message string `json:"message"`
	// Field names the request field at fault, for invalid_request.
	Field      string `json:"field,omitempty"`
	IssuanceID string `json:"issuance_id,omitempty"`
	// RequestID ties an internal error to the server's log.
	RequestID string `json:"request_id,omitempty"`
	// TraceID is the request's trace id, when the server traces.
	TraceID string `json:"trace_id,omitempty"`
	// Warnings are every lint finding of an issuer or mapping refused
	// under ?lint=strict (Field is the first one's), in lint order.
	Warnings []Warning `json:"warnings,omitempty"`
}

// ExchangeRequest is the body of POST /v1/exchange. Every field is
// optional; an empty body is a zero request.
type ExchangeRequest struct {
	// Mapping names the mapping to use; it must admit the token.
	Mapping string `json:"mapping,omitempty"`
	// Provider narrows the selection to mappings of this provider.
	Provider string `json:"provider,omitempty"`
	// DurationSeconds is the credential's requested lifetime: from the
	// provider's minimum to the mapping's max_duration_seconds. Default:
	// the mapping's maximum, at most 3600.
	DurationSeconds int `json:"duration_seconds,omitempty"`
	// InlinePolicy (session_policy) narrows an aws credential: an IAM policy document (a
	// JSON string) sent to STS as the session's inline Policy, which AWS
	// intersects with the role's policies. Refused (invalid_request,
	// field session_policy) for a mapping with a session policy of its
	// own, and for other providers.
	InlinePolicy string `json:"session_policy,omitempty"` // targetlint:allow the client's narrowing, checked by the aws provider, not a target's field
	// Scopes narrows a gcp credential to a subset of the mapping's
	// scopes; a scope the mapping lacks is invalid_request, field scopes.
	Scopes []string `json:"scopes,omitempty"`
}

// ExchangeResponse is the 200 body of POST /v1/exchange.
type ExchangeResponse struct {
	IssuanceID string    `json:"issuance_id"`
	Mapping    string    `json:"mapping"`
	Provider   string    `json:"provider"`
	ExpiresAt  time.Time `json:"expires_at"`
	// Credentials is the provider's credentials object: AWSCredentials,
	// GCPCredentials, AzureCredentials or JWTCredentials.
	Credentials json.RawMessage `json:"credentials"`
}

// TokenExchangeResponse is the 200 body of POST /oauth2/token (RFC 8693
// §2.2.1), with the bridge's issuance id and mapping beside.
type TokenExchangeResponse struct {
	AccessToken     string `json:"access_token"`
	IssuedTokenType string `json:"issued_token_type"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in"`
	IssuanceID      string `json:"issuance_id"`
	Mapping         string `json:"mapping"`
}

// OAuthError is an error body of POST /oauth2/token (RFC 6749 §5.2), with
// the contract's error code (oidc_bridge_error) and the issuance id of a
// recorded attempt.
type OAuthError struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description,omitempty"`
	BridgeError      string `json:"oidc_bridge_error,omitempty"`
	IssuanceID       string `json:"issuance_id,omitempty"`
	RequestID        string `json:"request_id,omitempty"`
}
