package faulttest_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Shopify/toxiproxy/v2/stream"
	"github.com/Shopify/toxiproxy/v2/toxics"
	"github.com/jackc/pgx/v5"

	"github.com/oidc-bridge/oidc-bridge/internal/pgcluster"
	"github.com/oidc-bridge/oidc-bridge/test/faulttest"
)

// tcpCluster starts a throwaway PostgreSQL cluster listening on a TCP port
// (the shared pgtest cluster has only a unix socket, which a TCP proxy
// cannot stand in front of) and returns its host:port.
func tcpCluster(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	port := faulttest.FreePort(t)
	c, err := pgcluster.Start(ctx, pgcluster.Options{DataDir: filepath.Join(dir, "pg"), Port: port, Unsafe: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	return fmt.Sprintf("127.0.0.1:%d", port)
}

// TestCommitCut: through a proxy with the CommitCut toxic, a transaction's
// COMMIT and a chosen prepared UPDATE reach the server and take effect,
// while the client's connection drops before the answer: the client gets
// an error for work that is committed. Other statements pass untouched.
func TestCommitCut(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	upstream := tcpCluster(t)
	direct, err := pgx.Connect(ctx, "postgres://postgres@"+upstream+"/postgres?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close(ctx)
	if _, err := direct.Exec(ctx, `CREATE TABLE cut (id int PRIMARY KEY, state text)`); err != nil {
		t.Fatal(err)
	}
	p := faulttest.NewProxy(t, "pg", upstream)
	cut := p.AddCommitCut("cut", faulttest.CommitCutRule{Simple: []string{"commit"}, Prepared: []string{"SET state = 'done'"}})
	connect := func() *pgx.Conn {
		t.Helper()
		c, err := pgx.Connect(ctx, "postgres://postgres@"+p.Addr()+"/postgres?sslmode=disable")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(ctx) })
		return c
	}

	c := connect()
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO cut VALUES ($1, 'new')`, 1); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err == nil {
		t.Fatal("the commit answered through a cut connection")
	}
	c = connect()
	// A prepared statement that does not match passes; the one that does
	// is executed, then cut.
	if _, err := c.Exec(ctx, `UPDATE cut SET state = 'seen' WHERE id = $1`, 1); err != nil {
		t.Fatalf("an unchosen statement: %v", err)
	}
	if _, err := c.Exec(ctx, `UPDATE cut SET state = 'done' WHERE id = $1`, 1); err == nil {
		t.Fatal("the chosen statement answered through a cut connection")
	}
	// The connection closes once the server has answered (its answer
	// dropped); read the server's state from another connection.
	var state string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		err := direct.QueryRow(ctx, `SELECT state FROM cut WHERE id = 1`).Scan(&state)
		if err == nil && state == "done" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the cut commit and UPDATE: state %q, %v; want done (both reached the server)", state, err)
		}
	}
	if n := cut.Cuts(); n != 2 {
		t.Errorf("cuts: %d, want 2", n)
	}
}

// TestCommitCutArmedAfterPrepare: the toxic is in place, idle, when the
// clients connect; they prepare the chosen UPDATE and run a batch ending
// in COMMIT (pgx prepares a batch's statements, COMMIT included) before it
// is armed. Armed, it cuts their next executions, which carry only Binds
// of the names it learned while idle, and the work still commits.
func TestCommitCutArmedAfterPrepare(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	upstream := tcpCluster(t)
	direct, err := pgx.Connect(ctx, "postgres://postgres@"+upstream+"/postgres?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close(ctx)
	if _, err := direct.Exec(ctx, `CREATE TABLE cut (id int PRIMARY KEY, state text)`); err != nil {
		t.Fatal(err)
	}
	p := faulttest.NewProxy(t, "pg", upstream)
	cut := p.AddCommitCut("cut", faulttest.CommitCutRule{Disarmed: true, Simple: []string{"commit"}, Prepared: []string{"SET state = 'done'"}})
	connect := func() *pgx.Conn {
		t.Helper()
		c, err := pgx.Connect(ctx, "postgres://postgres@"+p.Addr()+"/postgres?sslmode=disable")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(ctx) })
		return c
	}
	update := func(c *pgx.Conn, id int) error {
		_, err := c.Exec(ctx, `UPDATE cut SET state = 'done' WHERE id = $1`, id)
		return err
	}
	insert := func(c *pgx.Conn, id int) error {
		b := &pgx.Batch{}
		b.Queue("BEGIN")
		b.Queue(`INSERT INTO cut VALUES ($1, 'new')`, id)
		b.Queue("COMMIT")
		return c.SendBatch(ctx, b).Close()
	}
	c1, c2 := connect(), connect()
	if err := insert(c1, 1); err != nil {
		t.Fatalf("idle toxic: %v", err)
	}
	if err := update(c1, 1); err != nil {
		t.Fatalf("idle toxic: %v", err)
	}
	if err := insert(c2, 2); err != nil {
		t.Fatalf("idle toxic: %v", err)
	}
	if n := cut.Cuts(); n != 0 {
		t.Fatalf("an idle toxic cut %d connections", n)
	}
	cut.Arm()
	if err := update(c1, 2); err == nil {
		t.Error("the chosen statement, prepared before the toxic was armed, answered through a cut connection")
	}
	if err := insert(c2, 3); err == nil {
		t.Error("a batch's COMMIT, prepared before the toxic was armed, answered through a cut connection")
	}
	var states string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		err := direct.QueryRow(ctx, `SELECT string_agg(id || ':' || state, ' ' ORDER BY id) FROM cut`).Scan(&states)
		if err == nil && states == "1:done 2:done 3:new" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rows %q, %v; want 1:done 2:done 3:new (the cut statements reached the server)", states, err)
		}
	}
	if n, m := cut.Cuts(), cut.Matches(); n != 2 || m != 2 {
		t.Errorf("cuts %d, matches %d; want 2 and 2", n, m)
	}
}

// TestCommitCutSplitMessages: the client's messages reach the toxic in
// pieces (here one byte a chunk, from the startup packet on): it still
// finds the chosen statement and cuts right after the chunk with the Sync
// that ends its execution, not before.
func TestCommitCutSplitMessages(t *testing.T) {
	msg := func(typ byte, parts ...string) []byte {
		body := []byte(strings.Join(parts, ""))
		b := []byte{typ, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(b[1:], uint32(4+len(body)))
		return append(b, body...)
	}
	startup := []byte{0, 0, 0, 0, 0, 3, 0, 0}
	startup = append(startup, "user\x00postgres\x00\x00"...)
	binary.BigEndian.PutUint32(startup, uint32(len(startup)))
	var wire []byte
	wire = append(wire, startup...)
	wire = append(wire, msg('P', "s1\x00", "UPDATE t SET state = 'done' WHERE id = $1\x00", "\x00\x00")...)
	wire = append(wire, msg('S')...)
	wire = append(wire, msg('B', "\x00", "s1\x00", "\x00\x00\x00\x00\x00\x00")...)
	wire = append(wire, msg('E', "\x00", "\x00\x00\x00\x00")...)
	sync := len(wire)
	wire = append(wire, msg('S')...)

	cut := new(faulttest.CommitCut)
	cut.Prepared = []string{"SET state = 'done'"}
	in, out := make(chan *stream.StreamChunk, len(wire)), make(chan *stream.StreamChunk, len(wire))
	stub := toxics.NewToxicStub(in, out)
	stub.State = cut.NewState()
	go cut.Pipe(stub)
	for i, b := range wire {
		in <- &stream.StreamChunk{Data: []byte{b}}
		if got := <-out; got == nil {
			t.Fatalf("cut after byte %d of %d, before the execution's Sync had passed", i, len(wire))
		}
		if i >= sync+5-1 {
			break
		}
	}
	select {
	case c, open := <-out:
		if open {
			t.Fatalf("after the Sync: %v, want the connection closed", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the connection was not cut after the chosen statement's Sync")
	}
	if n := cut.Cuts(); n != 1 {
		t.Errorf("cuts %d, want 1", n)
	}
}
