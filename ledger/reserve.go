package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Reservation is a pending issuance: Reserve's promise that the bridge may
// mint, to be settled by Complete or Fail.
type Reservation struct {
	// ID is the issuance id (a UUIDv7), the contract's issuance_id.
	ID string
	// RequestedAt is the row's requested_at; with ID it finds the row (and
	// its partition).
	RequestedAt time.Time
	// ExpiresAt is RequestedAt + Duration: the latest a credential minted
	// for this reservation can live. Sweep marks the row unknown after it.
	ExpiresAt time.Time
}

// Reserve records the attempt a as a pending issuance in one transaction,
// after checking that the mapping and its issuer are still enabled, replay
// protection and the quotas:
//
//   - Enabled: the mapping a.MappingID must exist and be enabled, and its
//     issuer be enabled, in the database at the moment of the reservation
//     (not in a catalog cache). Otherwise the attempt is recorded as denied
//     (no_matching_mapping for the mapping, untrusted_issuer for the
//     issuer) and the error is a *DisabledError (errors.Is ErrDisabled).
//   - Replay: the token's replay key (identity.Claims.ReplayKey: its jti,
//     or its SHA-256 when it has none) is claimed in replay_guard with an
//     INSERT ... ON CONFLICT DO NOTHING, for every mapping (the issuer's
//     replay_scope token, the default) or for this mapping (token_mapping).
//     When it is taken, the attempt is recorded as denied (token_replayed)
//     and the error is a *ReplayError (errors.Is ErrReplayed).
//   - Quotas (a.PerHour, a.PerJob; 0 = none): counted under transaction
//     advisory locks on the quota buckets, so they hold exactly across
//     goroutines and replicas. Issuances with outcome issued, pending or
//     unknown count. per_hour counts the mapping's issuances for the same
//     repository (case-insensitive) in the sliding Window; per_job counts
//     the job's (issuer, run id, run attempt, job id) within JobWindow. A
//     spent quota records a denied row (quota_exceeded), gives the replay
//     guard back (the token was not used) and returns a *QuotaError
//     (errors.Is ErrQuotaExceeded).
//
// Without quotas, the claim and the row are one statement (one round trip,
// one commit); with quotas, one READ COMMITTED transaction.
//
// A database failure returns an error matching ErrUnavailable when the
// database is unreachable, slow or cannot write; then nothing was recorded
// and nothing may be issued.
func (l *Ledger) Reserve(ctx context.Context, a Attempt) (Reservation, error) {
	if err := a.validate(true); err != nil {
		return Reservation{}, fmt.Errorf("ledger: reserve: %w", err)
	}
	id, err := newID()
	if err != nil {
		return Reservation{}, fmt.Errorf("ledger: reserve: %w", err)
	}
	args, err := row{id: id, outcome: "pending", a: &a}.args()
	if err != nil {
		return Reservation{}, fmt.Errorf("ledger: reserve: %w", err)
	}
	args["token_exp"] = a.Claims.Expiry
	args["replay_key"] = a.Claims.ReplayKey()
	args["per_hour"] = a.PerHour
	args["per_job"] = a.PerJob
	args["window"] = Window.Seconds()
	args["job_window"] = JobWindow.Seconds()

	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	if a.PerHour == 0 && a.PerJob == 0 {
		return reserveUnlimited(ctx, l.pool, args)
	}
	return reserveWithQuotas(ctx, l.pool, a, args)
}

// checkAndClaim are the CTEs every reservation starts with, in its first
// statement:
//
//   - s rechecks, on the statement's snapshot, that the mapping still exists
//     and is enabled and that its issuer is enabled: a disable committed
//     before the statement is honoured at once by every replica, whatever
//     its catalog cache holds. refusal is the contract's code of a refusal
//     (untrusted_issuer, no_matching_mapping), NULL when both are enabled;
//     the issuer's replay_scope is read there too.
//   - g1 claims the token's replay key for the scope: mapping 0 (the token,
//     for every mapping) under replay_scope token, the mapping under
//     token_mapping. The claim succeeded when g1 inserted its row.
//   - g2, after a successful claim only, also inserts the other scope's row
//     when it is free, so that a token always holds both and a change of
//     replay_scope never re-opens it (see migration 00006).
//
// A concurrent claim of the same key waits for the first one's transaction.
// Two concurrent claims of one token for one mapping under different scopes
// (only while a change of replay_scope reaches the replicas) take the two
// rows in opposite orders and may deadlock: PostgreSQL aborts one, which
// fails (an internal error) and issues nothing.
const checkAndClaim = `
s AS (
	SELECT CASE WHEN m.id IS NULL THEN '` + CodeNoMatchingMapping + `'
			WHEN NOT i.enabled THEN '` + CodeUntrustedIssuer + `'
			WHEN NOT m.enabled THEN '` + CodeNoMatchingMapping + `' END AS refusal,
		CASE WHEN i.replay_scope = 'token_mapping' THEN m.id ELSE 0 END AS first_m,
		CASE WHEN i.replay_scope = 'token_mapping' THEN 0 ELSE m.id END AS second_m
	FROM (VALUES (1)) AS one (x)
	LEFT JOIN mappings m ON m.id = @mapping_id::bigint
	LEFT JOIN issuers i ON i.id = m.issuer_id),
g1 AS (
	INSERT INTO replay_guard (issuer, replay_key, mapping_id, issuance_id, token_exp)
	SELECT @issuer, @replay_key, s.first_m, @id::uuid, @token_exp FROM s WHERE s.refusal IS NULL
	ON CONFLICT DO NOTHING
	RETURNING true AS claimed),
g2 AS (
	INSERT INTO replay_guard (issuer, replay_key, mapping_id, issuance_id, token_exp)
	SELECT @issuer, @replay_key, s.second_m, @id::uuid, @token_exp FROM s WHERE EXISTS (SELECT FROM g1)
	ON CONFLICT DO NOTHING)`

// claimAndInsert is the reservation of a mapping without quotas in one
// statement, hence one round trip and one atomic commit: checkAndClaim,
// then the issuance, pending when the claim succeeded, denied otherwise
// (the recheck's refusal, or token_replayed when the token was spent).
var claimAndInsert = mustNamed(`
WITH t AS (SELECT coalesce(@requested_at::timestamptz, clock_timestamp()) AS n),` + checkAndClaim + `,
c AS (SELECT EXISTS (SELECT FROM g1) AS claimed, (SELECT refusal FROM s) AS refusal)
INSERT INTO issuances (id, requested_at, completed_at, outcome, error_code, issuer, subject,
	repository, repository_id, ref, sha, environment, event_name, workflow_ref, actor,
	run_id, run_attempt, job_id, token_jti, mapping_id, mapping, provider, target,
	expires_at, client_ip, user_agent, requested_mapping, downscope)
SELECT @id::uuid, t.n, CASE WHEN c.claimed THEN NULL ELSE t.n END,
	CASE WHEN c.claimed THEN 'pending' ELSE 'denied' END,
	CASE WHEN c.claimed THEN NULL ELSE coalesce(c.refusal, '` + CodeTokenReplayed + `') END,
	@issuer, @subject, @repository, @repository_id, @ref, @sha, @environment, @event_name,
	@workflow_ref, @actor, @run_id, @run_attempt, @job_id, @token_jti, @mapping_id::bigint,
	@mapping, @provider, @target::jsonb,
	CASE WHEN c.claimed THEN t.n + make_interval(secs => @duration::float8) END,
	@client_ip::inet, @user_agent, @requested_mapping, @downscope::jsonb
FROM t, c
RETURNING requested_at, expires_at, outcome = 'pending', error_code`)

// reserveUnlimited is Reserve for an attempt without quotas: one statement.
func reserveUnlimited(ctx context.Context, pool *pgxpool.Pool, args pgx.NamedArgs) (Reservation, error) {
	id := args["id"].(string)
	var (
		res     = Reservation{ID: id}
		expires *time.Time
		claimed bool
		code    *string
	)
	if err := pool.QueryRow(ctx, claimAndInsert.sql, claimAndInsert.args(args)...).Scan(&res.RequestedAt, &expires, &claimed, &code); err != nil {
		return Reservation{}, dbError("reserve", err)
	}
	if !claimed {
		return Reservation{}, reserveDenial(code, id)
	}
	if expires != nil {
		res.ExpiresAt = *expires
	}
	return res, nil
}

// reserveDenial is Reserve's error for a reservation denied with code (NULL:
// token_replayed).
func reserveDenial(code *string, id string) error {
	if code != nil && *code != CodeTokenReplayed {
		return &DisabledError{Code: *code, IssuanceID: id}
	}
	return &ReplayError{IssuanceID: id}
}

// Complete records that the reservation's credential was issued:
// credentialID identifies it without revealing it (an AWS access key id, a
// hash prefix of a token) and expiresAt is its expiry. It fails unless it
// turned exactly one pending row into issued; the bridge answers 200 only
// after it returned nil.
//
// A row that an admin revoked while it was pending (Revoke marks pending
// rows: their credential may be minted any moment) is still recorded as
// issued, with its credential id and expiry, for the credential exists at
// the cloud and the ledger never hides one; it keeps its revoked_at, gets
// error_code CodeRevokedInFlight, and Complete returns a *RevokedError
// (errors.Is ErrRevoked): the credential must not reach the pipeline. The
// row lock orders Complete and Revoke: a revocation committed before
// Complete's update is seen by it; one after finds the row issued and
// marks it like any issued row.
func (l *Ledger) Complete(ctx context.Context, r Reservation, credentialID string, expiresAt time.Time) error {
	if credentialID == "" || expiresAt.IsZero() {
		return fmt.Errorf("ledger: complete %s: %w: credential id and expiry are required", r.ID, ErrInvalid)
	}
	if err := r.validate(); err != nil {
		return fmt.Errorf("ledger: complete: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	var (
		revokedAt *time.Time
		revokedBy *string
	)
	err := l.pool.QueryRow(ctx, `
		UPDATE issuances SET outcome = 'issued', completed_at = clock_timestamp(),
			credential_id = $3, expires_at = $4,
			error_code = CASE WHEN revoked_at IS NOT NULL THEN '`+CodeRevokedInFlight+`' END
		WHERE id = $1::uuid AND requested_at = $2 AND outcome = 'pending'
		RETURNING revoked_at, revoked_by`,
		r.ID, r.RequestedAt, clean(credentialID, maxCode), expiresAt).Scan(&revokedAt, &revokedBy)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("ledger: complete %s: %w", r.ID, ErrNotPending)
	}
	if err != nil {
		return dbError("complete "+r.ID, err)
	}
	if revokedAt != nil {
		re := &RevokedError{IssuanceID: r.ID, RevokedAt: *revokedAt}
		if revokedBy != nil {
			re.RevokedBy = *revokedBy
		}
		return re
	}
	return nil
}

// Fail records that the mint of the reservation definitely issued nothing
// (the cloud refused or failed): pending becomes failed with errorCode (the
// contract's code, e.g. provider_error). It also gives the replay guard
// back, so the pipeline may retry with the same token: the guard promises
// at most one credential per token (per token and mapping under
// replay_scope token_mapping), and a failed mint produced none. When the outcome is unknown (a timeout after the request may have
// reached the cloud), do not call Fail: leave the row pending, and Sweep
// marks it unknown while the guard keeps the token spent.
func (l *Ledger) Fail(ctx context.Context, r Reservation, errorCode string) error {
	if errorCode == "" {
		return fmt.Errorf("ledger: fail %s: %w: error code required", r.ID, ErrInvalid)
	}
	if err := r.validate(); err != nil {
		return fmt.Errorf("ledger: fail: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	// One statement, hence atomic: the row and its guard change together.
	var n int
	err := l.pool.QueryRow(ctx, `
		WITH f AS (
			UPDATE issuances SET outcome = 'failed', completed_at = clock_timestamp(), error_code = @error_code
			WHERE id = @id::uuid AND requested_at = @requested_at AND outcome = 'pending'
			RETURNING id),
		g AS (
			DELETE FROM replay_guard r USING f WHERE r.issuance_id = f.id)
		SELECT count(*) FROM f`,
		pgx.NamedArgs{"id": r.ID, "requested_at": r.RequestedAt, "error_code": clean(errorCode, maxCode)}).Scan(&n)
	if err != nil {
		return dbError("fail "+r.ID, err)
	}
	if n != 1 {
		return fmt.Errorf("ledger: fail %s: %w", r.ID, ErrNotPending)
	}
	return nil
}

// Deny records a verified token's attempt that was refused before Reserve
// (errorCode: no_matching_mapping, ambiguous_mapping, invalid_request, ...)
// as a denied row, and returns its issuance id. The mapping's columns stay
// empty when a names none.
func (l *Ledger) Deny(ctx context.Context, a Attempt, errorCode string) (string, error) {
	if errorCode == "" {
		return "", fmt.Errorf("ledger: deny: %w: error code required", ErrInvalid)
	}
	return l.record(ctx, "deny", a, OutcomeDenied, errorCode)
}

// RecordAudit records what an audit-mode mapping (a.Mapping) would have
// decided for a verified token: would_issue, or would_deny with reason (the
// stable word of the refusal: repository, ref, ...). Such rows never count
// towards quotas and no credential exists for them.
func (l *Ledger) RecordAudit(ctx context.Context, a Attempt, admitted bool, reason string) (string, error) {
	if a.MappingID <= 0 {
		return "", fmt.Errorf("ledger: record audit: %w: no mapping", ErrInvalid)
	}
	if admitted {
		return l.record(ctx, "record audit", a, OutcomeWouldIssue, "")
	}
	if reason == "" {
		return "", fmt.Errorf("ledger: record audit: %w: reason required", ErrInvalid)
	}
	return l.record(ctx, "record audit", a, OutcomeWouldDeny, reason)
}

// record inserts a final (non-pending) row and returns its id.
func (l *Ledger) record(ctx context.Context, op string, a Attempt, outcome, errorCode string) (string, error) {
	if err := a.validate(false); err != nil {
		return "", fmt.Errorf("ledger: %s: %w", op, err)
	}
	id, err := newID()
	if err != nil {
		return "", fmt.Errorf("ledger: %s: %w", op, err)
	}
	args, err := row{id: id, outcome: outcome, errorCode: errorCode, a: &a}.args()
	if err != nil {
		return "", fmt.Errorf("ledger: %s: %w", op, err)
	}
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	var requestedAt time.Time
	var expiresAt *time.Time
	if err := l.pool.QueryRow(ctx, insertIssuance.sql, insertIssuance.args(args)...).Scan(&requestedAt, &expiresAt); err != nil {
		return "", dbError(op, err)
	}
	return id, nil
}

func newID() (string, error) {
	u, err := uuid.NewV7()
	if err != nil {
		return "", fmt.Errorf("issuance id: %w", err)
	}
	return u.String(), nil
}

// validate checks what every row needs and, for a reservation, what the
// replay guard, the quotas and the sweeper need.
func (a *Attempt) validate(reserve bool) error {
	switch {
	case a.Claims == nil:
		return fmt.Errorf("%w: no claims", ErrInvalid)
	case a.Claims.Issuer == "":
		return fmt.Errorf("%w: no issuer", ErrInvalid)
	case a.PerHour < 0 || a.PerJob < 0:
		return fmt.Errorf("%w: negative quota", ErrInvalid)
	case !reserve:
		return nil
	case a.Claims.ReplayKey() == "":
		// Without a jti or the token's hash there is no replay
		// protection: fail closed.
		return fmt.Errorf("%w: token has neither jti nor hash", ErrInvalid)
	case a.Claims.Expiry.IsZero():
		return fmt.Errorf("%w: token has no expiry", ErrInvalid)
	case a.MappingID <= 0:
		return fmt.Errorf("%w: no mapping", ErrInvalid)
	case a.Duration <= 0:
		return fmt.Errorf("%w: non-positive duration", ErrInvalid)
	}
	return nil
}

func (r Reservation) validate() error {
	if _, err := uuid.Parse(r.ID); err != nil || r.RequestedAt.IsZero() {
		return fmt.Errorf("%w: reservation %q is not one of Reserve's", ErrInvalid, r.ID)
	}
	return nil
}
