package identity

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"slices"
	"sync"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// fuzzKeys are one key per accepted algorithm, made once.
var fuzzKeys = sync.OnceValue(func() map[string]any {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	keys := map[string]any{}
	for alg := range asymmetricAlgs {
		keys[alg] = rsaKey
	}
	for alg, curve := range map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()} {
		k, err := ecdsa.GenerateKey(curve, rand.Reader)
		if err != nil {
			panic(err)
		}
		keys[alg] = k
	}
	return keys
})

// FuzzVerifySignatureAgreesWithGoJose: the bridge's one signature check
// (verifySignature, over the token parseToken read) and go-jose's verifier,
// an implementation the project did not write, agree on every token: a
// payload (a claims object) signed with each accepted algorithm, then with its signature or
// signed input changed at a fuzzed place (or not at all), and verified as
// the algorithm the fuzzer picks (a sibling algorithm must fail both). The
// seed corpus runs in `make test`; `make fuzz` explores further.
func FuzzVerifySignatureAgreesWithGoJose(f *testing.F) {
	for i := range uint8(len(asymmetricAlgs)) { // each algorithm, untouched
		f.Add(i, i, []byte(`{"iss":"x"}`), uint16(0), uint8(0), false)
	}
	f.Add(uint8(3), uint8(3), []byte(`{"sub":"repo:acme/web"}`), uint16(5), uint8(1), true)
	f.Add(uint8(6), uint8(6), []byte(`{}`), uint16(70), uint8(0x80), false)
	f.Add(uint8(1), uint8(4), []byte(`{"a":1}`), uint16(0), uint8(0), false)
	f.Add(uint8(8), uint8(7), []byte(`{"b":true}`), uint16(3), uint8(0), true)
	algs := make([]string, 0, len(asymmetricAlgs))
	for alg := range asymmetricAlgs {
		algs = append(algs, alg)
	}
	slices.Sort(algs)
	f.Fuzz(func(t *testing.T, signAlg, verifyAlg uint8, payload []byte, at uint16, flip uint8, inInput bool) {
		keys := fuzzKeys()
		sa, va := algs[int(signAlg)%len(algs)], algs[int(verifyAlg)%len(algs)]
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(sa), Key: keys[sa]}, nil)
		if err != nil {
			t.Fatal(err)
		}
		claims, err := json.Marshal(map[string]string{"p": string(payload)})
		if err != nil {
			t.Fatal(err)
		}
		jws, err := signer.Sign(claims)
		if err != nil {
			t.Fatal(err)
		}
		compact, err := jws.CompactSerialize()
		if err != nil {
			t.Fatal(err)
		}
		// Change one byte of the signed input or of the signature, keeping
		// the token well-formed (base64url of the changed bytes).
		h, rest, _ := cutDot(compact)
		p, s, _ := cutDot(rest)
		if flip != 0 {
			if inInput {
				pb, _ := b64.DecodeString(p)
				if len(pb) > 0 {
					pb[int(at)%len(pb)] ^= flip
					p = b64.EncodeToString(pb)
				}
			} else {
				sb, _ := b64.DecodeString(s)
				sb[int(at)%len(sb)] ^= flip
				s = b64.EncodeToString(sb)
			}
		}
		token := h + "." + p + "." + s
		pub := publicOf(keys[va])

		oracle := false
		if parsed, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(sa)}); err == nil && sa == va {
			_, err := parsed.Verify(pub)
			oracle = err == nil
		}
		ours := false
		if tok, e := parseToken(token); e == nil {
			// The bridge verifies with the key the JWKS lists for the
			// header's algorithm; verifying as another algorithm must fail.
			ours = tok.alg == sa && verifySignature(va, pub, tok.signingInput, tok.signature)
		} else if flip == 0 {
			t.Fatalf("parseToken refused a token go-jose signed: %v", e)
		}
		if ours != oracle {
			t.Fatalf("signed %s, verified as %s, flip %#x at %d (input %v): bridge %v, go-jose %v", sa, va, flip, at, inInput, ours, oracle)
		}
	})
}

func cutDot(s string) (before, after string, ok bool) {
	for i := range len(s) {
		if s[i] == '.' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

func publicOf(k any) any {
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return &k.PublicKey
	case *ecdsa.PrivateKey:
		return &k.PublicKey
	}
	return nil
}
