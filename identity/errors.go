package identity

import (
	"errors"
	"fmt"
)

// The sentinels callers branch on. Every error Verify returns matches exactly
// one of ErrInvalidToken, ErrUntrustedIssuer and ErrUnavailable with errors.Is.
var (
	// ErrInvalidToken: the token is malformed, unsigned, badly signed, for
	// another audience, outside its validity window, or its claims are missing
	// or malformed. The bridge answers 401 invalid_token.
	ErrInvalidToken = errors.New("identity: invalid token")
	// ErrUntrustedIssuer: the token's iss is not a registered, enabled issuer,
	// or the issuer's discovery document cannot be trusted. The bridge answers
	// 401 untrusted_issuer.
	ErrUntrustedIssuer = errors.New("identity: untrusted issuer")
	// ErrUnavailable: a dependency (the IssuerSource, the issuer's discovery
	// or JWKS endpoint) failed for a reason other than the token itself. The
	// bridge answers 503 and issues nothing.
	ErrUnavailable = errors.New("identity: dependency unavailable")
)

var (
	// ErrIssuerNotFound is what an IssuerSource returns for a URL it does not
	// know. Any other error from a source is treated as ErrUnavailable.
	ErrIssuerNotFound = errors.New("identity: issuer not found")
)

// Reasons are stable snake_case words for log lines and metric labels. They
// are not part of the HTTP contract: the bridge answers with the code of the
// sentinel the error matches.
const (
	// ErrInvalidToken reasons.
	ReasonMalformedToken   = "malformed_token"
	ReasonTokenTooLarge    = "token_too_large"
	ReasonUnsupportedAlg   = "unsupported_alg"
	ReasonUnknownKey       = "unknown_key"
	ReasonBadSignature     = "bad_signature"
	ReasonAudienceMismatch = "audience_mismatch"
	ReasonTokenExpired     = "token_expired"
	ReasonTokenNotYetValid = "token_not_yet_valid"
	ReasonTokenTooOld      = "token_too_old"
	ReasonLifetimeTooLong  = "lifetime_too_long"
	ReasonMissingClaim     = "missing_claim"
	ReasonInvalidClaim     = "invalid_claim"

	// ErrUntrustedIssuer reasons.
	ReasonUntrustedIssuer = "untrusted_issuer"
	ReasonDiscoveryFailed = "discovery_failed"

	// ErrUnavailable reasons.
	ReasonIssuerSourceUnavailable = "issuer_source_unavailable"
	ReasonDiscoveryUnavailable    = "discovery_unavailable"
	ReasonJWKSUnavailable         = "jwks_unavailable"
)

// Error is the error Verify returns. Reason says why, in one stable word; Err
// holds the detail for the log (it may quote parts of the token, truncated and
// escaped, so it is not for the client).
type Error struct {
	Reason string
	Err    error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return "identity: " + e.Reason
	}
	return "identity: " + e.Reason + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Is matches the sentinel that Reason belongs to.
func (e *Error) Is(target error) bool {
	return target == sentinelFor(e.Reason)
}

// Sentinel returns the sentinel (ErrInvalidToken, ErrUntrustedIssuer or
// ErrUnavailable) that e matches.
func (e *Error) Sentinel() error { return sentinelFor(e.Reason) }

func sentinelFor(reason string) error {
	switch reason {
	case ReasonUntrustedIssuer, ReasonDiscoveryFailed:
		return ErrUntrustedIssuer
	case ReasonIssuerSourceUnavailable, ReasonDiscoveryUnavailable, ReasonJWKSUnavailable:
		return ErrUnavailable
	}
	return ErrInvalidToken
}

// Reason returns the reason word of an error from Verify, or "" when err
// carries none.
func Reason(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

func fail(reason, format string, args ...any) *Error {
	return &Error{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// quote renders attacker-controlled text for an error message: escaped and
// cut to a length that keeps log lines bounded.
func quote(s string) string {
	const max = 64
	if len(s) > max {
		return fmt.Sprintf("%q...(%d bytes)", s[:max], len(s))
	}
	return fmt.Sprintf("%q", s)
}
