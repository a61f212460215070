package identity

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"

	"golang.org/x/sync/singleflight"
)

// IssuerSource finds registered issuers. The lookup is byte-exact on the URL:
// no trimming, case folding or trailing-slash tolerance.
type IssuerSource interface {
	// IssuerByURL returns the issuer registered with exactly this URL, or an
	// error matching ErrIssuerNotFound. Any other error means the source is
	// failing and makes Verify fail with ErrUnavailable.
	IssuerByURL(ctx context.Context, url string) (Issuer, error)
}

// Verifier verifies CI OIDC tokens against the issuers of an IssuerSource. It
// caches discovery documents and keys per issuer and is safe for concurrent
// use; create one per process.
type Verifier struct {
	cfg     Config
	src     IssuerSource
	client  *http.Client
	flights singleflight.Group

	mu      sync.Mutex
	issuers map[string]*issuerState
}

// NewVerifier returns a Verifier using src to find issuers.
func NewVerifier(cfg Config, src IssuerSource) *Verifier {
	cfg = cfg.withDefaults()
	return &Verifier{
		cfg:     cfg,
		src:     src,
		client:  newHTTPClient(cfg.HTTPClient),
		issuers: make(map[string]*issuerState),
	}
}

// Verify checks rawToken (the bare JWT, without "Bearer ") and returns its
// normalised claims. Every error matches one of ErrInvalidToken,
// ErrUntrustedIssuer or ErrUnavailable and is an *Error with a Reason.
//
// Nothing is fetched for a token whose iss is not a registered, enabled
// issuer, and the token's header and size are checked before that lookup.
func (v *Verifier) Verify(ctx context.Context, rawToken string) (*Claims, error) {
	c, e := v.verify(ctx, rawToken)
	if e != nil {
		return nil, e
	}
	return c, nil
}

func (v *Verifier) verify(ctx context.Context, raw string) (*Claims, *Error) {
	tok, e := parseToken(raw)
	if e != nil {
		return nil, e
	}
	iss, e := unverifiedIssuer(tok.claims)
	if e != nil {
		return nil, e
	}
	issuer, e := v.lookup(ctx, iss)
	if e != nil {
		return nil, e
	}
	s := v.issuerState(issuer)
	disc, e := v.keySource(ctx, s, issuer)
	if e != nil {
		return nil, e
	}
	if !slices.Contains(disc.algs, tok.alg) {
		return nil, fail(ReasonUnsupportedAlg, "issuer does not sign with %s (it supports %v)", tok.alg, disc.algs)
	}

	if e := v.checkSignature(ctx, s, disc, tok); e != nil {
		return nil, e
	}
	claims, e := v.checkClaims(tok.claims, tok.payload, issuer)
	if e != nil {
		return nil, e
	}
	if e := checkOIDCMembers(tok.claims); e != nil {
		return nil, e
	}
	sum := sha256.Sum256([]byte(raw))
	claims.TokenSHA256 = hex.EncodeToString(sum[:])
	return claims, nil
}

// checkOIDCMembers refuses a token whose OpenID Connect members other than
// those checkClaims reads have the wrong JSON type: sub, nonce and at_hash
// strings; nbf a NumericDate; distributed claims (_claim_names, each naming
// a source of _claim_sources). Names match as encoding/json matches them,
// ignoring case (parseObject has refused names that differ only in case).
// These are the members go-oidc's ID token type decodes: tokens it refused
// stay refused now that the token is parsed once, here.
func checkOIDCMembers(obj jsonObject) *Error {
	var (
		names   map[string]string
		sources map[string]struct {
			Endpoint    string `json:"endpoint"`
			AccessToken string `json:"access_token"`
		}
	)
	for name, raw := range obj {
		var err error
		switch foldName(name) {
		case "sub", "nonce", "at_hash":
			var s string
			err = json.Unmarshal(raw, &s)
		case "nbf":
			var n *json.Number
			if err = json.Unmarshal(raw, &n); err == nil && n != nil {
				if _, ierr := n.Int64(); ierr != nil {
					_, err = n.Float64()
				}
			}
		case "_claim_names":
			err = json.Unmarshal(raw, &names)
		case "_claim_sources":
			err = json.Unmarshal(raw, &sources)
		}
		if err != nil {
			return fail(ReasonInvalidClaim, "%s has the wrong type: %v", quote(name), err)
		}
	}
	for claim, src := range names {
		if _, ok := sources[src]; src == "" || !ok {
			return fail(ReasonInvalidClaim, "distributed claim %s names no source", quote(claim))
		}
	}
	return nil
}

// unverifiedIssuer reads iss before the signature is checked, only to know
// which issuer's keys to check it with.
func unverifiedIssuer(obj jsonObject) (string, *Error) {
	raw, ok := obj["iss"]
	if !ok {
		return "", fail(ReasonMissingClaim, "token has no iss")
	}
	var iss string
	if raw[0] != '"' || json.Unmarshal(raw, &iss) != nil {
		return "", fail(ReasonInvalidClaim, "iss is not a string")
	}
	if iss == "" {
		return "", fail(ReasonMissingClaim, "iss is empty")
	}
	return iss, nil
}

func (v *Verifier) lookup(ctx context.Context, iss string) (Issuer, *Error) {
	if len(iss) > maxIssuerURLLen || hasControl(iss) {
		return Issuer{}, fail(ReasonUntrustedIssuer, "issuer %s is not registered", quote(iss))
	}
	issuer, err := v.src.IssuerByURL(ctx, iss)
	if errors.Is(err, ErrIssuerNotFound) {
		return Issuer{}, &Error{Reason: ReasonUntrustedIssuer, Err: fmt.Errorf("issuer %s is not registered: %w", quote(iss), err)}
	}
	if err != nil {
		return Issuer{}, &Error{Reason: ReasonIssuerSourceUnavailable, Err: fmt.Errorf("look up issuer %s: %w", quote(iss), err)}
	}
	switch {
	case issuer.URL != iss:
		return Issuer{}, fail(ReasonUntrustedIssuer, "issuer source answered %s for %s", quote(issuer.URL), quote(iss))
	case !issuer.Enabled:
		return Issuer{}, fail(ReasonUntrustedIssuer, "issuer %s is disabled", quote(issuer.Name))
	case !issuer.Kind.Valid():
		return Issuer{}, fail(ReasonUntrustedIssuer, "issuer %s has unknown kind %s", quote(issuer.Name), quote(string(issuer.Kind)))
	}
	if err := ValidateIssuerURL(iss, v.cfg.AllowInsecureIssuers); err != nil {
		return Issuer{}, &Error{Reason: ReasonUntrustedIssuer, Err: err}
	}
	return issuer, nil
}

// checkClaims applies the time and audience rules and normalises the claims.
func (v *Verifier) checkClaims(obj jsonObject, payload []byte, issuer Issuer) (*Claims, *Error) {
	maxAge, maxLifetime := issuer.Limits()
	tc, e := checkTimes(obj, v.cfg.Now(), v.cfg.ClockSkew, min(maxLifetime, v.cfg.MaxTokenLifetime), min(maxAge, v.cfg.MaxTokenAge))
	if e != nil {
		return nil, e
	}
	aud, e := checkAudience(obj, issuer.Audiences)
	if e != nil {
		return nil, e
	}
	c, e := normalize(issuer.Kind, obj, payload)
	if e != nil {
		return nil, e
	}
	c.IssuerName = issuer.Name
	c.Audience = aud
	c.IssuedAt, c.NotBefore, c.Expiry = tc.iat, tc.nbf, tc.exp
	return c, nil
}

// checkAudience requires exactly one audience value, byte-equal to one of the
// issuer's configured audiences. A token for several audiences is refused
// even if one of them is ours: it was meant to be presented elsewhere too.
func checkAudience(obj jsonObject, allowed []string) (string, *Error) {
	raw, ok := obj["aud"]
	if !ok {
		return "", fail(ReasonAudienceMismatch, "token has no aud")
	}
	var aud string
	switch raw[0] {
	case '"':
		if json.Unmarshal(raw, &aud) != nil {
			return "", fail(ReasonAudienceMismatch, "aud is not a string")
		}
	case '[':
		var list []json.RawMessage
		if json.Unmarshal(raw, &list) != nil || len(list) != 1 || list[0][0] != '"' ||
			json.Unmarshal(list[0], &aud) != nil {
			return "", fail(ReasonAudienceMismatch, "aud must be one string")
		}
	default:
		return "", fail(ReasonAudienceMismatch, "aud is not a string")
	}
	if aud == "" {
		return "", fail(ReasonAudienceMismatch, "aud is empty")
	}
	for _, a := range allowed {
		if a != "" && a == aud {
			return aud, nil
		}
	}
	return "", fail(ReasonAudienceMismatch, "aud %s is not an audience of this issuer", quote(aud))
}
