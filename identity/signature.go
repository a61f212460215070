package identity

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"math/big"
)

// verifySignature checks a JWS signature (RFC 7515 §5.2, algorithms of
// RFC 7518 §3) made with alg over signingInput (the token's first two
// parts, as sent) against the public key pub. alg is one of
// asymmetricAlgs; a key of another type or curve never verifies.
//
// The token is parsed once, by parseToken, whose strict checks this relies
// on: no second parser (go-jose's, go-oidc's) reads the token, so none can
// read it differently.
func verifySignature(alg string, pub any, signingInput string, sig []byte) bool {
	h := algHash(alg)
	if h == 0 {
		return false
	}
	hh := h.New()
	hh.Write([]byte(signingInput))
	digest := hh.Sum(nil)
	switch k := pub.(type) {
	case *rsa.PublicKey:
		switch alg[0] {
		case 'R':
			return rsa.VerifyPKCS1v15(k, h, digest, sig) == nil
		case 'P':
			// RFC 7518 §3.5: the salt is as long as the hash; nil
			// options accept exactly that or an auto-detected length,
			// as go-jose did.
			return rsa.VerifyPSS(k, h, digest, sig, nil) == nil
		}
	case *ecdsa.PublicKey:
		// RFC 7518 §3.4: R and S, each the curve's size, concatenated.
		size := (k.Curve.Params().BitSize + 7) / 8
		if curveAlg(k.Curve) != alg || len(sig) != 2*size {
			return false
		}
		r, s := new(big.Int).SetBytes(sig[:size]), new(big.Int).SetBytes(sig[size:])
		return ecdsa.Verify(k, digest, r, s)
	}
	return false
}

// algHash is the hash of a JWS algorithm of asymmetricAlgs; 0 for another.
func algHash(alg string) crypto.Hash {
	if !asymmetricAlgs[alg] {
		return 0
	}
	switch alg[2:] {
	case "256":
		return crypto.SHA256
	case "384":
		return crypto.SHA384
	case "512":
		return crypto.SHA512
	}
	return 0
}
