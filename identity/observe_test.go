package identity

import (
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestOnFetch: every discovery and JWKS fetch, and only fetches (not cache
// hits), reaches Config.OnFetch with the issuer's registered name and
// whether it succeeded.
func TestOnFetch(t *testing.T) {
	t.Parallel()
	var (
		mu  sync.Mutex
		got []string
	)
	e := newEnv(t, envOpt{config: func(c *Config) {
		c.OnFetch = func(f Fetch) {
			mu.Lock()
			defer mu.Unlock()
			result := "ok"
			if f.Err != nil {
				result = "error"
			}
			if f.Duration < 0 {
				t.Errorf("negative duration %s", f.Duration)
			}
			got = append(got, f.Kind+" "+f.Issuer+" "+result)
		}
	}})
	for range 3 {
		mustVerify(t, e.v, e.iss.Mint(t, e.iss.GitHubClaims(nil)))
	}
	e.iss.FailJWKS(http.StatusInternalServerError)
	e.iss.FailDiscovery(http.StatusServiceUnavailable)
	e.clock.Advance(DefaultCacheTTL + time.Minute)
	mustVerify(t, e.v, e.iss.Mint(t, e.iss.GitHubClaims(nil)))

	mu.Lock()
	defer mu.Unlock()
	want := []string{
		"discovery test-github ok", "jwks test-github ok",
		"discovery test-github error", "jwks test-github error",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("fetches\n got %q\nwant %q", got, want)
	}
}
