package signing_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"

	"github.com/oidc-bridge/oidc-bridge/signing"
)

// attacker has write access to the database but not the KEK: a key pair
// of their own, which they would like the bridge to publish.
type attacker struct {
	kid  string
	priv *ecdsa.PrivateKey
}

func newAttacker(t *testing.T) attacker {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return attacker{kid: base64.RawURLEncoding.EncodeToString(b), priv: priv}
}

// jwk is the attacker's public key as a stored public_jwk named kid.
func (a attacker) jwk(t *testing.T, kid string) string {
	t.Helper()
	b, err := jose.JSONWebKey{Key: &a.priv.PublicKey, KeyID: kid, Algorithm: signing.ES256, Use: "sig"}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// token is what the attacker would present to a cloud: the bridge's
// issuer and audience, signed with their key.
func (a attacker) token(t *testing.T, e *env) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: a.priv},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), a.kid))
	if err != nil {
		t.Fatal(err)
	}
	c := e.claims()
	c["iss"], c["iat"] = e.srv.URL, e.clock.Now().Unix()
	payload, _ := json.Marshal(c)
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// junk is a ciphertext in the stored format that nobody can decrypt.
func junk() []byte {
	b := make([]byte, 61)
	_, _ = rand.Read(b)
	b[0] = 2
	return b
}

// acceptedRemotely reports whether a relying party that fetches the JWKS
// from the issuer accepts token.
func (e *env) acceptedRemotely(t *testing.T, token string) bool {
	t.Helper()
	ctx := context.Background()
	p, err := oidc.NewProvider(ctx, e.srv.URL)
	if err != nil {
		t.Fatalf("oidc.NewProvider: %v", err)
	}
	_, err = p.Verifier(e.oidcConfig()).Verify(ctx, token)
	return err == nil
}

// invalidRecorder is an Options.OnInvalidKeys keeping the last report.
type invalidRecorder struct {
	mu   sync.Mutex
	last []string
	n    int
}

func (r *invalidRecorder) report(kids []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last, r.n = slices.Clone(kids), r.n+1
}

func (r *invalidRecorder) get() ([]string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last, r.n
}

func wantRefusal(t *testing.T, err error, kid string) {
	t.Helper()
	if !errors.Is(err, signing.ErrInvalidKey) {
		t.Fatalf("err = %v, want ErrInvalidKey", err)
	}
	var ie *signing.InvalidKeyError
	if !errors.As(err, &ie) || ie.KID != kid {
		t.Errorf("err names %+v, want kid %s", ie, kid)
	}
	for _, want := range []string{kid, "keys rotate --force --revoke", "docs/runbooks/signing-key-invalid.md"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q: %v", want, err)
		}
	}
}

// TestForgedRetiredKeyNeverPublished: a database writer without the KEK
// inserts a retired key of their own with junk ciphertext and a last use
// in 9999, to be published for ever. It is never published (their tokens
// do not verify), it is reported, no Manager starts beside it, the
// schedule stops, and an emergency rotation deletes it.
func TestForgedRetiredKeyNeverPublished(t *testing.T) {
	t.Parallel()
	rec := &invalidRecorder{}
	opts := testOptions()
	opts.OnInvalidKeys = rec.report
	e := newEnvWith(t, opts)
	ctx := context.Background()
	a := newAttacker(t)
	before := kids(jwks(t, e.m))
	now := e.clock.Now()
	if _, err := e.pool.Exec(ctx, `INSERT INTO signing_keys (kid, alg, state, public_jwk, private_key, created_at, retired_at, last_used_at)
		VALUES ($1, 'ES256', 'retired', $2, $3, $4, $4, '9999-01-01')`, a.kid, a.jwk(t, a.kid), junk(), now); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(signing.JWKSCacheTTL)
	counts, _ := countKeys(ctx, e.pool)

	t.Run("not published", func(t *testing.T) {
		set := jwks(t, e.m)
		if published(set, a.kid) || kids(set) != before {
			t.Errorf("JWKS = %s, want %s (without %s)", kids(set), before, a.kid)
		}
		if e.acceptedRemotely(t, a.token(t, e)) {
			t.Error("a relying party accepted the attacker's token")
		}
		if got := e.m.InvalidKeys(); !slices.Equal(got, []string{a.kid}) {
			t.Errorf("InvalidKeys = %v, want [%s]", got, a.kid)
		}
		if got, _ := rec.get(); !slices.Equal(got, []string{a.kid}) {
			t.Errorf("OnInvalidKeys got %v, want [%s]", got, a.kid)
		}
		// The bridge's own keys keep signing.
		for _, alg := range []string{signing.RS256, signing.ES256} {
			e.verifyRemote(t, sign(t, e.m, e.claims(), alg))
		}
	})

	t.Run("no replica starts beside it", func(t *testing.T) {
		_, err := signing.New(ctx, e.openPool(t), e.kek, e.opts)
		wantRefusal(t, err, a.kid)
		t.Log(err)
	})

	t.Run("schedule stops", func(t *testing.T) {
		e.clock.Advance(opts.RotationPeriod)
		wantRefusal(t, e.m.Maintain(ctx), a.kid)
		wantRefusal(t, e.m.Rotate(ctx, signing.RotateOptions{Actor: tester, Force: true}), a.kid)
		if after, _ := countKeys(ctx, e.pool); fmt.Sprint(after) != fmt.Sprint(counts) {
			t.Errorf("keys changed beside a forged key: %v, were %v", after, counts)
		}
	})

	t.Run("listed and removed by rotate --force --revoke", func(t *testing.T) {
		o := e.opts
		o.AllowInvalidKeys = true
		m, err := signing.New(ctx, e.openPool(t), e.kek, o)
		if err != nil {
			t.Fatalf("New with AllowInvalidKeys: %v", err)
		}
		ki, ok := keyInfo(t, m, a.kid)
		if !ok || ki.Invalid == "" || !ki.PublishedUntil.IsZero() {
			t.Errorf("keys list shows %+v, want it invalid and never published", ki)
		}
		if err := m.Rotate(ctx, signing.RotateOptions{Actor: tester, Force: true, Revoke: true}); err != nil {
			t.Fatalf("Rotate --force --revoke: %v", err)
		}
		var n int
		if err := e.pool.QueryRow(ctx, "SELECT count(*) FROM signing_keys WHERE kid = $1", a.kid).Scan(&n); err != nil || n != 0 {
			t.Errorf("the forged key survived the emergency rotation: %d rows, %v", n, err)
		}
		// The deletion is in the admin history, by the one who asked for it.
		if err := e.owner.QueryRow(ctx, `SELECT count(*) FROM audit.admin_changes
			WHERE kind = 'signing_key' AND action = 'delete' AND name = $1 AND reason = 'invalid' AND source <> 'sql'`, a.kid).Scan(&n); err != nil || n != 1 {
			t.Errorf("history rows of the deletion: %d, %v; want 1", n, err)
		}
		if got := m.InvalidKeys(); len(got) != 0 {
			t.Errorf("InvalidKeys after removal = %v", got)
		}
		if _, err := signing.New(ctx, e.openPool(t), e.kek, e.opts); err != nil {
			t.Errorf("New after removal: %v", err)
		}
		maintain(t, e.m)
		if got, _ := rec.get(); len(got) != 0 {
			t.Errorf("OnInvalidKeys after removal got %v", got)
		}
		e.clock.Advance(signing.KeyCacheTTL)
		e.verifyRemote(t, sign(t, e.m, e.claims(), signing.ES256))
		if e.acceptedRemotely(t, a.token(t, e)) {
			t.Error("a relying party accepted the attacker's token")
		}
	})
}

// TestForgedNextKeyNeverPromoted: a forged next key is not published and
// never becomes the active key; the emergency rotation replaces it.
func TestForgedNextKeyNeverPromoted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	a := newAttacker(t)
	active := stateOf(t, e.m)[signing.ES256][signing.StateActive]
	if _, err := e.pool.Exec(ctx, "DELETE FROM signing_keys WHERE alg = 'ES256' AND state = 'next'"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Exec(ctx, `INSERT INTO signing_keys (kid, alg, state, public_jwk, private_key, created_at)
		VALUES ($1, 'ES256', 'next', $2, $3, $4)`, a.kid, a.jwk(t, a.kid), junk(), e.clock.Now().Add(-24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(e.opts.RotationPeriod)
	if published(jwks(t, e.m), a.kid) {
		t.Error("the forged next key is published")
	}
	wantRefusal(t, e.m.Maintain(ctx), a.kid)
	wantRefusal(t, e.m.Rotate(ctx, signing.RotateOptions{Actor: tester}), a.kid)
	if got := stateOf(t, e.m)[signing.ES256][signing.StateActive]; got != active {
		t.Fatalf("active ES256 key %s, want still %s", got, active)
	}
	if err := e.m.Rotate(ctx, signing.RotateOptions{Actor: tester, Alg: signing.ES256, Revoke: true}); err != nil {
		t.Fatalf("Rotate --revoke: %v", err)
	}
	st := stateOf(t, e.m)[signing.ES256]
	if st[signing.StateActive] == active || st[signing.StateActive] == a.kid || st[signing.StateNext] == a.kid || st[signing.StateNext] == "" {
		t.Errorf("ES256 keys after the emergency rotation: %v", st)
	}
	if _, ok := keyInfo(t, e.m, a.kid); ok {
		t.Error("the forged key survived the emergency rotation")
	}
	e.verifyRemote(t, sign(t, e.m, e.claims(), signing.ES256))
}

// TestSwappedPublicKeyRefused: a genuine row whose public_jwk was replaced
// by the attacker's key (same kid) does not verify: for version 2 rows the
// encryption binds the public key; for older rows the public key derived
// from the decrypted private key differs.
func TestSwappedPublicKeyRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("next key", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		a := newAttacker(t)
		kid := stateOf(t, e.m)[signing.ES256][signing.StateNext]
		if _, err := e.pool.Exec(ctx, "UPDATE signing_keys SET public_jwk = $2 WHERE kid = $1", kid, a.jwk(t, kid)); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(signing.JWKSCacheTTL)
		if published(jwks(t, e.m), kid) {
			t.Error("the swapped key is published")
		}
		_, err := signing.New(ctx, e.openPool(t), e.kek, e.opts)
		wantRefusal(t, err, kid)
		if !errors.Is(err, signing.ErrWrongKEK) {
			t.Errorf("a swapped version 2 row decrypted: %v", err)
		}
	})

	t.Run("active key stops signing", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		a := newAttacker(t)
		kid := stateOf(t, e.m)[signing.ES256][signing.StateActive]
		sign(t, e.m, e.claims(), signing.ES256) // cached
		if _, err := e.pool.Exec(ctx, "UPDATE signing_keys SET public_jwk = $2 WHERE kid = $1", kid, a.jwk(t, kid)); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(signing.KeyCacheTTL)
		if _, err := e.m.Sign(ctx, e.claims(), signing.ES256); !errors.Is(err, signing.ErrInvalidKey) {
			t.Errorf("Sign with a swapped active key = %v, want ErrInvalidKey", err)
		}
		if published(jwks(t, e.m), kid) {
			t.Error("the swapped key is published")
		}
		e.verifyRemote(t, sign(t, e.m, e.claims(), signing.RS256))
	})

	t.Run("version 1 row", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		a := newAttacker(t)
		kid, pub, sealed, err := signing.NewStoredKeyV1ForTest(e.kek, signing.ES256)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.pool.Exec(ctx, `INSERT INTO signing_keys (kid, alg, state, public_jwk, private_key, created_at, retired_at)
			VALUES ($1, 'ES256', 'retired', $2, $3, $4, $4)`, kid, string(pub), sealed, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		// Rows written before the public key was bound still verify.
		e.clock.Advance(signing.JWKSCacheTTL)
		if !published(jwks(t, e.m), kid) {
			t.Fatal("a genuine version 1 row is not published")
		}
		if _, err := signing.New(ctx, e.openPool(t), e.kek, e.opts); err != nil {
			t.Fatalf("New beside a genuine version 1 row: %v", err)
		}
		if _, err := e.pool.Exec(ctx, "UPDATE signing_keys SET public_jwk = $2 WHERE kid = $1", kid, a.jwk(t, kid)); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(signing.JWKSCacheTTL)
		if published(jwks(t, e.m), kid) {
			t.Error("the swapped version 1 key is published")
		}
		_, err = signing.New(ctx, e.openPool(t), e.kek, e.opts)
		wantRefusal(t, err, kid)
		if !strings.Contains(err.Error(), "not the public half") {
			t.Errorf("error = %v, want the public key mismatch", err)
		}
	})
}

// TestFutureLastUseClamped: a last use in the future is set to now, so
// that a retired key leaves the JWKS RetiredRetention later instead of
// never; the bridge never writes one.
func TestFutureLastUseClamped(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	retired := stateOf(t, e.m)[signing.ES256][signing.StateActive]
	if err := e.m.Rotate(ctx, signing.RotateOptions{Actor: tester, Alg: signing.ES256, Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Exec(ctx, "UPDATE signing_keys SET last_used_at = '9999-01-01' WHERE kid = $1", retired); err != nil {
		t.Fatal(err)
	}
	now := e.clock.Now()
	maintain(t, e.m)
	var last time.Time
	if err := e.pool.QueryRow(ctx, "SELECT last_used_at FROM signing_keys WHERE kid = $1", retired).Scan(&last); err != nil {
		t.Fatal(err)
	}
	if !last.Equal(now) {
		t.Errorf("last_used_at = %s after Maintain, want now (%s)", last, now)
	}
	if ki, _ := keyInfo(t, e.m, retired); !ki.PublishedUntil.Equal(now.Add(e.opts.RetiredRetention + signing.RetentionMargin)) {
		t.Errorf("published until %s", ki.PublishedUntil)
	}
	e.clock.Advance(e.opts.RetiredRetention + signing.RetentionMargin + time.Second)
	maintain(t, e.m)
	if _, ok := keyInfo(t, e.m, retired); ok {
		t.Error("the retired key with a last use in 9999 was not deleted after its retention")
	}
	if published(jwks(t, e.m), retired) {
		t.Error("the retired key is still published")
	}

	// The recording of last uses caps what is stored at now.
	active := stateOf(t, e.m)[signing.RS256][signing.StateActive]
	if _, err := e.pool.Exec(ctx, "UPDATE signing_keys SET last_used_at = '9999-01-01' WHERE kid = $1", active); err != nil {
		t.Fatal(err)
	}
	sign(t, e.m, e.claims(), signing.RS256)
	if err := e.m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.pool.QueryRow(ctx, "SELECT last_used_at FROM signing_keys WHERE kid = $1", active).Scan(&last); err != nil {
		t.Fatal(err)
	}
	if last.After(e.clock.Now()) {
		t.Errorf("last_used_at = %s after recording a use, want at most now (%s)", last, e.clock.Now())
	}
}
