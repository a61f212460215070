package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
)

// activeKeys counts the active signing keys per algorithm.
func activeKeys(t *testing.T, env []string) map[string]int {
	t.Helper()
	active := map[string]int{}
	for _, k := range listKeys(t, env) {
		if k.State == "active" {
			active[k.Alg]++
		}
	}
	return active
}

// TestThreeReplicas: three bridge processes on one database, all signing
// with one key-encryption key, under concurrent load: a quota is exact
// across them, a replayed token is refused by all but exactly one, there is
// exactly one active signing key per algorithm (also after concurrent forced
// rotations), and a mapping disabled through one replica denies on the
// other two within the disable-to-deny target.
func TestThreeReplicas(t *testing.T) {
	t.Parallel()
	began := time.Now()
	x := newExchangeEnv(t)
	env, _ := issuerEnv(t, x.dbURL)
	env = append(env, awsEnv(x.sts)...)

	var servers [3]*server
	var wg sync.WaitGroup
	for i := range servers {
		// Started at once, so that their key maintenance races.
		wg.Go(func() { servers[i] = startServer(t, env) })
	}
	wg.Wait()
	for i, s := range servers {
		if s == nil {
			t.Fatalf("replica %d did not start", i)
		}
		s.waitReady(200)
	}
	x.register(servers[0], `, "quota": {"per_hour": 10}`)

	a := activeKeys(t, env)
	t.Logf("active keys after three replicas started: %v", a)
	if a["RS256"] != 1 || a["ES256"] != 1 || len(a) != 2 {
		t.Fatalf("active keys after three replicas started: %v", a)
	}

	// Load: 60 distinct tokens for the quota'd mapping, one token replayed
	// 30 times for the other, and three forced rotations, all at once.
	quotaTokens := make([]string, 60)
	for i := range quotaTokens {
		quotaTokens[i] = x.gh.Mint(t, x.gh.GitHubClaims(nil))
	}
	replayed := x.gl.Mint(t, x.gl.GitLabClaims(nil))

	type answer struct {
		status int
		code   string
	}
	decode := func(r reply) answer {
		a := answer{status: r.status}
		if r.status != 200 {
			var e api.Error
			_ = json.Unmarshal(r.body, &e)
			a.code = e.Error
		}
		return a
	}
	quotaAnswers := make([]answer, len(quotaTokens))
	replayAnswers := make([]answer, 30)
	rotateCodes := make([]int, 3)
	rotateErr := make([]string, 3)
	start := make(chan struct{})
	loadStart := time.Now()
	for i, tok := range quotaTokens {
		s := servers[i%len(servers)]
		wg.Go(func() { <-start; quotaAnswers[i] = decode(exchange(s, tok, "")) })
	}
	for i := range replayAnswers {
		s := servers[i%len(servers)]
		wg.Go(func() { <-start; replayAnswers[i] = decode(exchange(s, replayed, "")) })
	}
	for i := range rotateCodes {
		wg.Go(func() { <-start; _, rotateErr[i], rotateCodes[i] = cli(t, env, "keys", "rotate", "--force") })
	}
	close(start)
	wg.Wait()
	loadTook := time.Since(loadStart)

	count := func(as []answer) map[string]int {
		m := map[string]int{}
		for _, a := range as {
			m[fmt.Sprintf("%d %s", a.status, a.code)]++
		}
		return m
	}
	qc, rc := count(quotaAnswers), count(replayAnswers)
	t.Logf("load over 3 replicas took %v: quota mapping %v; replayed token %v; rotate exit codes %v", loadTook, qc, rc, rotateCodes)
	if qc["200 "] != 10 || qc["429 quota_exceeded"] != 50 || len(qc) != 2 {
		t.Errorf("quota mapping: %v, want 10 × 200 and 50 × 429 quota_exceeded", qc)
	}
	if rc["200 "] != 1 || rc["409 token_replayed"] != 29 || len(rc) != 2 {
		t.Errorf("replayed token: %v, want 1 × 200 and 29 × 409 token_replayed", rc)
	}
	for i, c := range rotateCodes {
		if c != 0 {
			t.Errorf("keys rotate --force %d: exit %d: %s", i, c, rotateErr[i])
		}
	}
	roles := map[string]int{}
	for _, c := range x.sts.Calls() {
		roles[c.RoleArn]++
	}
	t.Logf("STS calls by role: %v", roles)
	if roles["arn:aws:iam::123456789012:role/web-deploy"] != 10 || roles["arn:aws:iam::210987654321:role/app"] != 1 || len(roles) != 2 {
		t.Errorf("STS calls by role: %v, want 10 for web-deploy and 1 for app", roles)
	}

	var issued, quotaDenied, appIssued, replayDenied int
	if err := openDB(t, x.dbURL).QueryRow(context.Background(), `SELECT
		count(*) FILTER (WHERE mapping = 'web-prod' AND outcome = 'issued'),
		count(*) FILTER (WHERE outcome = 'denied' AND error_code = 'quota_exceeded'),
		count(*) FILTER (WHERE mapping = 'app-main' AND outcome = 'issued'),
		count(*) FILTER (WHERE outcome = 'denied' AND error_code = 'token_replayed')
		FROM audit.issuances`).Scan(&issued, &quotaDenied, &appIssued, &replayDenied); err != nil {
		t.Fatal(err)
	}
	t.Logf("ledger: web-prod %d issued, %d quota_exceeded; app-main %d issued, %d token_replayed", issued, quotaDenied, appIssued, replayDenied)
	if issued != 10 || quotaDenied != 50 || appIssued != 1 || replayDenied != 29 {
		t.Errorf("ledger: web-prod %d issued, %d quota_exceeded; app-main %d issued, %d token_replayed; want 10, 50, 1, 29",
			issued, quotaDenied, appIssued, replayDenied)
	}

	a = activeKeys(t, env)
	t.Logf("active keys after 3 concurrent forced rotations: %v", a)
	if a["RS256"] != 1 || a["ES256"] != 1 || len(a) != 2 {
		t.Errorf("active keys after concurrent forced rotations: %v", a)
	}

	// Disable app-main through replica 0; replicas 1 and 2, whose caches
	// have just matched it, must deny the next exchange.
	glToken := func() string { return x.gl.Mint(t, x.gl.GitLabClaims(nil)) }
	for i, s := range servers[1:] {
		if r := exchange(s, glToken(), ""); r.status != 200 {
			t.Fatalf("exchange on replica %d before the change: %d %s", i+1, r.status, r.body)
		}
	}
	disabled := `{"name": "app-main", "issuer": "gitlab", "enabled": false,
		"conditions": {"repository": "platform/app", "repository_id": "20", "ref": "refs/heads/main"},
		"provider": "aws", "target": {"role_arn": "arn:aws:iam::210987654321:role/app", "region": "us-west-2",
		                              "external_id": "acme-ci"},
		"max_duration_seconds": 7200}`
	// Tokens minted before the clock starts: the measurement is the bridge's.
	fresh := make([][]string, 2)
	for i := range fresh {
		for range 400 {
			fresh[i] = append(fresh[i], glToken())
		}
	}
	changed := time.Now()
	servers[0].must(200, "PUT", "/v1/admin/mappings/app-main", disabled)
	committed := time.Since(changed)
	took := make([]time.Duration, 2)
	tries := make([]int, 2)
	failure := make([]string, 2)
	for i := range took {
		s := servers[i+1]
		wg.Go(func() {
			for n := 1; n <= len(fresh[i]); n++ {
				r := exchange(s, fresh[i][n-1], "")
				switch a := decode(r); {
				case a.status == 200:
				case a.status == 403 && a.code == api.CodeNoMatchingMapping:
					took[i], tries[i] = time.Since(changed), n
					return
				default:
					failure[i] = fmt.Sprintf("exchange %d: %d %s", n, r.status, r.body)
					return
				}
				if time.Since(changed) > 2*denyTarget {
					failure[i] = fmt.Sprintf("still issuing %v after the change (%d exchanges)", time.Since(changed), n)
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
			failure[i] = "ran out of tokens"
		})
	}
	wg.Wait()
	for i := range took {
		if failure[i] != "" {
			t.Fatalf("replica %d: %s", i+1, failure[i])
		}
		t.Logf("mapping disabled on replica 0: replica %d's first denial %v after the PUT was sent (PUT answered after %v; %d exchange(s))",
			i+1, took[i], committed, tries[i])
		if took[i] >= denyTarget {
			t.Errorf("disable-to-deny on replica %d took %v, target %v", i+1, took[i], denyTarget)
		}
	}

	for _, s := range servers {
		s.stopClean()
	}
	t.Logf("TestThreeReplicas ran %v", time.Since(began))
}
