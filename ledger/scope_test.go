package ledger_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/oidc-bridge/oidc-bridge/ledger"
)

// setScope sets the seed issuer's replay_scope.
func setScope(t *testing.T, pool *pgxpool.Pool, scope string) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), `UPDATE issuers SET replay_scope = $1 WHERE name = 'seed'`, scope); err != nil {
		t.Fatal(err)
	}
}

// reserveOn reserves c on mapping id (with a per_hour quota when quota > 0)
// and completes it when it was reserved.
func reserveOn(t *testing.T, l *ledger.Ledger, a ledger.Attempt, id int64, quota int) error {
	t.Helper()
	a.MappingID, a.PerHour = id, quota
	res, err := l.Reserve(context.Background(), a)
	if err == nil {
		if err := l.Complete(context.Background(), res, "ASIA", time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	return err
}

// A token is exchanged once in all under replay_scope token, once per
// mapping under token_mapping, and a change of scope never re-opens a spent
// token: each claim holds the token's row and the mapping's row.
func TestReplayScope(t *testing.T) {
	t.Parallel()
	for _, quota := range []int{0, 5} { // the one-statement path and the quota path
		l, pool := newLedger(t)

		// Spent under token: refused for every mapping, also after a
		// switch to token_mapping for the mapping it was spent for.
		a := attempt(claims())
		if err := reserveOn(t, l, a, 1, quota); err != nil {
			t.Fatal(err)
		}
		if err := reserveOn(t, l, a, 2, quota); !errors.Is(err, ledger.ErrReplayed) {
			t.Errorf("quota %d: scope token, mapping 2: %v; want ErrReplayed", quota, err)
		}
		setScope(t, pool, "token_mapping")
		if err := reserveOn(t, l, a, 1, quota); !errors.Is(err, ledger.ErrReplayed) {
			t.Errorf("quota %d: spent under token, then token_mapping, mapping 1: %v; want ErrReplayed", quota, err)
		}
		if err := reserveOn(t, l, a, 2, quota); err != nil {
			t.Errorf("quota %d: token_mapping, mapping 2: %v", quota, err)
		}

		// Spent under token_mapping: once per mapping; refused for every
		// mapping once the scope is token again.
		b := attempt(claims())
		if err := reserveOn(t, l, b, 3, quota); err != nil {
			t.Fatal(err)
		}
		if err := reserveOn(t, l, b, 3, quota); !errors.Is(err, ledger.ErrReplayed) {
			t.Errorf("quota %d: token_mapping, mapping 3 twice: %v; want ErrReplayed", quota, err)
		}
		setScope(t, pool, "token")
		if err := reserveOn(t, l, b, 4, quota); !errors.Is(err, ledger.ErrReplayed) {
			t.Errorf("quota %d: spent under token_mapping, then token, mapping 4: %v; want ErrReplayed", quota, err)
		}
		want := map[string]int{"issued": 3, "denied/token_replayed": 4}
		if diff := cmp.Diff(want, outcomes(t, pool)); diff != "" {
			t.Errorf("quota %d: outcomes (-want +got):\n%s", quota, diff)
		}
	}
}

// A token without jti is keyed on its SHA-256: refused the second time, for
// any mapping, and recorded by that identifier, never the token.
func TestReplayWithoutJTI(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, pool := newLedger(t)
	hash := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	c := claims()
	c.JTI, c.TokenSHA256 = "", hash("token one")
	if err := reserveOn(t, l, attempt(c), 1, 0); err != nil {
		t.Fatalf("token without jti: %v", err)
	}
	if err := reserveOn(t, l, attempt(c), 2, 0); !errors.Is(err, ledger.ErrReplayed) {
		t.Errorf("same token, other mapping: %v; want ErrReplayed", err)
	}
	if err := reserveOn(t, l, attempt(c), 1, 3); !errors.Is(err, ledger.ErrReplayed) {
		t.Errorf("same token, same mapping, with quota: %v; want ErrReplayed", err)
	}
	d := claims()
	d.JTI, d.TokenSHA256 = "", hash("token two")
	if err := reserveOn(t, l, attempt(d), 1, 0); err != nil {
		t.Errorf("another token without jti: %v", err)
	}
	var ids []string
	rows, err := pool.Query(ctx, `SELECT DISTINCT token_jti FROM issuances ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, s)
	}
	want := []string{"sha256:" + c.TokenSHA256, "sha256:" + d.TokenSHA256}
	if hash("token one") > hash("token two") {
		want[0], want[1] = want[1], want[0]
	}
	if diff := cmp.Diff(want, ids); diff != "" {
		t.Errorf("token_jti recorded (-want +got):\n%s", diff)
	}
	// Neither a jti nor a hash: no replay protection, refused.
	e := claims()
	e.JTI = ""
	if _, err := l.Reserve(ctx, attempt(e)); !errors.Is(err, ledger.ErrInvalid) {
		t.Errorf("no jti, no hash: %v; want ErrInvalid", err)
	}
}

// A failed mint gives the token back for every mapping.
func TestFailGivesTheTokenBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, pool := newLedger(t)
	a := attempt(claims())
	res, err := l.Reserve(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Fail(ctx, res, "provider_error"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM replay_guard`).Scan(&n); err != nil || n != 0 {
		t.Errorf("replay_guard after Fail: %d rows, %v; want 0", n, err)
	}
	if err := reserveOn(t, l, a, 2, 0); err != nil {
		t.Errorf("after a failed mint, another mapping: %v", err)
	}
}

// Disable means now: Reserve rechecks in its own statement that the
// mapping and its issuer still exist and are enabled, whatever the caller's
// catalog says; a refusal is recorded and leaves the token unspent.
func TestReserveRechecksEnabled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name, sql, code string
	}{
		{"mapping disabled", `UPDATE mappings SET enabled = false WHERE id = 1`, ledger.CodeNoMatchingMapping},
		{"mapping deleted", `DELETE FROM mappings WHERE id = 1`, ledger.CodeNoMatchingMapping},
		{"issuer disabled", `UPDATE issuers SET enabled = false WHERE name = 'seed'`, ledger.CodeUntrustedIssuer},
		{"both disabled", `UPDATE issuers SET enabled = false WHERE name = 'seed'; UPDATE mappings SET enabled = false WHERE id = 1`, ledger.CodeUntrustedIssuer},
	}
	for _, tt := range tests {
		for _, quota := range []int{0, 5} {
			l, pool := newLedger(t)
			if _, err := pool.Exec(ctx, tt.sql); err != nil {
				t.Fatal(err)
			}
			a := attempt(claims())
			a.PerHour = quota
			_, err := l.Reserve(ctx, a)
			var de *ledger.DisabledError
			if !errors.As(err, &de) || !errors.Is(err, ledger.ErrDisabled) || de.Code != tt.code {
				t.Errorf("%s, quota %d: Reserve = %v; want a DisabledError %s", tt.name, quota, err, tt.code)
				continue
			}
			if errors.Is(err, ledger.ErrReplayed) {
				t.Errorf("%s: a refusal matches ErrReplayed", tt.name)
			}
			var outcome, code string
			if err := pool.QueryRow(ctx, `SELECT outcome, error_code FROM issuances WHERE id = $1`, de.IssuanceID).Scan(&outcome, &code); err != nil {
				t.Fatal(err)
			}
			if outcome != "denied" || code != tt.code {
				t.Errorf("%s, quota %d: recorded %s/%s; want denied/%s", tt.name, quota, outcome, code, tt.code)
			}
			var guards int
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM replay_guard`).Scan(&guards); err != nil || guards != 0 {
				t.Errorf("%s, quota %d: %d guard rows, %v; want the token unspent", tt.name, quota, guards, err)
			}
			// The same token is still good for an enabled mapping.
			if tt.code == ledger.CodeNoMatchingMapping {
				if err := reserveOn(t, l, a, 2, quota); err != nil {
					t.Errorf("%s, quota %d: then mapping 2: %v", tt.name, quota, err)
				}
			}
		}
	}
}
