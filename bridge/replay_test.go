package bridge_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/oidc-bridge/oidc-bridge/bridge"
	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/identity"
	"github.com/oidc-bridge/oidc-bridge/mapping"
	"github.com/oidc-bridge/oidc-bridge/test/oidctest"
)

// TestAttack46OnceInAll: one token, one credential. A token two mappings
// admit is exchanged once in all: the second exchange, for the other
// mapping, is 409 token_replayed and recorded. An issuer whose replay_scope
// is token_mapping allows once per mapping, and says so in a warning.
func TestAttack46OnceInAll(t *testing.T) {
	x := newExchangeEnv(t)
	x.mapping("web-b", `"repository": "acme/web", "ref": "refs/heads/main"`, "")
	tok := x.token(nil)
	if r := x.exchange(tok, `{"mapping": "web"}`); r.status != 200 {
		t.Fatalf("first exchange: %d %s", r.status, r.body)
	}
	e := x.wantError(x.exchange(tok, `{"mapping": "web-b"}`), 409, api.CodeTokenReplayed, "")
	if e.IssuanceID == "" {
		t.Error("the replay was not recorded")
	}
	if got, want := x.rows(), []string{"issued/", "denied/token_replayed"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("rows %v, want %v", got, want)
	}

	body := fmt.Sprintf(`{"url": %q, "audiences": [%q], "kind": "github", "replay_scope": "token_mapping"}`, x.gh.URL(), oidctest.DefaultAudience)
	if r := x.do("PUT", "/v1/admin/issuers/github?lint=strict", body); r.status != 400 || r.err(t).Field != "replay_scope" ||
		len(r.err(t).Warnings) != 1 || r.err(t).Warnings[0].Code != "replay_scope_token_mapping" || r.err(t).Warnings[0].Field != "replay_scope" {
		t.Errorf("lint=strict PUT of token_mapping: %d %s; want 400 on replay_scope listing its warning", r.status, r.body)
	}
	is := decode[mapping.Issuer](t, x.must(200, "PUT", "/v1/admin/issuers/github", body))
	if is.ReplayScope != "token_mapping" || len(is.Warnings) != 1 || is.Warnings[0].Code != "replay_scope_token_mapping" {
		t.Errorf("issuer after PUT: %+v", is)
	}
	tok = x.token(nil)
	for _, m := range []string{"web", "web-b"} {
		if r := x.exchange(tok, `{"mapping": "`+m+`"}`); r.status != 200 {
			t.Errorf("token_mapping, %s: %d %s", m, r.status, r.body)
		}
	}
	x.wantError(x.exchange(tok, `{"mapping": "web"}`), 409, api.CodeTokenReplayed, "")
}

// staleStore answers the exchange's catalog reads from a snapshot taken by
// freeze, as a replica's catalog cache does until it reloads; writes go
// through.
type staleStore struct {
	mapping.Store
	mu       sync.Mutex
	frozen   bool
	issuers  map[string]identity.Issuer
	mappings map[string][]mapping.Mapping
}

func (s *staleStore) freeze(t *testing.T, url, issuer string) {
	t.Helper()
	is, err := s.Store.IssuerByURL(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := s.Store.ListMappings(context.Background(), mapping.Filter{Issuer: issuer, EnabledOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.frozen, s.issuers, s.mappings = true, map[string]identity.Issuer{url: is}, map[string][]mapping.Mapping{issuer: ms}
}

func (s *staleStore) IssuerByURL(ctx context.Context, url string) (identity.Issuer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.frozen {
		return s.issuers[url], nil
	}
	return s.Store.IssuerByURL(ctx, url)
}

func (s *staleStore) ListMappings(ctx context.Context, f mapping.Filter) ([]mapping.Mapping, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.frozen && f.EnabledOnly && f.Provider == "" {
		return s.mappings[f.Issuer], nil
	}
	return s.Store.ListMappings(ctx, f)
}

// TestDisableMeansNow: a mapping or issuer disabled after the replica read
// its catalog is refused at the reservation, which rechecks both in the
// database: the code the contract gives for each, a denied row, no call to
// the cloud.
func TestDisableMeansNow(t *testing.T) {
	for _, tt := range []struct {
		name, path, body, code string
		status                 int
	}{
		{"mapping", "/v1/admin/mappings/web", `{"issuer": "github", "enabled": false, "conditions": {"repository": "acme/web", "ref": "refs/heads/main"},
			"provider": "aws", "target": {"role_arn": "arn:aws:iam::123456789012:role/web", "region": "eu-west-1"}}`, api.CodeNoMatchingMapping, 403},
		{"issuer", "/v1/admin/issuers/github", `{"url": %q, "audiences": [%q], "kind": "github", "enabled": false}`, api.CodeUntrustedIssuer, 401},
	} {
		t.Run(tt.name, func(t *testing.T) {
			stale := &staleStore{}
			x := newExchangeEnv(t, func(o *bridge.Options) {
				stale.Store = o.Store
				o.Store = stale
				o.Verifier = identity.NewVerifier(identity.Config{AllowInsecureIssuers: true}, stale)
			})
			stale.freeze(t, x.gh.URL(), "github")
			body := tt.body
			if tt.name == "issuer" {
				body = fmt.Sprintf(body, x.gh.URL(), oidctest.DefaultAudience)
			}
			x.must(200, "PUT", tt.path, body)
			e := x.wantError(x.exchange(x.token(nil), `{"mapping": "web"}`), tt.status, tt.code, "")
			if e.IssuanceID == "" {
				t.Error("the refusal was not recorded")
			}
			if got := x.rows(); fmt.Sprint(got) != fmt.Sprint([]string{"denied/" + tt.code}) {
				t.Errorf("rows %v, want one denied/%s", got, tt.code)
			}
			if n := sts.CallCount(); n != 0 {
				t.Errorf("%d STS calls; want none", n)
			}
		})
	}
}

// A generic issuer's token without jti (Jenkins' OIDC plugin issues none)
// is accepted, exchanged once (keyed on its SHA-256) and recorded by that
// identifier, never by the token.
func TestAttack47TokenWithoutJTI(t *testing.T) {
	x := newExchangeEnv(t)
	ci := oidctest.New(t)
	x.must(201, "POST", "/v1/admin/issuers", fmt.Sprintf(`{"name": "jenkins", "url": %q, "audiences": [%q], "kind": "generic"}`,
		ci.URL(), oidctest.DefaultAudience))
	x.must(201, "POST", "/v1/admin/mappings", `{"name": "svc", "issuer": "jenkins", "conditions": {"repository": "team/service"},
		"provider": "aws", "target": {"role_arn": "arn:aws:iam::123456789012:role/svc", "region": "eu-west-1"}}`)
	now := time.Now().Unix()
	tok := ci.Mint(t, map[string]any{"iss": ci.URL(), "aud": oidctest.DefaultAudience, "sub": "job/svc/42",
		"repository": "team/service", "iat": now, "exp": now + 300})
	if r := x.exchange(tok, ""); r.status != 200 {
		t.Fatalf("token without jti: %d %s", r.status, r.body)
	}
	x.wantError(x.exchange(tok, ""), 409, api.CodeTokenReplayed, "")
	sum := sha256.Sum256([]byte(tok))
	var ids []string
	rows, err := x.pool.Query(context.Background(), `SELECT token_jti FROM audit.issuances ORDER BY requested_at`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, s)
	}
	if want := "sha256:" + hex.EncodeToString(sum[:]); len(ids) != 2 || ids[0] != want || ids[1] != want {
		t.Errorf("token_jti recorded %v, want %s twice", ids, want)
	}
}
