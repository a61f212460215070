package faulttest_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

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
	cut := p.Add("cut", faulttest.CommitCutType, "upstream", 1,
		map[string]any{"simple": []string{"commit"}, "prepared": []string{"SET state = 'done'"}}).(*faulttest.CommitCut)
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
	// The client learns of the cut before the server has run what it
	// received: wait for the server.
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
