// Package githubapp keeps the GitHub Apps the github provider mints
// installation tokens with: their id, their GitHub API base URL (github.com
// or a GitHub Enterprise Server) and their private keys, encrypted at rest
// with the key-encryption key as the bridge's own signing keys are
// (signing.KEK.Seal), never returned by the admin API and never logged. An
// App holds at most two keys: the signing key and, during a rotation, the
// previous one, which the provider tries when GitHub answers 401 to the
// signing key's JWT.
//
// It is a package of its own, beside signing rather than inside
// providers/github, because it is a store (Postgres, the admin-change
// history, the KEK) that two layers use: the admin API writes Apps through
// it, and the github provider reads an App's keys through it when it
// mints. It does not call GitHub and does not know mappings' targets: the
// bridge asks providers/github which App a target names.
//
// Replicas read an App from the database at mint time through the
// provider's short cache (providers/github: a few seconds, and dropped at
// once when GitHub refuses every cached key), not through the catalog's
// LISTEN/NOTIFY cache: a rotation is seen by every replica within that
// time, and a replica whose cached key GitHub no longer accepts re-reads
// before it fails.
package githubapp
