// Package identity verifies the OIDC tokens of CI systems (GitHub Actions,
// GitLab CI, and other issuers read as "generic") and turns them into the
// normalised Claims that mappings match.
//
// A Verifier checks, in this order and before trusting anything: the token's
// size (MaxTokenSize) and shape, its header (an asymmetric alg, no crit or
// b64, no embedded or referenced key, a short printable kid), and its iss,
// which must be registered and enabled in the IssuerSource; nothing is
// fetched for an unregistered issuer. It then fetches the issuer's discovery
// document and JWKS (cached, size-limited, same-host only, refetched on an
// unknown kid at most once per KeyRefreshInterval), verifies the signature
// with go-oidc and go-jose against the JWKS only, and applies its own time
// rules (one clock, one skew of at most 60s, exp and iat required, bounded
// lifetime and age), an exact single-audience rule, and per-kind required
// claims and shapes (names, numeric IDs, git refs).
//
// It does not decide what a token may obtain (package mapping), detect
// replay of a jti (package ledger), or store issuers (the IssuerSource is
// implemented over Postgres elsewhere). It serves no HTTP and does not import
// the bridge: errors are typed (ErrInvalidToken, ErrUntrustedIssuer,
// ErrUnavailable, with a Reason for logs) and the bridge maps them to HTTP.
package identity
