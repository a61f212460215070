package bridge_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/providers/aws"
	"github.com/oidc-bridge/oidc-bridge/test/ststest"
)

const revokePath = "/v1/admin/issuances/revoke"

// ownRoleARN is a role of the account of the bridge's own key at the STS
// fake: the one account whose roles the bridge can change with IAM.
const ownRoleARN = "arn:aws:iam::" + ststest.CallerAccount + ":role/release"

// revokeEnv is an exchangeEnv with a fake IAM and a mapping "release"
// (acme/web's release branch) on a role of the bridge's own account.
func newRevokeEnv(t *testing.T) (*exchangeEnv, *ststest.IAMServer) {
	t.Helper()
	iam := ststest.NewIAM(t)
	t.Setenv("AWS_ENDPOINT_URL_IAM", iam.URL())
	x := newExchangeEnv(t)
	x.must(201, "POST", "/v1/admin/mappings", `{"name": "release", "issuer": "github",
		"conditions": {"repository": "acme/web", "ref": "refs/heads/release"},
		"provider": "aws", "target": {"role_arn": "`+ownRoleARN+`", "region": "eu-west-1", "mode": "assume_role"}}`)
	return x, iam
}

// issued exchanges a fresh token with the claims' overrides and returns the
// issuance id.
func (x *exchangeEnv) issued(over map[string]any) string {
	x.t.Helper()
	r := x.exchange(x.token(over), "")
	if r.status != 200 {
		x.t.Fatalf("exchange: %d %s", r.status, r.body)
	}
	var resp api.ExchangeResponse
	if err := json.Unmarshal(r.body, &resp); err != nil {
		x.t.Fatal(err)
	}
	return resp.IssuanceID
}

// revoked returns the revocation columns of the audit view, by issuance id
// ("" when not revoked).
func (x *exchangeEnv) revoked() map[string]string {
	x.t.Helper()
	rows, err := x.pool.Query(context.Background(), `SELECT id::text,
		coalesce(revoked_by || '/' || revocation_reason || '/' || (revoked_at <= now())::text, '') FROM audit.issuances`)
	if err != nil {
		x.t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id, v string
		if err := rows.Scan(&id, &v); err != nil {
			x.t.Fatal(err)
		}
		out[id] = v
	}
	return out
}

func revokeResponse(t *testing.T, b []byte) api.RevokeResponse {
	t.Helper()
	var r api.RevokeResponse
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("revoke response %s: %v", b, err)
	}
	return r
}

func TestRevokeIssuances(t *testing.T) {
	x, iam := newRevokeEnv(t)
	web1 := x.issued(nil)                                                   // mapping web, run 12345678901
	rel1 := x.issued(map[string]any{"ref": "refs/heads/release"})           // mapping release, same run
	web2 := x.issued(map[string]any{"run_id": "2"})                         // mapping web, run 2
	other := x.issued(map[string]any{"run_id": "3", "ref": "refs/tags/v1"}) // mapping tags, run 3
	alice := x.as(x.newToken("alice", "write"))
	reader := x.as(x.newToken("reader", "read"))

	// Refusals change nothing.
	x.wantError(reader.do("POST", revokePath, `{"run_id": "12345678901", "reason": "x"}`), 403, api.CodeForbidden, "")
	x.wantError(alice.do("POST", revokePath, `{"reason": "leak"}`), 400, api.CodeInvalidRequest, "")
	x.wantError(alice.do("POST", revokePath, `{"run_id": "12345678901"}`), 400, api.CodeInvalidRequest, "reason")
	x.wantError(alice.do("POST", revokePath, `{"run_id": "12345678901", "reason": " "}`), 400, api.CodeInvalidRequest, "reason")
	x.wantError(alice.do("POST", revokePath, `{"run": "12345678901", "reason": "leak"}`), 400, api.CodeInvalidRequest, "run")
	x.wantError(alice.do("POST", revokePath, `{"run_id": 12345678901, "reason": "leak"}`), 400, api.CodeInvalidRequest, "run_id")
	for id, v := range x.revoked() {
		if v != "" {
			t.Fatalf("a refused request revoked %s: %s", id, v)
		}
	}

	// By run, with the AWS sessions: both mappings' credentials of the
	// run; the own-account role gets the policy, the other account's role
	// is reported, not touched.
	before := time.Now()
	body := alice.must(200, "POST", revokePath, `{"repository": "acme/web", "run_id": "12345678901",
		"reason": "token leaked in a build log", "revoke_aws_sessions": true}`)
	got := revokeResponse(t, body)
	want := api.RevokeResponse{Revoked: 2, AWSSessions: []api.AWSSessionRevocation{
		{RoleARN: ownRoleARN, Result: "revoked"},
		{RoleARN: "arn:aws:iam::123456789012:role/web", Result: "failed", Code: "CrossAccountRole"},
	}}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("response (-want +got):\n%s", d)
	}
	calls := iam.Calls()
	if len(calls) != 1 || calls[0].Action != "PutRolePolicy" || calls[0].RoleName != "release" ||
		calls[0].PolicyName != aws.RevokePolicyName || calls[0].Status != 200 {
		t.Fatalf("IAM calls %+v", calls)
	}
	// The policy's date is the revocation's, after every revoked mint.
	var doc struct {
		Statement []struct {
			Effect    string
			Condition map[string]map[string]string
		}
	}
	if err := json.Unmarshal([]byte(calls[0].PolicyDocument), &doc); err != nil {
		t.Fatal(err)
	}
	at, err := time.Parse(time.RFC3339, doc.Statement[0].Condition["DateLessThan"]["aws:TokenIssueTime"])
	if err != nil || doc.Statement[0].Effect != "Deny" || at.Before(before.Truncate(time.Second)) || at.After(time.Now().Add(time.Second)) {
		t.Fatalf("policy %s", calls[0].PolicyDocument)
	}
	rv := x.revoked()
	for id, w := range map[string]string{web1: "alice/token leaked in a build log/true", rel1: "alice/token leaked in a build log/true",
		web2: "", other: ""} {
		if rv[id] != w {
			t.Errorf("row %s: %q, want %q", id, rv[id], w)
		}
	}

	// Again: nothing more to revoke, no cloud call.
	got = revokeResponse(t, alice.must(200, "POST", revokePath, `{"run_id": "12345678901", "reason": "again", "revoke_aws_sessions": true}`))
	if got.Revoked != 0 || len(got.AWSSessions) != 0 || len(iam.Calls()) != 1 {
		t.Fatalf("repeat: %+v, IAM calls %d", got, len(iam.Calls()))
	}

	// Where the bridge may not change the role: reported, the ledger's
	// marks stand. Without revoke_aws_sessions IAM is not called.
	rel2 := x.issued(map[string]any{"ref": "refs/heads/release", "run_id": "4"})
	iam.Refuse("AccessDenied")
	got = revokeResponse(t, alice.must(200, "POST", revokePath, `{"mapping": "release", "reason": "rotate", "revoke_aws_sessions": true}`))
	want = api.RevokeResponse{Revoked: 1, AWSSessions: []api.AWSSessionRevocation{
		{RoleARN: ownRoleARN, Result: "failed", Code: "AccessDenied"}}}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("refused (-want +got):\n%s", d)
	}
	if rv := x.revoked(); rv[rel2] != "alice/rotate/true" {
		t.Fatalf("row %s: %q", rel2, rv[rel2])
	}
	got = revokeResponse(t, alice.must(200, "POST", revokePath, `{"mapping": "web", "reason": "rotate"}`))
	if got.Revoked != 1 || len(got.AWSSessions) != 0 || len(iam.Calls()) != 2 {
		t.Fatalf("without sessions: %+v, IAM calls %d", got, len(iam.Calls()))
	}
	if rv := x.revoked(); rv[web2] != "alice/rotate/true" || rv[other] != "" {
		t.Fatalf("rows %v", rv)
	}
}

// R3: a mint in flight when an admin revokes its issuance. The STS fake
// holds the AssumeRole while the revocation (with the AWS sessions) is
// issued, and answers only after the revocation's second has passed: the
// pipeline gets no credential (403, recorded), the ledger shows the
// credential issued with its id and revoked, and the deny policy's date
// follows the session's issue time.
func TestRevokeRacesInFlightMint(t *testing.T) {
	x, iam := newRevokeEnv(t)
	alice := x.as(x.newToken("alice", "write"))
	arrived, release := sts.Hold()
	defer release()

	exchanged := make(chan response, 1)
	tok := x.token(map[string]any{"ref": "refs/heads/release", "run_id": "77"})
	go func() { exchanged <- x.exchange(tok, "") }()
	select {
	case <-arrived:
	case r := <-exchanged:
		t.Fatalf("exchange answered before the mint was held: %d %s", r.status, r.body)
	case <-time.After(20 * time.Second):
		t.Fatal("the mint never reached the STS fake")
	}

	revoked := make(chan response, 1)
	go func() {
		revoked <- alice.do("POST", revokePath, `{"run_id": "77", "reason": "leaked", "revoke_aws_sessions": true}`)
	}()
	// Wait for the ledger's mark, then past the revocation's second, so
	// that a policy dated at the revocation would miss the session.
	var revokedAt time.Time
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := x.pool.QueryRow(context.Background(), `SELECT revoked_at FROM issuances
			WHERE run_id = '77' AND outcome = 'pending' AND revoked_at IS NOT NULL`).Scan(&revokedAt)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pending row was never revoked: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Until(revokedAt.Truncate(time.Second).Add(1200 * time.Millisecond)))
	release()

	r := <-exchanged
	e := x.wantError(r, 403, api.CodeNoMatchingMapping, "")
	if e.IssuanceID == "" || strings.Contains(string(r.body), "ASIA") || strings.Contains(string(r.body), "credentials") {
		t.Fatalf("withheld credential: %s", r.body)
	}
	got := revokeResponse(t, (<-revoked).body)
	if d := cmp.Diff(api.RevokeResponse{Revoked: 1, AWSSessions: []api.AWSSessionRevocation{
		{RoleARN: ownRoleARN, Result: "revoked"}}}, got); d != "" {
		t.Fatalf("revoke (-want +got):\n%s", d)
	}

	var mint ststest.Call
	for _, c := range sts.Calls() {
		if c.Action == "AssumeRole" && c.RoleArn == ownRoleARN {
			mint = c
		}
	}
	issuedAt, ok := sts.IssuedAt(mint.IssuedAccessKeyID)
	if !ok || !issuedAt.After(revokedAt) {
		t.Fatalf("the held mint %+v did not issue after the revocation at %v (%v)", mint, revokedAt, issuedAt)
	}
	var outcome, code, credID, by string
	if err := x.pool.QueryRow(context.Background(), `SELECT outcome, coalesce(error_code, ''), coalesce(credential_id, ''),
		coalesce(revoked_by, '') FROM audit.issuances WHERE id = $1`, e.IssuanceID).Scan(&outcome, &code, &credID, &by); err != nil {
		t.Fatal(err)
	}
	if outcome != "issued" || code != "revoked_in_flight" || credID != mint.IssuedAccessKeyID || by != "alice" {
		t.Fatalf("ledger row: %s %s %s %s; want issued revoked_in_flight %s alice", outcome, code, credID, by, mint.IssuedAccessKeyID)
	}

	calls := iam.Calls()
	if len(calls) != 1 || calls[0].Status != 200 {
		t.Fatalf("IAM calls %+v", calls)
	}
	var doc struct {
		Statement []struct {
			Condition map[string]map[string]string
		}
	}
	if err := json.Unmarshal([]byte(calls[0].PolicyDocument), &doc); err != nil {
		t.Fatal(err)
	}
	at, err := time.Parse(time.RFC3339, doc.Statement[0].Condition["DateLessThan"]["aws:TokenIssueTime"])
	if err != nil || !at.After(issuedAt) || at.After(time.Now().Add(time.Second)) {
		t.Fatalf("deny date %v (%v), session issued at %v: the session escapes the policy", at, err, issuedAt)
	}
}
