package signing_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/signing"
)

func TestSealOpensOnlyWithItsLabelAndKEK(t *testing.T) {
	t.Parallel()
	parse := func() signing.KEK {
		enc, err := signing.GenerateKEK()
		if err != nil {
			t.Fatal(err)
		}
		k, err := signing.ParseKEK([]byte(enc))
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	kek, other := parse(), parse()
	secret := []byte("-----BEGIN RSA PRIVATE KEY-----")
	sealed, err := kek.Seal("github_app\x00a\x00SHA256:x", secret)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, secret) {
		t.Fatal("the sealed secret contains the plaintext")
	}
	got, err := kek.Open("github_app\x00a\x00SHA256:x", sealed)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := kek.Open("github_app\x00b\x00SHA256:x", sealed); !errors.Is(err, signing.ErrWrongKEK) {
		t.Errorf("Open with another label: %v, want ErrWrongKEK", err)
	}
	if _, err := other.Open("github_app\x00a\x00SHA256:x", sealed); !errors.Is(err, signing.ErrWrongKEK) {
		t.Errorf("Open with another KEK: %v, want ErrWrongKEK", err)
	}
	if _, err := (signing.KEK{}).Seal("x", secret); err == nil {
		t.Error("the zero KEK sealed")
	}
}
