package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/internal/pgcluster"
	"github.com/oidc-bridge/oidc-bridge/ledger"
	"github.com/oidc-bridge/oidc-bridge/test/oidctest"
	"github.com/oidc-bridge/oidc-bridge/test/ststest"
)

// The fault tests run the real binary against a database, issuer or cloud
// that misbehaves. Each of them checks the bridge's central promise: no 200
// answer (no credential handed out) without a committed `issued` row in the
// ledger for its issuance_id.

// answer is one exchange's outcome as a client saw it: an HTTP answer, or a
// transport error (err) when there was none.
type answer struct {
	status     int
	body       []byte
	retryAfter string
	err        error
	at         time.Time
}

// issuance is the answer's issuance_id (of a success or an error body).
func (a answer) issuance() string {
	var v struct {
		IssuanceID string `json:"issuance_id"`
	}
	_ = json.Unmarshal(a.body, &v)
	return v.IssuanceID
}

// code is the error code of an error answer.
func (a answer) code() string {
	var e api.Error
	_ = json.Unmarshal(a.body, &e)
	return e.Error
}

// tryExchange posts one exchange and, unlike exchange, reports a transport
// error instead of failing the test, so that it can run in goroutines and
// across a shutdown.
func tryExchange(url, token string) answer {
	return tryExchangeWith(http.DefaultClient, url, token)
}

// tryExchangeWith is tryExchange through client.
func tryExchangeWith(client *http.Client, url, token string) answer {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", url+"/v1/exchange", strings.NewReader(`{}`))
	if err != nil {
		return answer{err: err, at: time.Now()}
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return answer{err: err, at: time.Now()}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, body: b, retryAfter: resp.Header.Get("Retry-After"), err: err, at: time.Now()}
}

// outcome is the ledger outcome of issuance id, or "" when there is no row.
func outcome(t *testing.T, db *pgxpool.Pool, id string) string {
	t.Helper()
	var o string
	err := db.QueryRow(context.Background(), `SELECT outcome FROM audit.issuances WHERE id::text = $1`, id).Scan(&o)
	if err != nil && !strings.Contains(err.Error(), "no rows") {
		t.Fatalf("outcome of %s: %v", id, err)
	}
	return o
}

// requireIssuedRows checks that every 200 among answers carries an
// issuance_id whose ledger row is committed as issued, and returns the
// number of 200s.
func requireIssuedRows(t *testing.T, db *pgxpool.Pool, answers []answer) int {
	t.Helper()
	n := 0
	for _, a := range answers {
		if a.err != nil || a.status != 200 {
			continue
		}
		n++
		id := a.issuance()
		if id == "" {
			t.Errorf("a 200 without issuance_id: %s", a.body)
			continue
		}
		if o := outcome(t, db, id); o != "issued" {
			t.Errorf("a 200 handed out credentials for issuance %s whose ledger row is %q, want issued", id, o)
		}
	}
	return n
}

// countOutcomes counts the ledger's rows by outcome.
func countOutcomes(t *testing.T, db *pgxpool.Pool) map[string]int {
	t.Helper()
	rows, err := db.Query(context.Background(), `SELECT outcome, count(*) FROM audit.issuances GROUP BY outcome`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	m := map[string]int{}
	for rows.Next() {
		var o string
		var n int
		if err := rows.Scan(&o, &n); err != nil {
			t.Fatal(err)
		}
		m[o] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

// requireSweptUnknown checks what the sweeper does with the pending row
// id, as serve's maintenance runs it every minute: nothing until a
// credential minted for it would have expired (the test moves that moment
// into the past rather than wait), then the row reads unknown/abandoned
// in the auditors' view.
func requireSweptUnknown(t *testing.T, db *pgxpool.Pool, id string) {
	t.Helper()
	ctx := context.Background()
	l := ledger.New(db)
	if n, err := l.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("early sweep: marked %d, %v; want 0", n, err)
	}
	if _, err := db.Exec(ctx, `UPDATE issuances SET expires_at = now() - interval '1 second' WHERE id = $1::uuid`, id); err != nil {
		t.Fatal(err)
	}
	if n, err := l.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("sweep: marked %d, %v; want 1", n, err)
	}
	var o, code string
	if err := db.QueryRow(ctx, `SELECT outcome, coalesce(error_code, '') FROM audit.issuances WHERE id::text = $1`, id).Scan(&o, &code); err != nil {
		t.Fatal(err)
	}
	if o != "unknown" || code != ledger.CodeAbandoned {
		t.Fatalf("issuance %s after the sweep: %s/%s, want unknown/%s", id, o, code, ledger.CodeAbandoned)
	}
}

// privateCluster starts a PostgreSQL cluster of the test's own, which the
// test may stop and restart without disturbing the shared pgtest cluster.
func privateCluster(t *testing.T, dataDir string) *pgcluster.Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := pgcluster.Start(ctx, pgcluster.Options{DataDir: dataDir, Unsafe: true,
		Settings: map[string]string{"autovacuum": "off"}})
	if err != nil {
		t.Fatalf("start private cluster: %v", err)
	}
	return c
}

// TestFaultPostgresRestart: the database stops under a stream of exchanges
// and comes back. While it is down, exchanges answer 503 unavailable and
// hand out nothing; once it is back, the same bridge process (not
// restarted) issues again within a bounded time; every 200 has its issued
// row.
func TestFaultPostgresRestart(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(reachableTempDir(t), "cluster")
	var (
		clusterMu sync.Mutex
		cluster   = privateCluster(t, dataDir)
	)
	t.Cleanup(func() {
		clusterMu.Lock()
		defer clusterMu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := cluster.Stop(ctx); err != nil {
			t.Errorf("stop private cluster: %v", err)
		}
	})
	ctx := context.Background()
	if err := cluster.EnsureDatabase(ctx, "bridge"); err != nil {
		t.Fatal(err)
	}
	dbURL := cluster.URL("bridge")

	x := &exchangeEnv{dbURL: dbURL, gh: oidctest.New(t), gl: oidctest.New(t, oidctest.WithPathPrefix("/gitlab")), sts: ststest.New(t)}
	x.env = append([]string{"BRIDGE_DATABASE_URL=" + dbURL, "BRIDGE_ADMIN_TOKEN=" + adminToken,
		"BRIDGE_ALLOW_INSECURE_ISSUERS=true", "BRIDGE_RATE_LIMIT=0"}, awsEnv(x.sts)...)
	if out, errOut, code := cli(t, x.env, "migrate"); code != 0 {
		t.Fatalf("migrate: exit %d\n%s%s", code, out, errOut)
	}
	s := startServer(t, x.env)
	x.register(s, "")
	s.waitReady(200)

	// The load: workers exchanging fresh tokens until told to stop.
	var (
		mu      sync.Mutex
		answers []answer
		stop    atomic.Bool
		wg      sync.WaitGroup
	)
	tokens := make(chan string, 64)
	go func() {
		defer close(tokens)
		for !stop.Load() {
			tokens <- x.gh.Mint(t, x.gh.GitHubClaims(nil))
		}
	}()
	for range 4 {
		wg.Go(func() {
			for tok := range tokens {
				if stop.Load() {
					return
				}
				a := tryExchange(s.url, tok)
				mu.Lock()
				answers = append(answers, a)
				mu.Unlock()
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	finish := func() {
		if stop.CompareAndSwap(false, true) {
			for range tokens {
			}
			wg.Wait()
		}
	}
	t.Cleanup(finish)
	// waitFor polls the answers after since until one satisfies ok.
	waitFor := func(what string, since time.Time, limit time.Duration, ok func(answer) bool) time.Time {
		t.Helper()
		deadline := time.Now().Add(limit)
		for time.Now().Before(deadline) {
			mu.Lock()
			for _, a := range answers {
				if a.at.After(since) && ok(a) {
					mu.Unlock()
					return a.at
				}
			}
			mu.Unlock()
			time.Sleep(50 * time.Millisecond)
		}
		finish()
		t.Fatalf("no %s within %v", what, limit)
		return time.Time{}
	}
	is200 := func(a answer) bool { return a.err == nil && a.status == 200 }
	waitFor("success before the outage", time.Time{}, 30*time.Second, is200)

	// Stop the database under load.
	stopCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	clusterMu.Lock()
	err := cluster.Stop(stopCtx)
	clusterMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	t.Logf("database stopped")
	// Give the pool time to see every connection die; then every answer
	// must be 503 unavailable.
	waitFor("503 during the outage", down, 30*time.Second, func(a answer) bool { return a.err == nil && a.status == 503 })
	settled := time.Now()
	time.Sleep(2 * time.Second)
	if r := s.call("GET", "/readyz", "", ""); r.status != 503 {
		t.Errorf("readyz during the outage: %d %s", r.status, r.body)
	}
	if r := s.call("GET", "/v1/admin/mappings", ""); r.status != 503 {
		t.Errorf("admin during the outage: %d %s", r.status, r.body)
	}

	// Start it again on the same data folder; the bridge is not restarted.
	restart := time.Now()
	clusterMu.Lock()
	cluster = privateCluster(t, dataDir)
	url2 := cluster.URL("bridge")
	clusterMu.Unlock()
	up := time.Now()
	t.Logf("database down for %v (restart took %v)", up.Sub(down).Round(time.Millisecond), up.Sub(restart).Round(time.Millisecond))
	if url2 != dbURL {
		t.Fatalf("the restarted cluster has another URL: %s, was %s", url2, dbURL)
	}
	back := waitFor("success after the restart", restart, 30*time.Second, is200)
	t.Logf("exchanges succeed again %v after the restart began", back.Sub(restart).Round(time.Millisecond))
	time.Sleep(500 * time.Millisecond)
	finish()

	mu.Lock()
	all := append([]answer(nil), answers...)
	mu.Unlock()
	counts := map[string]int{}
	for _, a := range all {
		switch {
		case a.err != nil:
			t.Errorf("transport error: %v", a.err)
		case a.status == 200:
			counts["200"]++
		case a.status == 503 && a.code() == api.CodeUnavailable:
			counts["503"]++
		default:
			t.Errorf("answer %d %s, want 200 or 503 unavailable", a.status, a.body)
		}
		// Between the outage settling and the restart nothing can be issued.
		if a.err == nil && a.status == 200 && a.at.After(settled) && a.at.Before(restart) {
			t.Errorf("a 200 while the database was down: %s", a.issuance())
		}
	}
	db := openDB(t, dbURL)
	n := requireIssuedRows(t, db, all)
	t.Logf("answers: %v; ledger: %v", counts, countOutcomes(t, db))
	if n == 0 || counts["503"] == 0 {
		t.Fatalf("answers %v: want both 200s and 503s", counts)
	}
	s.stopClean()
}

// TestFaultCloudHangs: STS accepts the connection and never answers. The
// exchange answers 502 provider_error (Timeout) once the bridge's mint
// deadline (20 s, not configurable) passes, hands out nothing, and records
// the ledger row unknown (indeterminate) at once: STS may have issued a
// credential that was lost, so the token stays spent and a retry with it is
// refused. The sweeper (serve's maintainLedger, called here directly after
// moving expires_at into the past) leaves the row as it is.
func TestFaultCloudHangs(t *testing.T) {
	t.Parallel()
	x := newExchangeEnv(t)
	s := startServer(t, x.env)
	x.register(s, "")
	db := openDB(t, x.dbURL)

	x.sts.Hang()
	token := x.gh.Mint(t, x.gh.GitHubClaims(nil))
	start := time.Now()
	a := tryExchange(s.url, token)
	took := time.Since(start)
	if a.err != nil {
		t.Fatal(a.err)
	}
	if a.status != 502 || a.code() != api.CodeProviderError || !strings.Contains(string(a.body), "Timeout") {
		t.Fatalf("answer %d %s, want 502 provider_error (Timeout)", a.status, a.body)
	}
	if took < 19*time.Second || took > 25*time.Second {
		t.Errorf("answered after %v, want about the 20 s mint deadline", took)
	}
	id := a.issuance()
	if id == "" {
		t.Fatalf("no issuance_id in %s", a.body)
	}
	requireIssuedRows(t, db, []answer{a})
	requireUnknown := func() {
		t.Helper()
		var o, code string
		if err := db.QueryRow(context.Background(), `SELECT outcome, coalesce(error_code, '') FROM audit.issuances WHERE id::text = $1`, id).Scan(&o, &code); err != nil {
			t.Fatal(err)
		}
		if o != "unknown" || code != ledger.CodeIndeterminate {
			t.Fatalf("ledger row after a hung mint: %s/%s, want unknown/%s", o, code, ledger.CodeIndeterminate)
		}
	}
	requireUnknown()
	x.sts.Reset()
	if r := tryExchange(s.url, token); r.err != nil || r.status != 409 || r.code() != api.CodeTokenReplayed {
		t.Fatalf("the same token again: %d %s (%v), want 409 token_replayed", r.status, r.body, r.err)
	}
	if _, err := db.Exec(context.Background(), `UPDATE issuances SET expires_at = now() - interval '1 second' WHERE id = $1::uuid`, id); err != nil {
		t.Fatal(err)
	}
	if n, err := ledger.New(db).Sweep(context.Background()); err != nil || n != 0 {
		t.Fatalf("sweep: marked %d, %v; want 0", n, err)
	}
	requireUnknown()
	if c := countOutcomes(t, db); c["issued"] != 0 || c["pending"] != 0 || c["unknown"] != 1 || c["denied"] != 1 {
		t.Fatalf("ledger: %v", c)
	}
	x.sts.Reset()
	s.stopClean()
}

// TestFaultSigtermUnderLoad: SIGTERM while exchanges wait on a slow STS.
// The in-flight exchanges complete with 200 (drain), the process exits 0,
// and no pending row remains.
func TestFaultSigtermUnderLoad(t *testing.T) {
	t.Parallel()
	x := newExchangeEnv(t)
	s := startServer(t, x.env)
	x.register(s, "")
	db := openDB(t, x.dbURL)
	x.sts.SetLatency(300 * time.Millisecond)

	const n = 8
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = x.gh.Mint(t, x.gh.GitHubClaims(nil))
	}
	answers := make([]answer, n)
	var wg sync.WaitGroup
	for i, tok := range tokens {
		wg.Go(func() { answers[i] = tryExchange(s.url, tok) })
	}
	// Wait until they are all reserved (pending, waiting on STS).
	deadline := time.Now().Add(10 * time.Second)
	for countOutcomes(t, db)["pending"] < n {
		if time.Now().After(deadline) {
			t.Fatalf("exchanges not in flight: %v", countOutcomes(t, db))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// New work, on a new connection, once the bridge logged that it shuts
	// down is not served: the listener is closed by http.Server.Shutdown.
	lateTok := x.gh.Mint(t, x.gh.GitHubClaims(nil))
	deadline = time.Now().Add(10 * time.Second)
	for !strings.Contains(s.logs.String(), `"msg":"shutting down"`) {
		if time.Now().After(deadline) {
			t.Fatal("no shutting down log within 10 s of SIGTERM")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	late := tryExchangeWith(&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}, s.url, lateTok)
	wg.Wait()
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not exit within 30 s of SIGTERM")
	}
	if s.exit != nil {
		t.Fatalf("serve exited with %v\n%s", s.exit, s.logs.String())
	}
	for i, a := range answers {
		if a.err != nil || a.status != 200 {
			t.Errorf("in-flight exchange %d: %d %s %v, want 200", i, a.status, a.body, a.err)
		}
	}
	if late.err == nil && late.status == 200 {
		t.Errorf("an exchange sent after SIGTERM was served: %s", late.body)
	}
	t.Logf("exchange after SIGTERM: status %d, err %v", late.status, late.err)
	if got := requireIssuedRows(t, db, append(answers, late)); got != n {
		t.Errorf("%d answers 200, want %d", got, n)
	}
	if c := countOutcomes(t, db); c["pending"] != 0 || c["issued"] != n {
		t.Fatalf("ledger after shutdown: %v, want %d issued and none pending", c, n)
	}
}

// TestFaultJWKSDown: the issuer's JWKS endpoint fails after a first
// exchange. Tokens signed with the cached key still exchange; a token of a
// new key, which the bridge cannot fetch, is refused as invalid_token (the
// unknown kid is just unknown, see identity TestEndpointOutage) and
// nothing is issued for it.
func TestFaultJWKSDown(t *testing.T) {
	t.Parallel()
	x := newExchangeEnv(t)
	s := startServer(t, x.env)
	x.register(s, "")
	db := openDB(t, x.dbURL)

	var all []answer
	first := tryExchange(s.url, x.gh.Mint(t, x.gh.GitHubClaims(nil)))
	if first.err != nil || first.status != 200 {
		t.Fatalf("first exchange: %d %s %v", first.status, first.body, first.err)
	}
	all = append(all, first)

	x.gh.FailJWKS(http.StatusInternalServerError)
	for range 3 {
		a := tryExchange(s.url, x.gh.Mint(t, x.gh.GitHubClaims(nil)))
		if a.err != nil || a.status != 200 {
			t.Fatalf("exchange with the cached key during the outage: %d %s %v", a.status, a.body, a.err)
		}
		all = append(all, a)
	}

	calls := x.sts.CallCount()
	before := countOutcomes(t, db)
	x.gh.Rotate(false)
	jwksBefore := x.gh.JWKSRequests()
	for range 2 {
		a := tryExchange(s.url, x.gh.Mint(t, x.gh.GitHubClaims(nil)))
		if a.err != nil {
			t.Fatal(a.err)
		}
		if a.status != 401 || a.code() != api.CodeInvalidToken {
			t.Errorf("token of a new key during the outage: %d %s, want 401 invalid_token", a.status, a.body)
		}
		all = append(all, a)
	}
	t.Logf("JWKS requests for the new kid: %d", x.gh.JWKSRequests()-jwksBefore)
	if n := x.sts.CallCount(); n != calls {
		t.Errorf("STS called %d more times for refused tokens", n-calls)
	}
	if after := countOutcomes(t, db); after["issued"] != before["issued"] || after["pending"] != 0 {
		t.Errorf("ledger %v after the refused tokens, was %v", after, before)
	}
	if n := requireIssuedRows(t, db, all); n != 4 {
		t.Errorf("%d answers 200, want 4", n)
	}
	s.stopClean()
}

// TestFaultCloudThrottles: the bridge makes one STS call per exchange and
// never retries it (retrying is the client's job, with a fresh token): a
// throttling or failing STS gives 502 provider_error with Retry-After and a
// failed row after exactly one call, and the client's next attempt issues.
func TestFaultCloudThrottles(t *testing.T) {
	t.Parallel()
	x := newExchangeEnv(t)
	s := startServer(t, x.env)
	x.register(s, "")
	db := openDB(t, x.dbURL)

	var failed []answer
	for _, arm := range []func(){func() { x.sts.Throttle(1) }, func() { x.sts.Fail(1, http.StatusServiceUnavailable) }} {
		x.sts.Reset()
		arm()
		b := tryExchange(s.url, x.gh.Mint(t, x.gh.GitHubClaims(nil)))
		if b.err != nil {
			t.Fatal(b.err)
		}
		if b.status != 502 || b.code() != api.CodeProviderError || b.retryAfter != "5" {
			t.Fatalf("exchange against a failing STS: %d (Retry-After %q) %s, want 502 provider_error with Retry-After 5",
				b.status, b.retryAfter, b.body)
		}
		if n := x.sts.CallCount(); n != 1 {
			t.Errorf("STS saw %d calls for one exchange, want 1", n)
		}
		if o := outcome(t, db, b.issuance()); o != "failed" {
			t.Errorf("ledger row of the failed mint: %q, want failed", o)
		}
		failed = append(failed, b)
	}

	x.sts.Reset()
	a := tryExchange(s.url, x.gh.Mint(t, x.gh.GitHubClaims(nil)))
	if a.err != nil || a.status != 200 {
		t.Fatalf("the client's next attempt: %d %s %v", a.status, a.body, a.err)
	}
	if n := x.sts.CallCount(); n != 1 {
		t.Errorf("STS saw %d calls, want 1", n)
	}
	if c := countOutcomes(t, db); c["issued"] != 1 || c["failed"] != 2 || c["pending"] != 0 {
		t.Errorf("ledger: %v, want one issued and two failed rows", c)
	}
	requireIssuedRows(t, db, append(failed, a))
	s.stopClean()
}

// TestFaultBreakerCooldown: five consecutive failed mints open the AWS
// circuit; exchanges then answer 502 provider_error CircuitOpen without
// calling STS or spending the token, for BRIDGE_BREAKER_COOLDOWN (here 2 s,
// the default being 30 s) and no longer: the same token issues once the
// cooldown is over, its exchange being the probe that closes the circuit.
func TestFaultBreakerCooldown(t *testing.T) {
	t.Parallel()
	x := newExchangeEnv(t)
	const cooldown = 2 * time.Second
	s := startServer(t, append(append([]string(nil), x.env...), "BRIDGE_BREAKER_COOLDOWN="+cooldown.String()))
	x.register(s, "")

	x.sts.Fail(5, http.StatusServiceUnavailable)
	for i := range 5 {
		if b := tryExchange(s.url, x.gh.Mint(t, x.gh.GitHubClaims(nil))); b.err != nil || b.status != 502 || strings.Contains(string(b.body), "CircuitOpen") {
			t.Fatalf("failed mint %d: %d %s %v, want 502 from STS", i+1, b.status, b.body, b.err)
		}
	}
	tok := x.gh.Mint(t, x.gh.GitHubClaims(nil))
	b := tryExchange(s.url, tok)
	opened := time.Now()
	if b.err != nil || b.status != 502 || b.code() != api.CodeProviderError || !strings.Contains(string(b.body), "CircuitOpen") {
		t.Fatalf("after 5 failed mints: %d %s %v, want 502 provider_error CircuitOpen", b.status, b.body, b.err)
	}
	if n := x.sts.CallCount(); n != 5 {
		t.Errorf("STS saw %d calls, want 5 (none while the circuit is open)", n)
	}
	for {
		a := tryExchange(s.url, tok)
		if a.err == nil && a.status == 200 {
			if d := time.Since(opened); d < cooldown-500*time.Millisecond {
				t.Errorf("the circuit closed %v after it opened, before its cooldown %v", d.Round(time.Millisecond), cooldown)
			}
			break
		}
		if a.err != nil || a.status != 502 || !strings.Contains(string(a.body), "CircuitOpen") {
			t.Fatalf("the token refused by the open circuit, retried: %d %s %v", a.status, a.body, a.err)
		}
		if time.Since(opened) > cooldown+3*time.Second {
			t.Fatalf("the circuit is still open %v after it opened; BRIDGE_BREAKER_COOLDOWN is %v", time.Since(opened).Round(time.Millisecond), cooldown)
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.stopClean()
}

// TestFaultPostgresSlow: the database answers everything but the
// reservation, which waits on a lock held by another session (a slow
// disk, a stuck migration, lock contention). Each exchange gives up at the
// ledger's 5 s deadline with 503 unavailable, nothing is minted, its
// statement is cancelled in the server too (no backend left waiting), and
// once the lock goes the same process issues again. Nothing is recorded
// for the abandoned reservations: they never committed.
func TestFaultPostgresSlow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	x := newExchangeEnv(t)
	s := startServer(t, x.env)
	x.register(s, "")
	db := openDB(t, x.dbURL)
	if a := tryExchange(s.url, x.gh.Mint(t, x.gh.GitHubClaims(nil))); a.err != nil || a.status != 200 {
		t.Fatalf("exchange before: %d %s %v", a.status, a.body, a.err)
	}
	before := len(x.sts.Calls())

	locker, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Rollback(ctx)
	if _, err := locker.Exec(ctx, `LOCK TABLE replay_guard IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	tokens := make([]string, 6)
	for i := range tokens {
		tokens[i] = x.gh.Mint(t, x.gh.GitHubClaims(nil))
	}
	answers := make([]answer, len(tokens))
	var wg sync.WaitGroup
	start := time.Now()
	for i, tok := range tokens {
		wg.Go(func() { answers[i] = tryExchange(s.url, tok) })
	}
	wg.Wait()
	took := time.Since(start)
	for i, a := range answers {
		if a.err != nil || a.status != 503 || a.code() != api.CodeUnavailable {
			t.Errorf("exchange %d while the database is slow: %d %s %v, want 503 unavailable", i, a.status, a.body, a.err)
		}
	}
	t.Logf("%d exchanges against a stalled reservation answered 503 within %v", len(tokens), took)
	if took > 15*time.Second {
		t.Errorf("the stalled exchanges took %v, want about the ledger's 5 s deadline", took)
	}
	if n := len(x.sts.Calls()) - before; n != 0 {
		t.Errorf("STS was called %d times while nothing could be recorded", n)
	}
	// The server ended the cancelled statements too: no bridge session
	// still waits on the lock.
	deadline := time.Now().Add(5 * time.Second)
	for {
		var waiting int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = 'oidc-bridge' AND wait_event_type = 'Lock'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d bridge sessions still wait on the lock after their exchanges gave up", waiting)
		}
		time.Sleep(50 * time.Millisecond)
	}

	if err := locker.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	after := tryExchange(s.url, x.gh.Mint(t, x.gh.GitHubClaims(nil)))
	if after.err != nil || after.status != 200 {
		t.Fatalf("exchange after the lock went: %d %s %v", after.status, after.body, after.err)
	}
	requireIssuedRows(t, db, append(answers, after))
	if c := countOutcomes(t, db); c["issued"] != 2 || c["pending"] != 0 || len(c) != 1 {
		t.Errorf("ledger: %v, want exactly the 2 issued rows", c)
	}
	s.stopClean()
}

// TestFaultCrashBetweenMintAndRecord: the bridge process is killed
// (SIGKILL: no shutdown code runs) while STS is issuing the credential of
// an exchange. The client gets no answer and no credential; STS did issue
// one, which nobody holds. The ledger keeps the reservation pending and the
// token spent: a new bridge process refuses the same token (a credential
// may exist for it). Once a credential would have expired, the sweeper
// marks the row unknown (abandoned), and the auditors' view shows it.
func TestFaultCrashBetweenMintAndRecord(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	x := newExchangeEnv(t)
	s := startServer(t, x.env)
	x.register(s, "")
	db := openDB(t, x.dbURL)

	x.sts.SetLatency(3 * time.Second)
	token := x.gh.Mint(t, x.gh.GitHubClaims(nil))
	answered := make(chan answer, 1)
	go func() { answered <- tryExchange(s.url, token) }()

	// Once the reservation is committed the mint is under way: give the
	// request time to reach STS, then kill the process.
	var id string
	for deadline := time.Now().Add(10 * time.Second); ; {
		err := db.QueryRow(ctx, `SELECT id::text FROM audit.issuances WHERE outcome = 'pending'`).Scan(&id)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pending reservation: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-s.done
	if a := <-answered; a.err == nil {
		t.Fatalf("the client got an answer from a killed bridge: %d %s", a.status, a.body)
	}
	// STS finishes issuing into the closed connection.
	for deadline := time.Now().Add(10 * time.Second); x.sts.CallCount() != 1; {
		if time.Now().After(deadline) {
			t.Fatalf("STS calls: %d, want 1", x.sts.CallCount())
		}
		time.Sleep(50 * time.Millisecond)
	}
	x.sts.SetLatency(0)
	if o := outcome(t, db, id); o != "pending" {
		t.Fatalf("the crashed exchange's row: %q, want pending", o)
	}

	// A new process: the token stays spent; other tokens issue.
	s2 := startServer(t, x.env)
	r := tryExchange(s2.url, token)
	if r.err != nil || r.status != 409 || r.code() != api.CodeTokenReplayed {
		t.Fatalf("the crashed exchange's token on a new process: %d %s %v, want 409 token_replayed", r.status, r.body, r.err)
	}
	fresh := tryExchange(s2.url, x.gh.Mint(t, x.gh.GitHubClaims(nil)))
	if fresh.err != nil || fresh.status != 200 {
		t.Fatalf("a new token on the new process: %d %s %v", fresh.status, fresh.body, fresh.err)
	}
	requireIssuedRows(t, db, []answer{r, fresh})

	requireSweptUnknown(t, db, id)
	if c := countOutcomes(t, db); c["issued"] != 1 || c["unknown"] != 1 || c["denied"] != 1 || c["pending"] != 0 {
		t.Errorf("ledger: %v, want 1 issued, 1 unknown, 1 denied (the replay)", c)
	}
	s2.stopClean()
}
