package oidctest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// DefaultAudience is the aud of the claim sets GitHubClaims and GitLabClaims
// return.
const DefaultAudience = "https://bridge.example.com"

// Paths of the issuer's endpoints, relative to its URL.
const (
	DiscoveryPath = "/.well-known/openid-configuration"
	JWKSPath      = "/.well-known/jwks"
)

// Issuer is a running local OIDC issuer. Its methods are safe for concurrent
// use.
type Issuer struct {
	srv    *httptest.Server
	url    string
	prefix string
	now    func() time.Time

	discoveryReqs atomic.Int64
	jwksReqs      atomic.Int64

	mu            sync.Mutex
	keys          []*key // published and unpublished; current is one of them
	current       *key
	algs          []string
	omitAlgs      bool
	discoveryMod  func(doc map[string]any)
	failDiscovery int
	failJWKS      int
	handlers      map[string]http.Handler
}

type key struct {
	kid       string
	alg       string
	signer    crypto.Signer
	published bool
	attrs     map[string]any
}

type config struct {
	tls          bool
	prefix       string
	now          func() time.Time
	algs         []string
	omitAlgs     bool
	discoveryMod func(doc map[string]any)
}

// Option configures New.
type Option func(*config)

// WithTLS serves HTTPS with httptest's certificate; pass Client() (or its
// transport) to whatever fetches from the issuer.
func WithTLS() Option { return func(c *config) { c.tls = true } }

// WithPathPrefix puts the issuer under a path, as GitHub Enterprise Server's
// https://host/_services/token. prefix must start with '/'.
func WithPathPrefix(prefix string) Option {
	return func(c *config) { c.prefix = strings.TrimSuffix(prefix, "/") }
}

// WithClock sets the clock GitHubClaims and GitLabClaims use for iat, nbf and
// exp. Default time.Now.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithSigningAlgs sets the discovery document's
// id_token_signing_alg_values_supported. With no algorithms the member is
// left out. Default ["RS256"].
func WithSigningAlgs(algs ...string) Option {
	return func(c *config) { c.algs, c.omitAlgs = algs, len(algs) == 0 }
}

// WithDiscovery lets modify change the discovery document before it is
// served (add, replace or delete members), e.g. to point jwks_uri elsewhere.
func WithDiscovery(modify func(doc map[string]any)) Option {
	return func(c *config) { c.discoveryMod = modify }
}

// New starts an issuer on 127.0.0.1 and stops it when the test ends.
func New(t testing.TB, opts ...Option) *Issuer {
	t.Helper()
	iss := Start(opts...)
	t.Cleanup(iss.Close)
	return iss
}

// Start starts an issuer on 127.0.0.1 for a program that is not a test
// (the local demo, test/demo); the caller stops it with Close. Tests use New.
func Start(opts ...Option) *Issuer {
	cfg := config{now: time.Now, algs: []string{"RS256"}}
	for _, o := range opts {
		o(&cfg)
	}
	iss := &Issuer{
		prefix:       cfg.prefix,
		now:          cfg.now,
		algs:         cfg.algs,
		omitAlgs:     cfg.omitAlgs,
		discoveryMod: cfg.discoveryMod,
		handlers:     make(map[string]http.Handler),
	}
	iss.current = &key{kid: randomID(8), alg: "RS256", signer: nextRSAKey(), published: true}
	iss.keys = []*key{iss.current}
	if cfg.tls {
		iss.srv = httptest.NewTLSServer(http.HandlerFunc(iss.serve))
	} else {
		iss.srv = httptest.NewServer(http.HandlerFunc(iss.serve))
	}
	iss.url = iss.srv.URL + cfg.prefix
	return iss
}

// Close stops the issuer's server (New does it when the test ends).
func (i *Issuer) Close() { i.srv.Close() }

// URL is the issuer URL: the iss of its tokens.
func (i *Issuer) URL() string { return i.url }

// JWKSURL is where the JWKS is served.
func (i *Issuer) JWKSURL() string { return i.url + JWKSPath }

// Client returns an HTTP client that trusts the issuer's TLS certificate.
func (i *Issuer) Client() *http.Client { return i.srv.Client() }

// KID is the kid of the current signing key.
func (i *Issuer) KID() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.current.kid
}

// JWKSRequests counts requests to the JWKS path.
func (i *Issuer) JWKSRequests() int { return int(i.jwksReqs.Load()) }

// DiscoveryRequests counts requests to the discovery path.
func (i *Issuer) DiscoveryRequests() int { return int(i.discoveryReqs.Load()) }

// Rotate makes a new RSA key current and returns its kid. With keepOld the
// previous key stays published (as issuers do during a rotation); without,
// it is dropped from the JWKS but can still sign through WithKey.
func (i *Issuer) Rotate(keepOld bool) string {
	k := &key{kid: randomID(8), alg: "RS256", signer: nextRSAKey(), published: true}
	i.mu.Lock()
	defer i.mu.Unlock()
	if !keepOld {
		i.current.published = false
	}
	i.current = k
	i.keys = append(i.keys, k)
	return k.kid
}

// AddKey publishes another key, which does not become current, and returns
// its kid. alg picks the key type: RS*/PS* an RSA key, ES256/384/512 an EC
// key on the matching curve. attrs are set on (or, with a nil value, removed
// from) its JWK, e.g. {"use": "enc"} or {"alg": "RS512"}.
func (i *Issuer) AddKey(alg string, attrs map[string]any) string {
	var s crypto.Signer
	switch alg {
	case "ES256":
		s = nextECKey(elliptic.P256())
	case "ES384":
		s = nextECKey(elliptic.P384())
	case "ES512":
		s = nextECKey(elliptic.P521())
	default:
		s = nextRSAKey()
	}
	k := &key{kid: randomID(8), alg: alg, signer: s, published: true, attrs: attrs}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.keys = append(i.keys, k)
	return k.kid
}

// SetDiscovery replaces the discovery modifier (see WithDiscovery); nil
// serves the document unchanged.
func (i *Issuer) SetDiscovery(modify func(doc map[string]any)) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.discoveryMod = modify
}

// FailDiscovery makes the discovery endpoint answer status; 0 restores it.
func (i *Issuer) FailDiscovery(status int) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.failDiscovery = status
}

// FailJWKS makes the JWKS endpoint answer status; 0 restores it.
func (i *Issuer) FailJWKS(status int) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.failJWKS = status
}

// Handle serves h at path (relative to URL), in place of the built-in
// endpoint if there is one; nil removes it. Requests still count.
func (i *Issuer) Handle(path string, h http.Handler) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if h == nil {
		delete(i.handlers, path)
		return
	}
	i.handlers[path] = h
}

func (i *Issuer) serve(w http.ResponseWriter, r *http.Request) {
	rel, ok := strings.CutPrefix(r.URL.Path, i.prefix)
	if !ok {
		http.NotFound(w, r)
		return
	}
	switch rel {
	case DiscoveryPath:
		i.discoveryReqs.Add(1)
	case JWKSPath:
		i.jwksReqs.Add(1)
	}
	i.mu.Lock()
	h := i.handlers[rel]
	failDiscovery, failJWKS := i.failDiscovery, i.failJWKS
	i.mu.Unlock()
	switch {
	case h != nil:
		h.ServeHTTP(w, r)
	case rel == DiscoveryPath && failDiscovery != 0:
		http.Error(w, "discovery failing", failDiscovery)
	case rel == DiscoveryPath:
		writeJSON(w, i.Discovery())
	case rel == JWKSPath && failJWKS != 0:
		http.Error(w, "jwks failing", failJWKS)
	case rel == JWKSPath:
		writeJSON(w, i.JWKS())
	default:
		http.NotFound(w, r)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// Discovery returns the discovery document as currently served.
func (i *Issuer) Discovery() map[string]any {
	i.mu.Lock()
	defer i.mu.Unlock()
	doc := map[string]any{
		"issuer":                   i.url,
		"jwks_uri":                 i.url + JWKSPath,
		"response_types_supported": []string{"id_token"},
		"subject_types_supported":  []string{"public", "pairwise"},
		"claims_supported":         []string{"sub", "aud", "exp", "iat", "iss", "jti", "nbf", "ref", "repository", "repository_id"},
		"scopes_supported":         []string{"openid"},
	}
	if !i.omitAlgs {
		doc["id_token_signing_alg_values_supported"] = i.algs
	}
	if i.discoveryMod != nil {
		i.discoveryMod(doc)
	}
	return doc
}

// JWKS returns the key set as currently served.
func (i *Issuer) JWKS() map[string]any {
	i.mu.Lock()
	defer i.mu.Unlock()
	keys := []map[string]any{}
	for _, k := range i.keys {
		if k.published {
			keys = append(keys, k.jwk())
		}
	}
	return map[string]any{"keys": keys}
}

func (k *key) jwk() map[string]any {
	b, err := json.Marshal(jose.JSONWebKey{Key: k.signer.Public(), KeyID: k.kid, Algorithm: k.alg, Use: "sig"})
	if err != nil {
		panic("oidctest: marshal JWK: " + err.Error())
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		panic("oidctest: unmarshal JWK: " + err.Error())
	}
	for name, v := range k.attrs {
		if v == nil {
			delete(m, name)
		} else {
			m[name] = v
		}
	}
	return m
}

type mintConfig struct {
	alg        string
	kid        *string
	keyID      string
	unpublish  bool
	header     map[string]any
	rawHeader  []byte
	rawPayload []byte
	hmacSecret []byte
	signature  *string
}

// MintOption changes how Mint builds or signs a token.
type MintOption func(*mintConfig)

// WithAlg sets the header's alg and signs accordingly: RS*/PS* with an RSA
// key, ES* with an EC key of the right curve (an unpublished one if the
// signing key is not), HS* with HMAC (see WithHMACSecret), anything else
// (e.g. "none", "nOnE") with an empty signature.
func WithAlg(alg string) MintOption { return func(c *mintConfig) { c.alg = alg } }

// WithKid sets the header's kid without changing the signing key. An empty
// string is kept as an empty kid; use WithHeader("kid", nil) to drop it.
func WithKid(kid string) MintOption { return func(c *mintConfig) { c.kid = &kid } }

// WithKey signs with the issuer's key kid (published, rotated out, or added
// with AddKey), with its alg unless WithAlg says otherwise.
func WithKey(kid string) MintOption { return func(c *mintConfig) { c.keyID = kid } }

// WithUnpublishedKey signs with a key that no issuer publishes, keeping the
// current kid in the header: a forgery.
func WithUnpublishedKey() MintOption { return func(c *mintConfig) { c.unpublish = true } }

// WithHeader sets a header member after all others are set; a nil value
// removes it.
func WithHeader(name string, value any) MintOption {
	return func(c *mintConfig) {
		if c.header == nil {
			c.header = make(map[string]any)
		}
		c.header[name] = value
	}
}

// WithRawHeader uses these exact bytes as the header.
func WithRawHeader(b []byte) MintOption { return func(c *mintConfig) { c.rawHeader = b } }

// WithRawPayload uses these exact bytes as the payload, ignoring the claims
// (for duplicate members, odd numbers, invalid JSON).
func WithRawPayload(b []byte) MintOption { return func(c *mintConfig) { c.rawPayload = b } }

// WithHMACSecret sets the HS* secret. Default: the JSON of the current key's
// published JWK, which is what an algorithm-confusion attacker would use.
func WithHMACSecret(secret []byte) MintOption { return func(c *mintConfig) { c.hmacSecret = secret } }

// WithSignature replaces the signature segment (base64url text) verbatim.
func WithSignature(sig string) MintOption { return func(c *mintConfig) { c.signature = &sig } }

// Mint returns a compact JWT of claims, by default RS256-signed with the
// current key and a header {"alg","kid","typ"}.
func (i *Issuer) Mint(t testing.TB, claims map[string]any, opts ...MintOption) string {
	t.Helper()
	tok, err := i.Sign(claims, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Sign is Mint for a program that is not a test: it returns the error.
func (i *Issuer) Sign(claims map[string]any, opts ...MintOption) (string, error) {
	var mc mintConfig
	for _, o := range opts {
		o(&mc)
	}
	i.mu.Lock()
	k := i.current
	if mc.keyID != "" {
		k = nil
		for _, c := range i.keys {
			if c.kid == mc.keyID {
				k = c
			}
		}
	}
	var cur map[string]any
	if i.current != nil {
		cur = i.current.jwk()
	}
	i.mu.Unlock()
	if k == nil {
		return "", fmt.Errorf("oidctest: no key with kid %q", mc.keyID)
	}
	alg := k.alg
	if mc.alg != "" {
		alg = mc.alg
	}
	kid := k.kid
	if mc.kid != nil {
		kid = *mc.kid
	}
	signer := k.signer
	if mc.unpublish {
		signer = unpublished()
	}

	hdr := mc.rawHeader
	if hdr == nil {
		h := map[string]any{"alg": alg, "kid": kid, "typ": "JWT"}
		for name, v := range mc.header {
			if v == nil {
				delete(h, name)
			} else {
				h[name] = v
			}
		}
		var err error
		if hdr, err = json.Marshal(h); err != nil {
			return "", fmt.Errorf("oidctest: marshal header: %w", err)
		}
	}
	payload := mc.rawPayload
	if payload == nil {
		var err error
		if payload, err = json.Marshal(claims); err != nil {
			return "", fmt.Errorf("oidctest: marshal claims: %w", err)
		}
	}
	input := b64(hdr) + "." + b64(payload)
	if mc.signature != nil {
		return input + "." + *mc.signature, nil
	}
	secret := mc.hmacSecret
	if secret == nil {
		secret, _ = json.Marshal(cur)
	}
	sig, err := sign(alg, signer, secret, []byte(input))
	if err != nil {
		return "", fmt.Errorf("oidctest: sign: %w", err)
	}
	return input + "." + b64(sig), nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func sign(alg string, signer crypto.Signer, secret, input []byte) ([]byte, error) {
	if len(alg) != 5 {
		return nil, nil // "none" and other unknowns: no signature
	}
	var h crypto.Hash
	switch alg[2:] {
	case "256":
		h = crypto.SHA256
	case "384":
		h = crypto.SHA384
	case "512":
		h = crypto.SHA512
	}
	switch {
	case h == 0:
		return nil, nil
	case strings.HasPrefix(alg, "HS"):
		var newHash func() hash.Hash
		switch h {
		case crypto.SHA256:
			newHash = sha256.New
		case crypto.SHA384:
			newHash = sha512.New384
		default:
			newHash = sha512.New
		}
		m := hmac.New(newHash, secret)
		m.Write(input)
		return m.Sum(nil), nil
	case strings.HasPrefix(alg, "RS"), strings.HasPrefix(alg, "PS"):
		rk, ok := signer.(*rsa.PrivateKey)
		if !ok {
			rk = unpublished()
		}
		d := digest(h, input)
		if alg[0] == 'P' {
			return rsa.SignPSS(rand.Reader, rk, h, d, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		}
		return rsa.SignPKCS1v15(rand.Reader, rk, h, d)
	case strings.HasPrefix(alg, "ES"):
		curve := map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()}[alg]
		ek, ok := signer.(*ecdsa.PrivateKey)
		if !ok || ek.Curve != curve {
			ek = unpublishedEC(curve)
		}
		r, s, err := ecdsa.Sign(rand.Reader, ek, digest(h, input))
		if err != nil {
			return nil, err
		}
		size := (curve.Params().BitSize + 7) / 8
		out := make([]byte, 2*size)
		r.FillBytes(out[:size])
		s.FillBytes(out[size:])
		return out, nil
	}
	return nil, nil
}

func digest(h crypto.Hash, input []byte) []byte {
	d := h.New()
	d.Write(input)
	return d.Sum(nil)
}

var unpublishedECKeys sync.Map // elliptic.Curve → *ecdsa.PrivateKey

func unpublishedEC(c elliptic.Curve) *ecdsa.PrivateKey {
	if k, ok := unpublishedECKeys.Load(c); ok {
		return k.(*ecdsa.PrivateKey)
	}
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		panic(err)
	}
	actual, _ := unpublishedECKeys.LoadOrStore(c, k)
	return actual.(*ecdsa.PrivateKey)
}

// GitHubClaims returns the claims of a GitHub Actions token (the shape of a
// real one, as GitHub documents it: ClaimSet("github-actions.json")) from
// this issuer, for DefaultAudience, issued now (nbf 5 minutes before, exp 5
// minutes after), with a fresh jti. overrides replace claims; a nil value
// removes one.
func (i *Issuer) GitHubClaims(overrides map[string]any) map[string]any {
	return apply(i.issued(claimSet("github-actions.json"), 300, 300), overrides)
}

// GitLabClaims returns the claims of a GitLab CI id_token (the shape of a
// real one, as GitLab documents it: ClaimSet("gitlab-ci.json")) from this
// issuer, for DefaultAudience, issued now (nbf 5 seconds before, exp an
// hour after, GitLab's default job timeout), with a fresh jti. overrides
// replace claims; a nil value removes one.
func (i *Issuer) GitLabClaims(overrides map[string]any) map[string]any {
	return apply(i.issued(claimSet("gitlab-ci.json"), 5, 3600), overrides)
}

// issued makes claim set c this issuer's, for DefaultAudience, with a fresh
// jti, issued now, valid from before seconds earlier for lifetime seconds.
func (i *Issuer) issued(c map[string]any, before, lifetime int64) map[string]any {
	now := i.now().Unix()
	c["iss"], c["aud"], c["jti"] = i.url, DefaultAudience, uuid()
	c["iat"], c["nbf"], c["exp"] = now, now-before, now+lifetime
	return c
}

func apply(c, overrides map[string]any) map[string]any {
	for name, v := range maps.All(overrides) {
		if v == nil {
			delete(c, name)
		} else {
			c[name] = v
		}
	}
	return c
}
