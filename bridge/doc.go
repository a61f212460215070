// Package bridge is oidc-bridge's HTTP service on echo: the routes, the
// admin API's handlers, the one table that turns domain errors into the
// contract's status codes and error codes, health, readiness and metrics.
// Its handlers speak only the wire types of bridge/api and convert them to
// and from the domain's (mapping, ledger, providers) at the edge, in
// wire.go.
//
// It holds no state of its own beyond caches: issuers, mappings, tokens and
// the ledger live in Postgres behind the interfaces it is given.
package bridge
