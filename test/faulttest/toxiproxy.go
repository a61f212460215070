package faulttest

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/Shopify/toxiproxy/v2/toxics"
	"github.com/rs/zerolog"
)

// Proxy is a toxiproxy proxy (github.com/Shopify/toxiproxy/v2) run in this
// process: a TCP link from a loopback address to an upstream, on which a
// test adds toxics (latency, bandwidth, reset_peer, timeout, CommitCut)
// and which it can disable (connections refused and cut) and enable again.
type Proxy struct {
	t testing.TB
	p *toxiproxy.Proxy
}

// NewProxy starts a proxy named name to upstream (host:port) on a free
// loopback port; it stops at the end of the test.
func NewProxy(t testing.TB, name, upstream string) *Proxy {
	t.Helper()
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	p := toxiproxy.NewProxy(srv, name, "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		t.Fatalf("faulttest: start proxy %s: %v", name, err)
	}
	t.Cleanup(p.Stop)
	return &Proxy{t: t, p: p}
}

// Addr is the proxy's listen address (host:port).
func (p *Proxy) Addr() string { return p.p.Listen }

// Add adds a toxic of type typ (latency, bandwidth, reset_peer, timeout,
// slicer, limit_data, slow_close, or CommitCutType) named name on stream
// ("upstream": towards the server, "downstream": towards the client),
// applied to each connection with probability toxicity, with attributes
// attrs. It returns the toxic, whose concrete type is the toxic's.
func (p *Proxy) Add(name, typ, stream string, toxicity float32, attrs any) toxics.Toxic {
	p.t.Helper()
	body, err := json.Marshal(map[string]any{"name": name, "type": typ, "stream": stream, "toxicity": toxicity, "attributes": attrs})
	if err != nil {
		p.t.Fatal(err)
	}
	w, err := p.p.Toxics.AddToxicJson(bytes.NewReader(body))
	if err != nil {
		p.t.Fatalf("faulttest: add toxic %s to %s: %v", name, p.p.Name, err)
	}
	return w.Toxic
}

// Remove removes the toxic name; a timeout toxic's held connections close.
func (p *Proxy) Remove(name string) {
	p.t.Helper()
	if err := p.p.Toxics.RemoveToxic(p.t.Context(), name); err != nil {
		p.t.Fatalf("faulttest: remove toxic %s from %s: %v", name, p.p.Name, err)
	}
}

// Disable stops listening and cuts every connection: a partition that
// refuses connections.
func (p *Proxy) Disable() { p.p.Stop() }

// Enable listens again on the same address.
func (p *Proxy) Enable() {
	p.t.Helper()
	if err := p.p.Start(); err != nil && err != toxiproxy.ErrProxyAlreadyStarted {
		p.t.Fatalf("faulttest: restart proxy %s: %v", p.p.Name, err)
	}
}

// CommitCutType is the toxic type of CommitCut.
const CommitCutType = "oidc_bridge_commit_cut"

func init() { toxics.Register(CommitCutType, new(CommitCut)) }

// CommitCut is a toxic for the upstream stream of a PostgreSQL link: it
// lets a chosen statement through to the server and then closes the
// connection before any answer can come back, as a network that fails in
// the middle of a commit. The server runs (and commits) the statement; the
// client sees its connection drop and cannot know. Statements are chosen
// by their text: Simple matches a simple-protocol query by prefix
// (case-insensitive, e.g. "commit", which is how pgx ends a transaction),
// Prepared a prepared statement by a substring of its text (its Parse
// message names it, and each later Bind of that name is the statement's
// execution). Every n-th matching execution is cut (Every 0 or 1: each).
type CommitCut struct {
	Every    int      `json:"every"`
	Simple   []string `json:"simple"`
	Prepared []string `json:"prepared"`

	mu    sync.Mutex
	seen  int
	cuts  int
	names map[string]bool // prepared statements whose text matched
}

// Cuts is the number of connections the toxic has cut.
func (c *CommitCut) Cuts() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cuts
}

// Pipe forwards each chunk and closes the stub after a chunk that carries
// a chosen statement.
func (c *CommitCut) Pipe(stub *toxics.ToxicStub) {
	for {
		select {
		case <-stub.Interrupt:
			return
		case chunk := <-stub.Input:
			if chunk == nil {
				stub.Close()
				return
			}
			cut := c.decide(chunk.Data)
			stub.Output <- chunk
			if cut {
				stub.Close()
				return
			}
		}
	}
}

// decide reports whether the frontend messages in data execute a chosen
// statement that is the Every-th match.
func (c *CommitCut) decide(data []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	matched, unnamed := false, false
	for pos := 0; pos+5 <= len(data); {
		typ, n := data[pos], int(binary.BigEndian.Uint32(data[pos+1:pos+5]))
		if n < 4 || pos+1+n > len(data) {
			break // a startup message, or one split across chunks
		}
		body := data[pos+5 : pos+1+n]
		pos += 1 + n
		switch typ {
		case 'Q':
			q := strings.ToLower(strings.TrimSpace(cstring(body)))
			for _, s := range c.Simple {
				if strings.HasPrefix(q, strings.ToLower(s)) {
					matched = true
				}
			}
		case 'P':
			name, rest := splitCString(body)
			query := cstring(rest)
			for _, s := range c.Prepared {
				if strings.Contains(query, s) && name == "" {
					unnamed = true // used by the Bind that follows in this chunk
				} else if strings.Contains(query, s) {
					if c.names == nil {
						c.names = map[string]bool{}
					}
					c.names[name] = true
				}
			}
		case 'B':
			_, rest := splitCString(body) // the portal
			if stmt := cstring(rest); c.names[stmt] || (stmt == "" && unnamed) {
				matched = true
			}
		}
	}
	if !matched {
		return false
	}
	c.seen++
	if c.Every > 1 && c.seen%c.Every != 0 {
		return false
	}
	c.cuts++
	return true
}

// cstring is b up to its first NUL.
func cstring(b []byte) string {
	s, _ := splitCString(b)
	return s
}

// splitCString splits b after its first NUL.
func splitCString(b []byte) (string, []byte) {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return string(b[:i]), b[i+1:]
	}
	return string(b), nil
}

var _ toxics.Toxic = (*CommitCut)(nil)

// String names the proxy for messages.
func (p *Proxy) String() string {
	return fmt.Sprintf("%s (%s → %s)", p.p.Name, p.p.Listen, p.p.Upstream)
}

// FreePort is a loopback TCP port free right now.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
