package signing_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/oidc-bridge/oidc-bridge/internal/database"
	"github.com/oidc-bridge/oidc-bridge/signing"
	"github.com/oidc-bridge/oidc-bridge/test/pgtest"
)

func TestSignVerifiesWithGoOIDC(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if got, want := e.m.Issuer(), e.srv.URL; got != want {
		t.Errorf("Issuer() = %q, want %q (no trailing slash)", got, want)
	}
	for _, tt := range []struct{ alg, want string }{
		{alg: signing.RS256, want: "RS256"},
		{alg: signing.ES256, want: "ES256"},
		{alg: "", want: "RS256"},
	} {
		t.Run(tt.want+"/"+tt.alg, func(t *testing.T) {
			claims := e.claims()
			claims["iss"] = "https://spoofed.example"
			claims["repository"] = "acme/app"
			tok := sign(t, e.m, claims, tt.alg)
			if claims["iss"] != "https://spoofed.example" {
				t.Error("Sign changed the caller's claims")
			}
			jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
			if err != nil {
				t.Fatal(err)
			}
			h := jws.Signatures[0].Header
			if h.Algorithm != tt.want || h.KeyID == "" || h.ExtraHeaders["typ"] != "JWT" {
				t.Errorf("header alg %q kid %q typ %v; want %s, a kid, JWT", h.Algorithm, h.KeyID, h.ExtraHeaders["typ"], tt.want)
			}
			idt := e.verifyRemote(t, tok)
			var got struct {
				Iss        string `json:"iss"`
				Iat        int64  `json:"iat"`
				Sub        string `json:"sub"`
				Repository string `json:"repository"`
			}
			if err := idt.Claims(&got); err != nil {
				t.Fatal(err)
			}
			if got.Iss != e.srv.URL || got.Iat != e.clock.Now().Unix() || got.Sub != claims["sub"] || got.Repository != "acme/app" {
				t.Errorf("claims = %+v", got)
			}
		})
	}
	if _, err := e.m.Sign(context.Background(), e.claims(), "HS256"); !errors.Is(err, signing.ErrUnsupportedAlg) {
		t.Errorf("Sign(HS256) = %v, want ErrUnsupportedAlg", err)
	}
}

func TestBootstrapCreatesActiveAndNextKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	n, err := countKeys(context.Background(), e.pool)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"RS256/active": 1, "RS256/next": 1, "ES256/active": 1, "ES256/next": 1}
	if fmt.Sprint(n) != fmt.Sprint(want) {
		t.Errorf("keys = %v, want %v", n, want)
	}
	set := jwks(t, e.m)
	if len(set.Keys) != 4 {
		t.Errorf("JWKS has %d keys (%s), want 4", len(set.Keys), kids(set))
	}
	for _, k := range set.Keys {
		if !k.IsPublic() || k.Use != "sig" {
			t.Errorf("JWKS key %s: public %v, use %q", k.KeyID, k.IsPublic(), k.Use)
		}
	}
	// A second replica starting finds the keys and makes none.
	e.manager(t, e.openPool(t))
	if n2, _ := countKeys(context.Background(), e.pool); fmt.Sprint(n2) != fmt.Sprint(want) {
		t.Errorf("after a second New, keys = %v", n2)
	}
}

func TestRotationNeverBreaksAVerifier(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, alg := range []string{signing.RS256, signing.ES256} {
		t.Run(alg, func(t *testing.T) {
			before := stateOf(t, e.m)[alg]
			cached := jwks(t, e.m) // a verifier's cache, taken before the rotation
			if !published(cached, before["next"]) {
				t.Fatalf("next key %s not in the JWKS from its creation: %s", before["next"], kids(cached))
			}
			old := sign(t, e.m, e.claims(), alg)
			if kidOf(t, old) != before["active"] {
				t.Fatalf("signed with %s, want the active key %s", kidOf(t, old), before["active"])
			}

			e.clock.Advance(e.opts.PublishLead)
			if err := e.m.Rotate(context.Background(), signing.RotateOptions{Actor: tester, Alg: alg}); err != nil {
				t.Fatalf("Rotate: %v", err)
			}
			after := stateOf(t, e.m)[alg]
			if after["active"] != before["next"] || after["retired"] != before["active"] || after["next"] == "" || after["next"] == before["next"] {
				t.Fatalf("after rotation %v, before %v", after, before)
			}
			tok := sign(t, e.m, e.claims(), alg)
			if kidOf(t, tok) != before["next"] {
				t.Errorf("signed with %s after rotation, want %s", kidOf(t, tok), before["next"])
			}
			if err := e.verifyCached(cached, tok); err != nil {
				t.Errorf("a verifier that cached the JWKS before the rotation rejects a new token: %v", err)
			}
			e.verifyRemote(t, old) // signed before the rotation, verifies after
			e.verifyRemote(t, tok)
			if set := jwks(t, e.m); !published(set, after["next"]) || !published(set, before["active"]) {
				t.Errorf("JWKS %s lacks the new next key %s or the retired %s", kids(set), after["next"], before["active"])
			}
		})
	}
}

func TestRetiredKeyPublishedUntilRetentionAfterLastUse(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	b := e.manager(t, e.openPool(t)) // a second replica
	const alg = signing.ES256
	first := stateOf(t, e.m)[alg]

	e.clock.Advance(e.opts.RotationPeriod - 10*time.Second)
	sign(t, b, e.claims(), alg) // b caches the active key
	rotatedAt := e.clock.Advance(10 * time.Second)
	maintain(t, e.m)
	if got := stateOf(t, e.m)[alg]; got["retired"] != first["active"] || got["active"] != first["next"] {
		t.Fatalf("Maintain at RotationPeriod: %v, want %s retired and %s active", got, first["active"], first["next"])
	}

	// b has not noticed yet: it signs with the retired key, which is still
	// published, and that use is recorded.
	lastUse := e.clock.Advance(15 * time.Second)
	late := sign(t, b, e.claims(), alg)
	if kidOf(t, late) != first["active"] {
		t.Fatalf("replica b signed with %s within KeyCacheTTL, want its cached %s", kidOf(t, late), first["active"])
	}
	e.verifyRemote(t, late)
	maintain(t, b)
	info, ok := keyInfo(t, e.m, first["active"])
	if !ok || !info.LastUsedAt.Equal(lastUse) || !info.RetiredAt.Equal(rotatedAt) {
		t.Fatalf("retired key info %+v; want last use %s, retired %s", info, lastUse, rotatedAt)
	}
	until := lastUse.Add(e.opts.RetiredRetention + signing.RetentionMargin)
	if !info.PublishedUntil.Equal(until) {
		t.Errorf("PublishedUntil = %s, want %s", info.PublishedUntil, until)
	}

	e.clock.Advance(until.Sub(e.clock.Now()) - time.Second)
	maintain(t, e.m)
	if set := jwks(t, e.m); !published(set, first["active"]) {
		t.Fatalf("retired key gone from the JWKS 1s before its retention ends: %s", kids(set))
	}
	e.clock.Advance(time.Second)
	maintain(t, e.m)
	if set := jwks(t, e.m); published(set, first["active"]) {
		t.Errorf("retired key still in the JWKS after its retention: %s", kids(set))
	}
	if _, ok := keyInfo(t, e.m, first["active"]); ok {
		t.Error("retired key not deleted after its retention")
	}
	if tok := sign(t, b, e.claims(), alg); kidOf(t, tok) != first["next"] {
		t.Errorf("replica b signs with %s, want %s", kidOf(t, tok), first["next"])
	}
	if err := ctx.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestMaintainPromotesOnSchedule(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	k0 := stateOf(t, e.m)

	e.clock.Advance(e.opts.RotationPeriod - time.Second)
	maintain(t, e.m)
	if got := stateOf(t, e.m); fmt.Sprint(got) != fmt.Sprint(k0) {
		t.Fatalf("Maintain before RotationPeriod changed keys: %v, was %v", got, k0)
	}
	e.clock.Advance(time.Second)
	maintain(t, e.m)
	k1 := stateOf(t, e.m)
	for _, alg := range []string{signing.RS256, signing.ES256} {
		if k1[alg]["active"] != k0[alg]["next"] || k1[alg]["retired"] != k0[alg]["active"] {
			t.Errorf("%s after RotationPeriod: %v, was %v", alg, k1[alg], k0[alg])
		}
	}

	// A next key too young holds the rotation back: someone deleted it, and
	// Maintain made a new one 5 minutes before the active key is due.
	e.clock.Advance(e.opts.RotationPeriod - 5*time.Minute)
	if _, err := e.pool.Exec(ctx, "DELETE FROM signing_keys WHERE state = 'next'"); err != nil {
		t.Fatal(err)
	}
	maintain(t, e.m)
	k2 := stateOf(t, e.m)
	for _, alg := range []string{signing.RS256, signing.ES256} {
		if k2[alg]["next"] == "" || k2[alg]["next"] == k1[alg]["next"] || k2[alg]["active"] != k1[alg]["active"] {
			t.Errorf("%s: Maintain did not replace the deleted next key: %v", alg, k2[alg])
		}
	}
	e.clock.Advance(5 * time.Minute) // active due, next published 5 of 10 minutes
	maintain(t, e.m)
	if got := stateOf(t, e.m); fmt.Sprint(got) != fmt.Sprint(k2) {
		t.Fatalf("Maintain promoted a next key published for less than PublishLead: %v, was %v", got, k2)
	}
	e.clock.Advance(5 * time.Minute)
	maintain(t, e.m)
	k3 := stateOf(t, e.m)
	for _, alg := range []string{signing.RS256, signing.ES256} {
		if k3[alg]["active"] != k2[alg]["next"] {
			t.Errorf("%s once the next key is old enough: %v, was %v", alg, k3[alg], k2[alg])
		}
	}
}

func TestRotate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	start := e.clock.Now()
	k0 := stateOf(t, e.m)

	err := e.m.Rotate(ctx, signing.RotateOptions{Actor: tester})
	var early *signing.TooEarlyError
	if !errors.As(err, &early) || !errors.Is(err, signing.ErrTooEarly) {
		t.Fatalf("Rotate right after bootstrap = %v, want a *TooEarlyError", err)
	}
	if !early.ReadyAt.Equal(start.Add(e.opts.PublishLead)) || !early.PublishedAt.Equal(start) || early.KID == "" {
		t.Errorf("TooEarlyError = %+v, want ready at %s", early, start.Add(e.opts.PublishLead))
	}
	t.Log(err)
	if got := stateOf(t, e.m); fmt.Sprint(got) != fmt.Sprint(k0) {
		t.Fatalf("a refused Rotate changed keys: %v", got)
	}

	e.clock.Advance(e.opts.PublishLead)
	if err := e.m.Rotate(ctx, signing.RotateOptions{Actor: tester}); err != nil {
		t.Fatalf("Rotate after PublishLead: %v", err)
	}
	k1 := stateOf(t, e.m)
	if k1[signing.RS256]["active"] != k0[signing.RS256]["next"] || k1[signing.ES256]["active"] != k0[signing.ES256]["next"] {
		t.Fatalf("after Rotate %v, before %v", k1, k0)
	}
	if err := e.m.Rotate(ctx, signing.RotateOptions{Actor: tester, Alg: signing.ES256}); !errors.Is(err, signing.ErrTooEarly) {
		t.Fatalf("second Rotate at once = %v, want ErrTooEarly", err)
	}

	// Emergency: promote the young next key now.
	if err := e.m.Rotate(ctx, signing.RotateOptions{Actor: tester, Alg: signing.RS256, Force: true}); err != nil {
		t.Fatalf("Rotate Force: %v", err)
	}
	k2 := stateOf(t, e.m)
	if k2[signing.RS256]["active"] != k1[signing.RS256]["next"] || k2[signing.ES256]["active"] != k1[signing.ES256]["active"] {
		t.Fatalf("after Rotate Force RS256: %v, before %v", k2, k1)
	}
	if kid := kidOf(t, sign(t, e.m, e.claims(), signing.RS256)); kid != k1[signing.RS256]["next"] {
		t.Errorf("signs with %s after a forced rotation, want %s", kid, k1[signing.RS256]["next"])
	}
	if set := jwks(t, e.m); !published(set, k1[signing.RS256]["active"]) {
		t.Errorf("a forced rotation unpublished the old key: %s", kids(set))
	}

	// Compromise: the old key leaves the JWKS at once.
	if err := e.m.Rotate(ctx, signing.RotateOptions{Actor: tester, Alg: signing.ES256, Revoke: true}); err != nil {
		t.Fatalf("Rotate Revoke: %v", err)
	}
	revoked := k2[signing.ES256]["active"]
	if set := jwks(t, e.m); published(set, revoked) {
		t.Errorf("revoked key %s still published: %s", revoked, kids(set))
	}
	if info, ok := keyInfo(t, e.m, revoked); !ok || info.State != signing.StateRetired || info.RevokedAt.IsZero() {
		t.Errorf("revoked key info %+v", info)
	}

	if err := e.m.Rotate(ctx, signing.RotateOptions{Actor: tester, Alg: "HS256"}); !errors.Is(err, signing.ErrUnsupportedAlg) ||
		strings.Count(err.Error(), "signing:") != 1 || !strings.Contains(err.Error(), "use RS256 or ES256") {
		t.Errorf("Rotate HS256 = %v, want ErrUnsupportedAlg naming the supported algorithms once prefixed", err)
	}
}

func TestSecondReplicaPicksUpRotation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.manager(t, e.openPool(t))
	ctx := context.Background()
	for _, alg := range []string{signing.RS256, signing.ES256} {
		e.clock.Advance(e.opts.PublishLead)
		before := stateOf(t, e.m)[alg]
		t1 := sign(t, b, e.claims(), alg)
		if err := e.m.Rotate(ctx, signing.RotateOptions{Actor: tester, Alg: alg}); err != nil {
			t.Fatal(err)
		}
		t2 := sign(t, b, e.claims(), alg)
		if kidOf(t, t1) != before["active"] || kidOf(t, t2) != before["active"] {
			t.Errorf("%s: b signed with %s, %s within KeyCacheTTL; want its cached %s", alg, kidOf(t, t1), kidOf(t, t2), before["active"])
		}
		e.clock.Advance(signing.KeyCacheTTL)
		t3 := sign(t, b, e.claims(), alg)
		if kidOf(t, t3) != before["next"] {
			t.Errorf("%s: b signs with %s after KeyCacheTTL, want the new active %s", alg, kidOf(t, t3), before["next"])
		}
		for _, tok := range []string{t1, t2, t3} {
			e.verifyRemote(t, tok)
		}
	}
}

func TestReplicasKeepOneActiveKeyPerAlg(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	replicas := []*signing.Manager{e.m, e.manager(t, e.openPool(t))}

	// A watcher checks every committed state, as other sessions see it.
	stop := make(chan struct{})
	var watch sync.WaitGroup
	var checks int
	var bad []string
	activeKIDs := map[string]bool{}
	watch.Add(1)
	go func() {
		defer watch.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			n, err := countKeys(ctx, e.pool)
			if err != nil {
				bad = append(bad, err.Error())
				return
			}
			checks++
			var active []string
			if err := e.pool.QueryRow(ctx, "SELECT array_agg(kid) FROM signing_keys WHERE state = 'active'").Scan(&active); err != nil {
				bad = append(bad, err.Error())
				return
			}
			for _, kid := range active {
				activeKIDs[kid] = true
			}
			for _, alg := range []string{signing.RS256, signing.ES256} {
				if n[alg+"/active"] != 1 || n[alg+"/next"] != 1 {
					bad = append(bad, fmt.Sprint(n))
				}
			}
		}
	}()

	const rounds = 15
	for round := range rounds {
		var wg sync.WaitGroup
		var mu sync.Mutex
		var errs []error
		var tokens []string
		report := func(err error) {
			if err != nil && !errors.Is(err, signing.ErrTooEarly) {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}
		for i, m := range replicas {
			wg.Add(4)
			go func() { defer wg.Done(); report(m.Maintain(ctx)) }()
			go func() { defer wg.Done(); report(m.Rotate(ctx, signing.RotateOptions{Actor: tester})) }()
			go func() {
				defer wg.Done()
				report(m.Rotate(ctx, signing.RotateOptions{Actor: tester, Force: (round+i)%4 == 0, Alg: []string{signing.RS256, signing.ES256}[i]}))
			}()
			go func() {
				defer wg.Done()
				for _, alg := range []string{signing.RS256, signing.ES256} {
					tok, err := m.Sign(ctx, e.claims(), alg)
					report(err)
					mu.Lock()
					tokens = append(tokens, tok)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(errs) > 0 {
			t.Fatalf("round %d: %v", round, errors.Join(errs...))
		}
		e.clock.Advance(7 * time.Minute)
		set := jwks(t, e.m)
		for _, tok := range tokens {
			if err := e.verifyCached(set, tok); err != nil {
				t.Errorf("round %d: token of %s does not verify: %v", round, kidOf(t, tok), err)
			}
		}
	}
	close(stop)
	watch.Wait()
	if len(bad) > 0 {
		t.Fatalf("%d of %d checks found a wrong number of keys, e.g. %s", len(bad), checks, bad[0])
	}
	t.Logf("%d checks of the key counts, %d keys were active in turn", checks, len(activeKIDs))
	if len(activeKIDs) < rounds {
		t.Errorf("only %d keys were active in %d rounds: the replicas hardly rotated", len(activeKIDs), rounds)
	}

	e.clock.Advance(signing.KeyCacheTTL)
	active := stateOf(t, e.m)
	for _, m := range replicas {
		for _, alg := range []string{signing.RS256, signing.ES256} {
			tok := sign(t, m, e.claims(), alg)
			if kidOf(t, tok) != active[alg]["active"] {
				t.Errorf("a replica signs %s with %s, want %s", alg, kidOf(t, tok), active[alg]["active"])
			}
			e.verifyRemote(t, tok)
		}
	}
}

func TestDatabaseHoldsNoPlainPrivateKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	rows, err := e.pool.Query(ctx, "SELECT kid, private_key, public_jwk::text FROM signing_keys")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var kid, jwk string
		var priv []byte
		if err := rows.Scan(&kid, &priv, &jwk); err != nil {
			t.Fatal(err)
		}
		n++
		if _, err := x509.ParsePKCS8PrivateKey(priv); err == nil {
			t.Errorf("%s: private_key parses as PKCS#8", kid)
		}
		if _, err := x509.ParsePKCS1PrivateKey(priv); err == nil {
			t.Errorf("%s: private_key parses as PKCS#1", kid)
		}
		if _, err := x509.ParseECPrivateKey(priv); err == nil {
			t.Errorf("%s: private_key parses as an EC key", kid)
		}
		if bytes.Contains(priv, []byte("PRIVATE KEY")) || bytes.Contains(priv, []byte{0x30, 0x82}) && priv[0] == 0x30 {
			t.Errorf("%s: private_key looks like a plain key", kid)
		}
		var members map[string]any
		if err := json.Unmarshal([]byte(jwk), &members); err != nil {
			t.Fatal(err)
		}
		for _, m := range []string{"d", "p", "q", "dp", "dq", "qi"} {
			if _, ok := members[m]; ok {
				t.Errorf("%s: public_jwk has private member %q", kid, m)
			}
		}
	}
	if err := rows.Err(); err != nil || n != 4 {
		t.Fatalf("%d keys, %v", n, err)
	}

	// The schema refuses a private member even from another writer.
	_, err = e.pool.Exec(ctx, `UPDATE signing_keys SET public_jwk = public_jwk || '{"d": "AQAB"}' WHERE alg = 'RS256' AND state = 'next'`)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23514" { // check_violation
		t.Errorf("storing a JWK with member d: %v; want a check violation", err)
	}
}

func TestWrongKEK(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	other, err := signing.GenerateKEK()
	if err != nil {
		t.Fatal(err)
	}
	wrong, _ := signing.ParseKEK([]byte(other))

	t.Run("New", func(t *testing.T) {
		before, _ := countKeys(ctx, e.pool)
		_, err := signing.New(ctx, e.openPool(t), wrong, e.opts)
		if !errors.Is(err, signing.ErrWrongKEK) {
			t.Fatalf("New with another KEK = %v, want ErrWrongKEK", err)
		}
		if strings.Contains(err.Error(), other) || strings.Contains(err.Error(), strings.TrimRight(other, "=")) {
			t.Errorf("error shows the KEK: %v", err)
		}
		t.Log(err)
		if after, _ := countKeys(ctx, e.pool); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("New with a wrong KEK changed keys: %v, was %v", after, before)
		}
	})

	t.Run("Sign and Maintain", func(t *testing.T) {
		// A replica with another KEK made the active RS256 key.
		kid, pub, sealed, err := signing.NewStoredKeyForTest(wrong, signing.RS256)
		if err != nil {
			t.Fatal(err)
		}
		now := e.clock.Now()
		if _, err := e.pool.Exec(ctx, "DELETE FROM signing_keys WHERE alg = 'RS256' AND state = 'next'"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.pool.Exec(ctx, "UPDATE signing_keys SET state = 'retired', retired_at = $1 WHERE alg = 'RS256' AND state = 'active'", now); err != nil {
			t.Fatal(err)
		}
		if _, err := e.pool.Exec(ctx, `INSERT INTO signing_keys (kid, alg, state, public_jwk, private_key, created_at, activated_at)
			VALUES ($1, 'RS256', 'active', $2, $3, $4, $4)`, kid, string(pub), sealed, now); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(signing.KeyCacheTTL)
		if _, err := e.m.Sign(ctx, e.claims(), signing.RS256); !errors.Is(err, signing.ErrWrongKEK) {
			t.Errorf("Sign with a key of another KEK = %v, want ErrWrongKEK", err)
		}
		if tok, err := e.m.Sign(ctx, e.claims(), signing.ES256); err != nil {
			t.Errorf("Sign ES256 = %v", err)
		} else {
			e.verifyRemote(t, tok)
		}
		// Maintain must not add a next key next to a key it cannot read.
		if err := e.m.Maintain(ctx); !errors.Is(err, signing.ErrWrongKEK) {
			t.Errorf("Maintain = %v, want ErrWrongKEK", err)
		}
		if n, _ := countKeys(ctx, e.pool); n["RS256/next"] != 0 {
			t.Errorf("Maintain added a next key beside a foreign one: %v", n)
		}
	})
}

func TestNewRefusesBadArguments(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	kek := newKEK(t)
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		kek  signing.KEK
		opts signing.Options
	}{
		{name: "no KEK", opts: signing.Options{Issuer: "https://bridge.example"}},
		{name: "no issuer", kek: kek},
		{name: "issuer without scheme", kek: kek, opts: signing.Options{Issuer: "bridge.example"}},
		{name: "issuer with query", kek: kek, opts: signing.Options{Issuer: "https://bridge.example/?a=b"}},
		{name: "ftp issuer", kek: kek, opts: signing.Options{Issuer: "ftp://bridge.example"}},
		{name: "lead not shorter than period", kek: kek, opts: signing.Options{Issuer: "https://bridge.example", RotationPeriod: time.Hour, PublishLead: time.Hour}},
		{name: "negative retention", kek: kek, opts: signing.Options{Issuer: "https://bridge.example", RetiredRetention: -time.Hour}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, err := signing.New(ctx, pool, tt.kek, tt.opts)
			if err == nil || m != nil {
				t.Fatalf("New = %v, %v; want an error", m, err)
			}
			if !strings.HasPrefix(err.Error(), "signing: ") {
				t.Errorf("error lacks the prefix: %v", err)
			}
		})
	}
	if exist, err := signing.KeysExist(ctx, pool); err != nil || exist {
		t.Errorf("refused New calls made keys: %v, %v", exist, err)
	}
}

func TestKeysExist(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	if exist, err := signing.KeysExist(ctx, pool); err != nil || exist {
		t.Fatalf("KeysExist on a new database = %v, %v", exist, err)
	}
	if _, err := signing.New(ctx, pool, newKEK(t), signing.Options{Issuer: "https://bridge.example"}); err != nil {
		t.Fatal(err)
	}
	if exist, err := signing.KeysExist(ctx, pool); err != nil || !exist {
		t.Fatalf("KeysExist after New = %v, %v", exist, err)
	}
	unmigrated, err := database.Open(ctx, pgtest.NewEmptyDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer unmigrated.Close()
	// A database not migrated this far has no table, so no keys: serve
	// --no-migrate must be able to start on it.
	if exist, err := signing.KeysExist(ctx, unmigrated); err != nil || exist {
		t.Errorf("KeysExist without the schema = %v, %v; want false, nil", exist, err)
	}
}

func TestKeysList(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	t0 := e.clock.Now()
	e.clock.Advance(e.opts.PublishLead)
	sign(t, e.m, e.claims(), signing.RS256)
	t1 := e.clock.Now()
	if err := e.m.Rotate(ctx, signing.RotateOptions{Actor: tester, Alg: signing.RS256}); err != nil {
		t.Fatal(err)
	}
	keys, err := e.m.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]int{}
	for _, k := range keys {
		states[k.Alg+"/"+k.State]++
		switch {
		case k.Alg == signing.RS256 && k.State == signing.StateRetired:
			if !k.CreatedAt.Equal(t0) || !k.ActivatedAt.Equal(t0) || !k.RetiredAt.Equal(t1) ||
				!k.LastUsedAt.IsZero() || !k.PublishedUntil.Equal(t1.Add(e.opts.RetiredRetention+signing.RetentionMargin)) {
				t.Errorf("retired key %+v", k)
			}
		case k.Alg == signing.RS256 && k.State == signing.StateActive:
			if !k.CreatedAt.Equal(t0) || !k.ActivatedAt.Equal(t1) || !k.PublishedUntil.IsZero() {
				t.Errorf("active key %+v", k)
			}
		case k.Alg == signing.RS256 && k.State == signing.StateNext:
			if !k.CreatedAt.Equal(t1) || !k.PromotableAt.Equal(t1.Add(e.opts.PublishLead)) || !k.ActivatedAt.IsZero() {
				t.Errorf("next key %+v", k)
			}
		}
	}
	if want := map[string]int{"RS256/retired": 1, "RS256/active": 1, "RS256/next": 1, "ES256/active": 1, "ES256/next": 1}; fmt.Sprint(states) != fmt.Sprint(want) {
		t.Errorf("Keys states = %v, want %v", states, want)
	}
}

func TestLastUseRecordedAtMostOncePerMinute(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	kid := stateOf(t, e.m)[signing.ES256]["active"]
	lastUsed := func() time.Time {
		t.Helper()
		var at *time.Time
		if err := e.pool.QueryRow(ctx, "SELECT last_used_at FROM signing_keys WHERE kid = $1", kid).Scan(&at); err != nil {
			t.Fatal(err)
		}
		if at == nil {
			return time.Time{}
		}
		return at.UTC()
	}
	t0 := e.clock.Now()
	for range 50 {
		sign(t, e.m, e.claims(), signing.ES256)
	}
	if got := lastUsed(); !got.IsZero() {
		t.Errorf("last use written while signing: %s", got)
	}
	maintain(t, e.m)
	if got := lastUsed(); !got.Equal(t0) {
		t.Fatalf("last_used_at = %s, want %s", got, t0)
	}
	e.clock.Advance(10 * time.Second)
	sign(t, e.m, e.claims(), signing.ES256)
	maintain(t, e.m)
	if got := lastUsed(); !got.Equal(t0) {
		t.Errorf("last_used_at written again within a minute: %s", got)
	}
	t1 := e.clock.Advance(signing.LastUseInterval)
	sign(t, e.m, e.claims(), signing.ES256) // refreshes the key, recording the use of t0+10s
	if got := lastUsed(); !got.Equal(t0.Add(10 * time.Second)) {
		t.Errorf("last_used_at after the refresh = %s, want %s", got, t0.Add(10*time.Second))
	}
	if err := e.m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := lastUsed(); !got.Equal(t1) {
		t.Errorf("last_used_at after Close = %s, want %s", got, t1)
	}
}

func TestParseKEK(t *testing.T) {
	t.Parallel()
	raw := bytes.Repeat([]byte{0xfb, 0xff, 0x01, 0x7e}, 8) // encodes with + / - _
	std := base64.StdEncoding.EncodeToString(raw)
	for _, tt := range []struct {
		name    string
		in      string
		wantErr string
	}{
		{name: "openssl output", in: std + "\n"},
		{name: "surrounding space", in: " \t" + std + " \r\n"},
		{name: "unpadded", in: base64.RawStdEncoding.EncodeToString(raw)},
		{name: "url", in: base64.URLEncoding.EncodeToString(raw)},
		{name: "url unpadded", in: base64.RawURLEncoding.EncodeToString(raw)},
		{name: "empty", in: "", wantErr: "empty"},
		{name: "blank", in: " \n", wantErr: "empty"},
		{name: "not base64", in: "correct horse battery staple!", wantErr: "not base64"},
		{name: "16 bytes", in: base64.StdEncoding.EncodeToString(raw[:16]), wantErr: "16 bytes"},
		{name: "64 bytes", in: base64.StdEncoding.EncodeToString(append(raw, raw...)), wantErr: "64 bytes"},
		{name: "hex", in: fmt.Sprintf("%x", raw), wantErr: "48 bytes"},
		{name: "zeros", in: base64.StdEncoding.EncodeToString(make([]byte, 32)), wantErr: "not random"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := signing.ParseKEK([]byte(tt.in))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseKEK = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "openssl rand -base64 32") ||
				!strings.HasPrefix(err.Error(), "signing: ") {
				t.Fatalf("ParseKEK = %v; want an error about %q saying how to make a key", err, tt.wantErr)
			}
			if strings.TrimSpace(tt.in) != "" && strings.Contains(err.Error(), strings.TrimSpace(tt.in)) {
				t.Errorf("error shows the input: %v", err)
			}
		})
	}
}

func TestKEKInteroperatesAcrossEncodings(t *testing.T) {
	t.Parallel()
	// A key encrypted under one encoding of the KEK decrypts under another.
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	rawKEK := make([]byte, 32)
	for i := range rawKEK {
		rawKEK[i] = byte(i * 7)
	}
	a, _ := signing.ParseKEK([]byte(base64.StdEncoding.EncodeToString(rawKEK)))
	b, _ := signing.ParseKEK([]byte(base64.RawURLEncoding.EncodeToString(rawKEK)))
	opts := signing.Options{Issuer: "https://bridge.example"}
	if _, err := signing.New(ctx, pool, a, opts); err != nil {
		t.Fatal(err)
	}
	if _, err := signing.New(ctx, pool, b, opts); err != nil {
		t.Errorf("New with the same KEK in URL base64: %v", err)
	}
}

func TestKEKNeverPrints(t *testing.T) {
	t.Parallel()
	raw := bytes.Repeat([]byte{0xab, 0xcd}, 16)
	enc := base64.StdEncoding.EncodeToString(raw)
	kek, err := signing.ParseKEK([]byte(enc))
	if err != nil {
		t.Fatal(err)
	}
	out := fmt.Sprintf("%v %+v %#v %s %x", kek, kek, kek, kek, kek)
	for _, leak := range []string{enc, fmt.Sprintf("%x", raw[:4]), "abcdabcd", "\xab\xcd"} {
		if strings.Contains(out, leak) {
			t.Errorf("formatted KEK shows its bytes: %s", out)
		}
	}
}
