// Package pgcluster runs a private PostgreSQL cluster made from the
// PostgreSQL binaries installed on the machine.
//
// It backs two things: the embedded database that `oidc-bridge serve` uses
// when no BRIDGE_DATABASE_URL is configured, and the throwaway cluster of the
// shared test helper (test/pgtest).
//
// [Start] initialises the cluster folder on first use (initdb), starts the
// server with pg_ctl, and reuses a server that is already running on the same
// folder, so that a second oidc-bridge command (for example `admin-token
// create` while `serve` runs) talks to the same database; with
// [Options.MustExist] (the tool commands) it never initialises one. By default the
// server listens only on a unix socket in a folder that only its owner can
// enter; authentication is "trust", so that folder is the only protection.
//
// When the process runs as root the server runs as the OS user "postgres",
// because PostgreSQL refuses to run as root; the cluster folder is then owned
// by postgres, and every folder above it must be traversable by postgres.
// With [Options.FallbackRoot] set (the embedded default sets
// /var/lib/oidc-bridge), a folder postgres cannot reach gets its cluster in a
// folder of its own under that root instead, one per data folder path.
//
// What it does not do: it does not download or install PostgreSQL, manage
// replication, backups or upgrades between major versions, tune the server
// for production, or apply the schema (that is internal/database's job).
// It is for a single machine's development or small deployments and for
// tests; production deployments should point BRIDGE_DATABASE_URL at a
// managed PostgreSQL server.
package pgcluster
