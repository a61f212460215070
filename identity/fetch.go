package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

var errCrossOriginRedirect = errors.New("identity: redirect to another scheme or host refused")

// newHTTPClient copies base and installs the redirect policy: a discovery or
// JWKS request may be redirected only within its own scheme and host, so a
// discovery document cannot be served from, or steer key fetches to, another
// server.
func newHTTPClient(base *http.Client) *http.Client {
	var c http.Client
	if base != nil {
		c = *base
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultHTTPTimeout
	}
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 3 {
			return errCrossOriginRedirect
		}
		orig := via[0].URL
		if req.URL.Scheme != orig.Scheme || req.URL.Host != orig.Host {
			return fmt.Errorf("%w: %s to %s", errCrossOriginRedirect, quote(orig.Host), quote(req.URL.Scheme+"://"+req.URL.Host))
		}
		return nil
	}
	return &c
}

// fetchError says whether a failed fetch means "the other side is down"
// (retry later, 503) or "the other side answered something we refuse".
type fetchError struct {
	unavailable bool
	err         error
}

func (e *fetchError) Error() string { return e.err.Error() }
func (e *fetchError) Unwrap() error { return e.err }

// get fetches u and returns at most maxDocSize bytes of a 200 response.
func (v *Verifier) get(ctx context.Context, u string) ([]byte, *fetchError) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, &fetchError{err: fmt.Errorf("identity: build request: %w", err)}
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		if errors.Is(err, errCrossOriginRedirect) {
			return nil, &fetchError{err: fmt.Errorf("identity: GET %s: %w", u, err)}
		}
		return nil, &fetchError{unavailable: true, err: fmt.Errorf("identity: GET %s: %w", u, err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		unavailable := resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests ||
			resp.StatusCode == http.StatusRequestTimeout
		// A 3xx here is a redirect the client did not follow (no Location).
		return nil, &fetchError{unavailable: unavailable, err: fmt.Errorf("identity: GET %s: status %d", u, resp.StatusCode)}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocSize+1))
	if err != nil {
		return nil, &fetchError{unavailable: true, err: fmt.Errorf("identity: GET %s: read body: %w", u, err)}
	}
	if len(body) > maxDocSize {
		return nil, &fetchError{err: fmt.Errorf("identity: GET %s: body larger than %d bytes", u, maxDocSize)}
	}
	return body, nil
}

// discovery is what Verify uses from an issuer's discovery document.
type discovery struct {
	jwksURI string
	algs    []string
	fetched time.Time
}

// fetchDiscovery reads and checks {issuer}/.well-known/openid-configuration.
func (v *Verifier) fetchDiscovery(ctx context.Context, issuer string) (*discovery, *Error) {
	iu, err := parseIssuerURL(issuer, v.cfg.AllowInsecureIssuers)
	if err != nil {
		return nil, &Error{Reason: ReasonUntrustedIssuer, Err: err}
	}
	wellKnown := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	body, ferr := v.get(ctx, wellKnown)
	if ferr != nil {
		if ferr.unavailable {
			return nil, &Error{Reason: ReasonDiscoveryUnavailable, Err: ferr.err}
		}
		return nil, &Error{Reason: ReasonDiscoveryFailed, Err: ferr.err}
	}
	doc, err := parseObject(body)
	if err != nil {
		return nil, fail(ReasonDiscoveryFailed, "discovery document of %s: %v", quote(issuer), err)
	}
	var d struct {
		Issuer  string
		JWKSURI string
		Algs    []string
	}
	for name, dst := range map[string]any{
		"issuer":                                &d.Issuer,
		"jwks_uri":                              &d.JWKSURI,
		"id_token_signing_alg_values_supported": &d.Algs,
	} {
		if raw, ok := doc[name]; ok {
			if err := json.Unmarshal(raw, dst); err != nil {
				return nil, fail(ReasonDiscoveryFailed, "discovery document of %s: %s: %v", quote(issuer), name, err)
			}
		}
	}
	if d.Issuer != issuer {
		return nil, fail(ReasonDiscoveryFailed, "discovery document names issuer %s, want %s", quote(d.Issuer), quote(issuer))
	}
	ju, err := validateJWKSURI(iu, d.JWKSURI, v.cfg.AllowInsecureIssuers)
	if err != nil {
		return nil, &Error{Reason: ReasonDiscoveryFailed, Err: err}
	}
	var algs []string
	for _, a := range d.Algs {
		if asymmetricAlgs[a] && !slices.Contains(algs, a) {
			algs = append(algs, a)
		}
	}
	if len(algs) == 0 {
		// OpenID Connect Discovery makes RS256 the one algorithm every
		// provider supports.
		algs = []string{"RS256"}
	}
	return &discovery{jwksURI: ju.String(), algs: algs}, nil
}
