package e2e

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"strings"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/internal/database"
	"github.com/oidc-bridge/oidc-bridge/internal/history"
	"github.com/oidc-bridge/oidc-bridge/test/pgtest"
)

// TestCLIHistory: admin-token create and revoke and keys rotate, run as
// commands, each record their rows in the admin-change history with the
// --actor label (or the OS user) and the database login; a bad label is a
// usage error that changes nothing.
func TestCLIHistory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := pgtest.NewDatabase(t)
	env, _ := issuerEnv(t, dbURL)
	run := func(args ...string) {
		t.Helper()
		if out, errOut, code := cli(t, env, args...); code != 0 {
			t.Fatalf("%v: exit %d\n%s\n%s", args, code, out, errOut)
		}
	}
	if _, errOut, code := cli(t, env, "admin-token", "create", "ops", "--actor", "a b"); code != 2 || !strings.Contains(errOut, "--actor") {
		t.Fatalf("bad --actor: exit %d, %s", code, errOut)
	}
	run("admin-token", "create", "ops", "--actor", "alice@example.com")
	run("admin-token", "revoke", "ops")
	run("keys", "list") // makes the first keys
	run("keys", "rotate", "--revoke", "--alg", "ES256", "--actor", "bob")

	pool, err := database.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	rows, err := pool.Query(ctx, `SELECT actor || ' ' || source || ' ' || action || ' ' || kind || ' ' || coalesce(reason, '-')
		|| ' ' || (db_user = session_user)::text FROM audit.admin_changes WHERE actor NOT IN ('automatic') ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"cli:alice@example.com cli create admin_token - true",
		"cli:" + osUserLabel(t) + " cli revoke admin_token - true",
		"cli:bob cli revoke signing_key revoke true",
		"cli:bob cli activate signing_key revoke true",
		"cli:bob cli create signing_key revoke true",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("history:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// osUserLabel is what the commands record without --actor.
func osUserLabel(t *testing.T) string {
	t.Helper()
	if u, err := user.Current(); err == nil && history.ValidLabel(u.Username) {
		return u.Username
	}
	return fmt.Sprintf("uid-%d", os.Getuid())
}
