// Package api is oidc-bridge's HTTP API as Go types: every request and
// response body (the exchange, the admin API's issuers, mappings, usage,
// explain and revoke, the credentials objects, the error body) and the
// contract's constants. The server converts its domain types to and from
// these at its edge (package bridge); the CLI, the CI client and the
// Terraform provider use them through bridge/client. The contract exists
// once, here.
//
// It imports nothing of the server: a client that links it links neither
// Postgres nor OIDC verification (`make lint` checks it). A mapping's
// target stays raw JSON here; each provider (providers/<cloud>) owns its
// target's form, and docs/clouds.md describes it.
package api
