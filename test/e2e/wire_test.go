package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/internal/pgcluster"
	"github.com/oidc-bridge/oidc-bridge/ledger"
	"github.com/oidc-bridge/oidc-bridge/providers"
	"github.com/oidc-bridge/oidc-bridge/test/entratest"
	"github.com/oidc-bridge/oidc-bridge/test/faulttest"
	"github.com/oidc-bridge/oidc-bridge/test/gcptest"
	"github.com/oidc-bridge/oidc-bridge/test/oidctest"
	"github.com/oidc-bridge/oidc-bridge/test/ststest"
)

// tcpCluster starts a PostgreSQL cluster of the test's own listening on a
// loopback TCP port (a TCP proxy can stand in front of it; the shared
// pgtest cluster has only a unix socket) and returns it with its port.
func tcpCluster(t *testing.T, dataDir string, settings map[string]string) (*pgcluster.Cluster, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	port := faulttest.FreePort(t)
	c, err := pgcluster.Start(ctx, pgcluster.Options{DataDir: dataDir, Port: port, Settings: settings})
	if err != nil {
		t.Fatalf("start cluster: %v", err)
	}
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	if err := c.EnsureDatabase(ctx, "bridge"); err != nil {
		t.Fatal(err)
	}
	return c, port
}

// attempt is one client request as the client saw it: the token's jti,
// the mapping asked for, and the answer.
type attempt struct {
	jti, mapping string
	replica      int
	retry        bool
	answer
	credential string // the credential id of a 200, as the ledger records it
}

// cutOff is an attempt whose client got no usable answer: a transport
// error or a 5xx.
func (a attempt) cutOff() bool { return a.err != nil || a.status >= 500 }

// postExchange posts one exchange for mapping with token.
func postExchange(client *http.Client, url, token, mapping string) answer {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", url+"/v1/exchange", strings.NewReader(fmt.Sprintf(`{"mapping": %q, "duration_seconds": 900}`, mapping)))
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
	return answer{status: resp.StatusCode, body: b, err: err, at: time.Now()}
}

// credentialID is the ledger's credential id of a 200's credentials.
func credentialID(body []byte) string {
	var resp api.ExchangeResponse
	if json.Unmarshal(body, &resp) != nil {
		return ""
	}
	switch resp.Provider {
	case "aws":
		var c providers.AWSCredentials
		_ = json.Unmarshal(resp.Credentials, &c)
		return c.AccessKeyID
	case "gcp":
		var c providers.GCPCredentials
		_ = json.Unmarshal(resp.Credentials, &c)
		return providers.TokenID(c.AccessToken)
	case "azure":
		var c providers.AzureCredentials
		_ = json.Unmarshal(resp.Credentials, &c)
		return providers.TokenID(c.AccessToken)
	}
	return ""
}

// TestWireFaults: three replicas share one PostgreSQL, each through its
// own toxiproxy link, and reach AWS STS, GCP IAM Credentials and Entra
// through toxiproxy links too, while clients run a few thousand exchanges
// (four mappings, one with a per_hour quota) and the links misbehave in
// turn: latency spikes, a bandwidth limit, connections cut right after a
// COMMIT or the ledger's issued/insert statements reached the server
// (faulttest.CommitCut), resets and swallowed responses on the cloud
// links, timeouts on the database links, and partitions that heal (one
// replica's database link refusing connections, another's dropping every
// packet, STS refusing). A client whose attempt is cut off retries once
// with the same token. Afterwards, with the sweeper run, the ledger is
// joined with everything the clients received (by issuance id and token
// jti) and with every credential the fakes issued: no 200 without its
// issued row and credential, no token issued twice, no credential
// recorded twice, the quota exact, no row left pending, and every
// credential a fake issued either recorded issued or covered by an
// unknown row.
func TestWireFaults(t *testing.T) {
	t.Parallel()
	began := time.Now()
	ctx := context.Background()
	dir := reachableTempDir(t)
	cluster, pgPort := tcpCluster(t, filepath.Join(dir, "pg"), map[string]string{"max_connections": "100"})
	direct := cluster.URL("bridge")
	db := openDB(t, direct)

	gh := oidctest.New(t)
	sts, gcp, entra := ststest.New(t), gcptest.New(t), entratest.New(t)
	env, publicURL := issuerEnv(t, direct)
	gcp.Allow(bridgeSA, deploySA)
	entra.AddFederatedCredential(azureTenant, azureClient, entratest.FederatedCredential{Name: "oidc-bridge",
		Issuer: publicURL, Subject: "oidc-bridge:azure:mapping:azure", Audiences: []string{"api://AzureADTokenExchange"}})
	hostport := func(u string) string { return strings.TrimPrefix(strings.TrimPrefix(u, "http://"), "https://") }
	stsLink := faulttest.NewProxy(t, "sts", hostport(sts.URL()))
	gcpLink := faulttest.NewProxy(t, "gcp", hostport(gcp.URL()))
	entraLink := faulttest.NewProxy(t, "entra", hostport(entra.URL()))
	clouds := []*faulttest.Proxy{stsLink, gcpLink, entraLink}
	var (
		pgLinks []*faulttest.Proxy
		cuts    []*faulttest.CommitCut
	)
	for i := range 3 {
		p := faulttest.NewProxy(t, fmt.Sprintf("pg%d", i), fmt.Sprintf("127.0.0.1:%d", pgPort))
		pgLinks = append(pgLinks, p)
		// The CommitCut toxic is on each database link, idle, before the
		// replica opens its first connection, so that it learns the name
		// of every statement the replica prepares (pgx prepares each once
		// per connection and later only binds its name); the "resets
		// mid-commit" phase arms it.
		cuts = append(cuts, p.AddCommitCut("cut", faulttest.CommitCutRule{Every: 4, Disarmed: true,
			Simple: []string{"commit"}, Prepared: []string{"SET outcome = 'issued'", "INSERT INTO issuances"}}))
	}
	env = append(env, awsEnv(sts)...)
	// The replicas' circuit breakers stay open for breakerCooldown once a
	// cloud failed them; the check after the heal waits for it.
	const breakerCooldown = 10 * time.Second
	env = append(env, "BRIDGE_BREAKER_COOLDOWN="+breakerCooldown.String())
	env = append(env, "BRIDGE_RATE_LIMIT=0", "BRIDGE_ISSUER_RATE_LIMIT=0", "BRIDGE_ISSUER_OWNER_RATE_LIMIT=0",
		"BRIDGE_MIGRATION_DATABASE_URL="+direct,
		"AWS_ENDPOINT_URL_STS=http://"+stsLink.Addr(),
		"GOOGLE_APPLICATION_CREDENTIALS="+gcp.WriteCredentialsFile(t, bridgeSA),
		"BRIDGE_GCP_IAMCREDENTIALS_ENDPOINT=http://"+gcpLink.Addr(),
		"BRIDGE_GCP_STS_ENDPOINT=http://"+gcpLink.Addr(),
		"AZURE_AUTHORITY_HOST=https://"+entraLink.Addr(),
		"SSL_CERT_FILE="+entra.WriteCertFile(t),
		"CLOUDSDK_CONFIG="+t.TempDir(), "GCE_METADATA_HOST=", "GOOGLE_AUTH_TRUST_BOUNDARY_ENABLED=", "GOOGLE_CLOUD_UNIVERSE_DOMAIN=")
	if out, errOut, code := cli(t, env, "migrate"); code != 0 {
		t.Fatalf("migrate: exit %d\n%s%s", code, out, errOut)
	}
	var servers [3]*server
	for i := range servers {
		// Each replica reaches the database through its own link; replica
		// 0 serves the public URL (the key set Entra reads).
		e := append(append([]string(nil), env...), fmt.Sprintf("BRIDGE_DATABASE_URL=postgres://postgres@%s/bridge?sslmode=disable", pgLinks[i].Addr()), "BRIDGE_LOG_LEVEL=info")
		if i == 0 {
			e = append(e, "BRIDGE_LISTEN_ADDR="+hostport(publicURL))
		}
		servers[i] = startServer(t, e)
		servers[i].waitReady(200)
	}
	s0 := servers[0]
	s0.must(201, "POST", "/v1/admin/issuers", issuerBody("github", gh.URL(), "github"))
	add := func(name, provider, target, extra string) {
		s0.must(201, "POST", "/v1/admin/mappings", fmt.Sprintf(`{"name": %q, "issuer": "github",
			"conditions": {"repository": "acme/web", "ref": "refs/heads/main"},
			"provider": %q, "target": %s, "max_duration_seconds": 3600 %s}`, name, provider, target, extra))
	}
	const quota = 150
	add("aws", "aws", `{"role_arn": "arn:aws:iam::123456789012:role/deploy", "region": "eu-west-1"}`, "")
	add("aws-quota", "aws", `{"role_arn": "arn:aws:iam::123456789012:role/quota", "region": "eu-west-1"}`,
		fmt.Sprintf(`, "quota": {"per_hour": %d}`, quota))
	add("gcp", "gcp", fmt.Sprintf(`{"service_account": %q}`, deploySA), "")
	add("azure", "azure", fmt.Sprintf(`{"tenant_id": %q, "client_id": %q, "scope": "https://management.azure.com/.default"}`, azureTenant, azureClient), "")

	// The clients: workers that exchange fresh tokens, and retry a cut-off
	// attempt once with the same token, as a pipeline's step would.
	var (
		mu       sync.Mutex
		attempts []attempt
		stop     atomic.Bool
		wg       sync.WaitGroup
	)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	record := func(a attempt) {
		if a.err == nil && a.status == 200 {
			a.credential = credentialID(a.body)
		}
		mu.Lock()
		attempts = append(attempts, a)
		mu.Unlock()
	}
	work := func(w int, mappings []string, pause time.Duration) {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(uint64(w), 22))
		for n := 0; !stop.Load(); n++ {
			claims := gh.GitHubClaims(nil)
			jti := claims["jti"].(string)
			tok := gh.Mint(t, claims)
			m := mappings[rng.IntN(len(mappings))]
			r := (w + n) % len(servers)
			a := attempt{jti: jti, mapping: m, replica: r, answer: postExchange(client, servers[r].url, tok, m)}
			record(a)
			if a.cutOff() {
				r = (r + 1) % len(servers)
				record(attempt{jti: jti, mapping: m, replica: r, retry: true, answer: postExchange(client, servers[r].url, tok, m)})
			}
			time.Sleep(pause)
		}
	}
	general := []string{"aws", "aws", "aws", "gcp", "gcp", "azure"}
	for w := range 10 {
		wg.Add(1)
		go work(w, general, 5*time.Millisecond)
	}
	wg.Add(1)
	go work(10, []string{"aws-quota"}, 150*time.Millisecond)
	finish := func() {
		if stop.CompareAndSwap(false, true) {
			wg.Wait()
		}
	}
	t.Cleanup(finish)

	count := func() int { mu.Lock(); defer mu.Unlock(); return len(attempts) }
	phase := func(name string, d time.Duration, on, off func()) {
		n0, t0 := count(), time.Now()
		on()
		time.Sleep(d)
		off()
		t.Logf("phase %-28s %5.1fs %5d attempts", name, time.Since(t0).Seconds(), count()-n0)
	}
	each := func(ps []*faulttest.Proxy, f func(p *faulttest.Proxy)) func() {
		return func() {
			for _, p := range ps {
				f(p)
			}
		}
	}
	removeAll := func(ps []*faulttest.Proxy, name string) func() {
		return each(ps, func(p *faulttest.Proxy) { p.Remove(name) })
	}
	nop := func() {}
	phase("clean", 8*time.Second, nop, nop)
	phase("latency spikes", 10*time.Second, func() {
		each(pgLinks, func(p *faulttest.Proxy) {
			p.Add("spike", "latency", "downstream", 0.5, map[string]any{"latency": 150, "jitter": 150})
		})()
		each(clouds, func(p *faulttest.Proxy) {
			p.Add("spike", "latency", "downstream", 0.5, map[string]any{"latency": 400, "jitter": 300})
		})()
	}, func() { removeAll(pgLinks, "spike")(); removeAll(clouds, "spike")() })
	phase("bandwidth limit", 8*time.Second, func() {
		each(pgLinks, func(p *faulttest.Proxy) { p.Add("narrow", "bandwidth", "downstream", 1, map[string]any{"rate": 16}) })()
		each(clouds, func(p *faulttest.Proxy) { p.Add("narrow", "bandwidth", "downstream", 1, map[string]any{"rate": 4}) })()
	}, func() { removeAll(pgLinks, "narrow")(); removeAll(clouds, "narrow")() })
	phase("resets mid-commit", 12*time.Second, func() {
		for _, c := range cuts {
			c.Arm()
		}
	}, func() {
		for _, c := range cuts {
			c.Disarm()
		}
	})
	phase("cloud resets", 8*time.Second, each(clouds, func(p *faulttest.Proxy) {
		p.Add("reset", "reset_peer", "downstream", 0.3, map[string]any{"timeout": 0})
	}), removeAll(clouds, "reset"))
	phase("swallowed responses", 10*time.Second, func() {
		each(clouds, func(p *faulttest.Proxy) {
			p.Add("swallow", "timeout", "downstream", 0.3, map[string]any{"timeout": 2000})
		})()
		each(pgLinks, func(p *faulttest.Proxy) {
			p.Add("swallow", "timeout", "downstream", 0.1, map[string]any{"timeout": 3000})
		})()
	}, func() { removeAll(clouds, "swallow")(); removeAll(pgLinks, "swallow")() })
	phase("partitions", 8*time.Second, func() {
		pgLinks[1].Disable()
		pgLinks[2].Add("blackhole-up", "timeout", "upstream", 1, map[string]any{"timeout": 0})
		pgLinks[2].Add("blackhole-down", "timeout", "downstream", 1, map[string]any{"timeout": 0})
		stsLink.Disable()
	}, func() {
		pgLinks[1].Enable()
		pgLinks[2].Remove("blackhole-up")
		pgLinks[2].Remove("blackhole-down")
		stsLink.Enable()
	})
	phase("healed", 10*time.Second, nop, nop)
	finish()

	// Every replica issues again after the heal, and the quota is spent:
	// each replica answers the quota'd mapping 429. A replica whose AWS
	// circuit the faults opened answers CircuitOpen until its cooldown is
	// over and a probe passes: the check retries the same token (a refusal
	// by an open circuit does not spend it) as an operator would wait, and
	// fails if the circuit is not closed a margin after the cooldown since
	// it was first seen open (it opened before; the probe takes
	// milliseconds).
	const breakerMargin = 5 * time.Second
	for i, s := range servers {
		tok := gh.Mint(t, gh.GitHubClaims(nil))
		var open time.Time
		for {
			a := postExchange(client, s.url, tok, "aws")
			if a.err == nil && a.status == 200 {
				if !open.IsZero() {
					t.Logf("replica %d: AWS circuit open after the heal, closed %.1fs after it was first seen open", i, time.Since(open).Seconds())
				}
				break
			}
			if a.err == nil && a.status == 502 && strings.Contains(string(a.body), "CircuitOpen") {
				if open.IsZero() {
					open = time.Now()
				}
				if time.Since(open) <= breakerCooldown+breakerMargin {
					time.Sleep(250 * time.Millisecond)
					continue
				}
				t.Errorf("replica %d: AWS circuit still open %v after it was first seen open, beyond its cooldown %v", i, time.Since(open).Round(time.Millisecond), breakerCooldown)
			}
			t.Errorf("replica %d after the faults healed: %d %s %v", i, a.status, a.body, a.err)
			break
		}
		tok = gh.Mint(t, gh.GitHubClaims(nil))
		if a := postExchange(client, s.url, tok, "aws-quota"); a.err != nil || a.status != 429 {
			t.Errorf("replica %d, quota'd mapping after the run: %d %s %v, want 429 (the quota is spent)", i, a.status, a.body, a.err)
		}
	}
	totalCuts, linkCuts, linkMatches := 0, []int{}, []int{}
	for _, c := range cuts {
		totalCuts += c.Cuts()
		linkCuts, linkMatches = append(linkCuts, c.Cuts()), append(linkMatches, c.Matches())
	}

	// The sweeper, as serve's maintenance runs it, once the credentials of
	// the pending rows would have expired (moved into the past here).
	if _, err := db.Exec(ctx, `UPDATE issuances SET expires_at = now() - interval '1 second' WHERE outcome = 'pending'`); err != nil {
		t.Fatal(err)
	}
	swept, err := ledger.New(db).Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}

	type row struct{ id, outcome, code, jti, mapping, provider, credential string }
	rows := map[string]row{}
	byJTI := map[string][]row{}
	rs, err := db.Query(ctx, `SELECT id::text, outcome, coalesce(error_code, ''), coalesce(token_jti, ''), coalesce(mapping, ''),
		coalesce(provider, ''), coalesce(credential_id, '') FROM audit.issuances`)
	if err != nil {
		t.Fatal(err)
	}
	for rs.Next() {
		var r row
		if err := rs.Scan(&r.id, &r.outcome, &r.code, &r.jti, &r.mapping, &r.provider, &r.credential); err != nil {
			t.Fatal(err)
		}
		rows[r.id] = r
		byJTI[r.jti] = append(byJTI[r.jti], r)
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}

	outcomes := map[string]int{}
	for _, r := range rows {
		outcomes[r.outcome+"/"+r.code]++
		if r.outcome == "pending" {
			t.Errorf("issuance %s still pending after the sweep", r.id)
		}
	}
	// 1. Every 200 has its issued row, with the credential the client got.
	answers := map[string]int{}
	ok200 := map[string]int{} // by jti
	cutOff, cutOffWithRow := 0, map[string]int{}
	for _, a := range attempts {
		switch {
		case a.err != nil:
			answers["transport error"]++
		default:
			answers[fmt.Sprintf("%d %s", a.status, a.code())]++
		}
		if a.err == nil && a.status == 200 {
			ok200[a.jti]++
			r, found := rows[a.issuance()]
			if !found || r.outcome != "issued" || r.credential != a.credential || a.credential == "" {
				t.Errorf("a 200 (%s, jti %s) whose ledger row is %+v (found %v), want issued with credential %q", a.mapping, a.jti, r, found, a.credential)
			}
		}
		if a.cutOff() {
			cutOff++
			if r, found := rows[a.issuance()]; found {
				cutOffWithRow[r.outcome+"/"+r.code]++
			}
		}
	}
	// 2. No token issued twice (one 200 and at most one issued row per jti);
	// no credential recorded twice.
	creds := map[string]string{}
	for jti, rs := range byJTI {
		issued := 0
		for _, r := range rs {
			if r.outcome == "issued" {
				issued++
				if other, dup := creds[r.credential]; dup {
					t.Errorf("credential %s recorded by issuances %s and %s", r.credential, other, r.id)
				}
				creds[r.credential] = r.id
			}
		}
		if issued > 1 || ok200[jti] > 1 {
			t.Errorf("token %s: %d issued rows, %d answers 200", jti, issued, ok200[jti])
		}
	}
	// 3. The quota is exact: the rows that count (issued, pending, unknown)
	// fill it, no more, and the mapping was refused once full.
	var counted, quotaDenied int
	if err := db.QueryRow(ctx, `SELECT count(*) FILTER (WHERE outcome IN ('issued', 'pending', 'unknown')),
		count(*) FILTER (WHERE outcome = 'denied' AND error_code = 'quota_exceeded')
		FROM audit.issuances WHERE mapping = 'aws-quota'`).Scan(&counted, &quotaDenied); err != nil {
		t.Fatal(err)
	}
	if counted != quota || quotaDenied == 0 {
		t.Errorf("quota'd mapping: %d counted issuances, %d quota_exceeded; want exactly %d counted and some refused", counted, quotaDenied, quota)
	}
	// 4. Never lost: every credential a fake issued is recorded issued, or
	// its issuance is unknown (the answer was lost on the way back).
	lost := 0
	unknownByProvider := map[string]int{}
	for _, r := range rows {
		if r.outcome == "unknown" {
			unknownByProvider[r.provider]++
		}
	}
	stsIssued, gcpIssued, entraIssued := 0, 0, 0
	for _, c := range sts.Calls() {
		if c.IssuedAccessKeyID == "" {
			continue
		}
		stsIssued++
		r, found := rows[c.Tags["issuance_id"]]
		switch {
		case !found:
			t.Errorf("STS issued %s for issuance %q, which the ledger does not have", c.IssuedAccessKeyID, c.Tags["issuance_id"])
		case r.outcome == "issued" && r.credential == c.IssuedAccessKeyID, r.outcome == "unknown":
		default:
			t.Errorf("STS issued %s for issuance %s, recorded %s/%s with credential %q", c.IssuedAccessKeyID, r.id, r.outcome, r.code, r.credential)
		}
	}
	unmatched := map[string]int{}
	for _, c := range gcp.Calls() {
		if c.IssuedToken != "" {
			gcpIssued++
			if _, ok := creds[providers.TokenID(c.IssuedToken)]; !ok {
				unmatched["gcp"]++
			}
		}
	}
	for _, c := range entra.TokenCalls() {
		if c.AccessToken != "" {
			entraIssued++
			if _, ok := creds[providers.TokenID(c.AccessToken)]; !ok {
				unmatched["azure"]++
			}
		}
	}
	for p, n := range unmatched {
		if n > unknownByProvider[p] {
			lost += n - unknownByProvider[p]
			t.Errorf("%s issued %d credentials the ledger records nowhere, with only %d unknown rows to cover them", p, n, unknownByProvider[p])
		}
	}
	retries := 0
	for _, a := range attempts {
		if a.retry {
			retries++
		}
	}
	t.Logf("%d attempts (%d retries of a cut-off attempt with the same token) over 3 replicas; answers: %v", len(attempts), retries, answers)
	t.Logf("%d connections cut mid-commit (per database link %v, of %v matching executions); %d cut-off attempts, their rows: %v",
		totalCuts, linkCuts, linkMatches, cutOff, cutOffWithRow)
	t.Logf("ledger after the sweep (%d marked abandoned): %v", swept, outcomes)
	t.Logf("credentials issued by the fakes: STS %d, GCP %d, Entra %d; not in an issued row: %v; unknown rows by provider: %v",
		stsIssued, gcpIssued, entraIssued, unmatched, unknownByProvider)
	t.Logf("quota'd mapping: %d counted of %d, %d refused", counted, quota, quotaDenied)
	if slices.Contains(linkCuts, 0) || outcomes["unknown/"+ledger.CodeIndeterminate] == 0 || answers["200 "] < 1000 {
		t.Errorf("the faults did not bite: cuts per database link %v, outcomes %v, answers %v", linkCuts, outcomes, answers)
	}
	for _, s := range servers {
		s.stopClean()
	}
	if os.Getenv("OIDC_BRIDGE_WIRE_LOG") != "" {
		for i, s := range servers {
			t.Logf("replica %d log:\n%s", i, s.logs.String())
		}
	}
	t.Logf("TestWireFaults ran %v", time.Since(began).Round(time.Second))
}
