package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestClientTransportProxy: the client commands' transport takes the proxy
// from the command's environment: HTTPS_PROXY for https, HTTP_PROXY for
// http, the lower-case forms too, NO_PROXY's hosts direct; loopback is
// never proxied (Go's rule).
func TestClientTransportProxy(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  map[string]string
		url  string
		want string // "" direct
	}{
		{"https", map[string]string{"HTTPS_PROXY": "http://proxy.corp:3128"}, "https://bridge.example.com/v1/exchange", "http://proxy.corp:3128"},
		{"lower case", map[string]string{"https_proxy": "http://proxy.corp:3128"}, "https://bridge.example.com/", "http://proxy.corp:3128"},
		{"http", map[string]string{"HTTP_PROXY": "http://proxy.corp:80"}, "http://token.example.com/", "http://proxy.corp:80"},
		{"NO_PROXY", map[string]string{"HTTPS_PROXY": "http://proxy.corp:3128", "NO_PROXY": ".internal.example,other"}, "https://bridge.internal.example/", ""},
		{"NO_PROXY miss", map[string]string{"HTTPS_PROXY": "http://proxy.corp:3128", "NO_PROXY": "internal.example"}, "https://bridge.example.com/", "http://proxy.corp:3128"},
		{"none", map[string]string{}, "https://bridge.example.com/", ""},
	} {
		tr, err := clientTransport(tc.env, "")
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodGet, tc.url, nil)
		u, err := tr.Proxy(req)
		got := ""
		if u != nil {
			got = u.String()
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: proxy %q (%v), want %q", tc.name, got, err, tc.want)
		}
	}
}

// TestClientTransportCAFile: --ca-file adds its certificates to the roots;
// a file without one, or no file, is an error naming the flag.
func TestClientTransportCAFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(bad, []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{bad, filepath.Join(dir, "missing.pem")} {
		if _, err := clientTransport(nil, f); err == nil || !strings.Contains(err.Error(), "--ca-file") {
			t.Errorf("%s: %v", f, err)
		}
	}
	tr, err := clientTransport(nil, "")
	if err != nil || tr.TLSClientConfig != nil && tr.TLSClientConfig.RootCAs != nil {
		t.Errorf("without --ca-file the system's roots stay in charge: %v", err)
	}
}
