package ledger_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/oidc-bridge/oidc-bridge/ledger"
)

// issue records an issued credential of c on mapping (id, name) with
// target, expiring in ttl (negative: expired), and returns its id.
func issue(t *testing.T, l *ledger.Ledger, repo, run string, mappingID int64, name, target string, ttl time.Duration) string {
	t.Helper()
	ctx := context.Background()
	c := claims()
	c.Repository, c.RunID = repo, run
	a := attempt(c)
	a.MappingID, a.Mapping, a.Target = mappingID, name, json.RawMessage(target)
	res, err := l.Reserve(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Complete(ctx, res, "ASIA"+strings.ToUpper(c.JTI), time.Now().Add(ttl)); err != nil {
		t.Fatal(err)
	}
	return res.ID
}

// revocation is a row's revocation columns as the audit view shows them.
type revocation struct {
	at     *time.Time
	by     *string
	reason *string
}

// revocations reads the view as the auditor, by issuance id.
func revocations(t *testing.T, pool *pgxpool.Pool) map[string]revocation {
	t.Helper()
	out := map[string]revocation{}
	err := asAuditor(t, pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(context.Background(), `SELECT id::text, revoked_at, revoked_by, revocation_reason FROM audit.issuances`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			var r revocation
			if err := rows.Scan(&id, &r.at, &r.by, &r.reason); err != nil {
				return err
			}
			out[id] = r
		}
		return rows.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func revokedIDs(m map[string]revocation) map[string]bool {
	out := map[string]bool{}
	for id, r := range m {
		if r.at != nil {
			out[id] = true
		}
	}
	return out
}

const (
	targetA = `{"role_arn": "arn:aws:iam::123456789012:role/a", "region": "eu-west-1"}`
	targetB = `{"role_arn": "arn:aws:iam::123456789012:role/b", "region": "eu-west-1"}`
)

func TestRevokeSelectors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, pool := newLedger(t)
	if _, err := pool.Exec(ctx, `INSERT INTO issuers (name, url, kind, audiences) VALUES ('gh', 'https://gh', 'github', '{x}');
		INSERT INTO mappings (name, issuer_id, conditions, provider, target, max_duration_seconds)
		SELECT 'renamed', id, '{}', 'aws', '{}', 3600 FROM issuers WHERE name = 'gh'`); err != nil {
		t.Fatal(err)
	}
	var mappingID int64
	if err := pool.QueryRow(ctx, `SELECT id FROM mappings WHERE name = 'renamed'`).Scan(&mappingID); err != nil {
		t.Fatal(err)
	}
	// webRun1 on mapping a (two jobs), webRun2 on a, apiRun1 on b (same
	// run id, another repository), an expired one, a denied one.
	w1a := issue(t, l, "acme/web", "1", 11, "a", targetA, time.Hour)
	w1b := issue(t, l, "acme/web", "1", 11, "a", targetA, time.Hour)
	w2 := issue(t, l, "acme/web", "2", 11, "a", targetA, time.Hour)
	api1 := issue(t, l, "acme/api", "1", 12, "b", targetB, time.Hour)
	expired := issue(t, l, "acme/web", "1", 11, "a", targetA, -time.Second)
	old := issue(t, l, "acme/web", "3", mappingID, "before-rename", targetB, time.Hour)
	dc := claims()
	denied, err := l.Deny(ctx, attempt(dc), "no_matching_mapping")
	if err != nil {
		t.Fatal(err)
	}

	if _, err := l.Revoke(ctx, ledger.Selector{}, "alice", "leak"); !errors.Is(err, ledger.ErrInvalid) {
		t.Fatalf("no selector: %v", err)
	}
	if _, err := l.Revoke(ctx, ledger.Selector{Before: time.Now()}, "alice", "leak"); !errors.Is(err, ledger.ErrInvalid) {
		t.Fatalf("only before: %v", err)
	}
	if _, err := l.Revoke(ctx, ledger.Selector{RunID: "1"}, "alice", " "); !errors.Is(err, ledger.ErrInvalid) {
		t.Fatalf("no reason: %v", err)
	}

	// Repository and run together: both jobs of acme/web's run 1, not the
	// expired credential, not acme/api's run 1. Case-insensitive name.
	res, err := l.Revoke(ctx, ledger.Selector{Repository: "ACME/Web", RunID: "1"}, "alice", "leaked in a log")
	if err != nil {
		t.Fatal(err)
	}
	if res.Count != 2 || len(res.Targets) != 1 || res.Targets[0].Mapping != "a" || res.Targets[0].Provider != "aws" ||
		res.Targets[0].Count != 2 || res.RevokedAt.IsZero() || res.Targets[0].Latest.After(res.RevokedAt) {
		t.Fatalf("repository+run: %+v", res)
	}
	var tgt map[string]string
	if err := json.Unmarshal(res.Targets[0].Target, &tgt); err != nil || tgt["role_arn"] != "arn:aws:iam::123456789012:role/a" {
		t.Fatalf("target %s: %v", res.Targets[0].Target, err)
	}
	got := revocations(t, pool)
	if r := revokedIDs(got); len(r) != 2 || !r[w1a] || !r[w1b] {
		t.Fatalf("revoked %v", r)
	}
	if r := got[w1a]; *r.by != "alice" || *r.reason != "leaked in a log" || !r.at.Equal(res.RevokedAt) {
		t.Fatalf("view shows %v %v %v", r.at, *r.by, *r.reason)
	}
	first := *got[w1a].at

	// Again: the revoked rows are left alone (their first record stands),
	// acme/web's other runs are not in the selection.
	res, err = l.Revoke(ctx, ledger.Selector{Repository: "acme/web", RunID: "1"}, "bob", "again")
	if err != nil || res.Count != 0 || len(res.Targets) != 0 || !res.RevokedAt.IsZero() {
		t.Fatalf("repeat: %+v %v", res, err)
	}
	if r := revocations(t, pool)[w1a]; *r.by != "alice" || !r.at.Equal(first) {
		t.Fatalf("repeat changed the record: %v", *r.by)
	}

	// By mapping: its current name reaches rows recorded under an old one.
	res, err = l.Revoke(ctx, ledger.Selector{Mapping: "renamed"}, "carol", "rotate")
	if err != nil || res.Count != 1 || res.Targets[0].Mapping != "before-rename" {
		t.Fatalf("mapping by id: %+v %v", res, err)
	}
	// Before: nothing requested before a time long ago.
	res, err = l.Revoke(ctx, ledger.Selector{Mapping: "a", Before: time.Now().Add(-time.Hour)}, "carol", "rotate")
	if err != nil || res.Count != 0 {
		t.Fatalf("before: %+v %v", res, err)
	}
	// By repository alone: the two mappings' targets, one row each left.
	res, err = l.Revoke(ctx, ledger.Selector{Repository: "acme/api"}, "carol", "rotate")
	if err != nil || res.Count != 1 || res.Targets[0].Mapping != "b" {
		t.Fatalf("repository: %+v %v", res, err)
	}
	res, err = l.Revoke(ctx, ledger.Selector{Mapping: "a"}, "carol", "rotate")
	if err != nil || res.Count != 1 {
		t.Fatalf("mapping a: %+v %v", res, err)
	}
	got = revocations(t, pool)
	r := revokedIDs(got)
	for _, id := range []string{w1a, w1b, w2, api1, old} {
		if !r[id] {
			t.Errorf("%s not revoked", id)
		}
	}
	if r[expired] || r[denied] {
		t.Errorf("an expired or denied row was revoked: %v", r)
	}
	// The outcomes are unchanged.
	if o := outcomes(t, pool); o["issued"] != 6 || o["denied/no_matching_mapping"] != 1 {
		t.Errorf("outcomes %v", o)
	}
}

// A pending row may be minted any moment, an unknown one may have been:
// both are revoked, and a pending one stays revoked once completed.
func TestRevokePendingAndUnknown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, pool := newLedger(t)
	c := claims()
	res, err := l.Reserve(ctx, attempt(c))
	if err != nil {
		t.Fatal(err)
	}
	backdate(t, pool, time.Minute, "unknown", "acme/web", 1, c.RunID, "1", "9")
	backdate(t, pool, time.Minute, "failed", "acme/web", 1, c.RunID, "1", "10")
	rv, err := l.Revoke(ctx, ledger.Selector{RunID: c.RunID}, "alice", "compromised runner")
	if err != nil || rv.Count != 2 {
		t.Fatalf("revoke: %+v %v", rv, err)
	}
	if err := l.Complete(ctx, res, "ASIAX", time.Now().Add(time.Hour)); !errors.Is(err, ledger.ErrRevoked) {
		t.Fatalf("complete of a revoked reservation: %v, want ErrRevoked", err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM audit.issuances WHERE revoked_at IS NOT NULL
		AND outcome IN ('issued', 'unknown')`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("revoked issued+unknown rows: %d %v", n, err)
	}
}

// R3: a reservation revoked while its credential is being minted is
// recorded as issued (the credential exists at the cloud), stays revoked,
// is marked revoked_in_flight, and Complete refuses it, so that the bridge
// withholds the credential. A reservation not revoked completes as before,
// and a revocation after Complete marks an issued row.
func TestCompleteRefusesRevokedInFlight(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, pool := newLedger(t)
	c := claims()
	res, err := l.Reserve(ctx, attempt(c))
	if err != nil {
		t.Fatal(err)
	}
	other := claims()
	other.RunID = "other-run"
	res2, err := l.Reserve(ctx, attempt(other))
	if err != nil {
		t.Fatal(err)
	}
	rv, err := l.Revoke(ctx, ledger.Selector{RunID: c.RunID}, "alice", "leaked")
	if err != nil || rv.Count != 1 || len(rv.Targets) != 1 {
		t.Fatalf("revoke: %+v %v", rv, err)
	}
	if got := rv.Targets[0].InFlight; len(got) != 1 || got[0].ID != res.ID || !got[0].RequestedAt.Equal(res.RequestedAt) {
		t.Fatalf("in-flight rows %+v, want the reservation %+v", got, res)
	}

	expires := time.Now().Add(time.Hour).Truncate(time.Second)
	err = l.Complete(ctx, res, "ASIAREVOKED", expires)
	var re *ledger.RevokedError
	if !errors.As(err, &re) || !errors.Is(err, ledger.ErrRevoked) || re.IssuanceID != res.ID ||
		re.RevokedBy != "alice" || !re.RevokedAt.Equal(rv.RevokedAt) {
		t.Fatalf("complete of a revoked reservation: %#v", err)
	}
	if err := l.Complete(ctx, res2, "ASIAFINE", expires); err != nil {
		t.Fatalf("complete of a live reservation: %v", err)
	}
	// Settled once: a second Complete finds nothing pending.
	if err := l.Complete(ctx, res, "ASIAREVOKED", expires); !errors.Is(err, ledger.ErrNotPending) {
		t.Fatalf("second complete: %v", err)
	}

	type view struct {
		outcome, credential string
		code                *string
		expires             time.Time
		revoked, completed  *time.Time
	}
	read := func(id string) view {
		var v view
		err := asAuditor(t, pool, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `SELECT outcome, coalesce(credential_id, ''), error_code, expires_at, revoked_at, completed_at
				FROM audit.issuances WHERE id = $1`, id).Scan(&v.outcome, &v.credential, &v.code, &v.expires, &v.revoked, &v.completed)
		})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	v := read(res.ID)
	if v.outcome != "issued" || v.credential != "ASIAREVOKED" || !v.expires.Equal(expires) || v.code == nil ||
		*v.code != ledger.CodeRevokedInFlight || v.revoked == nil || !v.revoked.Equal(rv.RevokedAt) ||
		v.completed == nil || v.completed.Before(*v.revoked) {
		t.Fatalf("revoked in flight: %+v", v)
	}
	if v := read(res2.ID); v.outcome != "issued" || v.credential != "ASIAFINE" || v.code != nil || v.revoked != nil {
		t.Fatalf("live: %+v", v)
	}
	// Revoked after it completed: an issued row, marked; no in-flight row.
	rv, err = l.Revoke(ctx, ledger.Selector{RunID: other.RunID}, "bob", "later")
	if err != nil || rv.Count != 1 || len(rv.Targets[0].InFlight) != 0 || !rv.Targets[0].Latest.Equal(*read(res2.ID).completed) {
		t.Fatalf("revoke after complete: %+v %v", rv, err)
	}
}

// Settle waits for in-flight reservations to stop minting and bounds when
// their credentials were minted: the completion of a settled row, the
// reservation + window for one that never settles, and that conservative
// bound when the caller gives up.
func TestSettle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, pool := newLedger(t)
	reserve := func() ledger.Reservation {
		res, err := l.Reserve(ctx, attempt(claims()))
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	completedAt := func(id string) time.Time {
		var at time.Time
		if err := pool.QueryRow(ctx, `SELECT completed_at FROM issuances WHERE id = $1`, id).Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at
	}

	if at, err := l.Settle(ctx, nil, time.Minute); err != nil || !at.IsZero() {
		t.Fatalf("nothing in flight: %v %v", at, err)
	}

	// Completed while Settle waits: its completion is the bound.
	a, b := reserve(), reserve()
	if err := l.Fail(ctx, b, "provider_error"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		time.Sleep(500 * time.Millisecond)
		done <- l.Complete(ctx, a, "ASIAA", time.Now().Add(time.Hour))
	}()
	start := time.Now()
	at, err := l.Settle(ctx, []ledger.Reservation{a, b}, time.Minute)
	if cerr := <-done; cerr != nil {
		t.Fatal(cerr)
	}
	if err != nil || !at.Equal(completedAt(a.ID)) || time.Since(start) < 400*time.Millisecond || time.Since(start) > 10*time.Second {
		t.Fatalf("settle: %v %v after %v; completed at %v", at, err, time.Since(start), completedAt(a.ID))
	}

	// Never settled: the window bounds it, and Settle returns once it passed.
	c := reserve()
	start = time.Now()
	at, err = l.Settle(ctx, []ledger.Reservation{c}, time.Second)
	if err != nil || !at.Equal(c.RequestedAt.Add(time.Second)) || time.Since(start) > 10*time.Second {
		t.Fatalf("unsettled: %v %v after %v", at, err, time.Since(start))
	}

	// The caller gives up: the conservative bound, with the error.
	d := reserve()
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	at, err = l.Settle(cctx, []ledger.Reservation{d}, time.Hour)
	if err == nil || !at.Equal(d.RequestedAt.Add(time.Hour)) {
		t.Fatalf("given up: %v %v", at, err)
	}
}

// The view's contract columns come first and in order; the revocation
// columns (00004) and the requested mapping (00010) follow.
func TestRevokeViewColumns(t *testing.T) {
	t.Parallel()
	_, pool := newLedger(t)
	rows, err := pool.Query(context.Background(), `SELECT column_name FROM information_schema.columns
		WHERE table_schema = 'audit' AND table_name = 'issuances' ORDER BY ordinal_position`)
	if err != nil {
		t.Fatal(err)
	}
	cols, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	want := "id requested_at completed_at outcome error_code issuer subject repository repository_id ref sha " +
		"environment event_name workflow_ref actor run_id run_attempt job_id token_jti mapping provider target " +
		"credential_id expires_at client_ip user_agent revoked_at revoked_by revocation_reason requested_mapping downscope"
	if got := strings.Join(cols, " "); got != want {
		t.Fatalf("view columns:\n%s\nwant\n%s", got, want)
	}
}
