package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/oidc-bridge/oidc-bridge/test/pgtest"
)

// TestForgedSigningKey: someone with write access to the database but not
// the key-encryption key plants a signing key of their own (junk
// ciphertext, last use in 9999). The running bridge never publishes it and
// reports it (oidc_bridge_signing_keys_invalid); a new replica refuses to
// start, naming the key; `keys list` shows it; `keys rotate --force
// --revoke` deletes it, and the bridge starts again.
func TestForgedSigningKey(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDatabase(t)
	env, _ := issuerEnv(t, dbURL)
	s := startServer(t, env)
	s.waitReady(200)
	db := openDB(t, dbURL)
	ctx := context.Background()

	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	const kid = "attacker-key-000000000001"
	pub, err := jose.JSONWebKey{Key: &priv.PublicKey, KeyID: kid, Algorithm: "ES256", Use: "sig"}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, 61)
	_, _ = rand.Read(junk)
	junk[0] = 2
	if _, err := db.Exec(ctx, `INSERT INTO signing_keys (kid, alg, state, public_jwk, private_key, created_at, retired_at, last_used_at)
		VALUES ($1, 'ES256', 'retired', $2, $3, now(), now(), '9999-01-01')`, kid, string(pub), junk); err != nil {
		t.Fatal(err)
	}

	// The running bridge: not published (the JWKS cache lasts 5 s), and
	// reported.
	deadline := time.Now().Add(20 * time.Second)
	for {
		jwks := string(s.must(200, "GET", "/.well-known/jwks.json", "", "").body)
		metrics := string(s.must(200, "GET", "/metrics", "", "").body)
		if strings.Contains(jwks, kid) {
			t.Fatalf("the forged key is published: %s", jwks)
		}
		if strings.Contains(metrics, "\noidc_bridge_signing_keys_invalid 1\n") && strings.Count(jwks, `"kid"`) == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the forged key was not reported within 20 s; JWKS %s", jwks)
		}
		time.Sleep(500 * time.Millisecond)
	}

	// Another replica refuses to start.
	if _, errOut, code := cli(t, append(env, "BRIDGE_LISTEN_ADDR=127.0.0.1:0"), "serve"); code != 1 ||
		!strings.Contains(errOut, "refusing to start") || !strings.Contains(errOut, kid) ||
		!strings.Contains(errOut, "keys rotate --force --revoke") {
		t.Fatalf("serve beside a forged key: exit %d: %s", code, errOut)
	}
	if out, errOut, code := cli(t, env, "keys", "list"); code != 0 || !strings.Contains(out, kid) || !strings.Contains(out, "retired,INVALID") {
		t.Fatalf("keys list: exit %d\n%s\n%s", code, out, errOut)
	}
	if out, errOut, code := cli(t, env, "keys", "rotate", "--force", "--revoke"); code != 0 {
		t.Fatalf("keys rotate --force --revoke: exit %d\n%s\n%s", code, out, errOut)
	}
	var n int
	if err := db.QueryRow(ctx, "SELECT count(*) FROM signing_keys WHERE kid = $1", kid).Scan(&n); err != nil || n != 0 {
		t.Fatalf("the forged key survived keys rotate --force --revoke: %d, %v", n, err)
	}
	for _, k := range listKeys(t, env) {
		if k.KID == kid {
			t.Errorf("keys list still shows %s", kid)
		}
	}
	s.stopClean()
	s2 := startServer(t, env)
	s2.waitReady(200)
	s2.stopClean()
}
