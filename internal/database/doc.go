// Package database opens oidc-bridge's PostgreSQL connection pool and keeps
// its schema current.
//
// [Open] turns a connection URL into a checked pgx pool. [Migrate] applies
// the goose migrations embedded in package migrations under a PostgreSQL
// advisory lock, so that several replicas starting at once apply each
// migration exactly once. [Status] and [CheckCurrent] compare the database's
// schema version with the binary's, cheaply enough to back GET /readyz.
//
// What it does not do: it holds no queries of the product's tables (those
// live with the packages that own them, such as mapping and ledger), does
// not start PostgreSQL (see internal/pgcluster), and never migrates down;
// rolling back a schema is an operator's decision.
package database
