package e2e

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gh "github.com/google/go-github/v88/github"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/test/githubtest"
	"github.com/oidc-bridge/oidc-bridge/test/oidctest"
	"github.com/oidc-bridge/oidc-bridge/test/pgtest"
)

const ghAppID = 4242

type githubEnv struct {
	t     *testing.T
	dbURL string
	ci    *oidctest.Issuer
	fake  *githubtest.Server
	s     *server
	key   *rsa.PrivateKey
}

func rsaPEM(t *testing.T) (*rsa.PrivateKey, string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k, string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}))
}

// newGitHubEnv: the real binary, with an App registered at the bridge and
// at the GitHub fake (TLS, GHES-style base URL), installed on acme with
// contents: write on web, infra and other.
func newGitHubEnv(t *testing.T) *githubEnv {
	t.Helper()
	e := &githubEnv{t: t, dbURL: pgtest.NewDatabase(t), ci: oidctest.New(t), fake: githubtest.New(t)}
	env, _ := issuerEnv(t, e.dbURL)
	env = append(env, "SSL_CERT_FILE="+e.fake.WriteCertFile(t))
	e.s = startServer(t, env)
	e.s.must(201, "POST", "/v1/admin/issuers", issuerBody("github", e.ci.URL(), "github"))
	var pemKey string
	e.key, pemKey = rsaPEM(t)
	e.fake.AddKey(ghAppID, &e.key.PublicKey)
	e.fake.Install(ghAppID, "acme", true, map[string]string{"contents": "write", "metadata": "read"}, "web", "infra", "other")
	body, _ := json.Marshal(api.GitHubApp{Name: "acme-app", AppID: ghAppID, BaseURL: e.fake.BaseURL(), PrivateKey: pemKey})
	r := e.s.must(201, "POST", "/v1/admin/github-apps", string(body))
	if strings.Contains(string(r.body), "PRIVATE KEY") {
		t.Fatalf("the admin API returned the key: %s", r.body)
	}
	e.addMapping("gh-write", `{"contents": "write"}`)
	return e
}

func (e *githubEnv) addMapping(name, permissions string) {
	e.s.must(201, "POST", "/v1/admin/mappings", fmt.Sprintf(`{"name": %q, "issuer": "github",
		"conditions": {"repository": "acme/web", "ref": "refs/heads/main", "event_name": "push"},
		"provider": "github", "target": {"app": "acme-app", "owner": "acme", "repositories": ["web", "infra"],
		"permissions": %s}, "max_duration_seconds": 3600}`, name, permissions))
}

func (e *githubEnv) exchange(mapping string) (reply, api.GitHubCredentials) {
	token := e.ci.Mint(e.t, e.ci.GitHubClaims(nil))
	r := exchange(e.s, token, fmt.Sprintf(`{"mapping": %q}`, mapping))
	var cr api.GitHubCredentials
	if r.status == 200 {
		var resp api.ExchangeResponse
		r.json(e.t, &resp)
		if err := json.Unmarshal(resp.Credentials, &cr); err != nil {
			e.t.Fatal(err)
		}
	}
	return r, cr
}

func (e *githubEnv) client(token string) *gh.Client {
	c, err := gh.NewClient(gh.WithHTTPClient(e.fake.Client()), gh.WithAuthToken(token),
		gh.WithEnterpriseURLs(e.fake.BaseURL(), e.fake.BaseURL()))
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// TestGitHubInstallationTokens: (a) a GitHub Actions token becomes an
// installation token for two repositories with contents: write, which
// go-github uses against the fake for them and not for a third; (b) a
// permission beyond the App's grant is refused 502 naming it; (c) the job
// revokes the token: GitHub refuses it then and the ledger row has
// revoked_at; (e) the ledger holds no token.
func TestGitHubInstallationTokens(t *testing.T) {
	t.Parallel()
	e := newGitHubEnv(t)
	ctx := context.Background()

	r, cr := e.exchange("gh-write")
	if r.status != 200 {
		t.Fatalf("exchange: %d %s", r.status, r.body)
	}
	if cr.TokenType != "Bearer" || cr.Permissions["contents"] != "write" || strings.Join(cr.Repositories, ",") != "acme/web,acme/infra" ||
		cr.APIURL != e.fake.BaseURL() || time.Until(cr.ExpiresAt) < 50*time.Minute {
		t.Errorf("credentials %+v", cr)
	}
	c := e.client(cr.Token)
	for _, repo := range []string{"web", "infra"} {
		if _, _, err := c.Repositories.Get(ctx, "acme", repo); err != nil {
			t.Errorf("acme/%s with the token: %v", repo, err)
		}
	}
	if _, _, err := c.Repositories.Get(ctx, "acme", "other"); err == nil {
		t.Error("the token reaches acme/other")
	}
	list, _, err := c.Apps.ListRepos(ctx, nil)
	if err != nil || list.GetTotalCount() != 2 {
		t.Errorf("installation repositories: %v %v", list, err)
	}

	// (b)
	e.addMapping("gh-admin", `{"contents": "write", "administration": "write"}`)
	r, _ = e.exchange("gh-admin")
	var apiErr api.Error
	r.json(t, &apiErr)
	if r.status != 502 || apiErr.Error != api.CodeProviderError || !strings.Contains(apiErr.Message, "administration: write") {
		t.Errorf("beyond the grant: %d %s", r.status, r.body)
	}

	// (c)
	body, _ := json.Marshal(api.RevokeCredentialRequest{Token: cr.Token})
	var first, again api.RevokeCredentialResponse
	e.s.must(200, "POST", "/v1/credentials/revoke", string(body), "").json(t, &first)
	if _, _, err := c.Repositories.Get(ctx, "acme", "web"); err == nil || e.fake.Live(cr.Token) {
		t.Error("GitHub still accepts the revoked token")
	}
	e.s.must(200, "POST", "/v1/credentials/revoke", string(body), "").json(t, &again)
	if first.RevokedAt.IsZero() || !again.RevokedAt.Equal(first.RevokedAt) || first.CredentialID != again.CredentialID {
		t.Errorf("revocations %+v then %+v", first, again)
	}
	unknown, _ := json.Marshal(api.RevokeCredentialRequest{Token: "ghs_unknown"})
	e.s.must(404, "POST", "/v1/credentials/revoke", string(unknown), "")
	pool := openDB(t, e.dbURL)
	var revoked *time.Time
	if err := pool.QueryRow(ctx, `SELECT revoked_at FROM audit.issuances WHERE credential_id = $1`, first.CredentialID).Scan(&revoked); err != nil ||
		revoked == nil || !revoked.Equal(first.RevokedAt) {
		t.Errorf("ledger revoked_at %v (%v), want %v", revoked, err, first.RevokedAt)
	}

	// (e)
	rows, err := pool.Query(ctx, `SELECT row_to_json(i)::text FROM issuances i`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var row string
		if err := rows.Scan(&row); err != nil {
			t.Fatal(err)
		}
		n++
		if strings.Contains(row, cr.Token) || strings.Contains(row, "ghs_") {
			t.Errorf("a ledger row holds a token: %s", row)
		}
	}
	if n < 2 {
		t.Errorf("%d ledger rows", n)
	}
	if strings.Contains(e.s.logs.String(), cr.Token) {
		t.Error("the server log holds the token")
	}

	// (f) An admin revocation marks the rows but cannot reach GitHub
	// (the bridge keeps no token); the job's own revocation afterwards
	// still revokes at GitHub, and the row keeps the admin's time.
	e.addMapping("gh-incident", `{"contents": "read"}`)
	r, cr2 := e.exchange("gh-incident")
	if r.status != 200 {
		t.Fatalf("exchange: %d %s", r.status, r.body)
	}
	e.s.must(200, "POST", "/v1/admin/issuances/revoke", `{"mapping": "gh-incident", "reason": "incident drill"}`)
	if !e.fake.Live(cr2.Token) {
		t.Fatal("an admin revocation reached GitHub without the token: the test's premise changed")
	}
	var adminAt time.Time
	if err := pool.QueryRow(ctx, `SELECT revoked_at FROM audit.issuances WHERE mapping = 'gh-incident' AND outcome = 'issued'`).Scan(&adminAt); err != nil {
		t.Fatal(err)
	}
	body, _ = json.Marshal(api.RevokeCredentialRequest{Token: cr2.Token})
	var afterAdmin api.RevokeCredentialResponse
	e.s.must(200, "POST", "/v1/credentials/revoke", string(body), "").json(t, &afterAdmin)
	if e.fake.Live(cr2.Token) {
		t.Error("the job's revocation after an admin's did not reach GitHub: the token is still live")
	}
	if !afterAdmin.RevokedAt.Equal(adminAt) {
		t.Errorf("revoked_at %v, want the admin's %v", afterAdmin.RevokedAt, adminAt)
	}

	// A mapping cannot name an App the bridge does not know.
	r = e.s.call("POST", "/v1/admin/mappings", `{"name": "gh-nope", "issuer": "github", "conditions": {"repository": "acme/web"},
		"provider": "github", "target": {"app": "nope", "owner": "acme", "repositories": ["web"], "permissions": {"contents": "read"}}}`)
	r.json(t, &apiErr)
	if r.status != 400 || apiErr.Field != "target.app" {
		t.Errorf("a mapping naming an unknown App: %d %s", r.status, r.body)
	}
	// The App cannot go while a mapping names it.
	e.s.must(409, "DELETE", "/v1/admin/github-apps/acme-app", "")
	var changes string
	if err := pool.QueryRow(ctx, `SELECT string_agg(coalesce(after::text, '') || coalesce(before::text, ''), ' ')
		FROM audit.admin_changes WHERE kind = 'github_app'`).Scan(&changes); err != nil || !strings.Contains(changes, "SHA256:") ||
		strings.Contains(changes, "PRIVATE") {
		t.Errorf("admin changes of the App: %q %v", changes, err)
	}
}

// TestGitHubAppKeyRotation: (d) exchanges run while the App's key rotates:
// the new key registered at the bridge before GitHub knows it (the
// previous key signs), then at GitHub, then the old key removed at GitHub
// and retired at the bridge. No exchange fails.
func TestGitHubAppKeyRotation(t *testing.T) {
	t.Parallel()
	e := newGitHubEnv(t)
	var (
		ok, failed atomic.Int64
		stop       = make(chan struct{})
		wg         sync.WaitGroup
		firstErr   atomic.Value
	)
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				// Paced under the bridge's per-client limit (50/s).
				time.Sleep(50 * time.Millisecond)
				token := e.ci.Mint(t, e.ci.GitHubClaims(nil))
				r := e.s.call("POST", "/v1/exchange", `{"mapping": "gh-write"}`, token)
				if r.status == 200 {
					ok.Add(1)
				} else {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%d %s", r.status, r.body))
				}
			}
		})
	}
	pause := func() { time.Sleep(700 * time.Millisecond) }
	pause()
	newKey, newPEM := rsaPEM(t)
	body, _ := json.Marshal(api.GitHubApp{AppID: ghAppID, BaseURL: e.fake.BaseURL(), PrivateKey: newPEM})
	var app api.GitHubApp
	e.s.must(200, "PUT", "/v1/admin/github-apps/acme-app", string(body)).json(t, &app)
	if len(app.Keys) != 2 || !app.Keys[0].Signing || app.Keys[1].Signing {
		t.Fatalf("keys after the rotation: %+v", app.Keys)
	}
	pause()
	e.fake.AddKey(ghAppID, &newKey.PublicKey)
	pause()
	e.fake.RemoveKey(ghAppID, &e.key.PublicKey)
	pause()
	body, _ = json.Marshal(api.GitHubApp{AppID: ghAppID, BaseURL: e.fake.BaseURL(), RetirePreviousKey: true})
	e.s.must(200, "PUT", "/v1/admin/github-apps/acme-app", string(body)).json(t, &app)
	if len(app.Keys) != 1 || !app.Keys[0].Signing {
		t.Fatalf("keys after retirement: %+v", app.Keys)
	}
	pause()
	close(stop)
	wg.Wait()
	if failed.Load() != 0 || ok.Load() < 10 {
		t.Fatalf("%d exchanges failed (first: %v), %d succeeded", failed.Load(), firstErr.Load(), ok.Load())
	}
	t.Logf("%d exchanges during the rotation, none failed", ok.Load())
}
