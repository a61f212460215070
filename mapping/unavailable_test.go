package mapping_test

import (
	"context"
	"errors"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/mapping"
	"github.com/oidc-bridge/oidc-bridge/test/pgtest"
)

// TestStoreMarksUnavailable: a database that refuses connections makes
// every read and write ErrUnavailable (the bridge's 503); a refusal by the
// database's content (not found) does not.
func TestStoreMarksUnavailable(t *testing.T) {
	ctx := context.Background()
	dead := pgtest.RefusingPool(t)
	down := mapping.NewPGStore(dead, 0)
	actor := mapping.Actor{Name: "test"}
	for name, call := range map[string]func() error{
		"ListIssuers":   func() error { _, err := down.ListIssuers(ctx); return err },
		"GetMapping":    func() error { _, err := down.GetMapping(ctx, "web"); return err },
		"ListMappings":  func() error { _, err := down.ListMappings(ctx, mapping.Filter{}); return err },
		"DeleteMapping": func() error { return down.DeleteMapping(ctx, actor, "web") },
		"IssuerByURL":   func() error { _, err := down.IssuerByURL(ctx, "https://x.example"); return err },
	} {
		if err := call(); !errors.Is(err, mapping.ErrUnavailable) {
			t.Errorf("%s with the database down: %v, want ErrUnavailable", name, err)
		}
	}

	runtime, _ := pgtest.NewRuntimePool(t)
	up := mapping.NewPGStore(runtime, 0)
	if _, err := up.GetMapping(ctx, "web"); !errors.Is(err, mapping.ErrNotFound) || errors.Is(err, mapping.ErrUnavailable) {
		t.Errorf("GetMapping of a missing mapping: %v, want ErrNotFound only", err)
	}
}
