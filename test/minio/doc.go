// Package minio runs a real MinIO server for tests: an S3 server written by
// others whose STS (AssumeRoleWithWebIdentity) verifies web identity tokens
// itself, against an OpenID Connect discovery document it fetches. The
// end-to-end tests point it at the bridge's own issuer, so that a relying
// party the project did not write checks the bridge's discovery document,
// JWKS and tokens, and the credentials it mints are then used for S3 calls.
//
// The binary is built once from the Go module proxy and cached by
// scripts/ensure-minio.sh; `make test` passes its path in OIDC_BRIDGE_MINIO,
// and without that variable (a plain `go test`) Binary runs the script
// itself. A missing or unbuildable MinIO fails the test; it is never skipped.
//
// Start runs one server per call on 127.0.0.1, with its data, its HOME, its
// certificates folder, its temporary files and its log in the test's
// temporary folder, and root credentials generated for that server. MinIO is
// configured with one claim-based OpenID provider
// (MINIO_IDENTITY_OPENID_CONFIG_URL, _CLIENT_ID, _CLAIM_NAME): the claim
// named by ClaimName must name a MinIO policy, which AddPolicy creates
// through MinIO's admin API. With such a provider MinIO ignores a RoleArn it
// does not know, so AWS SDKs that require one work unchanged. The provider's
// client secret is random and never used: MinIO keys HS256 tokens whose kid
// is the client id with it, and with no secret the empty key would let
// anyone sign such tokens.
//
// It does not configure TLS, distributed mode, KMS or MinIO's console; the
// server is stopped when the test ends.
package minio
