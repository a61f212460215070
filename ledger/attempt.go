package ledger

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/oidc-bridge/oidc-bridge/identity"
)

// Attempt is one exchange attempt whose token verified: what the ledger
// records of it. It holds identifiers only, never the token.
type Attempt struct {
	// Claims are the verified token's claims (required). The ledger records
	// the audit columns of the contract from them; Raw is never stored.
	Claims *identity.Claims
	// ClientIP is the socket peer (or the trusted proxy's forwarded
	// address); the zero Addr records NULL.
	ClientIP netip.Addr
	// UserAgent is recorded truncated to MaxUserAgent bytes.
	UserAgent string

	// The selected mapping, or for a refusal the mapping the request named
	// when the token's issuer has it; zero values when there is none (Deny
	// of no_matching_mapping, ambiguous_mapping). Reserve requires
	// MappingID.
	MappingID int64
	Mapping   string
	Provider  string
	Target    json.RawMessage
	// RequestedMapping is the mapping the request named ({"mapping": ...},
	// or RFC 8693's audience), as the client sent it, "" when it named
	// none. Client input, not a reference: recorded on every row of the
	// attempt (requested_mapping) cleaned and cut to MaxRequestedMapping
	// bytes, so that a refusal of a name that does not exist still shows
	// what was asked.
	RequestedMapping string
	// Downscope is what the request asked for below the mapping (a JSON
	// object of duration_seconds, session_policy, scopes: the fields it
	// sent), recorded in the downscope column; nil when it asked for
	// nothing narrower.
	Downscope json.RawMessage
	// PerHour and PerJob are the mapping's quotas; 0 means no limit.
	PerHour int
	PerJob  int
	// Duration is the credential's requested lifetime: a pending row
	// expires (and Sweep marks it unknown) at RequestedAt + Duration.
	Duration time.Duration

	// RequestedAt is when the attempt was made; zero (the norm) means the
	// database's clock at the moment the row is written, which is also
	// the clock the quota windows are measured on.
	RequestedAt time.Time
}

const (
	// MaxUserAgent bounds the recorded user agent, in bytes.
	MaxUserAgent = 512
	// maxClaim bounds every other recorded text value, in bytes: claims
	// are attacker-influenced (a 100 KB actor) and the audit needs no more.
	maxClaim = 1024
	// MaxRequestedMapping bounds the recorded requested mapping, in bytes:
	// twice the longest valid name, so a longer one shows as cut.
	MaxRequestedMapping = 128
	// maxCode bounds error codes and credential ids.
	maxCode = 256
)

// clean makes s storable and bounded: PostgreSQL text cannot hold NUL or
// invalid UTF-8 (an insert would fail and the attempt go unrecorded), so
// both become U+FFFD; then s is cut to at most n bytes on a rune boundary.
func clean(s string, n int) string {
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// text returns s cleaned, or nil (NULL) when empty: an absent claim is NULL
// in the ledger, never "".
func text(s string, n int) *string {
	s = clean(s, n)
	if s == "" {
		return nil
	}
	return &s
}

// row is an issuance row's columns as Reserve and Deny insert them.
type row struct {
	id        string
	outcome   string
	errorCode string
	a         *Attempt
}

// args returns the named arguments of insertIssuance.
func (r row) args() (pgx.NamedArgs, error) {
	a := r.a
	c := a.Claims
	var target any
	if len(a.Target) > 0 && string(a.Target) != "null" {
		if !json.Valid(a.Target) {
			return nil, fmt.Errorf("%w: target is not JSON", ErrInvalid)
		}
		target = string(a.Target)
	}
	var downscope any
	if len(a.Downscope) > 0 && string(a.Downscope) != "null" {
		if !json.Valid(a.Downscope) {
			return nil, fmt.Errorf("%w: downscope is not JSON", ErrInvalid)
		}
		downscope = string(a.Downscope)
	}
	var ip any
	if a.ClientIP.IsValid() {
		ip = a.ClientIP.Unmap()
	}
	var requestedAt any
	if !a.RequestedAt.IsZero() {
		requestedAt = a.RequestedAt
	}
	var mappingID any
	if a.MappingID != 0 {
		mappingID = a.MappingID
	}
	return pgx.NamedArgs{
		"id":                r.id,
		"requested_at":      requestedAt,
		"outcome":           r.outcome,
		"error_code":        text(r.errorCode, maxCode),
		"issuer":            clean(c.Issuer, maxClaim),
		"subject":           text(c.Subject, maxClaim),
		"repository":        text(c.Repository, maxClaim),
		"repository_id":     text(c.RepositoryID, maxClaim),
		"ref":               text(c.Ref, maxClaim),
		"sha":               text(c.SHA, maxClaim),
		"environment":       text(c.Environment, maxClaim),
		"event_name":        text(c.EventName, maxClaim),
		"workflow_ref":      text(c.WorkflowRef, maxClaim),
		"actor":             text(c.Actor, maxClaim),
		"run_id":            text(c.RunID, maxClaim),
		"run_attempt":       text(c.RunAttempt, maxClaim),
		"job_id":            text(c.JobID, maxClaim),
		"token_jti":         text(tokenID(c), maxClaim),
		"mapping_id":        mappingID,
		"mapping":           text(a.Mapping, maxClaim),
		"provider":          text(a.Provider, maxClaim),
		"target":            target,
		"duration":          a.Duration.Seconds(),
		"client_ip":         ip,
		"user_agent":        text(a.UserAgent, MaxUserAgent),
		"requested_mapping": text(a.RequestedMapping, MaxRequestedMapping),
		"downscope":         downscope,
	}, nil
}

// tokenID is the token's identifier in the ledger's token_jti column: its
// jti, or "sha256:" and the token's hex SHA-256 when it has none (never the
// token).
func tokenID(c *identity.Claims) string {
	if c.JTI != "" {
		return c.JTI
	}
	return c.ReplayKey()
}

// insertIssuance writes one row. requested_at is the given time or the
// database's clock; a denied row is complete at once (completed_at =
// requested_at); a pending row expires requested_at + duration.
var insertIssuance = mustNamed(`
WITH t AS (SELECT coalesce(@requested_at::timestamptz, clock_timestamp()) AS n)
INSERT INTO issuances (id, requested_at, completed_at, outcome, error_code, issuer, subject,
	repository, repository_id, ref, sha, environment, event_name, workflow_ref, actor,
	run_id, run_attempt, job_id, token_jti, mapping_id, mapping, provider, target,
	expires_at, client_ip, user_agent, requested_mapping, downscope)
SELECT @id::uuid, t.n, CASE WHEN @outcome::text = 'pending' THEN NULL ELSE t.n END, @outcome, @error_code,
	@issuer, @subject, @repository, @repository_id, @ref, @sha, @environment, @event_name,
	@workflow_ref, @actor, @run_id, @run_attempt, @job_id, @token_jti, @mapping_id::bigint,
	@mapping, @provider, @target::jsonb,
	CASE WHEN @outcome::text = 'pending' THEN t.n + make_interval(secs => @duration::float8) END,
	@client_ip::inet, @user_agent, @requested_mapping, @downscope::jsonb
FROM t
RETURNING requested_at, expires_at`)
