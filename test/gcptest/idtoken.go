package gcptest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
)

// GoogleIssuer is the iss of the ID tokens generateIdToken issues, as
// Google's are.
const GoogleIssuer = "https://accounts.google.com"

// IDTokenTTL is the lifetime of the ID tokens generateIdToken issues: one
// hour, as Google's (the request has no lifetime).
const IDTokenTTL = time.Hour

// idTokenKeyID names the fake's ID token key in token headers and the JWKS.
const idTokenKeyID = "gcptest-id-token-key"

// generateIDTokenRequest is generateIdToken's JSON body.
type generateIDTokenRequest struct {
	Name         string   `json:"name"`
	Delegates    []string `json:"delegates"`
	Audience     string   `json:"audience"`
	IncludeEmail bool     `json:"includeEmail"`
}

// permission is the IAM permission an IAM Credentials method needs.
func permission(method string) string {
	if method == "generateIdToken" {
		return "iam.serviceAccounts.getOpenIdToken"
	}
	return "iam.serviceAccounts.getAccessToken"
}

// UniqueID is the 21-digit unique id the fake gives a service account (the
// sub and azp of its ID tokens): derived from the account's name, so that
// tests can predict it. A unique id names itself.
func UniqueID(account string) string {
	if checkAccountDigits(account) {
		return account
	}
	sum := sha256.Sum256([]byte(account))
	n := new(big.Int).SetBytes(sum[:])
	n.Mod(n, new(big.Int).Exp(big.NewInt(10), big.NewInt(20), nil))
	return fmt.Sprintf("1%020d", n)
}

func checkAccountDigits(s string) bool {
	if len(s) != 21 || s[0] == '0' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// idKey returns the key that signs ID tokens, made on first use.
func (h *Handler) idTokenKey() (*rsa.PrivateKey, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.idKey == nil {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		h.idKey = k
	}
	return h.idKey, nil
}

// IDTokenKeys is the public key set of the ID tokens the fake issues, as
// Google publishes its own at https://www.googleapis.com/oauth2/v3/certs
// (also served at /oauth2/v3/certs).
func (h *Handler) IDTokenKeys() jose.JSONWebKeySet {
	k, err := h.idTokenKey()
	if err != nil {
		return jose.JSONWebKeySet{}
	}
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: idTokenKeyID, Algorithm: string(jose.RS256), Use: "sig"}}}
}

func (h *Handler) serveIDTokenKeys(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, h.IDTokenKeys())
}

// serveIDToken answers a generateIdToken call whose caller the shared part
// of serveIAM authenticated: an audience is required, each hop of the
// delegation chain must be granted, and the answer is {"token": JWT}, an
// RS256 token of the fake's key with Google's claims (iss, aud, azp and sub
// the account's unique id, iat, exp; email and email_verified with
// includeEmail).
func (h *Handler) serveIDToken(w http.ResponseWriter, call *Call, refuse func(code, msg string), tok Token, account string, in generateIDTokenRequest) {
	if in.Audience == "" {
		refuse("INVALID_ARGUMENT", "Invalid value for audience: audience is required.")
		return
	}
	members := h.members(tok)
	for _, next := range append(slices.Clone(call.Delegates), account) {
		if !h.allowedAny(members, next) {
			refuse("PERMISSION_DENIED", "Permission '"+permission(call.IAMMethod)+"' denied on resource (or it may not exist).")
			return
		}
		members = []string{next}
	}
	key, err := h.idTokenKey()
	if err != nil {
		refuse("INTERNAL", "Internal error encountered.")
		return
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", idTokenKeyID))
	if err != nil {
		refuse("INTERNAL", "Internal error encountered.")
		return
	}
	now := h.now().Truncate(time.Second)
	claims := map[string]any{
		"iss": GoogleIssuer,
		"aud": in.Audience,
		"azp": UniqueID(account),
		"sub": UniqueID(account),
		"iat": now.Unix(),
		"exp": now.Add(IDTokenTTL).Unix(),
	}
	if in.IncludeEmail {
		claims["email"] = account
		claims["email_verified"] = true
	}
	token, err := josejwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		refuse("INTERNAL", "Internal error encountered.")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"token": token})
	call.Status, call.IssuedExpiry = http.StatusOK, now.Add(IDTokenTTL)
}
