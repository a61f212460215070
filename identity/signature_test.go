package identity

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// TestVerifySignature checks the one signature check against go-jose's
// signer, an independent implementation, for every accepted algorithm, and
// refuses what must not verify: altered input, another algorithm of the same
// key type, another key, a key of the wrong type or curve, a signature of
// the wrong length.
func TestVerifySignature(t *testing.T) {
	t.Parallel()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	otherRSA, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ec := map[string]*ecdsa.PrivateKey{}
	for alg, curve := range map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()} {
		if ec[alg], err = ecdsa.GenerateKey(curve, rand.Reader); err != nil {
			t.Fatal(err)
		}
	}
	for alg := range asymmetricAlgs {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			var priv, pub, wrongType any = rsaKey, &rsaKey.PublicKey, &ec["ES256"].PublicKey
			other := any(&otherRSA.PublicKey)
			sibling := map[byte]string{'R': "PS", 'P': "RS", 'E': "ES"}[alg[0]] + alg[2:]
			if alg[0] == 'E' {
				priv, pub, wrongType = ec[alg], &ec[alg].PublicKey, &rsaKey.PublicKey
				for a, k := range ec {
					if a != alg {
						other = &k.PublicKey // another curve
					}
				}
				sibling = "" // ECDSA has one algorithm per curve
			}
			signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: priv}, nil)
			if err != nil {
				t.Fatal(err)
			}
			jws, err := signer.Sign([]byte(`{"iss":"x"}`))
			if err != nil {
				t.Fatal(err)
			}
			compact, err := jws.CompactSerialize()
			if err != nil {
				t.Fatal(err)
			}
			tok, e := parseToken(compact)
			if e != nil {
				t.Fatal(e)
			}
			if !verifySignature(alg, pub, tok.signingInput, tok.signature) {
				t.Fatal("a good signature did not verify")
			}
			altered := tok.signingInput[:len(tok.signingInput)-1] + string(tok.signingInput[len(tok.signingInput)-1]^1)
			refused := []struct {
				name    string
				alg     string
				key     any
				input   string
				sig     []byte
				applies bool
			}{
				{"altered input", alg, pub, altered, tok.signature, true},
				{"other key", alg, other, tok.signingInput, tok.signature, true},
				{"wrong key type", alg, wrongType, tok.signingInput, tok.signature, true},
				{"sibling algorithm", sibling, pub, tok.signingInput, tok.signature, sibling != ""},
				{"truncated signature", alg, pub, tok.signingInput, tok.signature[:len(tok.signingInput)%8+1], true},
				{"symmetric algorithm", "HS" + alg[2:], pub, tok.signingInput, tok.signature, true},
				{"private key", alg, priv, tok.signingInput, tok.signature, true},
			}
			for _, r := range refused {
				if r.applies && verifySignature(r.alg, r.key, r.input, r.sig) {
					t.Errorf("%s: verified", r.name)
				}
			}
		})
	}
}
