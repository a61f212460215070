package gcp_test

import (
	"slices"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"github.com/oidc-bridge/oidc-bridge/providers"
	"github.com/oidc-bridge/oidc-bridge/providers/gcp"
	"github.com/oidc-bridge/oidc-bridge/test/gcptest"
	"github.com/oidc-bridge/oidc-bridge/test/hosttest"
)

const runURL = "https://hello-abc123-ew.a.run.app"

// idTokenClaims verifies an ID token with the fake's keys, as Cloud Run
// would with Google's, and returns its claims.
func idTokenClaims(t *testing.T, e *env, cred providers.Credential) map[string]any {
	t.Helper()
	body, ok := cred.Body.(providers.GCPCredentials)
	if !ok {
		t.Fatalf("Body is %T", cred.Body)
	}
	if body.IDToken == "" || body.AccessToken != "" || body.TokenType != "Bearer" || body.ServiceAccount != deploySA {
		t.Fatalf("body: id token %t, access token %t, type %q, account %q", body.IDToken != "", body.AccessToken != "",
			body.TokenType, body.ServiceAccount)
	}
	if cred.ID != providers.TokenID(body.IDToken) || !cred.ExpiresAt.Equal(body.ExpiresAt) {
		t.Errorf("ID %q, expires %v / %v", cred.ID, cred.ExpiresAt, body.ExpiresAt)
	}
	tok, err := josejwt.ParseSigned(body.IDToken, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := tok.Claims(e.fake.IDTokenKeys(), &c); err != nil {
		t.Fatalf("the ID token does not verify with Google's (the fake's) keys: %v", err)
	}
	if c["iss"] != gcptest.GoogleIssuer || c["sub"] != gcptest.UniqueID(deploySA) {
		t.Errorf("iss %v, sub %v", c["iss"], c["sub"])
	}
	if exp, _ := c["exp"].(float64); !time.Unix(int64(exp), 0).Equal(cred.ExpiresAt) {
		t.Errorf("credential expires %v, token's exp %v", cred.ExpiresAt, c["exp"])
	}
	if body.Audience != c["aud"] {
		t.Errorf("body's audience %q, token's %v", body.Audience, c["aud"])
	}
	return c
}

// TestIDToken mints ID tokens in both modes: generateIdToken is called
// with the mode's bearer (the bridge's own, a federated token), the
// target's audience and include_email, and the token carries them.
func TestIDToken(t *testing.T) {
	for _, tt := range []struct {
		name       string
		tgt        map[string]any
		wantCaller string
		wantEmail  bool
	}{
		{"impersonate with email", map[string]any{"service_account": deploySA, "token_format": "id_token",
			"id_token_audience": runURL, "include_email": true}, bridgeSA, true},
		{"workload identity", func() map[string]any {
			m := wiTarget()
			m["token_format"], m["id_token_audience"] = "id_token", runURL
			return m
		}(), "principal://", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t, nil)
			start := time.Now()
			cred, err := e.p.Mint(t.Context(), request(t, tt.tgt, 15*time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			c := idTokenClaims(t, e, cred)
			if c["aud"] != runURL {
				t.Errorf("aud %v", c["aud"])
			}
			if _, has := c["email"]; has != tt.wantEmail || (tt.wantEmail && c["email"] != deploySA) {
				t.Errorf("email %v, want it: %v", c["email"], tt.wantEmail)
			}
			// Google's hour, whatever the request's duration.
			if d := cred.ExpiresAt.Sub(start); d < time.Hour-2*time.Second || d > time.Hour+2*time.Second {
				t.Errorf("the ID token lives %v", d)
			}
			calls := e.fake.CallsTo(gcptest.IAMCredentials)
			if len(calls) != 1 || calls[0].IAMMethod != "generateIdToken" || calls[0].IDTokenAudience != runURL ||
				calls[0].IncludeEmail != tt.wantEmail || len(calls[0].Scopes) != 0 {
				t.Fatalf("calls %+v", calls)
			}
			if got := calls[0].Caller; got != tt.wantCaller && !(tt.wantCaller == "principal://" && len(got) > 12 && got[:12] == "principal://") {
				t.Errorf("caller %q, want %q", got, tt.wantCaller)
			}
		})
	}
}

// TestIDTokenRefused: a caller without the grant is refused as for
// access tokens.
func TestIDTokenRefused(t *testing.T) {
	e := setup(t, nil)
	tgt := map[string]any{"service_account": otherSA, "token_format": "id_token", "id_token_audience": runURL}
	_, err := e.p.Mint(t.Context(), request(t, tgt, 15*time.Minute))
	wantProviderError(t, err, providers.ErrRefused, "PERMISSION_DENIED", false)
}

// TestUniverseDomain: the SDKs resolve IAM Credentials and STS in the
// target's universe (iamcredentials.UNIVERSE, sts.UNIVERSE); the hosts
// reach the fake only through the test's map, and the fake records the
// Host each request was for. Config's endpoint overrides are left empty,
// so the default universe too is Google's real host names.
func TestUniverseDomain(t *testing.T) {
	for _, tt := range []struct {
		name, universe, wantIAM, wantSTS string
		format                           string
	}{
		{"default", "", "iamcredentials.googleapis.com", "sts.googleapis.com", "access_token"},
		{"s3ns", "s3nsapis.fr", "iamcredentials.s3nsapis.fr", "sts.s3nsapis.fr", "access_token"},
		{"s3ns id token", "s3nsapis.fr", "iamcredentials.s3nsapis.fr", "sts.s3nsapis.fr", "id_token"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var tr *hosttest.Transport
			e := setup(t, func(c *gcp.Config) {
				c.IAMCredentialsEndpoint, c.STSEndpoint = "", ""
				// Only the target's universe is mapped: a request to any
				// other host (googleapis.com for s3ns) fails.
				c.HTTPClient, tr = hosttest.Client(map[string]string{}, nil)
			})
			tr.Hosts[tt.wantIAM] = e.fake.URL()
			tr.Hosts[tt.wantSTS] = e.fake.URL()
			tgt := wiTarget()
			if tt.universe != "" {
				tgt["universe_domain"] = tt.universe
			}
			if tt.format == "id_token" {
				tgt["token_format"], tgt["id_token_audience"] = "id_token", runURL
			}
			if _, err := e.p.Mint(t.Context(), request(t, tgt, 15*time.Minute)); err != nil {
				t.Fatalf("%v (hosts asked for: %v)", err, tr.Seen())
			}
			var hosts []string
			for _, c := range e.fake.Calls() {
				hosts = append(hosts, string(c.Endpoint)+" "+c.Host)
			}
			if want := []string{"sts " + tt.wantSTS, "iamcredentials " + tt.wantIAM}; !slices.Equal(hosts, want) {
				t.Errorf("the fake saw %v, want %v", hosts, want)
			}
		})
	}
}

// TestUniverseMismatch: the bridge's own credentials (a key of the
// default universe) are not sent to another universe's IAM Credentials.
func TestUniverseMismatch(t *testing.T) {
	e := setup(t, nil)
	tgt := map[string]any{"service_account": deploySA, "universe_domain": "s3nsapis.fr"}
	_, err := e.p.Mint(t.Context(), request(t, tgt, 15*time.Minute))
	wantProviderError(t, err, providers.ErrRefused, "UniverseMismatch", false)
	if n := len(e.fake.CallsTo(gcptest.IAMCredentials)); n != 0 {
		t.Errorf("%d calls to IAM Credentials", n)
	}
}
