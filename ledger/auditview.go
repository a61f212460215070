package ledger

// AuditView is the auditors' view of the ledger: one row per recorded
// attempt, oldest first, readable by the database's auditor role
// (oidc_bridge_auditor_<db>) and described column by column for auditors in
// docs/audit.md.
//
// The view is SQL, defined by the migrations, not by Go:
// migrations/00001_init.sql created it, 00004_revocation.sql appended
// revoked_at, revoked_by and revocation_reason, and
// 00010_requested_mapping.sql appended requested_mapping, 00014_downscope.sql
// downscope. Applied
// migrations are never edited: a change of the view is a new migration,
// which appends its columns (CREATE OR REPLACE VIEW may only append, and
// keeps the grants) and appends them to AuditViewColumns too.
// TestAuditView checks that a migrated database's view has exactly
// AuditViewColumns, in order, and that docs/audit.md documents exactly
// those. The history of admin changes has its own view, audit.admin_changes
// (package internal/history).
const AuditView = "audit.issuances"

// AuditViewColumns returns the columns of AuditView, in order.
func AuditViewColumns() []string {
	return []string{
		// 00001: the contract's columns.
		"id", "requested_at", "completed_at", "outcome", "error_code", "issuer", "subject",
		"repository", "repository_id", "ref", "sha", "environment", "event_name", "workflow_ref",
		"actor", "run_id", "run_attempt", "job_id", "token_jti", "mapping", "provider", "target",
		"credential_id", "expires_at", "client_ip", "user_agent",
		// 00004: revocation.
		"revoked_at", "revoked_by", "revocation_reason",
		// 00010: the mapping a request named.
		"requested_mapping",
		// 00014: what a request asked for below its mapping.
		"downscope",
	}
}
