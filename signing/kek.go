package signing

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
)

// kekSize is the length of a key-encryption key: AES-256.
const kekSize = 32

// makeKEK tells an operator how to make a key-encryption key; every parse
// error ends with it.
const makeKEK = "make one with: openssl rand -base64 32"

// ErrWrongKEK means a private key in the database cannot be decrypted with
// the configured key-encryption key: the KEK is not the one the key was
// encrypted with (or the row was altered). Neither key is named.
var ErrWrongKEK = errors.New("signing: a stored private key does not decrypt with the configured key-encryption key (a different KEK, or an altered row)")

// KEK is the key-encryption key with which the bridge encrypts the private
// parts of its signing keys (AES-256-GCM). The zero KEK is not usable; get
// one from ParseKEK. It never prints its bytes: fmt and slog show it as
// "signing.KEK(redacted)".
type KEK struct {
	aead cipher.AEAD
}

// ParseKEK parses a key-encryption key: 32 random bytes encoded in base64,
// standard or URL alphabet, padded or not, with surrounding whitespace
// (a trailing newline) ignored, so that the output of
// `openssl rand -base64 32` works as it is.
func ParseKEK(b []byte) (KEK, error) {
	s := bytes.TrimSpace(b)
	if len(s) == 0 {
		return KEK{}, fmt.Errorf("signing: the key-encryption key is empty; %s", makeKEK)
	}
	var raw []byte
	for _, enc := range []*base64.Encoding{
		base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding,
	} {
		if d, err := enc.DecodeString(string(s)); err == nil {
			raw = d
			break
		}
	}
	switch {
	case raw == nil:
		// The input is not echoed: it may be a secret with a typo.
		return KEK{}, fmt.Errorf("signing: the key-encryption key is not base64; it must be %d random bytes in base64; %s", kekSize, makeKEK)
	case len(raw) != kekSize:
		return KEK{}, fmt.Errorf("signing: the key-encryption key decodes to %d bytes, want %d random bytes in base64 (hex is not accepted); %s", len(raw), kekSize, makeKEK)
	case bytes.Count(raw, raw[:1]) == len(raw):
		return KEK{}, fmt.Errorf("signing: the key-encryption key is %d times the same byte, not random; %s", kekSize, makeKEK)
	}
	return newKEK(raw)
}

func newKEK(raw []byte) (KEK, error) {
	block, err := aes.NewCipher(raw)
	if err != nil {
		return KEK{}, fmt.Errorf("signing: key-encryption key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return KEK{}, fmt.Errorf("signing: key-encryption key: %w", err)
	}
	return KEK{aead: aead}, nil
}

// GenerateKEK returns a new random key-encryption key in standard base64,
// the form ParseKEK reads.
func GenerateKEK() (encoded string, err error) {
	raw := make([]byte, kekSize)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("signing: generate key-encryption key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(raw), nil
}

// String hides the key.
func (KEK) String() string { return "signing.KEK(redacted)" }

// GoString hides the key from %#v.
func (k KEK) GoString() string { return k.String() }

// LogValue hides the key from slog.
func (k KEK) LogValue() slog.Value { return slog.StringValue(k.String()) }

func (k KEK) valid() bool { return k.aead != nil }

// Encrypted private keys are: version byte, 96-bit random nonce, AES-GCM
// ciphertext and tag. The additional data binds a ciphertext to its kid and
// alg (and the version), so that rows cannot be swapped; from version 2 it
// also binds the public key stored beside it (its RFC 7638 SHA-256
// thumbprint), so that a database writer without the KEK cannot pair a
// genuine ciphertext with a public key of their own. Version 1 rows (written
// before) are still read: verifyKey derives the public key from the
// decrypted private key and compares, which covers them too.
const (
	sealVersion1 byte = 1
	sealVersion2 byte = 2
	nonceSize    int  = 12
)

func additionalData(version byte, kid, alg string, thumbprint []byte) []byte {
	ad := fmt.Appendf(nil, "oidc-bridge signing key\x00%d\x00%s\x00%s", version, kid, alg)
	if version >= sealVersion2 {
		ad = append(append(ad, 0), thumbprint...)
	}
	return ad
}

// seal encrypts a private key's PKCS#8 DER for the row (kid, alg) whose
// public key has the given thumbprint.
func (k KEK) seal(kid, alg string, thumbprint, plaintext []byte) ([]byte, error) {
	return k.sealVersion(sealVersion2, kid, alg, thumbprint, plaintext)
}

func (k KEK) sealVersion(version byte, kid, alg string, thumbprint, plaintext []byte) ([]byte, error) {
	if !k.valid() {
		return nil, errors.New("signing: no key-encryption key")
	}
	out := make([]byte, 1+nonceSize, 1+nonceSize+len(plaintext)+k.aead.Overhead())
	out[0] = version
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("signing: nonce: %w", err)
	}
	return k.aead.Seal(out, out[1:1+nonceSize], plaintext, additionalData(version, kid, alg, thumbprint)), nil
}

// open decrypts what seal made for (kid, alg, thumbprint). A wrong KEK or
// an altered row (another public key included) gives ErrWrongKEK: GCM
// cannot tell them apart.
func (k KEK) open(kid, alg string, thumbprint, sealed []byte) ([]byte, error) {
	if !k.valid() {
		return nil, errors.New("signing: no key-encryption key")
	}
	if len(sealed) == 0 || (sealed[0] != sealVersion1 && sealed[0] != sealVersion2) {
		return nil, fmt.Errorf("signing: private key of %s: unknown encryption format", kid)
	}
	if len(sealed) < 1+nonceSize+k.aead.Overhead() {
		return nil, fmt.Errorf("signing: private key of %s: truncated", kid)
	}
	plain, err := k.aead.Open(nil, sealed[1:1+nonceSize], sealed[1+nonceSize:], additionalData(sealed[0], kid, alg, thumbprint))
	if err != nil {
		return nil, fmt.Errorf("%w (key %s)", ErrWrongKEK, kid)
	}
	return plain, nil
}
