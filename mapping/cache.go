package mapping

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
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
//     is dropped at once and reloaded. Any database login can NOTIFY on
//     the channel, so any payload that is not one of this cache's own
//     heartbeats counts as a change (fail closed), and reloads are rate
//     limited: at most one starts per ReloadInterval. Changes notified
//     meanwhile leave the snapshot dropped (reads go to the database) and
//     fold into one pending reload, run at the first notification (at the
//     latest, the next heartbeat) after the interval.
//   - Fail closed on doubt: the snapshot is used only while the cache can
//     prove it is current. Every Heartbeat it NOTIFYs itself through the
//     pool; PostgreSQL delivers notifications in commit order, so a
//     heartbeat that comes back proves that every change committed before
//     it was sent has been applied. A snapshot not proven current within
//     MaxStale (a lost connection, a stuck listener, a database without
//     the triggers) is not used: reads go to the database, which fails
//     closed by itself.
//   - Heartbeats are authenticated, because anyone who can LISTEN can read
//     them and anyone who can log in can NOTIFY: the payload carries the
//     cache's id, a sequence number and an HMAC of both under a key drawn
//     at start and held only in memory; the send time is kept in memory
//     by sequence number, never read from the payload. A heartbeat counts
//     only if its MAC verifies, its sequence number is outstanding (each
//     counts once), it was sent after the current snapshot's load began,
//     and it arrives within MaxStale of being sent; it proves freshness
//     as of its send time, which is never later than its arrival.
//   - A write through this Cache drops the snapshot before it returns, so
//     the replica that made a change never serves the old state after.
type Cache struct {
	*PGStore
	pool           *pgxpool.Pool
	log            *slog.Logger
	heartbeat      time.Duration
	maxStale       time.Duration
	reloadInterval time.Duration
	onReload       func(error)
	onIgnored      func(reason string)
	onCoalesced    func()

	// id tells this cache's heartbeats from other replicas'; key is the
	// heartbeats' MAC key, never sent anywhere; base is the monotonic
	// origin of the offsets in sent and in fresh.
	id   string
	key  []byte
	base time.Time

	// Heartbeats sent and not yet received: their send time (offset from
	// base) by sequence number. seq is the last number used. beatsMu
	// guards both.
	beatsMu sync.Mutex
	seq     uint64
	sent    map[uint64]int64

	// snap is the current snapshot, nil when there is none or it was
	// dropped; fresh is the offset from base of the latest moment the
	// snapshot is known to include every committed change. mu orders
	// drops and publications (gen counts drops), so that a load that
	// started before a drop is never published after it.
	snap  atomic.Pointer[catalog]
	fresh atomic.Int64
	mu    sync.Mutex
	gen   uint64

	// The listener's goroutine only: whether a reload is owed (a change
	// was notified, or an authentic heartbeat found no live snapshot),
	// when the last reload started, and the last failure logged, and when.
	pending    bool
	lastReload time.Time
	lastErr    string
	lastLogged time.Time
}

// Reasons a heartbeat is ignored, as CacheOptions.OnHeartbeatIgnored
// receives them.
const (
	// HeartbeatForged: it names this cache but its MAC does not verify
	// (or it is malformed): someone else sent it.
	HeartbeatForged = "forged"
	// HeartbeatUnknown: authentic, but no heartbeat of that sequence
	// number is outstanding: a replay of one already counted, or one
	// whose send reported an error.
	HeartbeatUnknown = "unknown"
	// HeartbeatLate: authentic, but it arrived more than MaxStale after it
	// was sent (a lagging listener).
	HeartbeatLate = "late"
)

// CacheOptions configure a Cache; zero values take the defaults.
type CacheOptions struct {
	// Heartbeat is how often the cache proves its listener current
	// (default 1 s).
	Heartbeat time.Duration
	// MaxStale is how long a snapshot stays in use without that proof
	// (default 3 s): the bound on how late a change can be seen.
	MaxStale time.Duration
	// ReloadInterval is the least time between the starts of two reloads
	// (default 1 s): a flood of notifications costs one reload per
	// interval, while reads go to the database.
	ReloadInterval time.Duration
	Logger         *slog.Logger
	// OnReload, if set, is called after each reload with its error.
	OnReload func(error)
	// OnHeartbeatIgnored, if set, is called for each heartbeat naming this
	// cache that does not count, with the reason (HeartbeatForged,
	// HeartbeatUnknown, HeartbeatLate).
	OnHeartbeatIgnored func(reason string)
	// OnReloadCoalesced, if set, is called for each change notification
	// that folds into a reload already owed rather than having its own.
	OnReloadCoalesced func()
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
	if o.ReloadInterval <= 0 {
		o.ReloadInterval = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.OnHeartbeatIgnored == nil {
		o.OnHeartbeatIgnored = func(string) {}
	}
	if o.OnReloadCoalesced == nil {
		o.OnReloadCoalesced = func() {}
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key) // never fails (crypto/rand)
	return &Cache{PGStore: store, pool: pool, log: o.Logger, heartbeat: o.Heartbeat, maxStale: o.MaxStale,
		reloadInterval: o.ReloadInterval, onReload: o.OnReload, onIgnored: o.OnHeartbeatIgnored,
		onCoalesced: o.OnReloadCoalesced, id: rand.Text(), key: key, base: time.Now(), sent: map[uint64]int64{}}
}

var _ Store = (*Cache)(nil)

// catalog is one consistent snapshot of the issuers and mappings.
type catalog struct {
	issuers  map[string]identity.Issuer // by URL
	mappings map[string][]Mapping       // by issuer name, ordered by name
	// minSeq is the first heartbeat sequence number sent after this
	// snapshot's load began: only such a heartbeat proves it current.
	minSeq uint64
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

// mac authenticates the heartbeat of sequence number seq: its first 16
// bytes of HMAC-SHA256 under c.key, over the cache's id and seq.
func (c *Cache) mac(seq string) string {
	h := hmac.New(sha256.New, c.key)
	h.Write([]byte("oidc-bridge catalog heartbeat\x00" + c.id + "\x00" + seq))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:16])
}

// drop discards the snapshot.
func (c *Cache) drop() {
	c.mu.Lock()
	c.gen++
	c.snap.Store(nil)
	c.mu.Unlock()
}

// beat sends a heartbeat every c.heartbeat: its payload is "hb:", this
// cache's id, a sequence number and their MAC, colon-separated; its send
// time stays in memory (c.sent).
func (c *Cache) beat(ctx context.Context) {
	t := time.NewTicker(c.heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.beatsMu.Lock()
		c.seq++
		seq := c.seq
		now := int64(time.Since(c.base))
		// One that has not come back within 4 × maxStale never will, or
		// would be ignored as late.
		for s, at := range c.sent {
			if now-at > 4*int64(c.maxStale) {
				delete(c.sent, s)
			}
		}
		c.sent[seq] = now
		c.beatsMu.Unlock()
		n := strconv.FormatUint(seq, 10)
		payload := "hb:" + c.id + ":" + n + ":" + c.mac(n)
		bctx, cancel := context.WithTimeout(ctx, c.maxStale)
		// No heartbeat while the triggers are missing or disabled: changes
		// would not be notified, so the snapshot must go stale.
		tag, err := c.pool.Exec(bctx, `SELECT pg_notify($1, $2) WHERE (`+triggersActive+`) = 2`, CatalogChannel, payload)
		cancel()
		if err != nil || tag.RowsAffected() == 0 {
			// Not sent, or not known to be: it proves nothing.
			c.beatsMu.Lock()
			delete(c.sent, seq)
			c.beatsMu.Unlock()
		}
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
	c := (*Cache)(h)
	c.pending = false
	c.lastReload = time.Now()
	err := c.reload(ctx, conn)
	if err != nil {
		c.pending = true
	}
	return err
}

// HandleNotification applies a notification. A heartbeat of this cache's
// that counts advances its freshness, or, when there is no live snapshot,
// owes a reload; other replicas' heartbeats and ignored ones change
// nothing. Anything else is a change: the snapshot is dropped at once and
// a reload is owed. An owed reload runs now if the last one started at
// least ReloadInterval ago, else at a later notification.
func (h *listenHandler) HandleNotification(ctx context.Context, n *pgconn.Notification, conn *pgx.Conn) error {
	c := (*Cache)(h)
	if rest, ok := strings.CutPrefix(n.Payload, "hb:"); ok {
		c.heartbeatArrived(rest)
	} else {
		c.drop()
		if c.pending {
			c.onCoalesced()
		}
		c.pending = true
	}
	if !c.pending || time.Since(c.lastReload) < c.reloadInterval {
		return nil
	}
	c.pending = false
	c.lastReload = time.Now()
	if err := c.reload(ctx, conn); err != nil {
		c.pending = true
		return err
	}
	return nil
}

// heartbeatArrived applies the heartbeat whose payload after "hb:" is rest.
// Only the listener's goroutine calls it.
func (c *Cache) heartbeatArrived(rest string) {
	id, rest, _ := strings.Cut(rest, ":")
	if id != c.id {
		return // another replica's
	}
	n, mac, _ := strings.Cut(rest, ":")
	seq, err := strconv.ParseUint(n, 10, 64)
	if err != nil || !hmac.Equal([]byte(mac), []byte(c.mac(n))) {
		c.ignored(HeartbeatForged)
		return
	}
	c.beatsMu.Lock()
	sent, ok := c.sent[seq]
	delete(c.sent, seq)
	c.beatsMu.Unlock()
	if !ok {
		c.ignored(HeartbeatUnknown)
		return
	}
	// sent is this cache's own clock at sending, never later than now.
	now := int64(time.Since(c.base))
	c.mu.Lock()
	s := c.snap.Load()
	// A snapshot left unproven past maxStale (heartbeats stopped: the
	// triggers were missing or disabled, the pool failed) may have missed
	// a change: it is reloaded, never revived.
	live := s != nil && now <= c.fresh.Load()+int64(c.maxStale)
	late := now-sent > int64(c.maxStale)
	if live && !late && seq >= s.minSeq && sent > c.fresh.Load() {
		c.fresh.Store(sent)
	}
	c.mu.Unlock()
	if late {
		c.ignored(HeartbeatLate)
	}
	if !live {
		c.drop()
		c.pending = true
	}
}

// ignored counts a heartbeat of this cache's that does not count, and logs
// a forged one (at most once a minute).
func (c *Cache) ignored(reason string) {
	c.onIgnored(reason)
	if reason == HeartbeatForged && c.shouldLog(errors.New("forged heartbeat")) {
		c.log.Warn("catalog cache: ignored a heartbeat with this replica's id that it did not send: some database login NOTIFYs on " + CatalogChannel)
	}
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
	// Heartbeats from minSeq on were sent after started.
	c.beatsMu.Lock()
	minSeq := c.seq + 1
	started := int64(time.Since(c.base))
	c.beatsMu.Unlock()
	lctx, cancel := context.WithTimeout(ctx, c.PGStore.timeout)
	defer cancel()
	cat, err := loadCatalog(lctx, conn)
	if err != nil {
		return fmt.Errorf("load catalog: %w", err)
	}
	cat.minSeq = minSeq
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
