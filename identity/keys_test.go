package identity

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oidc-bridge/oidc-bridge/test/oidctest"
)

func mustVerify(t *testing.T, v *Verifier, tok string) *Claims {
	t.Helper()
	c, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return c
}

func wantRequests(t *testing.T, iss *oidctest.Issuer, discovery, jwks int) {
	t.Helper()
	if d, j := iss.DiscoveryRequests(), iss.JWKSRequests(); d != discovery || j != jwks {
		t.Errorf("requests: discovery %d, jwks %d; want %d, %d", d, j, discovery, jwks)
	}
}

// 7. A flood of unknown kids costs at most one JWKS fetch per interval, with
// concurrent askers sharing it, and good keys stay cached throughout.
func TestUnknownKIDFlood(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpt{})
	good := e.iss.Mint(t, e.iss.GitHubClaims(nil))
	mustVerify(t, e.v, good)
	wantRequests(t, e.iss, 1, 1)

	flood := func(n int) {
		t.Helper()
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				tok := e.iss.Mint(t, e.iss.GitHubClaims(nil), oidctest.WithUnpublishedKey(), oidctest.WithKid("random-"+strings.Repeat("x", i%50)+string(rune('a'+i%26))))
				_, err := e.v.Verify(context.Background(), tok)
				checkErr(t, err, ErrInvalidToken, ReasonUnknownKey)
			})
		}
		wg.Wait()
	}
	flood(200)
	wantRequests(t, e.iss, 1, 1)
	mustVerify(t, e.v, good)

	e.clock.Advance(DefaultKeyRefreshInterval - time.Second)
	flood(50)
	wantRequests(t, e.iss, 1, 1)

	e.clock.Advance(time.Second)
	flood(200) // concurrent: exactly one refetch between them
	wantRequests(t, e.iss, 1, 2)
	mustVerify(t, e.v, good)

	e.clock.Advance(DefaultKeyRefreshInterval)
	flood(1)
	flood(20)
	wantRequests(t, e.iss, 1, 3)
}

// 7 (one client starving the refresh budget for the others, Engram #1641):
// the budget is per issuer, and what it buys is shared. An attacker who
// keeps spending issuer A's refetches on random kids does not keep A's
// genuinely rotated key out: the refetch it triggers brings A's whole
// JWKS, new key included, so the pipeline's token verifies without a
// fetch of its own. Nor does the flood touch issuer B's budget: B's
// rotation is fetched when B's first token with the new kid arrives.
func TestUnknownKIDFloodDoesNotStarveOthers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpt{})
	b := oidctest.New(t, oidctest.WithClock(e.clock.Now))
	e.src.add(Issuer{Name: "other", URL: b.URL(), Kind: KindGitHub, Audiences: []string{oidctest.DefaultAudience}, Enabled: true})
	mustVerify(t, e.v, e.iss.Mint(t, e.iss.GitHubClaims(nil)))
	mustVerify(t, e.v, b.Mint(t, b.GitHubClaims(nil)))
	wantRequests(t, e.iss, 1, 1)
	wantRequests(t, b, 1, 1)

	attack := func(n int) {
		t.Helper()
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				tok := e.iss.Mint(t, e.iss.GitHubClaims(nil), oidctest.WithUnpublishedKey(), oidctest.WithKid(fmt.Sprintf("attacker-%d", i)))
				_, err := e.v.Verify(context.Background(), tok)
				checkErr(t, err, ErrInvalidToken, ReasonUnknownKey)
			})
		}
		wg.Wait()
	}
	// A rotates; the attacker is first to ask once the interval allows.
	e.iss.Rotate(true)
	rotatedA := e.iss.Mint(t, e.iss.GitHubClaims(nil))
	e.clock.Advance(DefaultKeyRefreshInterval)
	attack(100)
	wantRequests(t, e.iss, 1, 2)
	mustVerify(t, e.v, rotatedA) // no fetch of its own: the attacker's brought the key
	attack(100)
	wantRequests(t, e.iss, 1, 2)

	// B rotates during the flood on A: B's first new-kid token fetches.
	b.Rotate(true)
	mustVerify(t, e.v, b.Mint(t, b.GitHubClaims(nil)))
	wantRequests(t, b, 1, 2)
	attack(100)
	wantRequests(t, e.iss, 1, 2)
}

// A rotated-in key is picked up once the refresh interval allows, and
// rotated-out keys stop verifying after the next successful fetch.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpt{})
	oldKID := e.iss.KID()
	mustVerify(t, e.v, e.iss.Mint(t, e.iss.GitHubClaims(nil)))

	newKID := e.iss.Rotate(false)
	fresh := e.iss.Mint(t, e.iss.GitHubClaims(nil))
	_, err := e.v.Verify(context.Background(), fresh)
	checkErr(t, err, ErrInvalidToken, ReasonUnknownKey)
	wantRequests(t, e.iss, 1, 1)

	e.clock.Advance(DefaultKeyRefreshInterval)
	if c := mustVerify(t, e.v, fresh); c.JTI == "" {
		t.Error("no claims")
	}
	wantRequests(t, e.iss, 1, 2)
	if newKID == oldKID {
		t.Fatal("Rotate kept the kid")
	}
	// The old key was dropped from the JWKS and so from the cache.
	_, err = e.v.Verify(context.Background(), e.iss.Mint(t, e.iss.GitHubClaims(nil), oidctest.WithKey(oldKID)))
	checkErr(t, err, ErrInvalidToken, ReasonUnknownKey)
}

// Cached keys and discovery survive an outage of the issuer's endpoints,
// also past their TTL; without a cache, the outage is ErrUnavailable.
func TestEndpointOutage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpt{})
	mustVerify(t, e.v, e.iss.Mint(t, e.iss.GitHubClaims(nil)))

	e.iss.FailJWKS(http.StatusInternalServerError)
	e.iss.FailDiscovery(http.StatusServiceUnavailable)
	for range 3 {
		e.clock.Advance(DefaultCacheTTL + time.Minute)
		mustVerify(t, e.v, e.iss.Mint(t, e.iss.GitHubClaims(nil)))
	}
	// One attempt each per expiry, not one per token.
	for range 10 {
		mustVerify(t, e.v, e.iss.Mint(t, e.iss.GitHubClaims(nil)))
	}
	wantRequests(t, e.iss, 4, 4)
	// An unknown kid during the outage is still just unknown.
	e.clock.Advance(DefaultKeyRefreshInterval)
	_, err := e.v.Verify(context.Background(), e.iss.Mint(t, e.iss.GitHubClaims(nil), oidctest.WithKid("nope")))
	checkErr(t, err, ErrInvalidToken, ReasonUnknownKey)

	// A verifier with nothing cached cannot verify.
	cold := NewVerifier(Config{AllowInsecureIssuers: true, Now: e.clock.Now}, e.src)
	_, err = cold.Verify(context.Background(), e.iss.Mint(t, e.iss.GitHubClaims(nil)))
	checkErr(t, err, ErrUnavailable, ReasonDiscoveryUnavailable)

	e.iss.FailDiscovery(0)
	cold2 := NewVerifier(Config{AllowInsecureIssuers: true, Now: e.clock.Now}, e.src)
	_, err = cold2.Verify(context.Background(), e.iss.Mint(t, e.iss.GitHubClaims(nil)))
	checkErr(t, err, ErrUnavailable, ReasonJWKSUnavailable)

	// Recovery is picked up after the interval.
	e.iss.FailJWKS(0)
	_, err = cold2.Verify(context.Background(), e.iss.Mint(t, e.iss.GitHubClaims(nil)))
	checkErr(t, err, ErrUnavailable, ReasonJWKSUnavailable)
	e.clock.Advance(DefaultKeyRefreshInterval)
	mustVerify(t, cold2, e.iss.Mint(t, e.iss.GitHubClaims(nil)))
}

// An unreachable issuer is ErrUnavailable.
func TestIssuerUnreachable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpt{})
	src := &memSource{}
	src.add(Issuer{Name: "gone", URL: "http://127.0.0.1:1", Kind: KindGitHub, Audiences: []string{oidctest.DefaultAudience}, Enabled: true})
	v := NewVerifier(Config{AllowInsecureIssuers: true, Now: e.clock.Now}, src)
	_, err := v.Verify(context.Background(), e.iss.Mint(t, e.iss.GitHubClaims(map[string]any{"iss": "http://127.0.0.1:1"})))
	checkErr(t, err, ErrUnavailable, ReasonDiscoveryUnavailable)
}

// A caller's cancelled context ends its wait without poisoning the cache.
func TestVerifyCancelledContext(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpt{})
	block := make(chan struct{})
	e.iss.Handle(oidctest.DiscoveryPath, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-block
		http.Error(w, "late", http.StatusServiceUnavailable)
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := e.v.Verify(ctx, e.iss.Mint(t, e.iss.GitHubClaims(nil)))
	checkErr(t, err, ErrUnavailable, ReasonDiscoveryUnavailable)
	e.iss.Handle(oidctest.DiscoveryPath, nil)
	close(block)
	// The shared fetch ends with the 503; after the failure cache expires,
	// discovery recovers.
	deadline := time.Now().Add(5 * time.Second)
	for {
		e.clock.Advance(DefaultKeyRefreshInterval)
		_, err := e.v.Verify(context.Background(), e.iss.Mint(t, e.iss.GitHubClaims(nil)))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// 8. Discovery documents that would move key fetching elsewhere, or that
// belong to another issuer, make the issuer untrusted; nothing is fetched
// from the other place.
func TestDiscoverySSRF(t *testing.T) {
	t.Parallel()
	elsewhere := oidctest.New(t)
	tests := []struct {
		name   string
		modify func(e *env) func(doc map[string]any)
		handle func(e *env) http.Handler
		config func(*Config)
	}{
		{name: "issuer mismatch", modify: func(e *env) func(map[string]any) {
			return func(doc map[string]any) { doc["issuer"] = elsewhere.URL() }
		}},
		{name: "issuer with trailing slash", modify: func(e *env) func(map[string]any) {
			return func(doc map[string]any) { doc["issuer"] = e.iss.URL() + "/" }
		}},
		{name: "issuer absent", modify: func(e *env) func(map[string]any) {
			return func(doc map[string]any) { delete(doc, "issuer") }
		}},
		{name: "issuer not a string", modify: func(e *env) func(map[string]any) {
			return func(doc map[string]any) { doc["issuer"] = 1 }
		}},
		{name: "jwks_uri metadata service", modify: func(e *env) func(map[string]any) {
			return func(doc map[string]any) { doc["jwks_uri"] = "http://169.254.169.254/latest/meta-data/" }
		}},
		{name: "jwks_uri other host", modify: func(e *env) func(map[string]any) {
			return func(doc map[string]any) { doc["jwks_uri"] = elsewhere.JWKSURL() }
		}},
		{name: "jwks_uri localhost alias", modify: func(e *env) func(map[string]any) {
			return func(doc map[string]any) {
				doc["jwks_uri"] = strings.Replace(e.iss.JWKSURL(), "127.0.0.1", "localhost", 1)
			}
		}},
		{name: "jwks_uri userinfo", modify: func(e *env) func(map[string]any) {
			return func(doc map[string]any) {
				doc["jwks_uri"] = strings.Replace(e.iss.JWKSURL(), "http://", "http://user@", 1)
			}
		}},
		{name: "jwks_uri absent", modify: func(e *env) func(map[string]any) {
			return func(doc map[string]any) { delete(doc, "jwks_uri") }
		}},
		{name: "jwks_uri relative", modify: func(e *env) func(map[string]any) {
			return func(doc map[string]any) { doc["jwks_uri"] = oidctest.JWKSPath }
		}},
		{name: "jwks_uri file", modify: func(e *env) func(map[string]any) {
			return func(doc map[string]any) { doc["jwks_uri"] = "file:///etc/passwd" }
		}},
		{name: "cross-host redirect", handle: func(e *env) http.Handler {
			return http.RedirectHandler(elsewhere.URL()+oidctest.DiscoveryPath, http.StatusFound)
		}},
		{name: "redirect to localhost alias", handle: func(e *env) http.Handler {
			return http.RedirectHandler(strings.Replace(e.iss.URL(), "127.0.0.1", "localhost", 1)+"/x", http.StatusMovedPermanently)
		}},
		{name: "not found", handle: func(e *env) http.Handler { return http.NotFoundHandler() }},
		{name: "not JSON", handle: func(e *env) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("<html>")) })
		}},
		{name: "duplicate issuer member", handle: func(e *env) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write([]byte(`{"issuer":"` + e.iss.URL() + `","issuer":"x","jwks_uri":"` + e.iss.JWKSURL() + `"}`))
			})
		}},
		{name: "oversized document", handle: func(e *env) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write([]byte(`{"issuer":"` + e.iss.URL() + `","pad":"` + strings.Repeat("x", maxDocSize) + `"}`))
			})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOpt{})
			if tt.modify != nil {
				e.iss.SetDiscovery(tt.modify(e))
			}
			if tt.handle != nil {
				e.iss.Handle(oidctest.DiscoveryPath, tt.handle(e))
			}
			_, err := e.v.Verify(context.Background(), e.iss.Mint(t, e.iss.GitHubClaims(nil)))
			checkErr(t, err, ErrUntrustedIssuer, ReasonDiscoveryFailed)
			if e.iss.JWKSRequests() != 0 {
				t.Errorf("JWKS fetched %d times", e.iss.JWKSRequests())
			}
			// The failure is cached: a second token does not refetch.
			n := e.iss.DiscoveryRequests()
			_, err = e.v.Verify(context.Background(), e.iss.Mint(t, e.iss.GitHubClaims(nil)))
			checkErr(t, err, ErrUntrustedIssuer, ReasonDiscoveryFailed)
			if e.iss.DiscoveryRequests() != n {
				t.Errorf("discovery refetched within the interval")
			}
		})
	}
	if elsewhere.DiscoveryRequests() != 0 || elsewhere.JWKSRequests() != 0 {
		t.Errorf("the other host got requests: discovery %d, jwks %d", elsewhere.DiscoveryRequests(), elsewhere.JWKSRequests())
	}
}

// A redirect within the issuer's own host is followed.
func TestDiscoverySameHostRedirect(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpt{})
	e.iss.Handle("/moved", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeDoc(w, e.iss.Discovery())
	}))
	e.iss.Handle(oidctest.DiscoveryPath, http.RedirectHandler(e.iss.URL()+"/moved", http.StatusFound))
	mustVerify(t, e.v, e.iss.Mint(t, e.iss.GitHubClaims(nil)))
}

// A discovery document that turns bad on refresh is dropped, not kept.
func TestDiscoveryTurnsBad(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpt{})
	mustVerify(t, e.v, e.iss.Mint(t, e.iss.GitHubClaims(nil)))
	e.iss.SetDiscovery(func(doc map[string]any) { doc["jwks_uri"] = "https://evil.example/jwks" })
	e.clock.Advance(DefaultCacheTTL)
	_, err := e.v.Verify(context.Background(), e.iss.Mint(t, e.iss.GitHubClaims(nil)))
	checkErr(t, err, ErrUntrustedIssuer, ReasonDiscoveryFailed)
	e.iss.SetDiscovery(nil)
	e.clock.Advance(DefaultKeyRefreshInterval)
	mustVerify(t, e.v, e.iss.Mint(t, e.iss.GitHubClaims(nil)))
}

// The algorithms an issuer advertises narrow the accepted set; symmetric
// ones are ignored, and a list without asymmetric ones means RS256.
func TestDiscoveryAlgorithms(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		algs    []string
		alg     string
		wantErr bool
	}{
		{"absent means RS256", nil, "RS256", false},
		{"absent refuses PS256", nil, "PS256", true},
		{"HS256 only means RS256", []string{"HS256"}, "RS256", false},
		{"HS256 advertised is still refused", []string{"HS256", "RS256"}, "HS256", true},
		{"none advertised is still refused", []string{"none", "RS256"}, "none", true},
		{"PS256 only refuses RS256", []string{"PS256"}, "RS256", true},
		{"PS256 only accepts PS256", []string{"PS256"}, "PS256", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOpt{issuer: []oidctest.Option{oidctest.WithSigningAlgs(tt.algs...)}})
			opts := []oidctest.MintOption{oidctest.WithAlg(tt.alg)}
			if asymmetricAlgs[tt.alg] {
				opts = append(opts, oidctest.WithKey(e.iss.AddKey(tt.alg, nil)))
			}
			_, err := e.v.Verify(context.Background(), e.iss.Mint(t, e.iss.GitHubClaims(nil), opts...))
			if tt.wantErr {
				checkErr(t, err, ErrInvalidToken, ReasonUnsupportedAlg)
			} else if err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}

// An http issuer is refused without AllowInsecureIssuers, before any fetch.
func TestInsecureIssuerRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpt{config: func(c *Config) { c.AllowInsecureIssuers = false }})
	_, err := e.v.Verify(context.Background(), e.iss.Mint(t, e.iss.GitHubClaims(nil)))
	checkErr(t, err, ErrUntrustedIssuer, ReasonUntrustedIssuer)
	wantRequests(t, e.iss, 0, 0)
}

// JWKS contents: unusable keys are skipped, not fatal; a set with no usable
// key is an outage, not an empty trust store.
func TestJWKSContents(t *testing.T) {
	t.Parallel()
	const small = `{"kty":"RSA","kid":"small","n":"sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy","e":"AQAB"}`
	tests := []struct {
		name       string
		extra      string // JSON of keys added before the real ones
		replace    string // replaces the whole JWKS body
		wantErr    error
		wantReason string
	}{
		{name: "unknown kty skipped", extra: `{"kty":"XYZ","kid":"x"},{"kty":"OKP","crv":"Ed25519","kid":"ed","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}`},
		{name: "symmetric key skipped", extra: `{"kty":"oct","kid":"s","k":"c2VjcmV0"}`},
		{name: "small RSA key skipped", extra: small},
		{name: "garbage key skipped", extra: `{"kty":"RSA","kid":"g","n":"!!","e":"AQAB"},42,"x"`},
		{name: "not JSON", replace: `<html>`, wantErr: ErrUnavailable, wantReason: ReasonJWKSUnavailable},
		{name: "no usable keys", replace: `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`, wantErr: ErrUnavailable, wantReason: ReasonJWKSUnavailable},
		{name: "empty", replace: `{"keys":[]}`, wantErr: ErrUnavailable, wantReason: ReasonJWKSUnavailable},
		{name: "oversized", replace: `{"keys":[],"pad":"` + strings.Repeat("x", maxDocSize) + `"}`, wantErr: ErrUnavailable, wantReason: ReasonJWKSUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOpt{})
			body := tt.replace
			if body == "" {
				jwks := e.iss.JWKS()
				real := strings.TrimPrefix(mustJSON(jwks), `{"keys":[`)
				body = `{"keys":[` + tt.extra + "," + real
			}
			e.iss.Handle(oidctest.JWKSPath, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write([]byte(body))
			}))
			_, err := e.v.Verify(context.Background(), e.iss.Mint(t, e.iss.GitHubClaims(nil)))
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			checkErr(t, err, tt.wantErr, tt.wantReason)
		})
	}
}

func writeDoc(w http.ResponseWriter, doc map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(mustJSON(doc)))
}
