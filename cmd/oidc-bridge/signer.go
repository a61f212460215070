package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/oidc-bridge/oidc-bridge/signing"
)

// errSignerNotReady: the signing keys are not loaded yet (the schema is
// being migrated).
var errSignerNotReady = errors.New("signing keys are not available yet: the database schema is not current")

// deferredSigner is the bridge's signer when a key-encryption key is
// configured: it delegates to the signing.Manager once that exists, which
// is at start when the schema is current, or as soon as it becomes current
// (serve --no-migrate waiting for `oidc-bridge migrate`).
type deferredSigner struct {
	issuer string
	m      atomic.Pointer[signing.Manager]
	// onRotate and onInvalidKeys are the Manager's signing.Options.OnRotate
	// and OnInvalidKeys (metrics).
	onRotate      func(alg string)
	onInvalidKeys func(kids []string)
}

// activeSince is the Manager's ActiveSince, or nothing before it exists.
func (d *deferredSigner) activeSince(ctx context.Context) (map[string]time.Time, error) {
	m := d.m.Load()
	if m == nil {
		return nil, nil
	}
	return m.ActiveSince(ctx)
}

func (d *deferredSigner) Issuer() string { return d.issuer }

func (d *deferredSigner) Sign(ctx context.Context, claims map[string]any, alg string) (string, error) {
	m := d.m.Load()
	if m == nil {
		return "", errSignerNotReady
	}
	return m.Sign(ctx, claims, alg)
}

func (d *deferredSigner) JWKS(ctx context.Context) (jose.JSONWebKeySet, error) {
	m := d.m.Load()
	if m == nil {
		return jose.JSONWebKeySet{}, errSignerNotReady
	}
	return m.JWKS(ctx)
}

// start opens the manager now if the schema is current, else in the
// background once it is; then it keeps the keys' schedule until ctx ends.
func (d *deferredSigner) start(ctx context.Context, db *dbHandle, kek signing.KEK, log *slog.Logger) error {
	open := func() error {
		m, err := signing.New(ctx, db.pool, kek, signing.Options{Issuer: d.issuer, Logger: log,
			OnRotate: d.onRotate, OnInvalidKeys: d.onInvalidKeys})
		if errors.Is(err, signing.ErrInvalidKey) {
			// A key row that a bridge with this KEK did not write: someone
			// wrote to the database who should not have. Refuse to start
			// (the running replicas stop publishing it and alert).
			return fmt.Errorf("refusing to start: %w", err)
		}
		if err != nil {
			return err
		}
		d.m.Store(m)
		go maintainKeys(ctx, m, log)
		return nil
	}
	if schemaUsable(ctx, db.pool) == nil {
		return open()
	}
	go func() {
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if schemaUsable(ctx, db.pool) != nil {
					continue
				}
				if err := open(); err != nil {
					log.Error("signing keys", "err", err)
					continue
				}
				log.Info("signing keys loaded")
				return
			}
		}
	}()
	return nil
}

// close records the manager's pending last-use times.
func (d *deferredSigner) close(ctx context.Context) error {
	if m := d.m.Load(); m != nil {
		return m.Close(ctx)
	}
	return nil
}

// maintainKeys runs the signing keys' schedule (bootstrap, rotation,
// removal of expired retired keys) on every replica; it is idempotent.
func maintainKeys(ctx context.Context, m *signing.Manager, log *slog.Logger) {
	t := time.NewTicker(keyMaintenanceInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := m.Maintain(ctx); err != nil && ctx.Err() == nil {
				log.Error("signing keys maintenance", "err", err)
			}
		}
	}
}
