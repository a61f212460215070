package signing

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"

	"github.com/go-jose/go-jose/v4"
)

// rsaBits is the size of RS256 keys: what AWS, Google and Entra accept
// everywhere, and about four times cheaper to sign with than 3072.
const rsaBits = 2048

// newKID returns a random kid: 128 bits in unpadded base64url (22
// characters), unique in practice; the primary key is the backstop.
func newKID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("signing: kid: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// newKey is a freshly generated key pair in its stored forms.
type newKey struct {
	kid, alg  string
	publicJWK []byte // JSON of the public JWK
	sealed    []byte // encrypted PKCS#8 DER
}

// generateKey makes a key pair for alg and encrypts its private part with
// kek.
func generateKey(kek KEK, alg string) (newKey, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case RS256:
		priv, err = rsa.GenerateKey(rand.Reader, rsaBits)
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return newKey{}, fmt.Errorf("signing: %w: %q", ErrUnsupportedAlg, alg)
	}
	if err != nil {
		return newKey{}, fmt.Errorf("signing: generate %s key: %w", alg, err)
	}
	kid, err := newKID()
	if err != nil {
		return newKey{}, err
	}
	pub := jose.JSONWebKey{Key: priv.Public(), KeyID: kid, Algorithm: alg, Use: "sig"}
	if !pub.IsPublic() || !pub.Valid() {
		return newKey{}, fmt.Errorf("signing: %s public key is not a valid public JWK", alg)
	}
	publicJWK, err := pub.MarshalJSON()
	if err != nil {
		return newKey{}, fmt.Errorf("signing: encode public JWK: %w", err)
	}
	thumb, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return newKey{}, fmt.Errorf("signing: thumbprint of the %s public key: %w", alg, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return newKey{}, fmt.Errorf("signing: encode %s private key: %w", alg, err)
	}
	sealed, err := kek.seal(kid, alg, thumb, der)
	clear(der)
	if err != nil {
		return newKey{}, err
	}
	return newKey{kid: kid, alg: alg, publicJWK: publicJWK, sealed: sealed}, nil
}

// parsePrivate decrypts a stored private key and checks it fits alg;
// thumbprint is that of the public key stored beside it (see seal).
func parsePrivate(kek KEK, kid, alg string, thumbprint, sealed []byte) (crypto.Signer, error) {
	der, err := kek.open(kid, alg, thumbprint, sealed)
	if err != nil {
		return nil, err
	}
	defer clear(der)
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("signing: private key of %s: %w", kid, err)
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if alg == RS256 && k.N.BitLen() >= rsaBits {
			return k, nil
		}
	case *ecdsa.PrivateKey:
		if alg == ES256 && k.Curve == elliptic.P256() {
			return k, nil
		}
	}
	return nil, fmt.Errorf("signing: private key of %s is a %T, not fit for %s", kid, key, alg)
}

// parsePublic reads a stored public JWK and checks it is public and names
// kid and alg.
func parsePublic(kid, alg string, b []byte) (jose.JSONWebKey, error) {
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(b); err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("signing: public JWK of %s: %w", kid, err)
	}
	if !k.IsPublic() || !k.Valid() || k.KeyID != kid || k.Algorithm != alg {
		return jose.JSONWebKey{}, fmt.Errorf("signing: public JWK of %s is not a valid public %s key named %s", kid, alg, kid)
	}
	return k, nil
}
