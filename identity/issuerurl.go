package identity

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// ValidateIssuerURL reports whether u may be registered as an issuer URL. It
// must be an absolute https URL with a lowercase host, no user info, query,
// fragment, percent-encoding, whitespace or control characters. With
// allowInsecure, http is accepted too, but only when the host is a loopback
// IP or "localhost".
//
// The check is deliberately strict because tokens are matched to issuers
// byte-for-byte: a registered spelling that differs from what the issuer puts
// in iss (case, trailing slash) could never match anyway, and one that varies
// in encoding invites confusion.
func ValidateIssuerURL(u string, allowInsecure bool) error {
	_, err := parseIssuerURL(u, allowInsecure)
	return err
}

func parseIssuerURL(u string, allowInsecure bool) (*url.URL, error) {
	if u == "" {
		return nil, errors.New("identity: issuer URL is empty")
	}
	if len(u) > maxIssuerURLLen {
		return nil, fmt.Errorf("identity: issuer URL longer than %d bytes", maxIssuerURLLen)
	}
	for i := 0; i < len(u); i++ {
		c := u[i]
		switch {
		case c <= ' ' || c == 0x7f:
			return nil, fmt.Errorf("identity: issuer URL %s contains whitespace or control characters", quote(u))
		case c >= 0x80:
			return nil, fmt.Errorf("identity: issuer URL %s contains non-ASCII characters", quote(u))
		case c == '%':
			return nil, fmt.Errorf("identity: issuer URL %s contains percent-encoding", quote(u))
		case c == '?' || c == '#':
			return nil, fmt.Errorf("identity: issuer URL %s has a query or fragment", quote(u))
		case c == '\\':
			return nil, fmt.Errorf("identity: issuer URL %s contains a backslash", quote(u))
		}
	}
	p, err := url.Parse(u)
	if err != nil {
		return nil, fmt.Errorf("identity: issuer URL %s: %w", quote(u), err)
	}
	if p.User != nil {
		return nil, fmt.Errorf("identity: issuer URL %s has user info", quote(u))
	}
	if p.Opaque != "" || p.Host == "" {
		return nil, fmt.Errorf("identity: issuer URL %s is not an absolute URL with a host", quote(u))
	}
	if p.Hostname() == "" {
		return nil, fmt.Errorf("identity: issuer URL %s has an empty host", quote(u))
	}
	if p.Host != strings.ToLower(p.Host) {
		return nil, fmt.Errorf("identity: issuer URL %s has upper-case letters in its host", quote(u))
	}
	if strings.Contains(p.Path, "/../") || strings.HasSuffix(p.Path, "/..") ||
		strings.Contains(p.Path, "/./") || strings.HasSuffix(p.Path, "/.") || strings.Contains(p.Path, "//") {
		return nil, fmt.Errorf("identity: issuer URL %s has dot or empty path segments", quote(u))
	}
	if !strings.HasPrefix(u, p.Scheme+"://") { // url.Parse lower-cases the scheme
		return nil, fmt.Errorf("identity: issuer URL %s must begin with a lower-case scheme and //", quote(u))
	}
	switch p.Scheme {
	case "https":
	case "http":
		if !allowInsecure {
			return nil, fmt.Errorf("identity: issuer URL %s is not https: %s", quote(u), insecureIssuerHint)
		}
		if !isLoopbackHost(p.Hostname()) {
			return nil, fmt.Errorf("identity: issuer URL %s: http is allowed only on loopback hosts (localhost, 127.0.0.1, [::1]), "+
				"even with %s=true; every other issuer must use https", quote(u), insecureIssuersVariable)
		}
	default:
		return nil, fmt.Errorf("identity: issuer URL %s must use https", quote(u))
	}
	return p, nil
}

// insecureIssuersVariable is the service's switch (internal/config) that
// lets issuers use plain http on loopback addresses.
const insecureIssuersVariable = "BRIDGE_ALLOW_INSECURE_ISSUERS"

// insecureIssuerHint tells the person registering an http issuer when plain
// http is acceptable and how, so that the switch is not taken for a fix in
// production: on loopback only the local machine can serve (or tamper
// with) the issuer's keys.
const insecureIssuerHint = "plain http is accepted only for an issuer on a loopback address (localhost, 127.0.0.1, [::1]) " +
	"and only when the service runs with " + insecureIssuersVariable + "=true, which is safe for local tests and demos only " +
	"(over http anyone on the path could substitute the issuer's signing keys): never set it in production, use the issuer's https URL"

// isLoopbackHost reports whether host is "localhost" or a loopback IP
// literal. Other names are not resolved: a name that resolves to 127.0.0.1
// today may not tomorrow.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validateJWKSURI checks that a discovery document's jwks_uri is on the
// issuer's own scheme and host, so a document cannot point key fetches at
// another server (SSRF, key substitution).
func validateJWKSURI(issuer *url.URL, raw string, allowInsecure bool) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("identity: discovery document has no jwks_uri")
	}
	if len(raw) > maxIssuerURLLen {
		return nil, errors.New("identity: jwks_uri too long")
	}
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return nil, fmt.Errorf("identity: jwks_uri %s contains invalid characters", quote(raw))
		}
	}
	j, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("identity: jwks_uri %s: %w", quote(raw), err)
	}
	if j.User != nil || j.Opaque != "" || j.Fragment != "" {
		return nil, fmt.Errorf("identity: jwks_uri %s is not a plain URL", quote(raw))
	}
	switch j.Scheme {
	case "https":
	case "http":
		if !allowInsecure || !isLoopbackHost(j.Hostname()) {
			return nil, fmt.Errorf("identity: jwks_uri %s is not https", quote(raw))
		}
	default:
		return nil, fmt.Errorf("identity: jwks_uri %s must use https", quote(raw))
	}
	if j.Scheme != issuer.Scheme || j.Host != issuer.Host {
		return nil, fmt.Errorf("identity: jwks_uri %s is not on the issuer's host %s", quote(raw), quote(issuer.Scheme+"://"+issuer.Host))
	}
	return j, nil
}
