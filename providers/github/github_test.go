package github_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	gh "github.com/google/go-github/v88/github"

	"github.com/oidc-bridge/oidc-bridge/providers"
	"github.com/oidc-bridge/oidc-bridge/providers/github"
	"github.com/oidc-bridge/oidc-bridge/test/githubtest"
)

type staticApps map[string]github.App

func (s staticApps) Credentials(_ context.Context, name string) (github.App, error) {
	a, ok := s[name]
	if !ok {
		return github.App{}, github.ErrAppNotFound
	}
	return a, nil
}

func newKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

type env struct {
	fake *githubtest.Server
	key  *rsa.PrivateKey
	p    *github.Provider
}

func setup(t *testing.T, keys ...*rsa.PrivateKey) env {
	t.Helper()
	fake := githubtest.New(t)
	key := newKey(t)
	fake.AddKey(42, &key.PublicKey)
	fake.Install(42, "acme", true, map[string]string{"contents": "write", "metadata": "read"}, "web", "infra", "other")
	if len(keys) == 0 {
		keys = []*rsa.PrivateKey{key}
	} else {
		keys = append(keys, key)
	}
	fps := make([]string, len(keys))
	for i := range fps {
		fps[i] = "fp"
	}
	apps := staticApps{"acme": {Name: "acme", AppID: 42, BaseURL: fake.BaseURL(), Keys: keys, Fingerprints: fps}}
	return env{fake: fake, key: key, p: github.New(github.Config{Apps: apps, HTTPClient: fake.Client()})}
}

func mint(e env, target string) (providers.Credential, error) {
	return e.p.Mint(context.Background(), providers.Request{IssuanceID: "i", Mapping: "m", Target: json.RawMessage(target), Duration: time.Hour})
}

const twoRepos = `{"app": "acme", "owner": "acme", "repositories": ["web", "infra"], "permissions": {"contents": "write"}}`

func TestMintScopedToken(t *testing.T) {
	t.Parallel()
	e := setup(t)
	cred, err := mint(e, twoRepos)
	if err != nil {
		t.Fatal(err)
	}
	body := cred.Body.(providers.GitHubCredentials)
	if cred.ID != providers.TokenID(body.Token) || strings.Contains(cred.ID, body.Token) {
		t.Errorf("credential id %q", cred.ID)
	}
	if body.APIURL != e.fake.BaseURL() || !strings.HasSuffix(body.ServerURL, "/") || body.Permissions["contents"] != "write" ||
		strings.Join(body.Repositories, ",") != "acme/web,acme/infra" {
		t.Errorf("credentials %+v", body)
	}
	c, err := gh.NewClient(gh.WithHTTPClient(e.fake.Client()), gh.WithAuthToken(body.Token), gh.WithEnterpriseURLs(e.fake.BaseURL(), e.fake.BaseURL()))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Repositories.Get(context.Background(), "acme", "web"); err != nil {
		t.Errorf("web: %v", err)
	}
	if _, _, err := c.Repositories.Get(context.Background(), "acme", "other"); err == nil {
		t.Error("the token reaches a third repository")
	}
}

func TestMintRefusalsNameWhatIsBeyond(t *testing.T) {
	t.Parallel()
	e := setup(t)
	for name, tc := range map[string]struct{ target, code, detail string }{
		"permission": {`{"app": "acme", "owner": "acme", "repositories": ["web"], "permissions": {"contents": "write", "administration": "write"}}`,
			"PermissionNotGranted", "administration: write"},
		"level": {`{"app": "acme", "owner": "acme", "repositories": ["web"], "permissions": {"metadata": "write"}}`,
			"PermissionNotGranted", "metadata: write"},
		"repository": {`{"app": "acme", "owner": "acme", "repositories": ["web", "secret"], "permissions": {"contents": "read"}}`,
			"RepositoryNotAccessible", "web, secret"},
		"not installed": {`{"app": "acme", "owner": "elsewhere", "all_repositories": true, "permissions": {"contents": "read"}}`,
			"NotInstalled", "elsewhere"},
		"unknown app": {`{"app": "nope", "owner": "acme", "all_repositories": true, "permissions": {"contents": "read"}}`,
			"AppNotFound", `"nope"`},
	} {
		_, err := mint(e, tc.target)
		var pe *providers.Error
		if !errors.As(err, &pe) || !errors.Is(err, providers.ErrRefused) || pe.Code != tc.code || !strings.Contains(pe.Detail, tc.detail) {
			t.Errorf("%s: %v (detail %q), want %s naming %q", name, err, detailOf(err), tc.code, tc.detail)
		}
	}
}

func detailOf(err error) string {
	var pe *providers.Error
	if errors.As(err, &pe) {
		return pe.Detail
	}
	return ""
}

// The signing key GitHub does not know yet (a rotation's first step): the
// previous key signs.
func TestMintFallsBackToThePreviousKey(t *testing.T) {
	t.Parallel()
	e := setup(t, newKey(t))
	if _, err := mint(e, twoRepos); err != nil {
		t.Fatal(err)
	}
}

func TestMintRateLimitedHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.fake.RateLimit(90 * time.Second)
	_, err := mint(e, twoRepos)
	var pe *providers.Error
	if !errors.As(err, &pe) || !errors.Is(err, providers.ErrUnavailable) || pe.RetryAfter < 80*time.Second || pe.RetryAfter > 91*time.Second {
		t.Fatalf("%v (retry after %v), want unavailable with GitHub's wait", err, pe)
	}
}

func TestRevokeToken(t *testing.T) {
	t.Parallel()
	e := setup(t)
	cred, err := mint(e, twoRepos)
	if err != nil {
		t.Fatal(err)
	}
	tok := cred.Body.(providers.GitHubCredentials).Token
	for i := range 2 { // the second finds it invalid already: success
		if err := e.p.RevokeToken(context.Background(), json.RawMessage(twoRepos), tok); err != nil {
			t.Fatalf("revoke %d: %v", i, err)
		}
	}
	if e.fake.Live(tok) {
		t.Error("the token is still live at GitHub")
	}
}
