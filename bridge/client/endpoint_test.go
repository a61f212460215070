package client_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/bridge/client"
)

func TestCheckEndpoint(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		endpoint string
		insecure bool   // ErrInsecureEndpoint
		wantErr  string // another refusal, by a part of its message
	}{
		{endpoint: "https://bridge.example.com"},
		{endpoint: "https://bridge.example.com:8443/prefix/"},
		{endpoint: "https://10.1.2.3"},
		{endpoint: "http://127.0.0.1:8080"},
		{endpoint: "http://localhost:1/"},
		{endpoint: "http://LocalHost"},
		{endpoint: "http://[::1]:9000"},
		{endpoint: "http://[0:0::1]"},
		{endpoint: "http://bridge.example.com", insecure: true},
		{endpoint: "HTTP://bridge.example.com/", insecure: true},
		{endpoint: "http://10.0.0.1:8080", insecure: true},
		{endpoint: "http://127.0.0.2", insecure: true},
		{endpoint: "http://127.1", insecure: true},
		{endpoint: "http://localhost.", insecure: true},
		{endpoint: "http://localhost.example.com", insecure: true},
		{endpoint: "http://127.0.0.1.nip.io", insecure: true},
		{endpoint: "http://[::ffff:127.0.0.1]", insecure: true},
		{endpoint: "http://[::1%25lo]", insecure: true},
		{endpoint: "http://0.0.0.0", insecure: true},
		{endpoint: "bridge.example.com", wantErr: "http(s) URL"},
		{endpoint: "ftp://bridge.example.com", wantErr: "http(s) URL"},
		{endpoint: "https://", wantErr: "http(s) URL"},
		{endpoint: "https:bridge.example.com", wantErr: "http(s) URL"},
		{endpoint: "https://bridge.example.com?x=1", wantErr: "query"},
		{endpoint: "https://bridge.example.com?", wantErr: "query"},
		{endpoint: "https://bridge.example.com#f", wantErr: "fragment"},
		{endpoint: "https://user:hunter2@bridge.example.com", wantErr: "user info"},
	} {
		u, err := client.CheckEndpoint(tc.endpoint)
		switch {
		case tc.insecure:
			if !errors.Is(err, client.ErrInsecureEndpoint) || !strings.Contains(err.Error(), "https://") {
				t.Errorf("CheckEndpoint(%q) = %v, want ErrInsecureEndpoint", tc.endpoint, err)
			}
		case tc.wantErr != "":
			if err == nil || errors.Is(err, client.ErrInsecureEndpoint) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("CheckEndpoint(%q) = %v, want an error about %s", tc.endpoint, err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("CheckEndpoint(%q) shows the password: %v", tc.endpoint, err)
			}
		case err != nil || u == nil:
			t.Errorf("CheckEndpoint(%q) = %v, want it accepted", tc.endpoint, err)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestInsecureEndpointNeverDials: a plain http endpoint off loopback fails
// every call before anything reaches the transport, retries or not.
func TestInsecureEndpointNeverDials(t *testing.T) {
	t.Parallel()
	var sent atomic.Int32
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		sent.Add(1)
		t.Errorf("a request went out to %s", r.URL)
		return nil, errors.New("no network in this test")
	})}
	c := client.New("http://bridge.example.com", "admin-secret", client.WithHTTPClient(hc))
	calls := map[string]func(*client.Client) error{"GET": get, "PUT": put, "DELETE": del, "POST": post}
	for name, call := range calls {
		err := call(c)
		if !errors.Is(err, client.ErrInsecureEndpoint) || strings.Contains(err.Error(), "admin-secret") {
			t.Errorf("%s: %v, want ErrInsecureEndpoint", name, err)
		}
	}
	if sent.Load() != 0 {
		t.Errorf("%d requests sent", sent.Load())
	}
	// Loopback http is allowed (the e2e tests and local demos use it).
	srv, n := flaky(t, 0, 200, "")
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("httptest listens on %s", srv.URL)
	}
	if err := get(client.New(srv.URL, "tok")); err != nil || n.Load() != 1 {
		t.Errorf("http on 127.0.0.1: %v after %d calls", err, n.Load())
	}
}

// TestRedirectNotFollowed: a bridge behind https that redirects (here to
// plain http on its own host, where Go's http.Client would keep the
// Authorization header) gets one request; the Location gets none; the call
// fails with a RedirectError naming where it pointed, and is not retried.
func TestRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	var plainCalls atomic.Int32
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		plainCalls.Add(1)
		t.Errorf("the plain listener got %s %s with Authorization %q", r.Method, r.URL, r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"issuers":[],"name":"x","issuer":"github","provider":"jwt","target":{"audience":"a"}}`))
	}))
	t.Cleanup(plain.Close)
	for _, status := range []int{301, 302, 303, 307, 308} {
		var tlsCalls atomic.Int32
		srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tlsCalls.Add(1)
			http.Redirect(w, r, plain.URL+r.URL.RequestURI(), status)
		}))
		t.Cleanup(srv.Close)
		// srv.Client trusts srv's certificate and follows redirects: the
		// client must not.
		c := client.New(srv.URL, "admin-secret", client.WithHTTPClient(srv.Client()), client.WithRetries(3))
		for name, call := range map[string]func(*client.Client) error{"GET": get, "PUT": put, "DELETE": del, "POST": post} {
			tlsCalls.Store(0)
			err := call(c)
			var re *client.RedirectError
			if !errors.As(err, &re) || re.Status != status || re.Location != plain.URL {
				t.Errorf("%d %s: %v, want a RedirectError to %s", status, name, err, plain.URL)
				continue
			}
			if !strings.Contains(err.Error(), plain.URL) || strings.Contains(err.Error(), "admin-secret") {
				t.Errorf("%d %s: error %q", status, name, err)
			}
			if tlsCalls.Load() != 1 {
				t.Errorf("%d %s: %d calls to the bridge, want 1 (no retry)", status, name, tlsCalls.Load())
			}
		}
	}
	if plainCalls.Load() != 0 {
		t.Errorf("the plain listener got %d requests", plainCalls.Load())
	}
}
