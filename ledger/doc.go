// Package ledger keeps the issuance ledger: one row per exchange attempt
// whose token verified, the replay guard, the quotas (quota.go) and the
// auditors' view (schema audit: [AuditView] in auditview.go, described for
// auditors in docs/audit.md). It never stores
// or logs a token or a secret, only identifiers (the token's jti and claims,
// a credential's id).
//
// The exchange writes it in three steps (ARCHITECTURE.md):
//
//   - [Ledger.Reserve], before any cloud call: one transaction rechecks
//     that the mapping and its issuer are still enabled, claims the token
//     in replay_guard (INSERT ... ON CONFLICT DO NOTHING on (issuer, replay
//     key, 0) for the issuer's replay_scope token, (issuer, replay key,
//     mapping) for token_mapping), checks the mapping's quotas and inserts
//     the row as pending. A disabled mapping or issuer, a replay or a spent
//     quota commits a denied row instead and returns a *DisabledError, a
//     *ReplayError or a *QuotaError.
//   - [Ledger.Complete] after the mint (pending → issued), or [Ledger.Fail]
//     when the cloud definitely issued nothing (pending → failed; the token
//     may be used again). The bridge answers 200 only after Complete.
//   - [Ledger.Deny] records refusals that happen before Reserve
//     (no_matching_mapping, ambiguous_mapping, invalid_request).
//
// [Ledger.Sweep] turns pending rows whose credential would have expired
// into unknown, so that a crash between mint and record never hides an
// issuance, and prunes the replay guard of long-expired tokens.
//
// # Quotas
//
// Issuances count when their outcome is issued, pending or unknown: every
// credential that was or may have been minted. per_hour counts a mapping's
// issuances for one repository (compared case-insensitively) in the sliding
// hour before the request; per_job counts a mapping's issuances for one job,
// keyed by (issuer, run id, run attempt, job id), over [JobWindow] (7 days:
// the job's lifetime). Tokens without a run id share one per_job bucket per
// issuer and mapping, so that a configured limit is never skipped.
// [Ledger.Usage] reports the same counts.
//
// The quotas are exact under concurrency and across replicas: Reserve takes
// a transaction-scoped advisory lock per quota bucket (a 64-bit hash of the
// bucket's key, computed by the database with the same lower() as the
// counts), in ascending key order so that no two transactions wait on each
// other in a cycle, then counts and inserts while holding them; the locks
// are released at commit, after the row is visible. Advisory locks, rather
// than SELECT ... FOR UPDATE on counter rows, because the bucket then needs
// no row of its own (no upsert, no counter to keep in step with the ledger,
// nothing to clean up), the sliding window is read from the ledger itself,
// and reserves of different buckets never touch the same row. The
// database's clock, read after the locks, gives requested_at, so that
// within a bucket the ledger's order is the locks' order.
//
// What it does not do: verify tokens, select mappings, call clouds, or
// rate-limit unauthenticated traffic (quotas are charged only for verified
// tokens whose mapping admitted them).
package ledger
