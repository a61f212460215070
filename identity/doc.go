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
// against the JWKS only (the token is parsed once, by parseToken; the keys
// are go-jose's JSONWebKeys, the signature is checked with crypto/rsa and
// crypto/ecdsa in signature.go), and applies its own time
// rules (one clock, one skew of at most 60s, exp and iat required, bounded
// lifetime and age), an exact single-audience rule, and per-kind required
// claims and shapes (names, numeric IDs, git refs), read by the issuer's
// kind.
//
// Each CI kind is one file, kind_<kind>.go (kind_github.go: where GitHub
// Actions' claims are read; kind_gitlab.go: GitLab CI's; kind_generic.go:
// any other issuer's), implementing Platform: how its claims are read into
// Claims, which mapping conditions it supports and how each compares (GitHub
// environments fold case, GitLab's do not), what a mapping of it must
// constrain, its guards (GitLab fork pipelines, GitHub's
// pull_request_target), its lint rules and explainer words, and its
// defaults (token age and lifetime, whether a jti is required, the replay
// scope). kind.go holds the interface and the registry; package mapping
// applies what a kind says and names no kind itself.
//
// To add a CI kind: write kind_<kind>.go (a Kind constant, a type
// implementing Platform, its read using claimReader; cite the platform's
// documentation of its claims and token lifetime), add it to platforms in
// kind.go, and put a realistic claim set in
// test/oidctest/claimsets/<kind>-<what>.json.
// TestPlatformContract then checks the whole interface over the registry
// and reads the fixture the way its Conditions say; mapping's
// TestKindsAsDocumented holds docs/api.md and the README to what the kind
// says, so document the kind there too.
//
// It does not decide what a token may obtain (package mapping), detect
// replay of a jti (package ledger), or store issuers (the IssuerSource is
// implemented over Postgres elsewhere). It serves no HTTP and does not import
// the bridge: errors are typed (ErrInvalidToken, ErrUntrustedIssuer,
// ErrUnavailable, with a Reason for logs) and the bridge maps them to HTTP.
package identity
