package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/test/oidctest"
)

// appB is a second mapping that admits the same GitLab jobs as app-main
// (another cloud account): a job that needs both.
const appB = `{"name": "app-b", "issuer": "gitlab",
	"conditions": {"repository": "platform/app", "repository_id": "20", "ref": "refs/heads/main"},
	"provider": "aws", "target": {"role_arn": "arn:aws:iam::333333333333:role/app-b", "region": "us-west-2"}}`

// TestOneTokenOneCredentialCLI: a job that needs two mappings works with the
// default replay_scope token when each exchange has its own token: GitLab's
// two id_tokens (--token-env), GitHub's request variables (a fresh token per
// exchange). Re-using one token for the second mapping is 409
// token_replayed, recorded.
func TestOneTokenOneCredentialCLI(t *testing.T) {
	t.Parallel()
	x := newExchangeEnv(t)
	s := startServer(t, x.env)
	x.register(s, "")
	s.must(201, "POST", "/v1/admin/mappings", appB)
	s.must(201, "POST", "/v1/admin/mappings", `{"name": "web-b", "issuer": "github",
		"conditions": {"repository": "acme/web", "repository_id": "1339936803", "ref": "refs/heads/main"},
		"provider": "aws", "target": {"role_arn": "arn:aws:iam::333333333333:role/web-b", "region": "eu-west-1"}}`)

	// GitLab: one id_tokens entry per mapping.
	env := []string{"OIDC_BRIDGE_URL=" + s.url,
		"APP_MAIN_ID_TOKEN=" + x.gl.Mint(t, x.gl.GitLabClaims(nil)),
		"APP_B_ID_TOKEN=" + x.gl.Mint(t, x.gl.GitLabClaims(nil))}
	exchangeWith := func(tokenVar, mapping string) (string, int) {
		out, errOut, code := cli(t, env, "exchange", "--token-env", tokenVar, "--mapping", mapping, "--no-cache", "--format", "json")
		return out + errOut, code
	}
	for _, c := range [][2]string{{"APP_MAIN_ID_TOKEN", "app-main"}, {"APP_B_ID_TOKEN", "app-b"}} {
		if out, code := exchangeWith(c[0], c[1]); code != 0 {
			t.Fatalf("%s with its own token: exit %d: %s", c[1], code, out)
		}
	}
	// One token for both: the second is refused, with no retry.
	if out, code := exchangeWith("APP_MAIN_ID_TOKEN", "app-b"); code != 1 || !strings.Contains(out, "409 token_replayed") || strings.Contains(out, "retrying") {
		t.Errorf("app-main's token for app-b: exit %d: %s; want 409 token_replayed", code, out)
	}

	// GitHub: the CLI asks for a fresh ID token for each exchange.
	var requests atomic.Int32
	gh := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"value": x.gh.Mint(t, x.gh.GitHubClaims(map[string]any{"aud": r.URL.Query().Get("audience")}))})
	}))
	t.Cleanup(gh.Close)
	ghEnv := []string{"OIDC_BRIDGE_URL=" + s.url, "RUNNER_TEMP=" + t.TempDir(),
		"ACTIONS_ID_TOKEN_REQUEST_URL=" + gh.URL + "/token?api-version=2.0", "ACTIONS_ID_TOKEN_REQUEST_TOKEN=rt"}
	for _, m := range []string{"web-prod", "web-b"} {
		if out, errOut, code := cli(t, ghEnv, "exchange", "--audience", oidctest.DefaultAudience, "--mapping", m, "--format", "json"); code != 0 {
			t.Fatalf("GitHub job, %s: exit %d: %s%s", m, code, out, errOut)
		}
	}
	if n := requests.Load(); n != 2 {
		t.Errorf("GitHub ID token requests: %d, want 2 (one fresh token per exchange)", n)
	}

	var issued, replayed int
	if err := openDB(t, x.dbURL).QueryRow(context.Background(), `SELECT
		count(*) FILTER (WHERE outcome = 'issued'),
		count(*) FILTER (WHERE outcome = 'denied' AND error_code = 'token_replayed' AND mapping = 'app-b')
		FROM audit.issuances`).Scan(&issued, &replayed); err != nil {
		t.Fatal(err)
	}
	if issued != 4 || replayed != 1 {
		t.Errorf("ledger: %d issued, %d token_replayed on app-b; want 4, 1", issued, replayed)
	}
	s.stopClean()
}

// TestDisableMeansNowAcrossReplicas: a mapping or issuer disabled through
// one replica is refused by the others from the first exchange sent after
// the change committed, because the reservation rechecks both in the
// database. It holds even when a replica's catalog cache never hears of
// the change (an admin's SQL with the notify triggers off for that
// transaction: the cache keeps serving the old catalog).
func TestDisableMeansNowAcrossReplicas(t *testing.T) {
	t.Parallel()
	x := newExchangeEnv(t)
	var servers [3]*server // 0 changes, 1 and 2 exchange
	var wg sync.WaitGroup
	for i := range servers {
		wg.Go(func() { servers[i] = startServer(t, x.env) })
	}
	wg.Wait()
	for _, s := range servers {
		s.waitReady(200)
	}
	x.register(servers[0], "")
	glToken := func() string { return x.gl.Mint(t, x.gl.GitLabClaims(nil)) }
	code := func(r reply) string {
		if r.status == 200 {
			return "200"
		}
		var e api.Error
		_ = json.Unmarshal(r.body, &e)
		return fmt.Sprintf("%d %s", r.status, e.Error)
	}
	// warm waits until replicas 1 and 2 issue for app-main: an enable
	// reaches a replica when its cache reloads (milliseconds).
	warm := func() {
		t.Helper()
		for i, s := range servers[1:] {
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				r := exchange(s, glToken(), "")
				if r.status == 200 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("exchange on replica %d while enabled: %d %s", i+1, r.status, r.body)
				}
			}
		}
	}
	mappingBody := func(enabled bool) string {
		return fmt.Sprintf(`{"name": "app-main", "issuer": "gitlab", "enabled": %t,
		"conditions": {"repository": "platform/app", "repository_id": "20", "ref": "refs/heads/main"},
		"provider": "aws", "target": {"role_arn": "arn:aws:iam::210987654321:role/app", "region": "us-west-2",
		                              "external_id": "acme-ci"},
		"max_duration_seconds": 7200}`, enabled)
	}

	// Through the admin API: each round disables app-main on replica 0 and,
	// as soon as the PUT is answered, exchanges on replicas 1 and 2 at once.
	const rounds = 10
	var took []time.Duration
	for round := range rounds {
		warm()
		tokens := []string{glToken(), glToken()}
		changed := time.Now()
		servers[0].must(200, "PUT", "/v1/admin/mappings/app-main", mappingBody(false))
		got := make([]string, 2)
		at := make([]time.Duration, 2)
		for i := range got {
			wg.Go(func() { got[i] = code(exchange(servers[i+1], tokens[i], "")); at[i] = time.Since(changed) })
		}
		wg.Wait()
		for i := range got {
			if got[i] != "403 "+api.CodeNoMatchingMapping {
				t.Errorf("round %d, replica %d: first exchange after the disable answered %s; want 403 no_matching_mapping", round, i+1, got[i])
			}
		}
		took = append(took, at...)
		servers[0].must(200, "PUT", "/v1/admin/mappings/app-main", mappingBody(true))
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	t.Logf("disable-to-deny across two replicas, %d rounds (PUT sent on replica 0 to the answer of the first exchange sent after it on replicas 1 and 2): min %v, median %v, max %v",
		rounds, took[0], took[len(took)/2], took[len(took)-1])

	// Behind the caches' back: the change commits without a notification.
	db := openDB(t, x.dbURL)
	silently := func(sql string) {
		t.Helper()
		if _, err := db.Exec(context.Background(), `BEGIN;
			ALTER TABLE mappings DISABLE TRIGGER oidc_bridge_catalog_notify;
			ALTER TABLE issuers DISABLE TRIGGER oidc_bridge_catalog_notify;
			`+sql+`;
			-- The admin history's direct-SQL trigger is deferred to the
			-- commit; fire it now, as ALTER TABLE refuses pending events.
			SET CONSTRAINTS ALL IMMEDIATE;
			ALTER TABLE mappings ENABLE ALWAYS TRIGGER oidc_bridge_catalog_notify;
			ALTER TABLE issuers ENABLE ALWAYS TRIGGER oidc_bridge_catalog_notify;
			COMMIT`); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct{ disable, enable, want string }{
		{`UPDATE mappings SET enabled = false WHERE name = 'app-main'`, `UPDATE mappings SET enabled = true WHERE name = 'app-main'`,
			"403 " + api.CodeNoMatchingMapping},
		{`UPDATE issuers SET enabled = false WHERE name = 'gitlab'`, `UPDATE issuers SET enabled = true WHERE name = 'gitlab'`,
			"401 " + api.CodeUntrustedIssuer},
	} {
		warm()
		silently(c.disable)
		var got []string
		for _, s := range servers[1:] {
			for range 3 {
				got = append(got, code(exchange(s, glToken(), "")))
			}
		}
		if slices.ContainsFunc(got, func(g string) bool { return g != c.want }) {
			t.Errorf("%s without a notification: replicas answered %v; want only %s", c.disable, got, c.want)
		}
		// Enabled again with a notification: a cache may have reloaded
		// while the mapping was silently disabled (a reload coalesced from
		// the rounds above), and a silent enable would leave it denying
		// until the next change (stale towards refusal: fail closed).
		if _, err := db.Exec(context.Background(), c.enable); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range servers {
		s.stopClean()
	}
}
