// Package hosttest maps cloud endpoints' host names to local fakes for
// tests: a Transport sends a request for https://sts.us-gov-west-1.amazonaws.com/
// to the fake that stands for that host, with the Host header the SDK
// resolved left as it was, so that the fake sees (and records) which
// endpoint the SDK chose, and SigV4 signatures over the host still verify.
// A request for a host the test did not map fails: an SDK that resolved
// the wrong endpoint (the global STS, the public cloud's authority) is
// caught rather than sent anywhere.
//
// It does not resolve names or terminate TLS: the fake's own scheme and
// address are dialled (an https fake verified with its own certificate by
// Base). It is for tests only: production code must never import it.
package hosttest

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// Transport is an http.RoundTripper that sends each request to the fake
// mapped to its host.
type Transport struct {
	// Hosts maps a host name (without port, lower case) to a fake's base
	// URL (scheme://host:port).
	Hosts map[string]string
	// Base sends the rewritten requests; nil means http.DefaultTransport.
	Base http.RoundTripper

	mu   sync.Mutex
	seen []string
}

// Client is an http.Client with a Transport of hosts over base.
func Client(hosts map[string]string, base http.RoundTripper) (*http.Client, *Transport) {
	t := &Transport{Hosts: hosts, Base: base}
	return &http.Client{Transport: t}, t
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	host := strings.ToLower(r.URL.Hostname())
	t.mu.Lock()
	t.seen = append(t.seen, host)
	t.mu.Unlock()
	fake, ok := t.Hosts[host]
	if !ok {
		if r.Body != nil {
			_ = r.Body.Close()
		}
		return nil, fmt.Errorf("hosttest: no fake for host %q", host)
	}
	u, err := url.Parse(fake)
	if err != nil {
		return nil, fmt.Errorf("hosttest: fake URL %q: %w", fake, err)
	}
	r2 := r.Clone(r.Context())
	if r2.Host == "" {
		r2.Host = r.URL.Host
	}
	r2.URL.Scheme, r2.URL.Host = u.Scheme, u.Host
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(r2)
}

// Seen lists the host of every request, in order, mapped or not.
func (t *Transport) Seen() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.seen...)
}
