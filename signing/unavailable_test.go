package signing_test

import (
	"context"
	"errors"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/signing"
	"github.com/oidc-bridge/oidc-bridge/test/pgtest"
)

// TestMarksUnavailable: a database that refuses connections is
// ErrUnavailable, as the ledger's and the mapping store's are.
func TestMarksUnavailable(t *testing.T) {
	ctx := context.Background()
	dead := pgtest.RefusingPool(t)
	if _, err := signing.KeysExist(ctx, dead); !errors.Is(err, signing.ErrUnavailable) {
		t.Errorf("KeysExist with the database down: %v, want ErrUnavailable", err)
	}
}
