// Package bridge is oidc-bridge's HTTP service on echo: the routes, the
// admin API's handlers, the one table that turns domain errors into the
// contract's status codes and error codes, health, readiness and metrics.
//
// It holds no state of its own beyond caches: issuers, mappings, tokens and
// the ledger live in Postgres behind the interfaces it is given.
package bridge
