package signing

// NewStoredKeyForTest makes a key as Manager stores it, encrypted with kek:
// tests plant keys from a replica with another KEK.
func NewStoredKeyForTest(kek KEK, alg string) (kid string, publicJWK, sealed []byte, err error) {
	k, err := generateKey(kek, alg)
	return k.kid, k.publicJWK, k.sealed, err
}
