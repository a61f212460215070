package gcptest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// JWTBearerGrant is the grant type of service-account assertions (RFC 7523).
const JWTBearerGrant = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// ServiceAccountKey is a key the OAuth endpoint accepts assertions from.
type ServiceAccountKey struct {
	ClientEmail  string
	PrivateKeyID string
	PrivateKey   *rsa.PrivateKey
}

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

// AddServiceAccountKey creates a key for the service account email and
// accepts its assertions from now on. Keys share one RSA key pair per
// process (generating one per test is slow) but each has its own key id,
// which alone decides whose assertion it is.
func (h *Handler) AddServiceAccountKey(email string) ServiceAccountKey {
	rsaOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	var id [20]byte
	_, _ = rand.Read(id[:])
	k := ServiceAccountKey{ClientEmail: email, PrivateKeyID: hex.EncodeToString(id[:]), PrivateKey: rsaKey}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.keys[k.PrivateKeyID] = k
	return k
}

// JSON is the key in Google's service-account key file format, with
// tokenURI as its token_uri.
func (k ServiceAccountKey) JSON(tokenURI string) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(k.PrivateKey)
	if err != nil {
		panic(err)
	}
	project := "gcptest"
	if _, domain, ok := strings.Cut(k.ClientEmail, "@"); ok {
		if p, ok := strings.CutSuffix(domain, ".iam.gserviceaccount.com"); ok {
			project = p
		}
	}
	b, err := json.MarshalIndent(map[string]string{
		"type":                        "service_account",
		"project_id":                  project,
		"private_key_id":              k.PrivateKeyID,
		"private_key":                 string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":                k.ClientEmail,
		"client_id":                   "1" + k.PrivateKeyID[:20],
		"auth_uri":                    "https://accounts.google.com/o/oauth2/auth",
		"token_uri":                   tokenURI,
		"auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
		"universe_domain":             "googleapis.com",
	}, "", "  ")
	if err != nil {
		panic(err)
	}
	return b
}

// WriteCredentialsFile creates a key for email and writes its key file,
// whose token_uri is this fake's /token, in a temporary folder of the test.
// The path is what GOOGLE_APPLICATION_CREDENTIALS should name.
func (h *Handler) WriteCredentialsFile(t testing.TB, email string) string {
	t.Helper()
	k := h.AddServiceAccountKey(email)
	path := filepath.Join(t.TempDir(), "adc-"+k.PrivateKeyID[:8]+".json")
	if err := os.WriteFile(path, k.JSON(h.tokenURL()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// assertionClaims are the claims of a service-account assertion.
type assertionClaims struct {
	Iss   string `json:"iss"`
	Sub   string `json:"sub"`
	Aud   string `json:"aud"`
	Scope string `json:"scope"`
	Iat   int64  `json:"iat"`
	Exp   int64  `json:"exp"`
}

// serveOAuth answers a JWT-bearer grant.
func (h *Handler) serveOAuth(w http.ResponseWriter, r *http.Request) {
	call := Call{Endpoint: OAuth, Time: h.now(), Method: r.Method, Path: r.URL.Path, Host: r.Host}
	defer h.calls.Record(&call)
	var shape oauthErrors
	refuse := func(code, msg string) { shape.refuse(w, &call, code, msg) }
	if !h.begin(w, r, &call, shape) {
		return
	}

	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		refuse("invalid_request", "Content-Type must be application/x-www-form-urlencoded.")
		return
	}
	if err := r.ParseForm(); err != nil {
		refuse("invalid_request", "The request body could not be parsed.")
		return
	}
	call.GrantType = r.PostForm.Get("grant_type")
	if call.GrantType != JWTBearerGrant {
		refuse("unsupported_grant_type", "Invalid grant_type: "+call.GrantType)
		return
	}
	assertion := r.PostForm.Get("assertion")
	jws, err := jose.ParseSignedCompact(assertion, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil || len(jws.Signatures) != 1 {
		refuse("invalid_grant", "Invalid JWT: not a signed RS256 JWT.")
		return
	}
	h.mu.Lock()
	key, known := h.keys[jws.Signatures[0].Header.KeyID]
	h.mu.Unlock()
	if !known {
		refuse("invalid_grant", "Invalid JWT Signature.")
		return
	}
	payload, err := jws.Verify(&key.PrivateKey.PublicKey)
	if err != nil {
		refuse("invalid_grant", "Invalid JWT Signature.")
		return
	}
	var c assertionClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		refuse("invalid_grant", "Invalid JWT: the claims are not a JSON object.")
		return
	}
	call.ClientEmail = c.Iss
	call.Scopes = strings.Fields(c.Scope)
	now := h.now()
	switch {
	case c.Iss != key.ClientEmail:
		refuse("invalid_grant", "Invalid JWT Signature.")
		return
	case c.Aud != h.tokenURL():
		refuse("invalid_grant", "Invalid JWT: Failed audience check.")
		return
	case c.Sub != "" && c.Sub != c.Iss:
		refuse("unauthorized_client", "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.")
		return
	case c.Iat == 0 || c.Exp == 0 || time.Unix(c.Iat, 0).After(now.Add(5*time.Minute)) ||
		!time.Unix(c.Exp, 0).After(now) || c.Exp-c.Iat > 3600:
		refuse("invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.")
		return
	case len(call.Scopes) == 0:
		refuse("invalid_scope", "Invalid OAuth scope or ID token audience provided.")
		return
	}
	if code := h.refusal(OAuth); code != "" {
		refuse(code, "The assertion of "+c.Iss+" was refused.")
		return
	}
	expiry := now.Add(TokenTTL)
	access := h.issue("ya29.c.gcptest-", Token{Via: OAuth, Principal: c.Iss, Scopes: call.Scopes, Expiry: expiry})
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": access,
		"expires_in":   int(TokenTTL/time.Second) - 1,
		"token_type":   "Bearer",
	})
	call.Status, call.IssuedExpiry = http.StatusOK, expiry
}
