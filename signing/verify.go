package signing

import (
	"crypto"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/go-jose/go-jose/v4"
)

// ErrInvalidKey means a row of signing_keys does not verify: its private
// part does not decrypt with the key-encryption key, or its public key is
// not the public half of that private key. The bridge neither publishes
// nor signs with such a key. See InvalidKeyError.
var ErrInvalidKey = errors.New("signing: a stored signing key does not verify")

// errNoKeyVerifies: not one stored key verifies, so the KEK is wrong
// rather than the keys (judge).
var errNoKeyVerifies = errors.New("none of the stored signing keys decrypts")

// InvalidKeyError names a stored key that does not verify. errors.Is
// matches ErrInvalidKey and the cause (ErrWrongKEK when the private part
// does not decrypt, or was altered).
type InvalidKeyError struct {
	KID, Alg, State string
	Err             error
}

func (e *InvalidKeyError) Error() string {
	return fmt.Sprintf("signing: the %s %s key %s in table signing_keys does not verify (%v); the bridge neither publishes "+
		"nor signs with it. A bridge with this key-encryption key did not write that row: if the other keys verify, "+
		"someone with write access to the database may have planted or altered it (a key of their own, to sign tokens "+
		"that clouds would accept). Investigate (docs/runbooks/signing-key-invalid.md), then remove it with "+
		"`oidc-bridge keys rotate --force --revoke`", e.State, e.Alg, e.KID, e.Err)
}

// Unwrap makes errors.Is match ErrInvalidKey and the cause.
func (e *InvalidKeyError) Unwrap() []error { return []error{ErrInvalidKey, e.Err} }

// verifyKey checks a stored key: the private part decrypts with kek
// (bound to kid, alg and, from seal version 2, the stored public key) and
// fits alg, and the stored public key is its public half. It returns the
// private key and the public JWK derived from it: the one to publish, so
// that no member of the stored JWK but the key itself is ever served.
func verifyKey(kek KEK, kid, alg string, publicJWK, sealed []byte) (crypto.Signer, jose.JSONWebKey, error) {
	stored, err := parsePublic(kid, alg, publicJWK)
	if err != nil {
		return nil, jose.JSONWebKey{}, err
	}
	thumb, err := stored.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, jose.JSONWebKey{}, fmt.Errorf("signing: thumbprint of the public key of %s: %w", kid, err)
	}
	priv, err := parsePrivate(kek, kid, alg, thumb, sealed)
	if err != nil {
		return nil, jose.JSONWebKey{}, err
	}
	pub, ok := priv.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(stored.Key) {
		return nil, jose.JSONWebKey{}, fmt.Errorf("signing: the stored public key of %s is not the public half of its private key", kid)
	}
	derived := jose.JSONWebKey{Key: priv.Public(), KeyID: kid, Algorithm: alg, Use: "sig"}
	if !derived.IsPublic() || !derived.Valid() {
		return nil, jose.JSONWebKey{}, fmt.Errorf("signing: public key of %s is not a valid public JWK", kid)
	}
	return priv, derived, nil
}

// verified is the cached outcome of verifyKey for a row as it was.
type verified struct {
	digest [sha256.Size]byte
	priv   crypto.Signer
	pub    jose.JSONWebKey
	err    error // an *InvalidKeyError
}

func rowDigest(alg, state string, publicJWK, sealed []byte) [sha256.Size]byte {
	h := sha256.New()
	for _, b := range [][]byte{[]byte(alg), []byte(state), publicJWK, sealed} {
		h.Write(fmt.Appendf(nil, "%d:", len(b)))
		h.Write(b)
	}
	var d [sha256.Size]byte
	h.Sum(d[:0])
	return d
}

// cached verifies a stored row (see verifyKey) once per content of the
// row: the outcome is kept until the row changes. Its err is an
// *InvalidKeyError.
func (m *Manager) cached(kid, alg, state string, publicJWK, sealed []byte) verified {
	d := rowDigest(alg, state, publicJWK, sealed)
	m.verMu.Lock()
	v, ok := m.verified[kid]
	m.verMu.Unlock()
	if ok && v.digest == d {
		return v
	}
	v = verified{digest: d}
	var err error
	v.priv, v.pub, err = verifyKey(m.kek, kid, alg, publicJWK, sealed)
	if err != nil {
		v.priv, v.err = nil, &InvalidKeyError{KID: kid, Alg: alg, State: state, Err: err}
	}
	m.verMu.Lock()
	m.verified[kid] = v
	m.verMu.Unlock()
	return v
}

// verify checks one stored row (see cached) and records the outcome for
// InvalidKeys. Its error is an *InvalidKeyError.
func (m *Manager) verify(kid, alg, state string, publicJWK, sealed []byte) (crypto.Signer, jose.JSONWebKey, error) {
	v := m.cached(kid, alg, state, publicJWK, sealed)
	m.noteVerified(map[string]error{kid: v.err}, false)
	return v.priv, v.pub, v.err
}

// noteVerified records outcomes by kid (nil: verified). all means every
// stored key was checked: kids not among them no longer exist. It reports
// the kids that do not verify to Options.OnInvalidKeys, and logs a key the
// first time it is found invalid.
func (m *Manager) noteVerified(outcomes map[string]error, all bool) {
	m.verMu.Lock()
	if all {
		for kid := range m.invalid {
			if _, ok := outcomes[kid]; !ok {
				delete(m.invalid, kid)
			}
		}
		for kid := range m.verified {
			if _, ok := outcomes[kid]; !ok {
				delete(m.verified, kid)
			}
		}
	}
	var fresh []error
	for kid, err := range outcomes {
		if err == nil {
			delete(m.invalid, kid)
			continue
		}
		if _, seen := m.invalid[kid]; !seen {
			fresh = append(fresh, err)
		}
		m.invalid[kid] = struct{}{}
	}
	kids := slices.Sorted(maps.Keys(m.invalid))
	m.verMu.Unlock()
	for _, err := range fresh {
		m.log.Error("signing: a stored key does not verify; it is not published and never signs", "error", err)
	}
	if m.opts.OnInvalidKeys != nil {
		m.opts.OnInvalidKeys(kids)
	}
}

// InvalidKeys returns the kids of the stored keys that did not verify when
// this Manager last read them (New, Maintain, Rotate, Keys: all keys; JWKS
// and Sign: the keys they read), sorted. Empty when all verify.
func (m *Manager) InvalidKeys() []string {
	m.verMu.Lock()
	defer m.verMu.Unlock()
	return slices.Sorted(maps.Keys(m.invalid))
}

// checkRows verifies every row read with its private part, marks those
// that do not verify, records the outcome (all says every stored key was
// read) and returns their errors.
func (m *Manager) checkRows(rows []keyRow, all bool) []error {
	outcomes := make(map[string]error, len(rows))
	var bad []error
	for i := range rows {
		r := &rows[i]
		if r.sealed == nil {
			continue
		}
		v := m.cached(r.kid, r.alg, r.state, r.public, r.sealed)
		r.invalid = v.err
		outcomes[r.kid] = v.err
		if v.err != nil {
			bad = append(bad, v.err)
		}
	}
	m.noteVerified(outcomes, all)
	return bad
}

// judge turns the invalid rows among rows into one error: ErrWrongKEK,
// saying so, when no stored key verifies (the KEK is not theirs), else
// the rows' errors. Nil when all verify.
func judge(rows []keyRow, bad []error) error {
	if len(bad) == 0 {
		return nil
	}
	if len(bad) == len(rows) && errors.Is(errors.Join(bad...), ErrWrongKEK) {
		return fmt.Errorf("%w (%w, %d): BRIDGE_KEY_ENCRYPTION_KEY (or _FILE) is not the key they were encrypted with; "+
			"set the one the other replicas use", ErrWrongKEK, errNoKeyVerifies, len(rows))
	}
	return errors.Join(bad...)
}
