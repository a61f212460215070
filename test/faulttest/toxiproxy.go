package faulttest

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

// CommitCutType is the toxic type of CommitCut; CommitCutAnswerType that
// of its companion on the downstream stream, which AddCommitCut adds too.
const (
	CommitCutType       = "oidc_bridge_commit_cut"
	CommitCutAnswerType = "oidc_bridge_commit_cut_answer"
)

func init() {
	toxics.Register(CommitCutType, new(CommitCut))
	toxics.Register(CommitCutAnswerType, new(commitCutAnswer))
}

// AddCommitCut adds a CommitCut named name on the upstream stream, with
// its companion (name + "-answer") on the downstream stream, and returns
// it. The companion drops whatever the server answers on a connection
// after its cut, so the client never reads the answer to a cut statement,
// however quickly the server sends it: closing the upstream side alone
// races the server's reply. Add it before the link's clients connect.
func (p *Proxy) AddCommitCut(name string, rule CommitCutRule) *CommitCut {
	p.t.Helper()
	c := p.Add(name, CommitCutType, "upstream", 1, rule).(*CommitCut)
	a := p.Add(name+"-answer", CommitCutAnswerType, "downstream", 1, nil).(*commitCutAnswer)
	a.cut.Store(c)
	return c
}

// CommitCut is a toxic for the upstream stream of a PostgreSQL link: it
// lets a chosen statement through to the server and then closes the
// connection, and its companion on the downstream stream drops any answer,
// as a network that fails in the middle of a commit (add both with
// Proxy.AddCommitCut). The server runs (and commits) the statement; the
// client sees its connection drop and cannot know.
//
// Statements are chosen by their text, whichever protocol carries them:
// Simple by prefix (case-insensitive, e.g. "commit"), Prepared by a
// substring. A simple query ('Q') is matched by its text; an extended-
// protocol execution by the text its statement was parsed with: a Bind of
// a statement whose Parse matched (pgx prepares every statement with
// arguments, and the statements of a batch, "COMMIT" included, under a
// name derived from their text, and afterwards only binds that name). The
// connection is cut after the chunk that carries the Sync ending the
// matched execution, so the server has the whole request. Every n-th
// matching execution is cut (Every 0 or 1: each).
//
// The toxic reads the client's messages across chunk boundaries (a message
// split between two reads is reassembled, per connection), and learns the
// names of the statements from every Parse it sees on any connection of
// the link, cut or not, armed or not. Add it before the link's clients
// connect, idle (Disarmed), and Arm it when the fault is wanted:
// a toxic added later would not see the Parse of a statement a pooled
// connection prepared before, only its Binds, and would cut nothing.
type CommitCut struct {
	CommitCutRule

	mu      sync.Mutex
	seen    int
	cuts    int
	matches int             // matching executions seen while armed
	names   map[string]bool // statement name → its text matched
	last    *commitCutConn  // the newest connection's state, for its answer stream
}

// CommitCutRule is what a CommitCut cuts: every Every-th execution of the
// statements chosen by Simple and Prepared, once armed (not Disarmed).
type CommitCutRule struct {
	Every    int      `json:"every"`
	Simple   []string `json:"simple"`
	Prepared []string `json:"prepared"`
	Disarmed bool     `json:"disarmed"`
}

// commitCutConn is a CommitCut's state for one connection.
type commitCutConn struct {
	buf     []byte // the start of a message split across chunks
	unnamed bool   // the unnamed statement's text matched
	matched bool   // a matched execution waits for its Sync
	lost    bool   // the stream no longer parses: stop reading it

	paired   atomic.Bool   // a companion reads the connection's answers
	cut      atomic.Bool   // the upstream has passed a chosen statement
	answered chan struct{} // closed when the server's answer to it came back
}

// NewState makes the per-connection state (toxics.StatefulToxic). The
// proxy starts a connection's upstream link and then its downstream link
// from one goroutine, so the companion's next NewState is this one's pair.
func (c *CommitCut) NewState() any {
	st := &commitCutConn{answered: make(chan struct{})}
	c.mu.Lock()
	c.last = st
	c.mu.Unlock()
	return st
}

// takeLast hands the newest connection's state to its downstream stream.
func (c *CommitCut) takeLast() *commitCutConn {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.last
	c.last = nil
	if st != nil {
		st.paired.Store(true)
	}
	return st
}

// commitCutAnswer is CommitCut's companion on the downstream stream: once
// its connection's upstream was cut, it drops the server's answer and
// closes the client's side.
type commitCutAnswer struct {
	cut atomic.Pointer[CommitCut]
}

// NewState pairs the downstream stream with its connection's upstream
// state; a connection that was open before AddCommitCut has none.
func (a *commitCutAnswer) NewState() any {
	c := a.cut.Load()
	if c == nil {
		return (*commitCutConn)(nil)
	}
	return c.takeLast()
}

// Pipe forwards the server's answers until the connection is cut.
func (a *commitCutAnswer) Pipe(stub *toxics.ToxicStub) {
	st, _ := stub.State.(*commitCutConn)
	for {
		select {
		case <-stub.Interrupt:
			return
		case chunk := <-stub.Input:
			if chunk == nil {
				stub.Close()
				return
			}
			if st != nil && st.cut.Load() {
				// The answer to the cut statement: drop it, close the
				// client's side, and let the upstream close.
				stub.Close()
				close(st.answered)
				return
			}
			stub.Output <- chunk
		}
	}
}

// Arm makes the toxic cut from now on; Disarm stops it (it keeps
// learning statement names).
func (c *CommitCut) Arm()    { c.setArmed(true) }
func (c *CommitCut) Disarm() { c.setArmed(false) }

func (c *CommitCut) setArmed(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Disarmed = !on
}

// Cuts is the number of connections the toxic has cut.
func (c *CommitCut) Cuts() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cuts
}

// Matches is the number of matching executions seen while armed (cut or
// let through by Every).
func (c *CommitCut) Matches() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.matches
}

// Pipe forwards each chunk and closes the stub after a chunk that carries
// a chosen statement's execution.
func (c *CommitCut) Pipe(stub *toxics.ToxicStub) {
	st, _ := stub.State.(*commitCutConn)
	if st == nil {
		st = &commitCutConn{answered: make(chan struct{})}
	}
	for {
		select {
		case <-stub.Interrupt:
			return
		case chunk := <-stub.Input:
			if chunk == nil {
				stub.Close()
				return
			}
			cut := c.decide(st, chunk.Data)
			if cut {
				// Before the statement can reach the server, so the
				// companion drops every answer to it.
				st.cut.Store(true)
			}
			stub.Output <- chunk
			if cut {
				// Close once the server has answered (it has run the
				// statement; the companion dropped the answer): closing
				// earlier would reset a connection whose request the
				// server may not have read, and tell the client before
				// the server has acted.
				if st.paired.Load() {
					select {
					case <-st.answered:
					case <-time.After(answerWait):
					case <-stub.Interrupt:
					}
				}
				stub.Close()
				return
			}
		}
	}
}

// answerWait bounds how long a cut connection waits for the server's
// answer before it is closed anyway.
const answerWait = 10 * time.Second

// maxMessage bounds a frontend message the toxic reassembles; a longer
// length means the stream is not where the toxic thinks it is.
const maxMessage = 64 << 20

// decide reads the frontend messages in data (after the start of a message
// left from the previous chunk) and reports whether they end an execution
// of a chosen statement that is the Every-th match while armed.
func (c *CommitCut) decide(st *commitCutConn, data []byte) bool {
	if st.lost {
		return false
	}
	if len(st.buf) > 0 {
		data = append(st.buf, data...)
		st.buf = nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cut := false
	for pos := 0; pos < len(data); {
		if len(data)-pos < 5 {
			st.buf = append([]byte(nil), data[pos:]...)
			break
		}
		typ, n := data[pos], int(binary.BigEndian.Uint32(data[pos+1:pos+5]))
		start := pos + 5
		if typ == 0 {
			// An untyped startup packet (StartupMessage, SSLRequest,
			// CancelRequest): a length under 2^24, hence a first byte 0
			// where a typed message has its letter.
			n, start = int(binary.BigEndian.Uint32(data[pos:pos+4]))-1, pos+4
		}
		if n < 4 || n > maxMessage {
			st.lost = true
			break
		}
		if pos+1+n > len(data) {
			st.buf = append([]byte(nil), data[pos:]...)
			break
		}
		body := data[start : pos+1+n]
		pos += 1 + n
		switch typ {
		case 'Q':
			if c.chosen(cstring(body)) && c.count() {
				cut = true
			}
		case 'P':
			name, rest := splitCString(body)
			m := c.chosen(cstring(rest))
			if name == "" {
				st.unnamed = m
			} else {
				if c.names == nil {
					c.names = map[string]bool{}
				}
				c.names[name] = m
			}
		case 'B':
			_, rest := splitCString(body) // the portal
			if stmt := cstring(rest); (stmt == "" && st.unnamed) || (stmt != "" && c.names[stmt]) {
				st.matched = true
			}
		case 'S':
			if st.matched && c.count() {
				cut = true
			}
			st.matched = false
		}
	}
	return cut
}

// chosen reports whether a statement's text is one of the chosen.
func (c *CommitCut) chosen(query string) bool {
	q := strings.ToLower(strings.TrimSpace(query))
	for _, s := range c.Simple {
		if strings.HasPrefix(q, strings.ToLower(s)) {
			return true
		}
	}
	for _, s := range c.Prepared {
		if strings.Contains(query, s) {
			return true
		}
	}
	return false
}

// count counts a matching execution while armed and reports whether it is
// the Every-th, to be cut.
func (c *CommitCut) count() bool {
	if c.Disarmed {
		return false
	}
	c.matches++
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

var (
	_ toxics.Toxic         = (*CommitCut)(nil)
	_ toxics.StatefulToxic = (*CommitCut)(nil)
	_ toxics.Toxic         = (*commitCutAnswer)(nil)
	_ toxics.StatefulToxic = (*commitCutAnswer)(nil)
)

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
