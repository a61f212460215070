package console

import (
	"encoding/csv"
	"io"
	"strings"
	"time"

	"github.com/oidc-bridge/oidc-bridge/ledger"
)

// csvColumns are the export's columns: the audit view's (ledger.AuditView),
// in its order, but the target (an object, in the page's row link).
var csvColumns = []string{
	"id", "requested_at", "completed_at", "outcome", "error_code", "issuer", "subject",
	"repository", "repository_id", "ref", "sha", "environment", "event_name", "workflow_ref",
	"actor", "run_id", "run_attempt", "job_id", "token_jti", "mapping", "provider",
	"credential_id", "expires_at", "client_ip", "user_agent",
	"revoked_at", "revoked_by", "revocation_reason", "requested_mapping",
}

func csvTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func csvRow(r ledger.Record) []string {
	at := r.RequestedAt
	return []string{
		r.ID, csvTime(&at), csvTime(r.CompletedAt), r.Outcome, r.ErrorCode, r.Issuer, r.Subject,
		r.Repository, r.RepositoryID, r.Ref, r.SHA, r.Environment, r.EventName, r.WorkflowRef,
		r.Actor, r.RunID, r.RunAttempt, r.JobID, r.TokenJTI, r.Mapping, r.Provider,
		r.CredentialID, csvTime(r.ExpiresAt), r.ClientIP, r.UserAgent,
		csvTime(r.RevokedAt), r.RevokedBy, r.RevocationReason, r.RequestedMapping,
	}
}

// csvCell guards a cell against formula injection (CWE-1236): a
// spreadsheet runs a cell that begins with =, +, -, @, a tab or a carriage
// return as a formula, and the ledger's text comes from tokens' claims,
// which pipeline authors choose (a branch called "=HYPERLINK(...)"). Such a
// cell gets a leading apostrophe, which spreadsheets show as text and hide.
// encoding/csv then quotes what needs quoting (commas, quotes, newlines).
func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// csvWriter writes the export's header and rows.
type csvWriter struct{ w *csv.Writer }

func newCSVWriter(w io.Writer) (*csvWriter, error) {
	cw := &csvWriter{w: csv.NewWriter(w)}
	return cw, cw.w.Write(csvColumns)
}

func (cw *csvWriter) write(r ledger.Record) error {
	row := csvRow(r)
	for i := range row {
		row[i] = csvCell(row[i])
	}
	return cw.w.Write(row)
}

func (cw *csvWriter) flush() error {
	cw.w.Flush()
	return cw.w.Error()
}
