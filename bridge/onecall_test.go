package bridge_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/ledger"
)

// stsMints counts the AssumeRole calls the shared STS fake received.
func stsMints() int {
	n := 0
	for _, c := range sts.Calls() {
		if c.Action == "AssumeRole" {
			n++
		}
	}
	return n
}

// TestExchangeOneCloudCallPerIssuance: each exchange makes exactly one
// cloud call, whatever the cloud answers, so that one issuance record
// stands for at most one credential. A failing answer (503) is a definite
// failure: the row is failed and the pipeline may try again with the same
// token, a new record and a new call. A connection lost after STS read the
// request is ambiguous: the token stays spent (409 on a retry, no second
// call), the row is never failed, and it ends unknown.
func TestExchangeOneCloudCallPerIssuance(t *testing.T) {
	x := newExchangeEnv(t)
	ctx := context.Background()

	failing := x.token(nil)
	sts.Fail(1, http.StatusServiceUnavailable)
	r := x.exchange(failing, "")
	e := x.wantError(r, 502, "provider_error", "")
	if !strings.Contains(e.Message, "ServiceUnavailable") || r.header.Get("Retry-After") == "" {
		t.Errorf("failing STS: message %q, Retry-After %q", e.Message, r.header.Get("Retry-After"))
	}
	if n := stsMints(); n != 1 {
		t.Fatalf("%d STS calls for one exchange, want 1", n)
	}
	if r := x.exchange(failing, ""); r.status != 200 {
		t.Fatalf("a definite failure spends nothing; the retry: %d %s", r.status, r.body)
	}
	if n := stsMints(); n != 2 {
		t.Fatalf("%d STS calls after the retry, want 2", n)
	}

	lost := x.token(nil)
	sts.Drop(1)
	r = x.exchange(lost, "")
	e = x.wantError(r, 502, "provider_error", "")
	if !strings.Contains(e.Message, "ConnectionError") || e.IssuanceID == "" {
		t.Errorf("dropped connection: message %q, issuance %q", e.Message, e.IssuanceID)
	}
	if n := stsMints(); n != 3 {
		t.Fatalf("%d STS calls, want 3: the lost call was repeated", n)
	}
	x.wantError(x.exchange(lost, ""), 409, "token_replayed", "")
	if n := stsMints(); n != 3 {
		t.Fatalf("%d STS calls: a replay reached STS", n)
	}
	// The ambiguous row is unknown at once (never failed, the token stays
	// spent); the sweeper has nothing left to do with it.
	want := []string{"failed/provider_error", "issued/", "unknown/" + ledger.CodeIndeterminate, "denied/token_replayed"}
	if got := x.rows(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("ledger %v, want %v", got, want)
	}
	if _, err := x.pool.Exec(ctx, `UPDATE issuances SET expires_at = now() - interval '1 second' WHERE id = $1::uuid`, e.IssuanceID); err != nil {
		t.Fatal(err)
	}
	if n, err := ledger.New(x.pool).Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("sweep: %d, %v; want 0 (the row is no longer pending)", n, err)
	}
	if got := x.rows(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("ledger after the sweep %v, want %v", got, want)
	}
}
