// Package signing holds the bridge's own signing keys and signs its JWTs:
// the Signer interface that providers use, and (in the Postgres-backed
// implementation) key storage with private parts encrypted at rest,
// rotation that never breaks a verifier, and the JWKS the bridge publishes.
//
// Package signingtest has an in-memory Signer with a real JWKS endpoint for
// providers' tests; end-to-end tests use the real one.
package signing
