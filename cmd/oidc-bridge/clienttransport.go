package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"golang.org/x/net/http/httpproxy"

	"github.com/oidc-bridge/oidc-bridge/bridge/client"
)

// envCAFile is exchange's --ca-file default.
const envCAFile = "OIDC_BRIDGE_CA_FILE"

// httpClientCA is the client commands' HTTP client: it follows no
// redirect, takes the proxy from the command's environment (HTTPS_PROXY,
// HTTP_PROXY, NO_PROXY, as Go reads them) and trusts the system's roots
// ($SSL_CERT_FILE's when set, Go's rule) plus caFile's certificates.
// Tests that set app.transport get theirs as it is.
func (a *app) httpClientCA(timeout time.Duration, caFile string) (*http.Client, error) {
	rt := a.transport
	if rt == nil {
		t, err := clientTransport(environMap(a.environ), caFile)
		if err != nil {
			return nil, err
		}
		rt = t
	}
	return client.NoRedirects(&http.Client{Transport: rt, Timeout: timeout}), nil
}

// clientTransport is http.DefaultTransport's settings with the proxy of env
// and, with caFile, a root pool of the system's roots and the file's.
func clientTransport(env map[string]string, caFile string) (*http.Transport, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	get := func(upper string) string {
		if v := env[upper]; v != "" {
			return v
		}
		return env[strings.ToLower(upper)]
	}
	proxy := (&httpproxy.Config{HTTPProxy: get("HTTP_PROXY"), HTTPSProxy: get("HTTPS_PROXY"), NoProxy: get("NO_PROXY")}).ProxyFunc()
	t.Proxy = func(r *http.Request) (*url.URL, error) { return proxy(r.URL) }
	if caFile == "" {
		return t, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("--ca-file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("--ca-file: " + caFile + " holds no PEM certificate")
	}
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return t, nil
}
