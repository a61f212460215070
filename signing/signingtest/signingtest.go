// Package signingtest is an in-memory signing.Signer for tests: real RSA and
// EC keys, and a real HTTP issuer (discovery document and JWKS) that the
// fakes of the clouds verify assertions against. It keeps no state beyond
// the test; production code must not import it.
package signingtest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/oidc-bridge/oidc-bridge/signing"
)

// Signer signs with in-memory keys and serves its discovery document and
// JWKS on a local HTTP server (its Issuer).
type Signer struct {
	srv *httptest.Server
	mu  sync.Mutex
	// keys by alg; retired keys stay published.
	active    map[string]jose.JSONWebKey
	published []jose.JSONWebKey
	signed    int
}

var _ signing.Signer = (*Signer)(nil)

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
	ecKey   *ecdsa.PrivateKey
)

// New starts a Signer with one RS256 and one ES256 key.
func New(t testing.TB) *Signer {
	t.Helper()
	rsaOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
	})
	s := &Signer{active: map[string]jose.JSONWebKey{}}
	s.add(jose.JSONWebKey{Key: rsaKey, KeyID: "test-rsa-1", Algorithm: signing.RS256, Use: "sig"})
	s.add(jose.JSONWebKey{Key: ecKey, KeyID: "test-ec-1", Algorithm: signing.ES256, Use: "sig"})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{
			"issuer":                                s.Issuer(),
			"jwks_uri":                              s.Issuer() + "/.well-known/jwks.json",
			"id_token_signing_alg_values_supported": []string{signing.RS256, signing.ES256},
			"response_types_supported":              []string{"id_token"},
			"subject_types_supported":               []string{"public"},
		})
	})
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		set, _ := s.JWKS(r.Context())
		writeJSON(w, set)
	})
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

func (s *Signer) add(k jose.JSONWebKey) {
	s.active[k.Algorithm] = k
	s.published = append(s.published, k.Public())
}

// Issuer implements signing.Signer.
func (s *Signer) Issuer() string { return s.srv.URL }

// Sign implements signing.Signer.
func (s *Signer) Sign(_ context.Context, claims map[string]any, alg string) (string, error) {
	if alg == "" {
		alg = signing.RS256
	}
	s.mu.Lock()
	k, ok := s.active[alg]
	s.signed++
	s.mu.Unlock()
	if !ok {
		return "", fmt.Errorf("signingtest: no active %s key", alg)
	}
	c := maps.Clone(claims)
	c["iss"] = s.Issuer()
	c["iat"] = time.Now().Unix()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: k},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", k.KeyID))
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	jws, err := sig.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// JWKS returns the published public keys, as signing.Manager does.
func (s *Signer) JWKS(context.Context) (jose.JSONWebKeySet, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return jose.JSONWebKeySet{Keys: append([]jose.JSONWebKey(nil), s.published...)}, nil
}

// Signed counts the tokens signed so far.
func (s *Signer) Signed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.signed
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
