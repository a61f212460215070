package oidctest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"fmt"
	"sync"
)

// poolSize is how many distinct RSA keys the process generates before
// issuers start sharing key material. Distinct kids keep shared keys apart.
const poolSize = 8

var pool struct {
	mu   sync.Mutex
	rsa  []*rsa.PrivateKey
	next int
	ec   map[elliptic.Curve][]*ecdsa.PrivateKey
	ecN  map[elliptic.Curve]int
}

// nextRSAKey hands out the pool's keys in turn, generating each the first
// time it is needed.
func nextRSAKey() *rsa.PrivateKey {
	pool.mu.Lock()
	defer pool.mu.Unlock()
	i := pool.next % poolSize
	pool.next++
	if i < len(pool.rsa) {
		return pool.rsa[i]
	}
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(fmt.Sprintf("oidctest: generate RSA key: %v", err))
	}
	pool.rsa = append(pool.rsa, k)
	return k
}

var unpublished = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(fmt.Sprintf("oidctest: generate RSA key: %v", err))
	}
	return k
})

func nextECKey(c elliptic.Curve) *ecdsa.PrivateKey {
	pool.mu.Lock()
	defer pool.mu.Unlock()
	if pool.ec == nil {
		pool.ec = make(map[elliptic.Curve][]*ecdsa.PrivateKey)
		pool.ecN = make(map[elliptic.Curve]int)
	}
	i := pool.ecN[c] % poolSize
	pool.ecN[c]++
	if i < len(pool.ec[c]) {
		return pool.ec[c][i]
	}
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		panic(fmt.Sprintf("oidctest: generate EC key: %v", err))
	}
	pool.ec[c] = append(pool.ec[c], k)
	return k
}

func randomID(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// uuid returns a random RFC 4122 version 4 UUID, the form GitHub and GitLab
// use for jti.
func uuid() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
