// Package clienttest starts an in-process oidc-bridge (bridge.New on a fresh
// pgtest database, served by httptest) for the tests of the admin API's
// clients: package client and the Terraform provider. Test binaries that
// use it must run their tests through pgtest.Main.
package clienttest

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oidc-bridge/oidc-bridge/bridge"
	"github.com/oidc-bridge/oidc-bridge/githubapp"
	"github.com/oidc-bridge/oidc-bridge/internal/admintoken"
	"github.com/oidc-bridge/oidc-bridge/internal/database"
	"github.com/oidc-bridge/oidc-bridge/ledger"
	"github.com/oidc-bridge/oidc-bridge/mapping"
	"github.com/oidc-bridge/oidc-bridge/signing"
	"github.com/oidc-bridge/oidc-bridge/test/pgtest"
)

// Token is the bootstrap admin token of every Bridge.
const Token = "clienttest-bootstrap-token-0123456789abcdef"

// Bridge is a running in-process bridge.
type Bridge struct {
	// URL is the base URL of the admin API (http://127.0.0.1:port).
	URL string
	// Token is an admin token it accepts.
	Token string
}

// New starts a bridge on a fresh database; it stops when t ends.
func New(t testing.TB) *Bridge {
	t.Helper()
	pool := pgtest.NewPool(t)
	admins, err := admintoken.New(pool, Token, "")
	if err != nil {
		t.Fatal(err)
	}
	// A key-encryption key of its own, so that the admin API keeps GitHub
	// Apps (their private keys are sealed with it) as `serve` does.
	enc, err := signing.GenerateKEK()
	if err != nil {
		t.Fatal(err)
	}
	kek, err := signing.ParseKEK([]byte(enc))
	if err != nil {
		t.Fatal(err)
	}
	srv := bridge.New(bridge.Options{
		GitHubApps: githubapp.New(pool, kek),
		Store:      mapping.NewPGStore(pool, 0),
		Usage:      ledger.New(pool),
		Ledger:     ledger.New(pool),
		Admins:     admins,
		Ready:      func(ctx context.Context) error { return database.CheckCurrent(ctx, pool) },
		Registry:   prometheus.NewRegistry(),
		Logger:     slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return &Bridge{URL: hs.URL, Token: Token}
}
