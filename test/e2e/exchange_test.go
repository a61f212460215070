package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/providers"
	"github.com/oidc-bridge/oidc-bridge/test/oidctest"
	"github.com/oidc-bridge/oidc-bridge/test/pgtest"
	"github.com/oidc-bridge/oidc-bridge/test/ststest"
)

// awsEnv points the bridge's AWS SDK at the STS fake with the fake's key.
func awsEnv(sts *ststest.Server) []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + ststest.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + ststest.SecretAccessKey,
		"AWS_REGION=us-east-1",
		"AWS_ENDPOINT_URL_STS=" + sts.URL(),
		// Nothing from the machine's own AWS setup may leak in.
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_PROFILE=",
		"AWS_EC2_METADATA_DISABLED=true",
		// The fake's key is an IAM user's (no session token): the bridge's
		// AssumeRole is not role chaining, and mappings may ask for 12 h.
		"BRIDGE_AWS_ROLE_CHAINING=false",
	}
}

// exchangeEnv is a database, a GitHub- and a GitLab-shaped issuer and the STS
// fake, with the bridge's environment for them.
type exchangeEnv struct {
	dbURL  string
	gh, gl *oidctest.Issuer
	sts    *ststest.Server
	env    []string
}

func newExchangeEnv(t *testing.T, extra ...string) *exchangeEnv {
	t.Helper()
	x := &exchangeEnv{
		dbURL: pgtest.NewDatabase(t),
		gh:    oidctest.New(t),
		gl:    oidctest.New(t, oidctest.WithPathPrefix("/gitlab")),
		sts:   ststest.New(t),
	}
	// The service connects as the runtime role (no ownership, history
	// append-only: migrations/00007_roles.sql), the migrator as the owner.
	x.env = append([]string{"BRIDGE_DATABASE_URL=" + pgtest.RuntimeURL(t, x.dbURL), "BRIDGE_MIGRATION_DATABASE_URL=" + x.dbURL,
		"BRIDGE_ADMIN_TOKEN=" + adminToken, "BRIDGE_ALLOW_INSECURE_ISSUERS=true"}, awsEnv(x.sts)...)
	x.env = append(x.env, extra...)
	return x
}

// register adds both issuers and one mapping each.
func (x *exchangeEnv) register(s *server, quota string) {
	s.must(201, "POST", "/v1/admin/issuers", issuerBody("github", x.gh.URL(), "github"))
	s.must(201, "POST", "/v1/admin/issuers", issuerBody("gitlab", x.gl.URL(), "gitlab"))
	s.must(201, "POST", "/v1/admin/mappings", fmt.Sprintf(`{"name": "web-prod", "issuer": "github",
		"conditions": {"repository": "acme/web", "repository_id": "1339936803", "ref": "refs/heads/main",
		               "environment": "production", "event_name": ["push", "workflow_dispatch"]},
		"provider": "aws", "target": {"role_arn": "arn:aws:iam::123456789012:role/web-deploy", "region": "eu-west-1"},
		"max_duration_seconds": 3600 %s}`, quota))
	s.must(201, "POST", "/v1/admin/mappings", `{"name": "app-main", "issuer": "gitlab",
		"conditions": {"repository": "platform/app", "repository_id": "20", "ref": "refs/heads/main"},
		"provider": "aws", "target": {"role_arn": "arn:aws:iam::210987654321:role/app", "region": "us-west-2",
		                              "external_id": "acme-ci"},
		"max_duration_seconds": 7200}`)
}

func exchange(s *server, token, body string) reply {
	s.t.Helper()
	return s.call("POST", "/v1/exchange", body, token)
}

func openDB(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// TestExchangeAWS: a GitHub- and a GitLab-shaped token each exchange for AWS
// credentials through the real binary, the real SDK and the STS fake, and
// the ledger records both.
func TestExchangeAWS(t *testing.T) {
	t.Parallel()
	x := newExchangeEnv(t)
	s := startServer(t, x.env)
	x.register(s, "")

	ghToken := x.gh.Mint(t, x.gh.GitHubClaims(map[string]any{"jti": "jti-github-1"}))
	r := exchange(s, ghToken, `{"duration_seconds": 900}`)
	if r.status != 200 {
		t.Fatalf("github exchange: %d %s", r.status, r.body)
	}
	var resp api.ExchangeResponse
	r.json(t, &resp)
	var creds providers.AWSCredentials
	if err := json.Unmarshal(resp.Credentials, &creds); err != nil {
		t.Fatal(err)
	}
	if resp.Mapping != "web-prod" || resp.Provider != "aws" || resp.IssuanceID == "" ||
		!strings.HasPrefix(creds.AccessKeyID, "ASIA") || creds.SecretAccessKey == "" || creds.SessionToken == "" ||
		creds.Region != "eu-west-1" {
		t.Fatalf("github response: %s", r.body)
	}
	if d := time.Until(creds.Expiration); d < 14*time.Minute || d > 16*time.Minute || !creds.Expiration.Equal(resp.ExpiresAt) {
		t.Errorf("expiration %v (in %v), expires_at %v", creds.Expiration, d, resp.ExpiresAt)
	}

	glToken := x.gl.Mint(t, x.gl.GitLabClaims(map[string]any{"jti": "jti-gitlab-1"}))
	r = exchange(s, glToken, "") // an empty body is a zero request
	if r.status != 200 {
		t.Fatalf("gitlab exchange: %d %s", r.status, r.body)
	}
	var glResp api.ExchangeResponse
	r.json(t, &glResp)

	calls := x.sts.Calls()
	if len(calls) != 2 {
		t.Fatalf("STS saw %d calls, want 2", len(calls))
	}
	gh, gl := calls[0], calls[1]
	if gh.RoleArn != "arn:aws:iam::123456789012:role/web-deploy" || gh.DurationSeconds != 900 ||
		gh.AccessKeyID != ststest.AccessKeyID || !strings.Contains(gh.RoleSessionName, "12345678901") ||
		gh.Tags["repository"] != "acme/web" || gh.Tags["ref"] != "refs/heads/main" || gh.Tags["environment"] != "production" {
		t.Errorf("github STS call: %+v", gh)
	}
	if gl.RoleArn != "arn:aws:iam::210987654321:role/app" || gl.DurationSeconds != 3600 || gl.ExternalID != "acme-ci" ||
		!strings.Contains(gl.RoleSessionName, "1212") || gl.Tags["repository"] != "platform/app" {
		t.Errorf("gitlab STS call: %+v", gl)
	}

	// The ledger, as an auditor reads it.
	db := openDB(t, x.dbURL)
	rows, err := db.Query(context.Background(), `SELECT id::text, outcome, repository, mapping, provider,
		credential_id, token_jti, coalesce(host(client_ip), '') FROM audit.issuances ORDER BY requested_at`)
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ id, outcome, repo, mapping, provider, cred, jti, ip string }
	var got []row
	for rows.Next() {
		var w row
		if err := rows.Scan(&w.id, &w.outcome, &w.repo, &w.mapping, &w.provider, &w.cred, &w.jti, &w.ip); err != nil {
			t.Fatal(err)
		}
		got = append(got, w)
	}
	want := []row{
		{resp.IssuanceID, "issued", "acme/web", "web-prod", "aws", creds.AccessKeyID, "jti-github-1", "127.0.0.1"},
		{glResp.IssuanceID, "issued", "platform/app", "app-main", "aws", gl.IssuedAccessKeyID, "jti-gitlab-1", "127.0.0.1"},
	}
	if len(got) != 2 {
		t.Fatalf("audit rows: %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("audit row %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	// No token or secret anywhere in the ledger or the log.
	var dump string
	if err := db.QueryRow(context.Background(), `SELECT string_agg(row_to_json(i)::text, ' ') FROM issuances i`).Scan(&dump); err != nil {
		t.Fatal(err)
	}
	s.stopClean()
	for _, secret := range []string{ghToken, glToken, creds.SecretAccessKey, creds.SessionToken, "eyJ"} {
		if strings.Contains(dump, secret) || strings.Contains(s.logs.String(), secret) {
			t.Errorf("a token or secret (%.12s…) was stored or logged", secret)
		}
	}
}

// TestQuotaAcrossReplicas: 50 concurrent exchanges against per_hour 10,
// on one bridge process and spread over two on one database, issue exactly
// 10, and STS is called exactly 10 times.
func TestQuotaAcrossReplicas(t *testing.T) {
	t.Parallel()
	for _, replicas := range []int{1, 2} {
		t.Run(fmt.Sprintf("replicas=%d", replicas), func(t *testing.T) {
			t.Parallel()
			testQuota(t, replicas)
		})
	}
}

func testQuota(t *testing.T, replicas int) {
	x := newExchangeEnv(t)
	servers := make([]*server, replicas)
	for i := range servers {
		servers[i] = startServer(t, x.env)
	}
	x.register(servers[0], `, "quota": {"per_hour": 10}`)

	tokens := make([]string, 50)
	for i := range tokens {
		tokens[i] = x.gh.Mint(t, x.gh.GitHubClaims(nil))
	}
	statuses := make([]int, len(tokens))
	retryAfter := make([]string, len(tokens))
	var wg sync.WaitGroup
	for i, tok := range tokens {
		s := servers[i%replicas]
		wg.Go(func() {
			r := exchange(s, tok, "")
			statuses[i] = r.status
			if r.status == 429 {
				var e api.Error
				_ = json.Unmarshal(r.body, &e)
				retryAfter[i] = e.Error + "/" + e.IssuanceID
			}
		})
	}
	wg.Wait()
	count := map[int]int{}
	for i, st := range statuses {
		count[st]++
		if st == 429 && !strings.HasPrefix(retryAfter[i], "quota_exceeded/") {
			t.Errorf("429 body: %s", retryAfter[i])
		}
	}
	if count[200] != 10 || count[429] != 40 {
		t.Fatalf("statuses %v, want 10 × 200 and 40 × 429", count)
	}
	if n := x.sts.CallCount(); n != 10 {
		t.Fatalf("STS called %d times, want 10", n)
	}
	var issued, denied int
	if err := openDB(t, x.dbURL).QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE outcome = 'issued'),
		count(*) FILTER (WHERE outcome = 'denied' AND error_code = 'quota_exceeded') FROM audit.issuances`).Scan(&issued, &denied); err != nil {
		t.Fatal(err)
	}
	if issued != 10 || denied != 40 {
		t.Fatalf("ledger: %d issued, %d denied", issued, denied)
	}
	for _, s := range servers {
		s.stopClean()
	}
}
