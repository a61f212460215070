package signing

import "crypto"

// NewStoredKeyForTest makes a key as Manager stores it, encrypted with kek:
// tests plant keys from a replica with another KEK.
func NewStoredKeyForTest(kek KEK, alg string) (kid string, publicJWK, sealed []byte, err error) {
	k, err := generateKey(kek, alg)
	return k.kid, k.publicJWK, k.sealed, err
}

// NewStoredKeyV1ForTest makes a key as Manager stored it before seal
// version 2: its encryption binds no public key.
func NewStoredKeyV1ForTest(kek KEK, alg string) (kid string, publicJWK, sealed []byte, err error) {
	k, err := generateKey(kek, alg)
	if err != nil {
		return "", nil, nil, err
	}
	pub, err := parsePublic(k.kid, alg, k.publicJWK)
	if err != nil {
		return "", nil, nil, err
	}
	thumb, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", nil, nil, err
	}
	der, err := kek.open(k.kid, alg, thumb, k.sealed)
	if err != nil {
		return "", nil, nil, err
	}
	sealed, err = kek.sealVersion(sealVersion1, k.kid, alg, nil, der)
	return k.kid, k.publicJWK, sealed, err
}
