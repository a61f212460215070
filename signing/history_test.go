package signing_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/oidc-bridge/oidc-bridge/internal/history"
	"github.com/oidc-bridge/oidc-bridge/signing"
)

// tester rotates keys in the tests.
var tester = history.Actor{Name: "cli:tester", Source: history.SourceCLI}

// keyChanges are the bridge's rows about signing keys in the admin-change
// history, as "actor source action reason kid from>to". Rows the triggers
// add (source sql) are left out: the fake clock runs ahead of the
// database's, so the bridge's own last uses look forged to them.
func keyChanges(t *testing.T, e *env) []string {
	t.Helper()
	rows, err := e.owner.Query(context.Background(), `
		SELECT actor, source, action, coalesce(reason, ''), name,
		       coalesce(before->>'state', '-'), coalesce(after->>'state', '-'), coalesce(after->>'alg', before->>'alg'),
		       coalesce(before ? 'private_key', false) OR coalesce(after ? 'private_key', false) OR (after->>'revoked_at' IS NOT NULL) <> (action = 'revoke')
		FROM audit.admin_changes WHERE kind = 'signing_key' AND source <> 'sql' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var actor, source, action, reason, kid, from, to, alg string
		var bad bool
		if err := rows.Scan(&actor, &source, &action, &reason, &kid, &from, &to, &alg, &bad); err != nil {
			t.Fatal(err)
		}
		if bad {
			t.Errorf("row of %s %s: a private part, or revoked_at where it should not be", action, kid)
		}
		out = append(out, fmt.Sprintf("%s %s %s %s %s %s %s>%s", actor, source, action, reason, alg, kid, from, to))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// Every key change records a row in its transaction: the first keys, the
// scheduled rotation, keys rotate, --force and --revoke (the old key
// revoked), and the deletion of a retired key after its retention, each
// with its actor, reason, kid, alg and states before and after.
func TestKeyHistory(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	k0 := stateOf(t, e.m)
	var want []string
	add := func(actor, action, reason, alg, kid, from, to string) {
		src := "cli"
		if actor == "automatic" {
			src = "service"
		}
		want = append(want, strings.Join([]string{actor, src, action, reason, alg, kid, from + ">" + to}, " "))
	}
	check := func(step string) {
		t.Helper()
		// Algs are done in no particular order.
		if diff := cmp.Diff(want, keyChanges(t, e), cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
			t.Fatalf("%s: key history (-want +got):\n%s", step, diff)
		}
	}
	// The algs in the order New makes them.
	for _, alg := range []string{signing.RS256, signing.ES256} {
		add("automatic", "create", "initial", alg, k0[alg]["active"], "-", "active")
		add("automatic", "create", "initial", alg, k0[alg]["next"], "-", "next")
	}
	check("New")

	// A refused rotation records nothing.
	if err := e.m.Rotate(ctx, signing.RotateOptions{Actor: tester}); !errors.Is(err, signing.ErrTooEarly) {
		t.Fatal(err)
	}
	if err := e.m.Rotate(ctx, signing.RotateOptions{Alg: signing.RS256, Force: true}); !errors.Is(err, history.ErrNoActor) {
		t.Fatalf("Rotate without an actor: %v", err)
	}
	check("refused rotations")

	// keys rotate --alg RS256, once the next key is ready.
	e.clock.Advance(e.opts.PublishLead)
	if err := e.m.Rotate(ctx, signing.RotateOptions{Actor: tester, Alg: signing.RS256}); err != nil {
		t.Fatal(err)
	}
	k1 := stateOf(t, e.m)
	add("cli:tester", "retire", "manual", signing.RS256, k0[signing.RS256]["active"], "active", "retired")
	add("cli:tester", "activate", "manual", signing.RS256, k0[signing.RS256]["next"], "next", "active")
	add("cli:tester", "create", "manual", signing.RS256, k1[signing.RS256]["next"], "-", "next")
	check("rotate")

	// --force, then --revoke.
	if err := e.m.Rotate(ctx, signing.RotateOptions{Actor: tester, Alg: signing.RS256, Force: true}); err != nil {
		t.Fatal(err)
	}
	k2 := stateOf(t, e.m)
	add("cli:tester", "retire", "forced", signing.RS256, k1[signing.RS256]["active"], "active", "retired")
	add("cli:tester", "activate", "forced", signing.RS256, k1[signing.RS256]["next"], "next", "active")
	add("cli:tester", "create", "forced", signing.RS256, k2[signing.RS256]["next"], "-", "next")
	if err := e.m.Rotate(ctx, signing.RotateOptions{Actor: tester, Alg: signing.ES256, Revoke: true}); err != nil {
		t.Fatal(err)
	}
	k3 := stateOf(t, e.m)
	add("cli:tester", "revoke", "revoke", signing.ES256, k2[signing.ES256]["active"], "active", "retired")
	add("cli:tester", "activate", "revoke", signing.ES256, k2[signing.ES256]["next"], "next", "active")
	add("cli:tester", "create", "revoke", signing.ES256, k3[signing.ES256]["next"], "-", "next")
	check("force and revoke")

	// The schedule: after RotationPeriod Maintain rotates both algs, and
	// the retired keys go once their retention has passed.
	e.clock.Advance(e.opts.RotationPeriod)
	if err := e.m.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	k4 := stateOf(t, e.m)
	got := keyChanges(t, e)[len(want):]
	deleted, rotated := 0, 0
	for _, row := range got {
		switch {
		case strings.HasPrefix(row, "automatic service delete retention "):
			deleted++
			if !strings.HasSuffix(row, " retired>-") {
				t.Errorf("deletion: %s", row)
			}
		case strings.HasPrefix(row, "automatic service activate scheduled "):
			rotated++
		case strings.HasPrefix(row, "automatic service retire scheduled "), strings.HasPrefix(row, "automatic service create scheduled "):
		default:
			t.Errorf("unexpected row %s", row)
		}
	}
	if deleted != 3 || rotated != 2 || len(got) != 3+2*3 {
		t.Errorf("Maintain after RotationPeriod recorded %d rows (%d deletions, %d activations): %q", len(got), deleted, rotated, got)
	}
	for _, alg := range []string{signing.RS256, signing.ES256} {
		if !strings.Contains(strings.Join(got, "\n"), "activate scheduled "+alg+" "+k3[alg]["next"]+" next>active") ||
			!strings.Contains(strings.Join(got, "\n"), "create scheduled "+alg+" "+k4[alg]["next"]+" ->next") {
			t.Errorf("%s: no scheduled rotation rows in %q", alg, got)
		}
	}
}
