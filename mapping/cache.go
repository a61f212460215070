package mapping

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgxlisten"

	"github.com/oidc-bridge/oidc-bridge/identity"
)

// CatalogChannel is the channel on which every change to issuers or
// mappings is notified (migration 00005's triggers), and on which each
// Cache sends its heartbeats.
const CatalogChannel = "oidc_bridge_catalog"

// ListenerApplicationName is the application_name of a Cache's listening
// connection, as pg_stat_activity shows it.
const ListenerApplicationName = "oidc-bridge catalog listener"

// Cache is the Store with the exchange's reads served from memory: it keeps
// every issuer and mapping, reloaded whenever the catalog changes anywhere.
//
//   - IssuerByURL and ListMappings with EnabledOnly (the exchange's reads)
//     come from the snapshot when it is fresh, else from the database. The
//     admin API's reads and every write go to the database.
//   - A dedicated connection LISTENs on CatalogChannel; any change
//     committed by any replica (or by SQL) notifies it, and the snapshot
//     is dropped at once and reloaded.
//   - Fail closed on doubt: the snapshot is used only while the cache can
//     prove it is current. Every Heartbeat it NOTIFYs itself through the
//     pool; PostgreSQL delivers notifications in commit order, so a
//     heartbeat that comes back proves that every change committed before
//     it was sent has been applied. A snapshot not proven current within
//     MaxStale (a lost connection, a stuck listener, a database without
//     the triggers) is not used: reads go to the database, which fails
//     closed by itself.
//   - A write through this Cache drops the snapshot before it returns, so
//     the replica that made a change never serves the old state after.
type Cache struct {
	*PGStore
	pool      *pgxpool.Pool
	log       *slog.Logger
	heartbeat time.Duration
	maxStale  time.Duration
	onReload  func(error)

	// id tells this cache's heartbeats from other replicas'; base is the
	// monotonic origin of the offsets in heartbeats and in fresh.
	id   string
	base time.Time

	// snap is the current snapshot, nil when there is none or it was
	// dropped; fresh is the offset from base of the latest moment the
	// snapshot is known to include every committed change. mu orders
	// drops and publications (gen counts drops), so that a load that
	// started before a drop is never published after it.
	snap  atomic.Pointer[catalog]
	fresh atomic.Int64
	mu    sync.Mutex
	gen   uint64

	// The last failure logged, and when (the listener's goroutine only).
	lastErr    string
	lastLogged time.Time
}

// CacheOptions configure a Cache; zero values take the defaults.
type CacheOptions struct {
	// Heartbeat is how often the cache proves its listener current
	// (default 1 s).
	Heartbeat time.Duration
	// MaxStale is how long a snapshot stays in use without that proof
	// (default 3 s): the bound on how late a change can be seen.
	MaxStale time.Duration
	Logger   *slog.Logger
	// OnReload, if set, is called after each reload with its error.
	OnReload func(error)
}

// NewCache returns a Cache over store, listening with a connection made
// from pool's configuration. It serves from the database until Run has
// loaded a snapshot.
func NewCache(store *PGStore, pool *pgxpool.Pool, o CacheOptions) *Cache {
	if o.Heartbeat <= 0 {
		o.Heartbeat = time.Second
	}
	if o.MaxStale <= 0 {
		o.MaxStale = 3 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Cache{PGStore: store, pool: pool, log: o.Logger, heartbeat: o.Heartbeat, maxStale: o.MaxStale,
		onReload: o.OnReload, id: rand.Text(), base: time.Now()}
}

var _ Store = (*Cache)(nil)

// catalog is one consistent snapshot of the issuers and mappings.
type catalog struct {
	issuers  map[string]identity.Issuer // by URL
	mappings map[string][]Mapping       // by issuer name, ordered by name
}

// Run keeps the cache current until ctx ends: it listens (reconnecting
// after a failure) and sends the heartbeats.
func (c *Cache) Run(ctx context.Context) {
	l := &pgxlisten.Listener{
		Connect: func(ctx context.Context) (*pgx.Conn, error) {
			c.drop()
			cfg := c.pool.Config().ConnConfig.Copy()
			cfg.RuntimeParams["application_name"] = ListenerApplicationName
			return pgx.ConnectConfig(ctx, cfg)
		},
		LogError: func(ctx context.Context, err error) {
			// Whatever failed, the snapshot may have missed a change.
			c.drop()
			if ctx.Err() == nil && c.shouldLog(err) {
				c.log.Warn("catalog cache: exchanges read the database until it recovers", "err", err)
			}
		},
		ReconnectDelay: time.Second,
	}
	l.Handle(CatalogChannel, (*listenHandler)(c))
	var wg sync.WaitGroup
	wg.Go(func() { _ = l.Listen(ctx) })
	wg.Go(func() { c.beat(ctx) })
	wg.Wait()
}

// logEvery bounds how often the same failure is logged: a missing trigger
// fails the reload at every heartbeat.
const logEvery = time.Minute

// shouldLog reports whether err is worth a log line: a new failure, or one
// last logged over logEvery ago. Only the listener's goroutine calls it.
func (c *Cache) shouldLog(err error) bool {
	msg, now := err.Error(), time.Now()
	if msg == c.lastErr && now.Sub(c.lastLogged) < logEvery {
		return false
	}
	c.lastErr, c.lastLogged = msg, now
	return true
}

// Fresh reports whether the exchange's reads are served from memory now.
func (c *Cache) Fresh() bool { return c.current() != nil }

// current is the snapshot, if it is proven current within maxStale.
func (c *Cache) current() *catalog {
	s := c.snap.Load()
	if s == nil || time.Since(c.base) > time.Duration(c.fresh.Load())+c.maxStale {
		return nil
	}
	return s
}

// drop discards the snapshot.
func (c *Cache) drop() {
	c.mu.Lock()
	c.gen++
	c.snap.Store(nil)
	c.mu.Unlock()
}

// beat sends a heartbeat every c.heartbeat: its payload is this cache's id
// and when it was sent.
func (c *Cache) beat(ctx context.Context) {
	t := time.NewTicker(c.heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		bctx, cancel := context.WithTimeout(ctx, c.maxStale)
		payload := "hb:" + c.id + ":" + strconv.FormatInt(int64(time.Since(c.base)), 10)
		// No heartbeat while the triggers are missing or disabled: changes
		// would not be notified, so the snapshot must go stale.
		tag, err := c.pool.Exec(bctx, `SELECT pg_notify($1, $2) WHERE (`+triggersActive+`) = 2`, CatalogChannel, payload)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			c.log.Debug("catalog cache: heartbeat", "err", err)
		case err == nil && tag.RowsAffected() == 0:
			// Logged once per loss: the snapshot is dropped with it.
			if c.snap.Load() != nil {
				c.log.Warn("catalog cache: the catalog's notify triggers are missing or disabled; exchanges read the database")
			}
			c.drop()
		}
	}
}

// listenHandler is the Cache as pgxlisten's handler (kept off the
// Cache's own method set).
type listenHandler Cache

// HandleBacklog loads the first snapshot once the listener listens, so that
// no change committed after the load can be missed.
func (h *listenHandler) HandleBacklog(ctx context.Context, _ string, conn *pgx.Conn) error {
	return (*Cache)(h).reload(ctx, conn)
}

// HandleNotification applies a notification: a change drops the snapshot
// and reloads it; this cache's own heartbeat advances its freshness, or
// reloads when there is no snapshot or it went stale; other replicas'
// heartbeats are ignored.
func (h *listenHandler) HandleNotification(ctx context.Context, n *pgconn.Notification, conn *pgx.Conn) error {
	c := (*Cache)(h)
	rest, ok := strings.CutPrefix(n.Payload, "hb:")
	if !ok {
		c.drop()
		return c.reload(ctx, conn)
	}
	id, sent, ok := strings.Cut(rest, ":")
	if id != c.id {
		return nil
	}
	at, err := strconv.ParseInt(sent, 10, 64)
	if !ok || err != nil {
		return fmt.Errorf("malformed heartbeat %q", n.Payload)
	}
	// A snapshot left unproven past maxStale (heartbeats stopped: the
	// triggers were missing or disabled, the pool failed) may have missed
	// a change: it is reloaded, never revived.
	c.mu.Lock()
	live := c.snap.Load() != nil && time.Since(c.base) <= time.Duration(c.fresh.Load())+c.maxStale
	if live && at > c.fresh.Load() {
		c.fresh.Store(at)
	}
	c.mu.Unlock()
	if !live {
		c.drop()
		return c.reload(ctx, conn)
	}
	return nil
}

// reload reads a snapshot on conn and publishes it, unless the snapshot was
// dropped while it was read.
func (c *Cache) reload(ctx context.Context, conn *pgx.Conn) (err error) {
	defer func() {
		if c.onReload != nil {
			c.onReload(err)
		}
	}()
	c.mu.Lock()
	gen := c.gen
	c.mu.Unlock()
	started := int64(time.Since(c.base))
	lctx, cancel := context.WithTimeout(ctx, c.PGStore.timeout)
	defer cancel()
	cat, err := loadCatalog(lctx, conn)
	if err != nil {
		return fmt.Errorf("load catalog: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen == gen {
		c.snap.Store(cat)
		c.fresh.Store(started)
	}
	return nil
}

// triggersActive counts migration 00005's triggers that fire on every
// write, whatever the session's session_replication_role (ENABLE ALWAYS):
// 2 when every change is notified.
const triggersActive = `SELECT count(*) FROM pg_trigger
	WHERE tgname = 'oidc_bridge_catalog_notify' AND tgenabled = 'A'
		AND tgrelid IN ('issuers'::regclass, 'mappings'::regclass)`

// loadCatalog reads every issuer and mapping in one repeatable-read
// transaction. It refuses a database without the notifying triggers:
// a snapshot there would never learn of changes.
func loadCatalog(ctx context.Context, conn *pgx.Conn) (*catalog, error) {
	cat := &catalog{issuers: map[string]identity.Issuer{}, mappings: map[string][]Mapping{}}
	err := pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var triggers int
		if err := tx.QueryRow(ctx, triggersActive).Scan(&triggers); err != nil {
			return err
		}
		if triggers != 2 {
			return errors.New("the catalog's notify triggers are missing or disabled (run `oidc-bridge migrate`, or ALTER TABLE ... ENABLE ALWAYS TRIGGER oidc_bridge_catalog_notify)")
		}
		rows, err := tx.Query(ctx, `SELECT `+issuerColumns+` FROM issuers`)
		if err != nil {
			return err
		}
		issuers, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Issuer, error) { return scanIssuer(r) })
		if err != nil {
			return err
		}
		for _, is := range issuers {
			cat.issuers[is.URL] = IdentityIssuer(is)
		}
		ms, err := listMappings(ctx, tx, Filter{})
		if err != nil {
			return err
		}
		for _, m := range ms {
			cat.mappings[m.Issuer] = append(cat.mappings[m.Issuer], m)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return cat, nil
}

// IssuerByURL implements identity.IssuerSource from the snapshot when it is
// current.
func (c *Cache) IssuerByURL(ctx context.Context, url string) (identity.Issuer, error) {
	s := c.current()
	if s == nil {
		return c.PGStore.IssuerByURL(ctx, url)
	}
	is, ok := s.issuers[url]
	if !ok {
		return identity.Issuer{}, identity.ErrIssuerNotFound
	}
	is.Audiences = slices.Clone(is.Audiences)
	return is, nil
}

// ListMappings serves f from the snapshot when it is the exchange's read
// (EnabledOnly, one issuer) and the snapshot is current; otherwise from the
// database. The result is the caller's to change, but for the mappings'
// conditions, which it must not modify.
func (c *Cache) ListMappings(ctx context.Context, f Filter) ([]Mapping, error) {
	s := c.current()
	if s == nil || !f.EnabledOnly || f.Issuer == "" {
		return c.PGStore.ListMappings(ctx, f)
	}
	var out []Mapping
	for _, m := range s.mappings[f.Issuer] {
		if m.Enabled && (f.Provider == "" || m.Provider == f.Provider) {
			out = append(out, m)
		}
	}
	return out, nil
}

// The writes drop the snapshot once they succeeded, so that this replica
// reads its own writes at once (the notification reloads it).

func (c *Cache) CreateIssuer(ctx context.Context, by Actor, is Issuer) (Issuer, error) {
	out, err := c.PGStore.CreateIssuer(ctx, by, is)
	c.dropAfter(err)
	return out, err
}

func (c *Cache) UpdateIssuer(ctx context.Context, by Actor, name string, is Issuer, check func(Mapping) error) (Issuer, error) {
	out, err := c.PGStore.UpdateIssuer(ctx, by, name, is, check)
	c.dropAfter(err)
	return out, err
}

func (c *Cache) DeleteIssuer(ctx context.Context, by Actor, name string) error {
	err := c.PGStore.DeleteIssuer(ctx, by, name)
	c.dropAfter(err)
	return err
}

func (c *Cache) CreateMapping(ctx context.Context, by Actor, m Mapping, check func(identity.Kind) error) (Mapping, error) {
	out, err := c.PGStore.CreateMapping(ctx, by, m, check)
	c.dropAfter(err)
	return out, err
}

func (c *Cache) UpdateMapping(ctx context.Context, by Actor, name string, m Mapping, check func(identity.Kind) error) (Mapping, error) {
	out, err := c.PGStore.UpdateMapping(ctx, by, name, m, check)
	c.dropAfter(err)
	return out, err
}

func (c *Cache) DeleteMapping(ctx context.Context, by Actor, name string) error {
	err := c.PGStore.DeleteMapping(ctx, by, name)
	c.dropAfter(err)
	return err
}

// dropAfter drops the snapshot after a write that may have committed: any
// error but a refusal (not found, conflict, invalid) may come after the
// commit.
func (c *Cache) dropAfter(err error) {
	var ve *ValidationError
	if err == nil || !(errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) || errors.As(err, &ve) || errors.Is(err, ErrNoActor)) {
		c.drop()
	}
}
