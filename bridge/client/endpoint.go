package client

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// The rules of this file guard every client that sends a bearer token to a
// bridge: this package (the Terraform provider), and the CLI's exchange and
// explain. The GitHub Action applies the same rule to its bridge-url
// (actions/credentials/src/main.mjs); keep the two the same.

// ErrInsecureEndpoint is a plain http:// bridge URL on a host that is not
// loopback: a bearer token sent there crosses the network in clear text.
// It comes wrapped, with the URL, from CheckEndpoint.
var ErrInsecureEndpoint = errors.New("plain http:// is allowed only on a loopback address (localhost, 127.0.0.1, [::1]): use https://")

// CheckEndpoint parses endpoint, the base URL of a bridge, and checks that a
// bearer token may be sent to it: https://, or plain http:// only when the
// host is loopback, and no query, fragment or user info. It never resolves
// or dials anything.
//
// Loopback means the name "localhost" (in any case) or the address
// literals 127.0.0.1 and ::1, as the GitHub Action has it. Other names are
// not resolved (a name that resolves to 127.0.0.1 today may not tomorrow),
// and other 127/8 addresses are refused too, so that one bridge URL is
// accepted or refused alike by the Action, the CLI and the Terraform
// provider.
func CheckEndpoint(endpoint string) (*url.URL, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Opaque != "" {
		return nil, fmt.Errorf("client: the bridge URL %q must be an http(s) URL like https://bridge.example.com", endpoint)
	}
	if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return nil, fmt.Errorf("client: the bridge URL %q must not carry a query, fragment or user info", u.Redacted())
	}
	if u.Scheme == "http" && !IsLoopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("client: the bridge URL %q: %w", u.Redacted(), ErrInsecureEndpoint)
	}
	return u, nil
}

// IsLoopbackHost reports whether host (a URL's Hostname, without brackets
// or port) is one on which plain http may carry a bearer token: "localhost"
// or the literal 127.0.0.1 or ::1. See CheckEndpoint.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && (a == netip.AddrFrom4([4]byte{127, 0, 0, 1}) || a == netip.IPv6Loopback())
}

// RedirectError is a redirect answer, which the clients never follow: Go's
// http.Client would send the Authorization header along to the Location on
// the same host, even from https down to plain http, and a bridge has no
// business redirecting an API call.
type RedirectError struct {
	// Status is the redirect's HTTP status code.
	Status int
	// Location is the scheme and host that the redirect points to.
	Location string
}

// Error says what happened and what to do; the callers prefix it.
func (e *RedirectError) Error() string {
	return fmt.Sprintf("the bridge answered %d, a redirect to %s, which is not followed (a bearer token goes only to the URL given): "+
		"set the bridge URL to the bridge's own https:// address", e.Status, e.Location)
}

// RefuseRedirect is an http.Client's CheckRedirect that follows no
// redirect: the call fails with a *RedirectError (wrapped in the
// *url.Error of http.Client.Do) before anything is sent to the Location.
func RefuseRedirect(req *http.Request, _ []*http.Request) error {
	e := &RedirectError{Location: req.URL.Scheme + "://" + req.URL.Host}
	if req.Response != nil {
		e.Status = req.Response.StatusCode
	}
	return e
}

// NoRedirects returns a copy of hc (nil: a new http.Client) that follows no
// redirect.
func NoRedirects(hc *http.Client) *http.Client {
	var c http.Client
	if hc != nil {
		c = *hc
	}
	c.CheckRedirect = RefuseRedirect
	return &c
}
