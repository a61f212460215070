package signing

import (
	"crypto/rand"
	"errors"
	"fmt"
)

// sealedSecretVersion is the version byte of what Seal makes: a domain of
// its own, so that no ciphertext of a signing key opens as a secret or the
// reverse.
const sealedSecretVersion byte = 0x53

// Seal encrypts a secret the bridge keeps for a purpose other than its own
// signing keys (a GitHub App's private key, package githubapp) with the
// key-encryption key, as the signing keys are: AES-256-GCM, a version byte
// and a random 96-bit nonce before the ciphertext and tag. label binds the
// ciphertext to the row it belongs to (its kind, name and the public key's
// fingerprint, say), so that a database writer without the KEK cannot move
// a ciphertext to another row: Open with another label fails.
func (k KEK) Seal(label string, plaintext []byte) ([]byte, error) {
	if !k.valid() {
		return nil, errors.New("signing: no key-encryption key")
	}
	out := make([]byte, 1+nonceSize, 1+nonceSize+len(plaintext)+k.aead.Overhead())
	out[0] = sealedSecretVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("signing: nonce: %w", err)
	}
	return k.aead.Seal(out, out[1:1+nonceSize], plaintext, secretData(label)), nil
}

// Open decrypts what Seal made for label. A wrong KEK, another label or an
// altered ciphertext gives ErrWrongKEK.
func (k KEK) Open(label string, sealed []byte) ([]byte, error) {
	if !k.valid() {
		return nil, errors.New("signing: no key-encryption key")
	}
	if len(sealed) < 1+nonceSize+k.aead.Overhead() || sealed[0] != sealedSecretVersion {
		return nil, errors.New("signing: sealed secret: unknown format or truncated")
	}
	plain, err := k.aead.Open(nil, sealed[1:1+nonceSize], sealed[1+nonceSize:], secretData(label))
	if err != nil {
		return nil, ErrWrongKEK
	}
	return plain, nil
}

func secretData(label string) []byte {
	return fmt.Appendf(nil, "oidc-bridge sealed secret\x00%d\x00%s", sealedSecretVersion, label)
}

// Valid reports whether k can encrypt: a KEK from ParseKEK, not the zero KEK.
func (k KEK) Valid() bool { return k.valid() }
