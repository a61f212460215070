// Package jwttest mints tokens with the bridge's jwt provider for tests of
// the cloud fakes: what a generic issuer's pipeline, with a sub and a
// repository of its choosing, could obtain through a jwt mapping named
// "deploy". It is for tests only.
package jwttest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/oidc-bridge/oidc-bridge/identity"
	"github.com/oidc-bridge/oidc-bridge/providers"
	"github.com/oidc-bridge/oidc-bridge/providers/jwt"
	"github.com/oidc-bridge/oidc-bridge/signing/signingtest"
)

// CraftedRepository is the repository claim of the pipeline token behind
// Mint: chosen so that the subject format the bridge once used for AWS
// (repo:<repository>:mapping:<name>) would read repo:x:mapping:deploy.
const CraftedRepository = "x:mapping:deploy"

// Mint signs, with signer, the token the jwt provider issues for audience
// to a generic issuer's pipeline whose token has sub and
// CraftedRepository; the error is the provider's refusal (a cloud's
// audience, for one).
func Mint(t testing.TB, signer *signingtest.Signer, audience, sub string) (string, error) {
	t.Helper()
	target, err := json.Marshal(map[string]string{"audience": audience})
	if err != nil {
		t.Fatal(err)
	}
	cred, err := jwt.New(jwt.Config{Signer: signer}).Mint(t.Context(), providers.Request{
		IssuanceID: "0193b9e2-6c1e-7c3a-9f1e-2a4b5c6d7e8f",
		Mapping:    "deploy",
		Target:     target,
		Claims: &identity.Claims{Issuer: "https://ci.example", Kind: identity.KindGeneric, Subject: sub,
			Repository: CraftedRepository},
		Duration: 15 * time.Minute,
	})
	if err != nil {
		return "", err
	}
	return cred.Body.(providers.JWTCredentials).Token, nil
}
