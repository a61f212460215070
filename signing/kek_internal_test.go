package signing

import (
	"bytes"
	"crypto/x509"
	"errors"
	"testing"
)

func mustKEK(t *testing.T) KEK {
	t.Helper()
	enc, err := GenerateKEK()
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParseKEK([]byte(enc))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpen(t *testing.T) {
	t.Parallel()
	kek, other := mustKEK(t), mustKEK(t)
	plain := []byte("pkcs8 der stand-in")
	thumb, otherThumb := []byte("thumbprint of the public key...."), []byte("thumbprint of another key......")
	sealed, err := kek.seal("kid-aaaaaaaaaaaaaaaa", RS256, thumb, plain)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := kek.seal("kid-aaaaaaaaaaaaaaaa", RS256, thumb, plain)
	if bytes.Equal(sealed[1:1+nonceSize], again[1:1+nonceSize]) {
		t.Error("two seals share a nonce")
	}
	if sealed[0] != sealVersion2 || len(sealed) != 1+nonceSize+len(plain)+16 {
		t.Errorf("sealed = version %d, %d bytes", sealed[0], len(sealed))
	}
	if got, err := kek.open("kid-aaaaaaaaaaaaaaaa", RS256, thumb, sealed); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("open = %q, %v", got, err)
	}
	// Rows written before version 2 bind no public key, and still open.
	v1, err := kek.sealVersion(sealVersion1, "kid-aaaaaaaaaaaaaaaa", RS256, nil, plain)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := kek.open("kid-aaaaaaaaaaaaaaaa", RS256, otherThumb, v1); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("open version 1 = %q, %v", got, err)
	}
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1
	for _, tt := range []struct {
		name     string
		kek      KEK
		kid, alg string
		thumb    []byte // default: thumb
		sealed   []byte
		wantKEK  bool
	}{
		{name: "wrong KEK", kek: other, kid: "kid-aaaaaaaaaaaaaaaa", alg: RS256, sealed: sealed, wantKEK: true},
		{name: "other kid", kek: kek, kid: "kid-bbbbbbbbbbbbbbbb", alg: RS256, sealed: sealed, wantKEK: true},
		{name: "other alg", kek: kek, kid: "kid-aaaaaaaaaaaaaaaa", alg: ES256, sealed: sealed, wantKEK: true},
		{name: "altered", kek: kek, kid: "kid-aaaaaaaaaaaaaaaa", alg: RS256, sealed: flipped, wantKEK: true},
		{name: "other public key", kek: kek, kid: "kid-aaaaaaaaaaaaaaaa", alg: RS256, thumb: otherThumb, sealed: sealed, wantKEK: true},
		{name: "version 2 read as 1", kek: kek, kid: "kid-aaaaaaaaaaaaaaaa", alg: RS256, sealed: append([]byte{1}, sealed[1:]...), wantKEK: true},
		{name: "unknown version", kek: kek, kid: "kid-aaaaaaaaaaaaaaaa", alg: RS256, sealed: append([]byte{3}, sealed[1:]...)},
		{name: "truncated", kek: kek, kid: "kid-aaaaaaaaaaaaaaaa", alg: RS256, sealed: sealed[:20]},
		{name: "empty", kek: kek, kid: "kid-aaaaaaaaaaaaaaaa", alg: RS256},
		{name: "no KEK", kid: "kid-aaaaaaaaaaaaaaaa", alg: RS256, sealed: sealed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.thumb == nil {
				tt.thumb = thumb
			}
			_, err := tt.kek.open(tt.kid, tt.alg, tt.thumb, tt.sealed)
			if err == nil {
				t.Fatal("open succeeded")
			}
			if errors.Is(err, ErrWrongKEK) != tt.wantKEK {
				t.Errorf("open = %v; want ErrWrongKEK: %v", err, tt.wantKEK)
			}
		})
	}
}

func TestGenerateKeyStoredForms(t *testing.T) {
	t.Parallel()
	kek := mustKEK(t)
	for _, alg := range algs {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			k, err := generateKey(kek, alg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := x509.ParsePKCS8PrivateKey(k.sealed); err == nil {
				t.Error("sealed key parses as PKCS#8")
			}
			if _, err := parsePublic(k.kid, alg, k.publicJWK); err != nil {
				t.Error(err)
			}
			if _, _, err := verifyKey(kek, k.kid, alg, k.publicJWK, k.sealed); err != nil {
				t.Error(err)
			}
			other := RS256
			if alg == RS256 {
				other = ES256
			}
			if _, err := parsePublic(k.kid, other, k.publicJWK); err == nil {
				t.Error("public JWK accepted for the other alg")
			}
		})
	}
	if _, err := generateKey(kek, "HS256"); !errors.Is(err, ErrUnsupportedAlg) {
		t.Errorf("generateKey(HS256) = %v, want ErrUnsupportedAlg", err)
	}
}
