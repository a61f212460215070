// Package bridge is oidc-bridge's HTTP service on echo: the routes, the
// admin API's handlers, the one table that turns domain errors into the
// contract's status codes and error codes, health, readiness and metrics.
// Its handlers speak only the wire types of bridge/api and convert them to
// and from the domain's (mapping, ledger, providers) at the edge, in
// wire.go.
//
// The exchange (exchange.go; POST /v1/exchange and, in tokenexchange.go,
// RFC 8693's POST /oauth2/token, which differ only in how they read their
// parameters and which mappings they accept) reads top to bottom in
// runExchange:
//
//   - run calls the stages in order, each returning what the next needs:
//     verify (identity parses and verifies the token once: its Claims,
//     with its hash and replay key), select (choose: the request's
//     parameters, the mapping that admits the claims, the audit-mode
//     mappings' decisions recorded, the credential's lifetime), reserve
//     (the ledger's pending issuance, after its replay and quota checks)
//     and mint (the provider's one cloud call). The first error stops it.
//   - record writes the outcome to the ledger under one detached deadline
//     (ledger writes outlive a client that went away): the issuance
//     completed, a failed mint failed or unknown, or a verified token's
//     refusal denied. Only then is a credential answered.
//   - report classifies the error once (errors.go), ends the failed
//     stages' spans with its code, counts the exchange, annotates the
//     request's span and writes the exchange's one log line.
//
// errors.go is the only place that maps the domain packages' sentinels
// and typed errors (identity, mapping, ledger, providers, admintoken) to
// the contract, and the only place a problem (status, body, Retry-After)
// is built; its one table answers both /v1/exchange and the token
// endpoint. Every store marks its database's unavailability with its own
// sentinel, so the bridge knows no database driver.
//
// It holds no state of its own beyond caches: issuers, mappings, tokens and
// the ledger live in Postgres behind the interfaces it is given.
package bridge
