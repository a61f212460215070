package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/test/ststest"
)

// The disable-to-deny target of issue 7: a mapping or issuer disabled
// through one replica denies new exchanges on every replica within it.
const denyTarget = 5 * time.Second

// untilDenied exchanges a fresh token on s every ~20 ms until the answer is
// want (a status and error code), and returns the time from start to that
// answer and the number of exchanges it took. Any other answer than 200 or
// want fails the test.
func untilDenied(t *testing.T, s *server, start time.Time, token func() string, wantStatus int, wantCode string) (time.Duration, int) {
	t.Helper()
	for n := 1; ; n++ {
		r := exchange(s, token(), "")
		switch r.status {
		case 200:
		case wantStatus:
			var e api.Error
			r.json(t, &e)
			if e.Error != wantCode {
				t.Fatalf("denied with %s, want %s: %s", e.Error, wantCode, r.body)
			}
			return time.Since(start), n
		default:
			t.Fatalf("exchange %d: %d %s", n, r.status, r.body)
		}
		if time.Since(start) > 2*denyTarget {
			t.Fatalf("still issuing %v after the change (%d exchanges)", time.Since(start), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDisableToDeny: with two replicas on one database, a mapping disabled
// through replica B's admin API denies on replica A within milliseconds
// (A's catalog cache reloads on the NOTIFY), and so does a disabled issuer;
// the times from the change to A's first denial are measured (issue 7:
// under 5 s).
func TestDisableToDeny(t *testing.T) {
	t.Parallel()
	x := newExchangeEnv(t)
	a, b := startServer(t, x.env), startServer(t, x.env)
	x.register(a, "")
	token := func() string { return x.gh.Mint(t, x.gh.GitHubClaims(nil)) }
	if r := exchange(a, token(), ""); r.status != 200 {
		t.Fatalf("exchange on A before the change: %d %s", r.status, r.body)
	}

	mapping := func(enabled bool) string {
		return fmt.Sprintf(`{"name": "web-prod", "issuer": "github", "enabled": %t,
			"conditions": {"repository": "acme/web", "repository_id": "1339936803", "ref": "refs/heads/main",
			               "environment": "production", "event_name": ["push", "workflow_dispatch"]},
			"provider": "aws", "target": {"role_arn": "arn:aws:iam::123456789012:role/web-deploy", "region": "eu-west-1"},
			"max_duration_seconds": 3600}`, enabled)
	}
	start := time.Now()
	b.must(200, "PUT", "/v1/admin/mappings/web-prod", mapping(false))
	committed := time.Since(start)
	took, n := untilDenied(t, a, start, token, 403, api.CodeNoMatchingMapping)
	t.Logf("mapping disabled on replica B: replica A's first denial %v after the PUT was sent (PUT answered after %v; %d exchange(s) on A)",
		took, committed, n)
	if took >= denyTarget {
		t.Errorf("disable-to-deny for a mapping took %v, target %v", took, denyTarget)
	}

	// Enabled again through B, A issues again (as soon as its cache has
	// the change: denials until then).
	b.must(200, "PUT", "/v1/admin/mappings/web-prod", mapping(true))
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		r := exchange(a, token(), "")
		if r.status == 200 {
			break
		}
		if r.status != 403 || time.Since(start) > denyTarget {
			t.Fatalf("exchange on A after re-enabling: %d %s", r.status, r.body)
		}
	}

	start = time.Now()
	b.must(200, "PUT", "/v1/admin/issuers/github", strings.TrimSuffix(issuerBody("github", x.gh.URL(), "github"), "}")+`, "enabled": false}`)
	committed = time.Since(start)
	took, n = untilDenied(t, a, start, token, 401, api.CodeUntrustedIssuer)
	t.Logf("issuer disabled on replica B: replica A's first denial %v after the PUT was sent (PUT answered after %v; %d exchange(s) on A)",
		took, committed, n)
	if took >= denyTarget {
		t.Errorf("disable-to-deny for an issuer took %v, target %v", took, denyTarget)
	}
	a.stopClean()
	b.stopClean()
}

// TestRevokeByRun: credentials issued through replica A are revoked by run
// through replica B's admin API; the ledger's audit view shows who revoked
// them and why, and the IAM fake receives the AWSRevokeOlderSessions
// policy for the role of the bridge's own account (the other account's
// role is reported, not touched).
func TestRevokeByRun(t *testing.T) {
	t.Parallel()
	iam := ststest.NewIAM(t)
	x := newExchangeEnv(t, "AWS_ENDPOINT_URL_IAM="+iam.URL())
	a, b := startServer(t, x.env), startServer(t, x.env)
	x.register(a, "")
	const ownRole = "arn:aws:iam::" + ststest.CallerAccount + ":role/ci/web-release"
	a.must(201, "POST", "/v1/admin/mappings", `{"name": "web-release", "issuer": "github",
		"conditions": {"repository": "acme/web", "ref": "refs/heads/release"},
		"provider": "aws", "target": {"role_arn": "`+ownRole+`", "region": "eu-west-1"}}`)

	ids := map[string]string{}
	for _, c := range []struct{ name, ref, run string }{
		{"main", "refs/heads/main", "777"}, {"release", "refs/heads/release", "777"}, {"other-run", "refs/heads/main", "778"},
	} {
		r := exchange(a, x.gh.Mint(t, x.gh.GitHubClaims(map[string]any{"ref": c.ref, "run_id": c.run})), "")
		if r.status != 200 {
			t.Fatalf("exchange %s: %d %s", c.name, r.status, r.body)
		}
		var resp api.ExchangeResponse
		r.json(t, &resp)
		ids[c.name] = resp.IssuanceID
	}

	sent := time.Now()
	r := b.must(200, "POST", "/v1/admin/issuances/revoke",
		`{"run_id": "777", "reason": "runner compromised", "revoke_aws_sessions": true}`)
	var resp struct {
		Revoked     int `json:"revoked"`
		AWSSessions []struct {
			RoleARN string `json:"role_arn"`
			Result  string `json:"result"`
			Code    string `json:"code"`
		} `json:"aws_sessions"`
	}
	r.json(t, &resp)
	results := map[string]string{}
	for _, s := range resp.AWSSessions {
		results[s.RoleARN] = s.Result + "/" + s.Code
	}
	if resp.Revoked != 2 || len(resp.AWSSessions) != 2 || results[ownRole] != "revoked/" ||
		results["arn:aws:iam::123456789012:role/web-deploy"] != "failed/CrossAccountRole" {
		t.Fatalf("revoke: %s", r.body)
	}

	calls := iam.Calls()
	if len(calls) != 1 {
		t.Fatalf("IAM calls: %+v", calls)
	}
	c := calls[0]
	if c.Action != "PutRolePolicy" || c.Status != 200 || c.RoleName != "web-release" || c.PolicyName != "AWSRevokeOlderSessions" ||
		c.AccessKeyID != ststest.AccessKeyID {
		t.Fatalf("IAM call: %+v", c)
	}
	var doc struct {
		Version   string
		Statement []struct {
			Effect    string
			Action    []string
			Resource  []string
			Condition map[string]map[string]string
		}
	}
	if err := json.Unmarshal([]byte(c.PolicyDocument), &doc); err != nil {
		t.Fatal(err)
	}
	st := doc.Statement
	if doc.Version != "2012-10-17" || len(st) != 1 || st[0].Effect != "Deny" || strings.Join(st[0].Action, ",") != "*" ||
		strings.Join(st[0].Resource, ",") != "*" {
		t.Fatalf("policy %s", c.PolicyDocument)
	}
	at, err := time.Parse(time.RFC3339, st[0].Condition["DateLessThan"]["aws:TokenIssueTime"])
	if err != nil || at.Before(sent.Truncate(time.Second)) || at.After(time.Now().Add(time.Second)) {
		t.Fatalf("aws:TokenIssueTime %v (sent %v): %s", at, sent, c.PolicyDocument)
	}

	// The audit view, as an auditor reads it.
	rows, err := openDB(t, x.dbURL).Query(context.Background(), `SELECT id::text, coalesce(revoked_by, ''),
		coalesce(revocation_reason, ''), revoked_at IS NOT NULL FROM audit.issuances`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for rows.Next() {
		var id, by, reason string
		var revoked bool
		if err := rows.Scan(&id, &by, &reason, &revoked); err != nil {
			t.Fatal(err)
		}
		got[id] = fmt.Sprintf("%s/%s/%t", by, reason, revoked)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"main": "bootstrap/runner compromised/true",
		"release": "bootstrap/runner compromised/true", "other-run": "//false"} {
		if got[ids[name]] != want {
			t.Errorf("%s: %q, want %q", name, got[ids[name]], want)
		}
	}
	a.stopClean()
	b.stopClean()
}
