package proxytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Front is a TLS server, certified by its own CA for the names it serves,
// that passes each request to the backend of its Host.
type Front struct {
	srv *httptest.Server
	// CAFile holds the CA's certificate (PEM), for SSL_CERT_FILE,
	// --ca-file, NODE_EXTRA_CA_CERTS or the Action's ca-file.
	CAFile string
}

// NewFront starts a Front for backends: a name (bridge.test) to the base
// URL of a local server.
func NewFront(t *testing.T, backends map[string]string) *Front {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "oidc-bridge proxytest CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	proxies := map[string]*httputil.ReverseProxy{}
	var names []string
	for name, backend := range backends {
		u, err := url.Parse(backend)
		if err != nil {
			t.Fatal(err)
		}
		proxies[name] = httputil.NewSingleHostReverseProxy(u)
		names = append(names, name)
	}
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	f := &Front{CAFile: filepath.Join(t.TempDir(), "ca.pem")}
	if err := os.WriteFile(f.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		p := proxies[host]
		if p == nil {
			http.Error(w, "no backend for "+host, http.StatusMisdirectedRequest)
			return
		}
		p.ServeHTTP(w, r)
	}))
	f.srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	return f
}

// Addr is the front's listening address (host:port).
func (f *Front) Addr() string { return f.srv.Listener.Addr().String() }

// Proxy is an HTTP proxy that opens CONNECT tunnels to the names it routes
// and to nothing else (403), recording every target asked for. A plain GET
// /targets answers the recorded targets as a JSON list (for tests in
// another process).
type Proxy struct {
	srv     *httptest.Server
	routes  map[string]string
	mu      sync.Mutex
	targets []string
}

// NewProxy starts a Proxy whose routes map a CONNECT target (bridge.test:443)
// to the address it really dials.
func NewProxy(t *testing.T, routes map[string]string) *Proxy {
	t.Helper()
	p := &Proxy{routes: routes}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

// URL is the proxy's URL, for HTTPS_PROXY.
func (p *Proxy) URL() string { return p.srv.URL }

// Targets are the CONNECT targets asked for so far, in order.
func (p *Proxy) Targets() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string{}, p.targets...)
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.Path == "/targets" && r.URL.Host == "" {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(p.Targets())
		return
	}
	if r.Method != http.MethodConnect {
		http.Error(w, "this proxy only tunnels (CONNECT)", http.StatusMethodNotAllowed)
		return
	}
	p.mu.Lock()
	p.targets = append(p.targets, r.Host)
	p.mu.Unlock()
	addr, ok := p.routes[r.Host]
	if !ok {
		http.Error(w, "no route to "+r.Host, http.StatusForbidden)
		return
	}
	upstream, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		upstream.Close()
		http.Error(w, "no hijacking", http.StatusInternalServerError)
		return
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		upstream.Close()
		return
	}
	if _, err := conn.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
		conn.Close()
		upstream.Close()
		return
	}
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(upstream, buf); closeWrite(upstream); done <- struct{}{} }()
	go func() { _, _ = io.Copy(conn, upstream); closeWrite(conn); done <- struct{}{} }()
	go func() { <-done; <-done; conn.Close(); upstream.Close() }()
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(interface{ CloseWrite() error }); ok {
		_ = tc.CloseWrite()
	}
}
