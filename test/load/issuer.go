package main

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"time"
)

// issuer is a minimal GitHub-shaped OIDC issuer: one RS256 key, discovery
// and JWKS on 127.0.0.1. (test/oidctest needs a testing.TB.)
type issuer struct {
	url string
	key *rsa.PrivateKey
	srv *http.Server
}

const (
	audience = "https://bridge.example.com"
	kid      = "load-1"
)

func newIssuer() (*issuer, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	iss := &issuer{url: "http://" + ln.Addr().String(), key: key}
	b64 := base64.RawURLEncoding.EncodeToString
	jwks, _ := json.Marshal(map[string]any{"keys": []any{map[string]any{
		"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
		"n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes()),
	}}})
	disc, _ := json.Marshal(map[string]any{
		"issuer": iss.url, "jwks_uri": iss.url + "/.well-known/jwks",
		"response_types_supported": []string{"id_token"}, "subject_types_supported": []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
	})
	mux := http.NewServeMux()
	serve := func(b []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write(b)
		}
	}
	mux.HandleFunc("GET /.well-known/openid-configuration", serve(disc))
	mux.HandleFunc("GET /.well-known/jwks", serve(jwks))
	iss.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go iss.srv.Serve(ln)
	return iss, nil
}

// mint signs a GitHub Actions-shaped token; pipeline and n make jti, run and
// job distinct.
func (i *issuer) mint(pipeline, n int) (string, error) {
	now := time.Now().Unix()
	run := fmt.Sprintf("%d", 20000000000+pipeline*1000000+n)
	claims := map[string]any{
		"iss": i.url, "aud": audience, "sub": "repo:acme/web:environment:production",
		"jti": fmt.Sprintf("load-%d-%d-%d", now, pipeline, n), "iat": now, "nbf": now - 5, "exp": now + 1800,
		"actor": "octocat", "actor_id": "583231", "base_ref": "", "check_run_id": run,
		"environment": "production", "event_name": "push", "head_ref": "",
		"job_workflow_ref": "acme/web/.github/workflows/deploy.yml@refs/heads/main",
		"job_workflow_sha": "4c1b2a3d5e6f708192a3b4c5d6e7f8091a2b3c4d",
		"ref":              "refs/heads/main", "ref_protected": "true", "ref_type": "branch",
		"repository": "acme/web", "repository_id": "1339936803", "repository_owner": "acme",
		"repository_owner_id": "91234567", "repository_visibility": "private",
		"run_attempt": "1", "run_id": run, "run_number": "42", "runner_environment": "github-hosted",
		"sha": "4c1b2a3d5e6f708192a3b4c5d6e7f8091a2b3c4d", "workflow": "deploy",
		"workflow_ref": "acme/web/.github/workflows/deploy.yml@refs/heads/main",
		"workflow_sha": "4c1b2a3d5e6f708192a3b4c5d6e7f8091a2b3c4d",
	}
	hdr, _ := json.Marshal(map[string]string{"alg": "RS256", "kid": kid, "typ": "JWT"})
	body, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	b64 := base64.RawURLEncoding.EncodeToString
	signing := b64(hdr) + "." + b64(body)
	h := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(nil, i.key, crypto.SHA256, h[:])
	if err != nil {
		return "", err
	}
	return signing + "." + b64(sig), nil
}
