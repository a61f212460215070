package githubapp

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/oidc-bridge/oidc-bridge/mapping"
	"github.com/oidc-bridge/oidc-bridge/providers"
)

// MinKeyBits is the smallest RSA key accepted: GitHub generates 2048-bit
// keys.
const MinKeyBits = 2048

// maxPEM bounds a private key's PEM (a 4096-bit key is about 3.3 KB).
const maxPEM = 16 << 10

// App is a registered GitHub App as the admin API shows it: never a key.
type App struct {
	ID      int64
	Name    string
	AppID   int64
	BaseURL string // "" for github.com, else https://HOST/api/v3/
	// Keys: the signing key first, then the previous one if any.
	Keys      []Key
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Key is what is shown of a private key: GitHub's fingerprint of it.
type Key struct {
	Fingerprint string    `json:"fingerprint"`
	AddedAt     time.Time `json:"added_at"`
	Signing     bool      `json:"signing"`
}

// change is what admin_changes records of an App: no key material, only
// the keys' fingerprints.
type change struct {
	Name    string `json:"name"`
	AppID   int64  `json:"app_id"`
	BaseURL string `json:"base_url,omitempty"`
	Keys    []Key  `json:"keys"`
}

func (a App) change() change {
	return change{Name: a.Name, AppID: a.AppID, BaseURL: a.BaseURL, Keys: a.Keys}
}

// Input is an App as an admin writes it. PrivateKey is a PEM; on an
// update, empty keeps the keys.
type Input struct {
	Name              string
	AppID             int64
	BaseURL           string
	PrivateKey        string
	RetirePreviousKey bool
}

// ValidName is the rule of App names, the issuers' and mappings': 1 to 64
// of [a-z0-9._-], starting with a letter or digit.
func ValidName(s string) bool { return providers.ValidMappingName(s) }

func invalid(field, format string, args ...any) error {
	return &mapping.ValidationError{Field: field, Message: field + ": " + fmt.Sprintf(format, args...)}
}

// Validate checks in's fields (create: a key is required) and returns the
// parsed key, nil when none was given.
func (in *Input) Validate(create bool) (*rsa.PrivateKey, error) {
	if !ValidName(in.Name) {
		return nil, invalid("name", "1 to 64 of a-z, 0-9, '.', '_' and '-', starting with a letter or digit")
	}
	if in.AppID <= 0 {
		return nil, invalid("app_id", "required: the App's numeric id (a positive number, its settings page's \"App ID\")")
	}
	base, err := NormalizeBaseURL(in.BaseURL)
	if err != nil {
		return nil, err
	}
	in.BaseURL = base
	if create && in.RetirePreviousKey {
		return nil, invalid("retire_previous_key", "only on an update: a new App has no previous key")
	}
	if strings.TrimSpace(in.PrivateKey) == "" {
		if create {
			return nil, invalid("private_key", "required: the App's private key, the PEM file GitHub generated")
		}
		return nil, nil
	}
	return ParsePrivateKey(in.PrivateKey)
}

// NormalizeBaseURL checks a GitHub REST API base URL: empty (github.com), or
// https://HOST/api/v3/ of a GitHub Enterprise Server (the trailing slash
// added when missing). https://api.github.com/ itself becomes "".
func NormalizeBaseURL(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || len(s) > 512 {
		return "", invalid("base_url", "must be an https URL without credentials, query or fragment: https://HOST/api/v3/ for GitHub Enterprise Server, or empty for github.com")
	}
	if strings.EqualFold(u.Host, "api.github.com") && (u.Path == "" || u.Path == "/") {
		return "", nil
	}
	p := strings.TrimSuffix(u.Path, "/")
	if p != "/api/v3" {
		return "", invalid("base_url", "must be a GitHub Enterprise Server's REST API, https://HOST/api/v3/ (or empty for github.com)")
	}
	return "https://" + strings.ToLower(u.Host) + "/api/v3/", nil
}

// ParsePrivateKey reads a PEM RSA private key (PKCS#1, as GitHub generates
// it, or PKCS#8) of at least MinKeyBits. Its errors never quote the input.
func ParsePrivateKey(s string) (*rsa.PrivateKey, error) {
	const field = "private_key"
	if len(s) > maxPEM {
		return nil, invalid(field, "is larger than %d bytes: not a GitHub App private key", maxPEM)
	}
	block, rest := pem.Decode([]byte(strings.TrimSpace(s)))
	if block == nil {
		return nil, invalid(field, "is not PEM: paste the whole .pem file GitHub generated for the App")
	}
	if len(strings.TrimSpace(string(rest))) > 0 {
		return nil, invalid(field, "holds more than one PEM block: give the App's private key alone")
	}
	var key *rsa.PrivateKey
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, invalid(field, "is not a valid PKCS#1 RSA private key")
		}
		key = k
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, invalid(field, "is not a valid PKCS#8 private key")
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, invalid(field, "is not an RSA key: GitHub Apps sign their JWTs with RS256")
		}
		key = rk
	default:
		return nil, invalid(field, "is a PEM %q block, not an RSA private key", block.Type)
	}
	if key.N.BitLen() < MinKeyBits {
		return nil, invalid(field, "is a %d-bit RSA key; at least %d bits are required", key.N.BitLen(), MinKeyBits)
	}
	if err := key.Validate(); err != nil {
		return nil, invalid(field, "is not a consistent RSA private key")
	}
	return key, nil
}

// Fingerprint is GitHub's fingerprint of a key: "SHA256:" and the standard
// base64 of the SHA-256 of the public key's DER (PKIX), as the App's
// settings page shows it.
func Fingerprint(pub *rsa.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(der)
	return "SHA256:" + base64.StdEncoding.EncodeToString(sum[:])
}

// ErrUnavailable marks a database failure of the store.
var ErrUnavailable = errors.New("githubapp: database unavailable")
