package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/oidc-bridge/oidc-bridge/internal/database"
	"github.com/oidc-bridge/oidc-bridge/ledger"
	"github.com/oidc-bridge/oidc-bridge/test/pgtest"
)

// auditRow is one row of audit.issuances, every column of the contract.
type auditRow struct {
	ID           string
	RequestedAt  time.Time
	CompletedAt  *time.Time
	Outcome      string
	ErrorCode    *string
	Issuer       string
	Subject      *string
	Repository   *string
	RepositoryID *string
	Ref          *string
	SHA          *string
	Environment  *string
	EventName    *string
	WorkflowRef  *string
	Actor        *string
	RunID        *string
	RunAttempt   *string
	JobID        *string
	TokenJTI     *string
	Mapping      *string
	Provider     *string
	Target       map[string]any
	CredentialID *string
	ExpiresAt    *time.Time
	ClientIP     *netip.Addr
	UserAgent    *string
}

// auditColumns is the contract's column list of audit.issuances, in order.
const auditColumns = `id, requested_at, completed_at, outcome, error_code, issuer, subject, repository, repository_id,
ref, sha, environment, event_name, workflow_ref, actor, run_id, run_attempt, job_id, token_jti,
mapping, provider, target, credential_id, expires_at, client_ip, user_agent`

// asAuditor runs f in a read-only transaction as the auditor role (oidc_bridge_auditor_role()).
func asAuditor(t *testing.T, pool *pgxpool.Pool, f func(tx pgx.Tx) error) error {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SELECT set_config('role', oidc_bridge_auditor_role(), true)`); err != nil {
		t.Fatal(err)
	}
	return f(tx)
}

// auditRows reads audit.issuances as the auditor.
func auditRows(t *testing.T, pool *pgxpool.Pool) []auditRow {
	t.Helper()
	var out []auditRow
	err := asAuditor(t, pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(context.Background(), `SELECT `+auditColumns+` FROM audit.issuances`)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, pgx.RowToStructByPos[auditRow])
		return err
	})
	if err != nil {
		t.Fatalf("read audit.issuances as auditor: %v", err)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func TestReserveCompleteAudit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, pool := newLedger(t)
	c := claims()
	a := attempt(c)
	a.PerHour, a.PerJob = 10, 5
	before := time.Now()
	res, err := l.Reserve(ctx, a)
	if err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	id, err := uuid.Parse(res.ID)
	if err != nil || id.Version() != 7 {
		t.Fatalf("issuance id %q: version %d, %v; want a UUIDv7", res.ID, id.Version(), err)
	}
	if d := res.RequestedAt.Sub(before); d < -time.Second || d > 5*time.Second {
		t.Errorf("requested_at %v, now %v", res.RequestedAt, before)
	}
	if !res.ExpiresAt.Equal(res.RequestedAt.Add(a.Duration)) {
		t.Errorf("expires_at %v, want requested_at + %v", res.ExpiresAt, a.Duration)
	}
	rows := auditRows(t, pool)
	if len(rows) != 1 || rows[0].Outcome != "pending" || rows[0].CompletedAt != nil {
		t.Fatalf("after Reserve: %+v", rows)
	}

	credExpiry := time.Now().Add(15 * time.Minute).Truncate(time.Microsecond)
	if err := l.Complete(ctx, res, "ASIAEXAMPLEKEYID0001", credExpiry); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	rows = auditRows(t, pool)
	if len(rows) != 1 {
		t.Fatalf("%d rows", len(rows))
	}
	got := rows[0]
	if got.CompletedAt == nil || got.CompletedAt.Before(got.RequestedAt) {
		t.Errorf("completed_at %v, requested_at %v", got.CompletedAt, got.RequestedAt)
	}
	ip := netip.MustParseAddr("203.0.113.7")
	want := auditRow{
		ID: res.ID, RequestedAt: res.RequestedAt, CompletedAt: got.CompletedAt, Outcome: "issued",
		Issuer: ghIssuer, Subject: ptr("repo:acme/web:environment:production"), Repository: ptr("acme/web"),
		RepositoryID: ptr("1339936803"), Ref: ptr("refs/heads/main"), SHA: ptr(c.SHA),
		Environment: ptr("production"), EventName: ptr("push"), WorkflowRef: ptr(c.WorkflowRef),
		Actor: ptr("octocat"), RunID: ptr("12345678901"), RunAttempt: ptr("1"), JobID: ptr("31822455555"),
		TokenJTI: ptr(c.JTI), Mapping: ptr("web-prod-deploy"), Provider: ptr("aws"),
		Target:       map[string]any{"role_arn": "arn:aws:iam::123456789012:role/deploy", "region": "eu-west-1"},
		CredentialID: ptr("ASIAEXAMPLEKEYID0001"), ExpiresAt: &credExpiry, ClientIP: &ip,
		UserAgent: ptr("oidc-bridge-action/1.0"),
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("audit row (-want +got):\n%s", diff)
	}

	// The view has exactly the contract's columns, in order.
	var cols []string
	if err := pool.QueryRow(ctx, `SELECT array_agg(column_name::text ORDER BY ordinal_position)
		FROM information_schema.columns WHERE table_schema = 'audit' AND table_name = 'issuances'`).Scan(&cols); err != nil {
		t.Fatal(err)
	}
	// The contract's columns, in order, then the revocation columns (00004),
	// the requested mapping (00010) and the downscope (00014).
	wantCols := append(strings.Fields(strings.ReplaceAll(auditColumns, ",", " ")), "revoked_at", "revoked_by", "revocation_reason",
		"requested_mapping", "downscope")
	if diff := cmp.Diff(wantCols, cols); diff != "" {
		t.Errorf("audit.issuances columns (-contract +got):\n%s", diff)
	}

	// No secret anywhere: the whole row as text holds no JWT, no secret
	// key, no session token.
	var all string
	if err := pool.QueryRow(ctx, `SELECT string_agg(i::text, ' ') FROM issuances i`).Scan(&all); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"eyJ", "ecret", "ession", "access_token"} {
		if strings.Contains(all, s) {
			t.Errorf("ledger row contains %q: %s", s, all)
		}
	}

	// The auditor reads schema audit and nothing else.
	for _, table := range []string{"public.issuances", "public.replay_guard", "public.mappings", "public.admin_tokens"} {
		err := asAuditor(t, pool, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `SELECT 1 FROM `+table+` LIMIT 1`)
			return err
		})
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
			t.Errorf("auditor reading %s: %v; want permission denied", table, err)
		}
	}
}

func TestReplay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, pool := newLedger(t)
	c := claims()
	first, err := l.Reserve(ctx, attempt(c))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Complete(ctx, first, "ASIA1", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	_, err = l.Reserve(ctx, attempt(c))
	if !errors.Is(err, ledger.ErrReplayed) {
		t.Fatalf("second Reserve: %v; want ErrReplayed", err)
	}
	if errors.Is(err, ledger.ErrQuotaExceeded) || errors.Is(err, ledger.ErrUnavailable) {
		t.Errorf("replay error matches other sentinels: %v", err)
	}
	deniedID, ok := ledger.IssuanceID(err)
	if !ok || deniedID == first.ID {
		t.Fatalf("IssuanceID(%v) = %q, %v; want the denied row's own id", err, deniedID, ok)
	}
	var outcome, code, jti, mapping string
	if err := pool.QueryRow(ctx, `SELECT outcome, error_code, token_jti, mapping FROM issuances WHERE id = $1`, deniedID).
		Scan(&outcome, &code, &jti, &mapping); err != nil {
		t.Fatal(err)
	}
	if outcome != "denied" || code != "token_replayed" || jti != c.JTI || mapping != "web-prod-deploy" {
		t.Errorf("denied row: %s %s %s %s", outcome, code, jti, mapping)
	}

	// One token, one credential: the same token for another mapping is a
	// replay too (the issuer's replay_scope is token, the default), with
	// or without quotas.
	for _, quota := range []int{0, 5} {
		other := attempt(c)
		other.MappingID, other.Mapping, other.PerHour = 2, "web-staging", quota
		if _, err := l.Reserve(ctx, other); !errors.Is(err, ledger.ErrReplayed) {
			t.Errorf("same jti, other mapping, per_hour %d: %v; want ErrReplayed", quota, err)
		}
	}
	// The same jti from another issuer is another token.
	c2 := *c
	c2.Issuer = "https://gitlab.example.com"
	if _, err := l.Reserve(ctx, attempt(&c2)); err != nil {
		t.Errorf("same jti, other issuer: %v", err)
	}
	if diff := cmp.Diff(map[string]int{"issued": 1, "pending": 1, "denied/token_replayed": 3}, outcomes(t, pool)); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
}

func TestReplayConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, pool := newLedger(t)
	c := claims()
	a := attempt(c)
	a.PerHour = 100
	results := concurrently(50, func(int) (ledger.Reservation, error) { return l.Reserve(ctx, a) })
	ok, replayed := 0, 0
	ids := map[string]bool{}
	for _, r := range results {
		switch {
		case r.err == nil:
			ok++
			ids[r.res.ID] = true
		case errors.Is(r.err, ledger.ErrReplayed):
			replayed++
			id, _ := ledger.IssuanceID(r.err)
			ids[id] = true
		default:
			t.Errorf("Reserve: %v", r.err)
		}
	}
	if ok != 1 || replayed != 49 || len(ids) != 50 {
		t.Errorf("%d reserved, %d replayed, %d distinct ids; want 1, 49, 50", ok, replayed, len(ids))
	}
	if diff := cmp.Diff(map[string]int{"pending": 1, "denied/token_replayed": 49}, outcomes(t, pool)); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
}

func TestCompleteAndFail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, pool := newLedger(t)
	exp := time.Now().Add(time.Hour)

	res, err := l.Reserve(ctx, attempt(claims()))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Complete(ctx, res, "ASIA1", exp); err != nil {
		t.Fatal(err)
	}
	if err := l.Complete(ctx, res, "ASIA2", exp); !errors.Is(err, ledger.ErrNotPending) {
		t.Errorf("second Complete: %v; want ErrNotPending", err)
	}
	if err := l.Fail(ctx, res, "provider_error"); !errors.Is(err, ledger.ErrNotPending) {
		t.Errorf("Fail after Complete: %v; want ErrNotPending", err)
	}

	missing := ledger.Reservation{ID: uuid.Must(uuid.NewV7()).String(), RequestedAt: time.Now()}
	if err := l.Complete(ctx, missing, "ASIA3", exp); !errors.Is(err, ledger.ErrNotPending) {
		t.Errorf("Complete of a missing reservation: %v", err)
	}
	if err := l.Fail(ctx, missing, "provider_error"); !errors.Is(err, ledger.ErrNotPending) {
		t.Errorf("Fail of a missing reservation: %v", err)
	}
	// The right id with another requested_at is another row.
	wrongTime := res
	wrongTime.RequestedAt = res.RequestedAt.Add(time.Microsecond)
	if err := l.Complete(ctx, wrongTime, "ASIA4", exp); !errors.Is(err, ledger.ErrNotPending) {
		t.Errorf("Complete with another requested_at: %v", err)
	}
	for _, r := range []ledger.Reservation{{}, {ID: "not-a-uuid", RequestedAt: time.Now()}, {ID: res.ID}} {
		if err := l.Complete(ctx, r, "ASIA5", exp); !errors.Is(err, ledger.ErrInvalid) {
			t.Errorf("Complete(%+v): %v; want ErrInvalid", r, err)
		}
	}
	if err := l.Complete(ctx, res, "", exp); !errors.Is(err, ledger.ErrInvalid) {
		t.Errorf("Complete without credential id: %v", err)
	}
	if err := l.Complete(ctx, res, "ASIA", time.Time{}); !errors.Is(err, ledger.ErrInvalid) {
		t.Errorf("Complete without expiry: %v", err)
	}

	// Fail gives the token back: the pipeline may retry with it.
	c := claims()
	res, err = l.Reserve(ctx, attempt(c))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Fail(ctx, res, ""); !errors.Is(err, ledger.ErrInvalid) {
		t.Errorf("Fail without error code: %v", err)
	}
	if err := l.Fail(ctx, res, "provider_error"); err != nil {
		t.Fatalf("Fail: %v", err)
	}
	if err := l.Fail(ctx, res, "provider_error"); !errors.Is(err, ledger.ErrNotPending) {
		t.Errorf("second Fail: %v", err)
	}
	if err := l.Complete(ctx, res, "ASIA6", exp); !errors.Is(err, ledger.ErrNotPending) {
		t.Errorf("Complete after Fail: %v", err)
	}
	var completed *time.Time
	var code string
	if err := pool.QueryRow(ctx, `SELECT completed_at, error_code FROM issuances WHERE id = $1`, res.ID).Scan(&completed, &code); err != nil {
		t.Fatal(err)
	}
	if completed == nil || code != "provider_error" {
		t.Errorf("failed row: completed_at %v, error_code %q", completed, code)
	}
	retry, err := l.Reserve(ctx, attempt(c))
	if err != nil {
		t.Fatalf("Reserve after Fail: %v", err)
	}
	if err := l.Complete(ctx, retry, "ASIA7", exp); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Reserve(ctx, attempt(c)); !errors.Is(err, ledger.ErrReplayed) {
		t.Errorf("Reserve after the retry was issued: %v; want ErrReplayed", err)
	}
	if diff := cmp.Diff(map[string]int{"issued": 2, "failed/provider_error": 1, "denied/token_replayed": 1}, outcomes(t, pool)); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
}

// A Complete racing another Complete (a retried request, a bug) settles
// the row once.
func TestCompleteConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, _ := newLedger(t)
	res, err := l.Reserve(ctx, attempt(claims()))
	if err != nil {
		t.Fatal(err)
	}
	results := concurrently(10, func(i int) (ledger.Reservation, error) {
		if i%2 == 0 {
			return res, l.Fail(ctx, res, "provider_error")
		}
		return res, l.Complete(ctx, res, fmt.Sprint("ASIA", i), time.Now().Add(time.Hour))
	})
	settled := 0
	for _, r := range results {
		switch {
		case r.err == nil:
			settled++
		case !errors.Is(r.err, ledger.ErrNotPending):
			t.Errorf("%v", r.err)
		}
	}
	if settled != 1 {
		t.Errorf("%d calls settled the reservation, want 1", settled)
	}
}

func TestDeny(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, pool := newLedger(t)

	// No mapping selected: the mapping's columns stay empty.
	none := attempt(claims())
	none.MappingID, none.Mapping, none.Provider, none.Target = 0, "", "", nil
	id, err := l.Deny(ctx, none, "no_matching_mapping")
	if err != nil {
		t.Fatal(err)
	}
	// A named mapping that was refused, with its target.
	named := attempt(claims())
	named.ClientIP = netip.MustParseAddr("::ffff:198.51.100.9") // IPv4 as seen on a dual-stack socket
	id2, err := l.Deny(ctx, named, "invalid_request")
	if err != nil {
		t.Fatal(err)
	}
	rows := auditRows(t, pool)
	if len(rows) != 2 {
		t.Fatalf("%d rows", len(rows))
	}
	byID := map[string]auditRow{rows[0].ID: rows[0], rows[1].ID: rows[1]}
	r := byID[id]
	if r.Outcome != "denied" || *r.ErrorCode != "no_matching_mapping" || r.Mapping != nil || r.Provider != nil ||
		r.Target != nil || r.CompletedAt == nil || !r.CompletedAt.Equal(r.RequestedAt) || r.ExpiresAt != nil ||
		*r.Repository != "acme/web" || *r.TokenJTI != none.Claims.JTI {
		t.Errorf("no_matching_mapping row: %+v", r)
	}
	r = byID[id2]
	if r.Outcome != "denied" || *r.ErrorCode != "invalid_request" || *r.Mapping != "web-prod-deploy" ||
		r.Target["region"] != "eu-west-1" || r.ClientIP.String() != "198.51.100.9" {
		t.Errorf("invalid_request row: %+v", r)
	}
	// A denied row neither spends the token nor counts in a quota.
	if _, err := l.Reserve(ctx, named); err != nil {
		t.Errorf("Reserve after Deny: %v", err)
	}
	if _, err := l.Deny(ctx, none, ""); !errors.Is(err, ledger.ErrInvalid) {
		t.Errorf("Deny without code: %v", err)
	}
	if _, err := l.Deny(ctx, ledger.Attempt{}, "invalid_request"); !errors.Is(err, ledger.ErrInvalid) {
		t.Errorf("Deny without claims: %v", err)
	}
}

func TestReserveInvalid(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, pool := newLedger(t)
	for _, tt := range []struct {
		name string
		edit func(a *ledger.Attempt)
	}{
		{"no claims", func(a *ledger.Attempt) { a.Claims = nil }},
		{"no issuer", func(a *ledger.Attempt) { a.Claims.Issuer = "" }},
		{"no jti", func(a *ledger.Attempt) { a.Claims.JTI = "" }},
		{"no expiry", func(a *ledger.Attempt) { a.Claims.Expiry = time.Time{} }},
		{"no mapping", func(a *ledger.Attempt) { a.MappingID = 0 }},
		{"no duration", func(a *ledger.Attempt) { a.Duration = 0 }},
		{"negative quota", func(a *ledger.Attempt) { a.PerHour = -1 }},
		{"target not JSON", func(a *ledger.Attempt) { a.Target = []byte(`{"role_arn":`) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := attempt(claims())
			tt.edit(&a)
			if _, err := l.Reserve(ctx, a); !errors.Is(err, ledger.ErrInvalid) || !strings.HasPrefix(err.Error(), "ledger: ") {
				t.Errorf("Reserve: %v; want ErrInvalid", err)
			}
		})
	}
	if got := outcomes(t, pool); len(got) != 0 {
		t.Errorf("invalid attempts wrote rows: %v", got)
	}
}

// Claims are attacker-influenced: NUL bytes, invalid UTF-8 and huge values
// must neither break the insert (the attempt would go unrecorded) nor
// bloat the ledger.
func TestHostileClaimsAreRecorded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, pool := newLedger(t)
	c := claims()
	c.Ref = "refs/heads/main\x00"
	c.Actor = strings.Repeat("é", 100_000)
	c.Environment = "prod'); DROP TABLE mappings;--"
	c.WorkflowRef = "bad\xff\xfeutf8"
	a := attempt(c)
	a.UserAgent = strings.Repeat("u", 10_000)
	res, err := l.Reserve(ctx, a)
	if err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	var ref, actor, env, wf, ua string
	if err := pool.QueryRow(ctx, `SELECT ref, actor, environment, workflow_ref, user_agent FROM issuances WHERE id = $1`, res.ID).
		Scan(&ref, &actor, &env, &wf, &ua); err != nil {
		t.Fatal(err)
	}
	if ref != "refs/heads/main\uFFFD" || env != c.Environment || wf != "bad\uFFFDutf8" {
		t.Errorf("ref %q, environment %q, workflow_ref %q", ref, env, wf)
	}
	if len(actor) > 1024 || !strings.HasPrefix(actor, "éé") || strings.ContainsRune(actor, '\uFFFD') {
		t.Errorf("actor: %d bytes, cut mid-rune or not cut", len(actor))
	}
	if len(ua) != ledger.MaxUserAgent {
		t.Errorf("user agent: %d bytes, want %d", len(ua), ledger.MaxUserAgent)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM mappings`).Scan(&n); err != nil {
		t.Errorf("mappings: %v", err)
	}
}

func TestUnavailable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("unreachable", func(t *testing.T) {
		t.Parallel()
		pool, err := pgxpool.New(ctx, "postgres://bridge:pw@127.0.0.1:1/db?connect_timeout=2")
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		l := ledger.New(pool)
		res := ledger.Reservation{ID: uuid.Must(uuid.NewV7()).String(), RequestedAt: time.Now()}
		for name, err := range map[string]error{
			"Reserve":  func() error { _, err := l.Reserve(ctx, attempt(claims())); return err }(),
			"Complete": l.Complete(ctx, res, "ASIA", time.Now()),
			"Fail":     l.Fail(ctx, res, "provider_error"),
			"Deny":     func() error { _, err := l.Deny(ctx, attempt(claims()), "no_matching_mapping"); return err }(),
			"Sweep":    func() error { _, err := l.Sweep(ctx); return err }(),
			"Usage":    func() error { _, err := l.Usage(ctx, 1, "m", 1, 1); return err }(),
		} {
			if !errors.Is(err, ledger.ErrUnavailable) || !strings.HasPrefix(err.Error(), "ledger: ") || strings.Contains(err.Error(), "pw@") {
				t.Errorf("%s: %v; want ErrUnavailable", name, err)
			}
		}
	})

	t.Run("closed pool", func(t *testing.T) {
		t.Parallel()
		pool, err := database.Open(ctx, pgtest.NewDatabase(t))
		if err != nil {
			t.Fatal(err)
		}
		pool.Close()
		if _, err := ledger.New(pool).Reserve(ctx, attempt(claims())); !errors.Is(err, ledger.ErrUnavailable) {
			t.Errorf("Reserve on a closed pool: %v; want ErrUnavailable", err)
		}
	})

	t.Run("deadline", func(t *testing.T) {
		t.Parallel()
		l, _ := newLedger(t)
		dead, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
		defer cancel()
		if _, err := l.Reserve(dead, attempt(claims())); !errors.Is(err, ledger.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Reserve past its deadline: %v; want ErrUnavailable", err)
		}
	})

	// A quota'd reservation that fails inside its transaction (the count
	// waits on a lock past the deadline, after the guard was claimed and
	// the buckets locked) rolls all of it back: nothing is recorded, and
	// the token's guard is not left claimed, so the same token reserves
	// once the database is well again.
	t.Run("stalled inside the quota transaction", func(t *testing.T) {
		t.Parallel()
		l, pool := newLedger(t)
		locker, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer locker.Rollback(ctx)
		if _, err := locker.Exec(ctx, `LOCK TABLE issuances IN ACCESS EXCLUSIVE MODE`); err != nil {
			t.Fatal(err)
		}
		a := attempt(claims())
		a.PerHour, a.PerJob = 10, 2
		short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		if _, err := l.Reserve(short, a); !errors.Is(err, ledger.ErrUnavailable) {
			t.Fatalf("Reserve stalled inside its transaction: %v; want ErrUnavailable", err)
		}
		if err := locker.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		var guards int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM replay_guard`).Scan(&guards); err != nil || guards != 0 {
			t.Fatalf("replay guards after the rollback: %d %v", guards, err)
		}
		if got := outcomes(t, pool); len(got) != 0 {
			t.Fatalf("rows after the rollback: %v", got)
		}
		res, err := l.Reserve(ctx, a)
		if err != nil {
			t.Fatalf("the same token after the rollback: %v", err)
		}
		if err := l.Complete(ctx, res, "ASIAEXAMPLE", time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if got := outcomes(t, pool); got["issued"] != 1 || len(got) != 1 {
			t.Fatalf("rows: %v", got)
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		t.Parallel()
		l, _ := newLedger(t)
		gone, cancel := context.WithCancel(ctx)
		cancel()
		_, err := l.Reserve(gone, attempt(claims()))
		if !errors.Is(err, context.Canceled) || errors.Is(err, ledger.ErrUnavailable) {
			t.Errorf("Reserve of a cancelled request: %v; want context.Canceled only", err)
		}
	})

	// The catalogue's case 59: the ledger cannot write (a revoked grant), so
	// the bridge must answer 503 and issue nothing.
	t.Run("cannot write", func(t *testing.T) {
		t.Parallel()
		url := pgtest.NewDatabase(t)
		admin, err := database.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close()
		role := fmt.Sprintf("ledger_test_readonly_%d", time.Now().UnixNano())
		for _, q := range []string{
			`CREATE ROLE ` + role + ` NOLOGIN`,
			`GRANT SELECT, INSERT, DELETE ON replay_guard TO ` + role,
			`GRANT SELECT ON issuances TO ` + role,
		} {
			if _, err := admin.Exec(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		t.Cleanup(func() {
			_, _ = admin.Exec(context.Background(), `DROP OWNED BY `+role)
			_, _ = admin.Exec(context.Background(), `DROP ROLE `+role)
		})
		cfg, err := pgxpool.ParseConfig(url)
		if err != nil {
			t.Fatal(err)
		}
		cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
			_, err := c.Exec(ctx, `SET ROLE `+role)
			return err
		}
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		a := attempt(claims())
		a.PerHour = 5
		if _, err := ledger.New(pool).Reserve(ctx, a); !errors.Is(err, ledger.ErrUnavailable) {
			t.Errorf("Reserve without INSERT on issuances: %v; want ErrUnavailable", err)
		}
		var n int
		if err := admin.QueryRow(ctx, `SELECT (SELECT count(*) FROM issuances) + (SELECT count(*) FROM replay_guard)`).Scan(&n); err != nil || n != 0 {
			t.Errorf("rows left behind: %d, %v", n, err)
		}
	})
}

// requestedMappings reads (id, mapping, requested_mapping) of audit.issuances
// as the auditor.
func requestedMappings(t *testing.T, pool *pgxpool.Pool) map[string][2]*string {
	t.Helper()
	out := map[string][2]*string{}
	err := asAuditor(t, pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(context.Background(), `SELECT id::text, mapping, requested_mapping FROM audit.issuances`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			var m, rm *string
			if err := rows.Scan(&id, &m, &rm); err != nil {
				return err
			}
			out[id] = [2]*string{m, rm}
		}
		return rows.Err()
	})
	if err != nil {
		t.Fatalf("read audit.issuances as auditor: %v", err)
	}
	return out
}

// The mapping a request named is recorded on the attempt's row, whatever
// the outcome, also when no mapping of that name exists; it is client
// input, stored cleaned and bounded like the claims.
func TestRequestedMappingRecorded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, pool := newLedger(t)
	check := func(name string, id string, wantMapping, wantRequested *string) {
		t.Helper()
		got, ok := requestedMappings(t, pool)[id]
		if !ok {
			t.Fatalf("%s: no row %s in audit.issuances", name, id)
		}
		if diff := cmp.Diff([2]*string{wantMapping, wantRequested}, got); diff != "" {
			t.Errorf("%s: (mapping, requested_mapping) (-want +got):\n%s", name, diff)
		}
	}

	// Refused, the named mapping missing: only the name asked for.
	missing := attempt(claims())
	missing.MappingID, missing.Mapping, missing.Provider, missing.Target = 0, "", "", nil
	missing.RequestedMapping = "web-prod"
	id, err := l.Deny(ctx, missing, "no_matching_mapping")
	if err != nil {
		t.Fatal(err)
	}
	check("missing mapping", id, nil, ptr("web-prod"))

	// Refused by the named mapping, which exists: both.
	named := attempt(claims())
	named.RequestedMapping = "web-prod-deploy"
	if id, err = l.Deny(ctx, named, "no_matching_mapping"); err != nil {
		t.Fatal(err)
	}
	check("existing mapping", id, ptr("web-prod-deploy"), ptr("web-prod-deploy"))

	// Issued rows keep it too, with and without quotas (two statements).
	for _, perHour := range []int{0, 5} {
		a := attempt(claims())
		a.MappingID, a.Mapping, a.PerHour = 2, "seed-2", perHour
		a.RequestedMapping = "seed-2"
		res, err := l.Reserve(ctx, a)
		if err != nil {
			t.Fatalf("Reserve (per_hour %d): %v", perHour, err)
		}
		check(fmt.Sprintf("reserved, per_hour %d", perHour), res.ID, ptr("seed-2"), ptr("seed-2"))
	}

	// Named none: NULL, not "".
	none := attempt(claims())
	if id, err = l.Deny(ctx, none, "invalid_request"); err != nil {
		t.Fatal(err)
	}
	check("named none", id, ptr("web-prod-deploy"), nil)

	// Hostile input: NUL and invalid UTF-8 replaced, cut on a rune at
	// MaxRequestedMapping bytes, SQL stays data.
	hostile := attempt(claims())
	hostile.MappingID, hostile.Mapping, hostile.Provider, hostile.Target = 0, "", "", nil
	hostile.RequestedMapping = "x\x00y\xff'); DROP TABLE mappings;--" + strings.Repeat("é", 1000)
	if id, err = l.Deny(ctx, hostile, "invalid_request"); err != nil {
		t.Fatalf("Deny of a hostile name: %v", err)
	}
	got := requestedMappings(t, pool)[id][1]
	if got == nil || !strings.HasPrefix(*got, "x\uFFFDy\uFFFD'); DROP TABLE mappings;--é") ||
		len(*got) > ledger.MaxRequestedMapping || len(*got) < ledger.MaxRequestedMapping-1 || !utf8.ValidString(*got) {
		t.Errorf("hostile requested_mapping recorded as %q", deref(got))
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM mappings`).Scan(&n); err != nil || n != seedMappings {
		t.Errorf("mappings: %d, %v", n, err)
	}
}

func deref(s *string) string {
	if s == nil {
		return "<NULL>"
	}
	return *s
}
