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
	if err := l.Complete(ctx, res, "ASIAX", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM audit.issuances WHERE revoked_at IS NOT NULL
		AND outcome IN ('issued', 'unknown')`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("revoked issued+unknown rows: %d %v", n, err)
	}
}

// The view's contract columns come first and in order; the revocation
// columns follow.
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
		"credential_id expires_at client_ip user_agent revoked_at revoked_by revocation_reason"
	if got := strings.Join(cols, " "); got != want {
		t.Fatalf("view columns:\n%s\nwant\n%s", got, want)
	}
}
