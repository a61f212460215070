package mapping_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/oidc-bridge/oidc-bridge/identity"
	"github.com/oidc-bridge/oidc-bridge/mapping"
	"github.com/oidc-bridge/oidc-bridge/test/pgtest"
)

// changeBound is how soon a change made elsewhere must show in a cache:
// the disable-to-deny target.
const changeBound = 5 * time.Second

// cacheEnv is a database with one issuer and one mapping, a store that
// writes as another replica would (not through the cache), and a running
// cache.
type cacheEnv struct {
	// pool is the schema owner's, for fixtures; the stores and the cache
	// run as the service's runtime role (pgtest.NewRuntimePool).
	pool    *pgxpool.Pool
	runtime *pgxpool.Pool
	other   *mapping.PGStore
	cache   *mapping.Cache
	reloads chan error
	// Counts of reloads, of coalesced change notifications and of ignored
	// heartbeats by reason.
	nReloads, nCoalesced atomic.Int64
	ignoredMu            sync.Mutex
	ignored              map[string]int
}

const cacheIssuerURL = "https://token.actions.githubusercontent.com"

func cacheMapping(name string, enabled bool) mapping.Mapping {
	return mapping.Mapping{Name: name, Issuer: "github", Enabled: enabled, Provider: "aws",
		Conditions:         mapping.Conditions{Repository: mapping.One("acme/web")},
		Target:             json.RawMessage(`{"role_arn": "arn:aws:iam::123456789012:role/deploy"}`),
		MaxDurationSeconds: 3600}
}

func newCacheEnv(t *testing.T, o mapping.CacheOptions) *cacheEnv {
	t.Helper()
	ctx := context.Background()
	runtime, pool := pgtest.NewRuntimePool(t)
	other := mapping.NewPGStore(runtime, 0)
	if _, err := other.CreateIssuer(ctx, testActor, mapping.Issuer{Name: "github", URL: cacheIssuerURL,
		Kind: "github", Audiences: []string{"aud"}, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := other.CreateMapping(ctx, testActor, cacheMapping("web", true), nil); err != nil {
		t.Fatal(err)
	}
	e := &cacheEnv{pool: pool, runtime: runtime, other: other, reloads: make(chan error, 100), ignored: map[string]int{}}
	o.OnReloadCoalesced = func() { e.nCoalesced.Add(1) }
	o.OnHeartbeatIgnored = func(reason string) {
		e.ignoredMu.Lock()
		e.ignored[reason]++
		e.ignoredMu.Unlock()
	}
	o.OnReload = func(err error) {
		e.nReloads.Add(1)
		select {
		case e.reloads <- err:
		default:
		}
	}
	e.cache = mapping.NewCache(mapping.NewPGStore(runtime, 0), runtime, o)
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { e.cache.Run(rctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return e
}

// until polls cond every 5 ms until it holds, for at most bound; it
// returns how long that took.
func until(t *testing.T, bound time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > bound {
			t.Fatalf("%s: not within %v", what, bound)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// enabledNames is the exchange's read through the cache.
func enabledNames(t *testing.T, c *mapping.Cache) []string {
	t.Helper()
	ms, err := c.ListMappings(context.Background(), mapping.Filter{Issuer: "github", EnabledOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range ms {
		names = append(names, m.Name)
	}
	return names
}

// TestCacheServesFromMemory: once loaded, the exchange's reads are served
// from memory — they keep answering with the database gone — and then,
// within MaxStale, they stop: a cache that cannot prove itself current
// fails closed with the database's error.
func TestCacheServesFromMemory(t *testing.T) {
	t.Parallel()
	e := newCacheEnv(t, mapping.CacheOptions{Heartbeat: 50 * time.Millisecond, MaxStale: time.Second})
	until(t, changeBound, "first load", e.cache.Fresh)
	is, err := e.cache.IssuerByURL(context.Background(), cacheIssuerURL)
	if err != nil || is.Name != "github" || !is.Enabled || is.Kind != identity.KindGitHub || !slices.Equal(is.Audiences, []string{"aud"}) {
		t.Fatalf("IssuerByURL: %+v %v", is, err)
	}
	if _, err := e.cache.IssuerByURL(context.Background(), cacheIssuerURL+"/"); !errors.Is(err, identity.ErrIssuerNotFound) {
		t.Fatalf("IssuerByURL is byte-exact from memory too: %v", err)
	}
	if got := enabledNames(t, e.cache); !slices.Equal(got, []string{"web"}) {
		t.Fatalf("mappings: %v", got)
	}
	ms, err := e.cache.ListMappings(context.Background(), mapping.Filter{Issuer: "github", Provider: "gcp", EnabledOnly: true})
	if err != nil || len(ms) != 0 {
		t.Fatalf("provider filter: %v %v", ms, err)
	}

	// Take the database away from the pool (the listener has its own
	// connection, which stays up).
	e.runtime.Close()
	if got := enabledNames(t, e.cache); !slices.Equal(got, []string{"web"}) {
		t.Fatalf("from memory with the pool closed: %v", got)
	}
	took := until(t, 3*time.Second, "the unproven cache is not used", func() bool {
		_, err := e.cache.ListMappings(context.Background(), mapping.Filter{Issuer: "github", EnabledOnly: true})
		return err != nil
	})
	if _, err := e.cache.IssuerByURL(context.Background(), cacheIssuerURL); err == nil || errors.Is(err, identity.ErrIssuerNotFound) {
		t.Fatalf("IssuerByURL with no database and no proven cache: %v, want a failure", err)
	}
	t.Logf("with heartbeats failing, reads left memory %v after the pool closed (MaxStale 1 s)", took)
}

// TestCacheFollowsOtherWriters: changes committed by another writer (another
// replica, or SQL) reach the cache through NOTIFY: a disabled mapping, a
// disabled issuer, a new mapping, a deleted one.
func TestCacheFollowsOtherWriters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newCacheEnv(t, mapping.CacheOptions{})
	until(t, changeBound, "first load", e.cache.Fresh)

	if _, err := e.other.UpdateMapping(ctx, testActor, "web", cacheMapping("web", false), nil); err != nil {
		t.Fatal(err)
	}
	took := until(t, changeBound, "disabled mapping", func() bool { return len(enabledNames(t, e.cache)) == 0 })
	t.Logf("mapping disabled elsewhere: gone from the cache after %v", took)

	if _, err := e.pool.Exec(ctx, `UPDATE issuers SET enabled = false WHERE name = 'github'`); err != nil {
		t.Fatal(err)
	}
	until(t, changeBound, "disabled issuer", func() bool {
		is, err := e.cache.IssuerByURL(ctx, cacheIssuerURL)
		return err == nil && !is.Enabled
	})

	// A write with session_replication_role = replica (logical
	// replication's apply, some restores) is notified too.
	if _, err := e.pool.Exec(ctx, `BEGIN; SET LOCAL session_replication_role = replica;
		UPDATE issuers SET enabled = true WHERE name = 'github'; COMMIT`); err != nil {
		t.Fatal(err)
	}
	until(t, changeBound, "issuer enabled by a replica-role session", func() bool {
		is, err := e.cache.IssuerByURL(ctx, cacheIssuerURL)
		return err == nil && is.Enabled
	})

	if _, err := e.other.CreateMapping(ctx, testActor, cacheMapping("api", true), nil); err != nil {
		t.Fatal(err)
	}
	until(t, changeBound, "new mapping", func() bool { return slices.Equal(enabledNames(t, e.cache), []string{"api"}) })
	if err := e.other.DeleteMapping(ctx, testActor, "api"); err != nil {
		t.Fatal(err)
	}
	until(t, changeBound, "deleted mapping", func() bool { return len(enabledNames(t, e.cache)) == 0 })
	// After all that it is served from memory again.
	until(t, changeBound, "fresh again", e.cache.Fresh)
}

// TestCacheReadsOwnWrites: a write through the cache is seen by the very
// next read, without waiting for the notification.
func TestCacheReadsOwnWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newCacheEnv(t, mapping.CacheOptions{})
	until(t, changeBound, "first load", e.cache.Fresh)
	for i := range 20 {
		enabled := i%2 == 1
		if _, err := e.cache.UpdateMapping(ctx, testActor, "web", cacheMapping("web", enabled), nil); err != nil {
			t.Fatal(err)
		}
		if got := len(enabledNames(t, e.cache)) == 1; got != enabled {
			t.Fatalf("write %d: enabled %v, read %v", i, enabled, got)
		}
	}
	if _, err := e.cache.UpdateIssuer(ctx, testActor, "github", mapping.Issuer{Name: "github", URL: cacheIssuerURL,
		Kind: "github", Audiences: []string{"aud"}, Enabled: false}, nil); err != nil {
		t.Fatal(err)
	}
	if is, err := e.cache.IssuerByURL(ctx, cacheIssuerURL); err != nil || is.Enabled {
		t.Fatalf("issuer after disabling it through the cache: %+v %v", is, err)
	}
}

// TestCacheSurvivesLostListener: the listening connection is killed and a
// change is committed while it is down; the cache never serves the old
// state past MaxStale, reconnects and serves from memory again.
func TestCacheSurvivesLostListener(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newCacheEnv(t, mapping.CacheOptions{Heartbeat: 100 * time.Millisecond, MaxStale: time.Second})
	until(t, changeBound, "first load", e.cache.Fresh)
	var n int
	if err := e.pool.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = $1 AND datname = current_database()`, mapping.ListenerApplicationName).Scan(&n); err != nil || n != 1 {
		t.Fatalf("terminate the listener: %d %v", n, err)
	}
	if _, err := e.other.UpdateMapping(ctx, testActor, "web", cacheMapping("web", false), nil); err != nil {
		t.Fatal(err)
	}
	took := until(t, 2*time.Second, "change made while the listener was down", func() bool { return len(enabledNames(t, e.cache)) == 0 })
	t.Logf("change seen %v after it committed, the listener having been killed", took)
	until(t, changeBound, "reconnected and fresh", e.cache.Fresh)
	if got := enabledNames(t, e.cache); len(got) != 0 {
		t.Fatalf("after reconnecting: %v", got)
	}
}

// TestCacheNeedsTriggers: without migration 00005's triggers, or with one
// of them disabled, nothing would tell the cache of changes. No heartbeat
// is sent then, so the cache stops being proven current and goes back to
// the database within MaxStale, and stays there. Once the trigger is back
// the cache reloads rather than reviving its old snapshot, which would
// miss the changes made meanwhile.
func TestCacheNeedsTriggers(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ name, remove, restore string }{
		{"dropped", `DROP TRIGGER oidc_bridge_catalog_notify ON mappings`,
			`CREATE TRIGGER oidc_bridge_catalog_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON mappings
				FOR EACH STATEMENT EXECUTE FUNCTION oidc_bridge_catalog_changed();
			 ALTER TABLE mappings ENABLE ALWAYS TRIGGER oidc_bridge_catalog_notify`},
		{"disabled", `ALTER TABLE mappings DISABLE TRIGGER oidc_bridge_catalog_notify`,
			`ALTER TABLE mappings ENABLE ALWAYS TRIGGER oidc_bridge_catalog_notify`},
		// Origin-only would miss writes made with session_replication_role
		// = replica (logical replication, some restores).
		{"origin only", `ALTER TABLE issuers ENABLE TRIGGER oidc_bridge_catalog_notify`,
			`ALTER TABLE issuers ENABLE ALWAYS TRIGGER oidc_bridge_catalog_notify`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			e := newCacheEnv(t, mapping.CacheOptions{Heartbeat: 20 * time.Millisecond, MaxStale: 500 * time.Millisecond})
			until(t, changeBound, "first load", e.cache.Fresh)
			if _, err := e.pool.Exec(ctx, tt.remove); err != nil {
				t.Fatal(err)
			}
			took := until(t, changeBound, "back to the database", func() bool { return !e.cache.Fresh() })
			t.Logf("cache unused %v after the trigger was %s", took, tt.name)
			// An un-notified change: read from the database.
			if _, err := e.pool.Exec(ctx, `UPDATE mappings SET enabled = false`); err != nil {
				t.Fatal(err)
			}
			for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
				if e.cache.Fresh() {
					t.Fatal("cache in use without its trigger")
				}
				if got := enabledNames(t, e.cache); len(got) != 0 {
					t.Fatalf("read after an un-notified change: %v", got)
				}
			}
			if _, err := e.pool.Exec(ctx, tt.restore); err != nil {
				t.Fatal(err)
			}
			until(t, changeBound, "in use again", e.cache.Fresh)
			if got := enabledNames(t, e.cache); len(got) != 0 {
				t.Fatalf("the cache revived a snapshot older than the un-notified change: %v", got)
			}
		})
	}
}

// TestCacheStartsWithoutTriggers: a cache started on a database without
// the triggers never loads; every read goes to the database.
func TestCacheStartsWithoutTriggers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	runtime, pool := pgtest.NewRuntimePool(t)
	if _, err := pool.Exec(ctx, `DROP TRIGGER oidc_bridge_catalog_notify ON issuers`); err != nil {
		t.Fatal(err)
	}
	store := mapping.NewPGStore(runtime, 0)
	if _, err := store.CreateIssuer(ctx, testActor, mapping.Issuer{Name: "github", URL: cacheIssuerURL,
		Kind: "github", Audiences: []string{"aud"}, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	reloads := make(chan error, 100)
	c := mapping.NewCache(store, runtime, mapping.CacheOptions{Heartbeat: 20 * time.Millisecond,
		OnReload: func(err error) {
			select {
			case reloads <- err:
			default:
			}
		}})
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { c.Run(rctx) })
	defer func() { cancel(); wg.Wait() }()
	select {
	case err := <-reloads:
		if err == nil {
			t.Fatal("the catalog loaded without its triggers")
		}
	case <-time.After(changeBound):
		t.Fatal("no load attempted")
	}
	for end := time.Now().Add(500 * time.Millisecond); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if c.Fresh() {
			t.Fatal("cache in use without its triggers")
		}
	}
	if _, err := pool.Exec(ctx, `UPDATE issuers SET enabled = false`); err != nil {
		t.Fatal(err)
	}
	if is, err := c.IssuerByURL(ctx, cacheIssuerURL); err != nil || is.Enabled {
		t.Fatalf("issuer read without the cache: %+v %v", is, err)
	}
}

// ignoredCount is how many heartbeats the cache ignored for reason.
func (e *cacheEnv) ignoredCount(reason string) int {
	e.ignoredMu.Lock()
	defer e.ignoredMu.Unlock()
	return e.ignored[reason]
}

// connect opens a connection of its own to the cache's database: another
// database login, as an attacker would have.
func (e *cacheEnv) connect(t *testing.T) *pgx.Conn {
	t.Helper()
	conn, err := pgx.ConnectConfig(context.Background(), e.pool.Config().ConnConfig.Copy())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// TestCacheIgnoresForgedHeartbeats: any database login can LISTEN on the
// catalog channel (and so learn a replica's id and see its heartbeats) and
// NOTIFY on it. Here the cache's real heartbeats stop (its pool is closed,
// the listener stays up), so nothing proves its snapshot current any
// more; another connection meanwhile sends heartbeats naming the cache:
// with a far-future timestamp (the old format), replays of the cache's own
// heartbeats, and guessed sequence numbers under a copied MAC. None of
// them extends the snapshot's freshness: within MaxStale the cache stops
// serving from memory (reads go to the database, here failing) and stays
// so.
func TestCacheIgnoresForgedHeartbeats(t *testing.T) {
	t.Parallel()
	const maxStale = 500 * time.Millisecond
	farFuture := int64(100 * 365 * 24 * time.Hour)
	for _, tt := range []struct {
		name   string
		forged func(id string, seen []string) []string
		reason string
	}{
		{"far-future timestamp", func(id string, _ []string) []string {
			return []string{fmt.Sprintf("hb:%s:%d", id, farFuture)}
		}, mapping.HeartbeatForged},
		{"replayed", func(_ string, seen []string) []string { return seen }, mapping.HeartbeatUnknown},
		{"guessed sequence numbers", func(id string, seen []string) []string {
			// hb:id:seq:mac; the MAC of the last one seen under the
			// numbers that follow it.
			last := append(strings.Split(seen[len(seen)-1], ":"), "", "")
			var seq int
			_, _ = fmt.Sscan(last[2], &seq)
			var out []string
			for i := range 50 {
				out = append(out, fmt.Sprintf("hb:%s:%d:%s", id, seq+i, last[3]),
					fmt.Sprintf("hb:%s:%d:%d", id, seq+i, farFuture))
			}
			return out
		}, mapping.HeartbeatForged},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			e := newCacheEnv(t, mapping.CacheOptions{Heartbeat: 20 * time.Millisecond, MaxStale: maxStale})
			until(t, changeBound, "first load", e.cache.Fresh)
			spy := e.connect(t)
			if _, err := spy.Exec(ctx, `LISTEN `+mapping.CatalogChannel); err != nil {
				t.Fatal(err)
			}
			var seen []string
			for len(seen) < 5 {
				wctx, cancel := context.WithTimeout(ctx, changeBound)
				n, err := spy.WaitForNotification(wctx)
				cancel()
				if err != nil {
					t.Fatal(err)
				}
				if strings.HasPrefix(n.Payload, "hb:") {
					seen = append(seen, n.Payload)
				}
			}
			id := strings.Split(seen[0], ":")[1]

			// The real heartbeats stop: the pool is closed (the listener has a
			// connection of its own, which stays up). Exchanges' reads then
			// fail unless served from memory.
			e.runtime.Close()
			forged := tt.forged(id, seen)
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() {
				for {
					for _, p := range forged {
						if _, err := spy.Exec(ctx, `SELECT pg_notify($1, $2)`, mapping.CatalogChannel, p); err != nil {
							t.Error(err)
							return
						}
					}
					select {
					case <-stop:
						return
					case <-time.After(10 * time.Millisecond):
					}
				}
			})
			defer func() { close(stop); wg.Wait() }()
			read := func() error {
				_, err := e.cache.ListMappings(ctx, mapping.Filter{Issuer: "github", EnabledOnly: true})
				return err
			}
			took := until(t, maxStale+time.Second, "the unproven snapshot given up", func() bool { return read() != nil })
			t.Logf("unproven snapshot given up %v after the heartbeats stopped, forged heartbeats arriving throughout", took)
			for end := time.Now().Add(2 * maxStale); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
				if e.cache.Fresh() || read() == nil {
					t.Fatal("the cache is in use again on forged heartbeats")
				}
			}
			if e.ignoredCount(tt.reason) == 0 {
				t.Errorf("no heartbeat counted as ignored (%s)", tt.reason)
			}
		})
	}
}

// TestCacheCoalescesNotificationFloods: any database login can NOTIFY on
// the channel, and every payload but a cache's own heartbeat counts as a
// change. A flood of them costs at most one reload per ReloadInterval, not
// one per message; a change notified while a reload is owed is honoured at
// once (the snapshot is not served: reads go to the database), and the
// cache is in use again, with the change, once the flood is over.
func TestCacheCoalescesNotificationFloods(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const interval = time.Second
	e := newCacheEnv(t, mapping.CacheOptions{Heartbeat: 50 * time.Millisecond, MaxStale: time.Second, ReloadInterval: interval})
	until(t, changeBound, "first load", e.cache.Fresh)
	attacker := e.connect(t)
	before := e.nReloads.Load()
	start := time.Now()
	const n = 2000
	// One transaction of n distinct payloads (PostgreSQL folds only
	// identical ones), then single ones, for a second.
	if _, err := attacker.Exec(ctx, `SELECT pg_notify($1, 'storm ' || i) FROM generate_series(1, $2::int) i`, mapping.CatalogChannel, n); err != nil {
		t.Fatal(err)
	}
	// A real change in the middle of the storm: seen at once.
	if _, err := e.other.UpdateMapping(ctx, testActor, "web", cacheMapping("web", false), nil); err != nil {
		t.Fatal(err)
	}
	took := until(t, 300*time.Millisecond, "change during the storm", func() bool { return len(enabledNames(t, e.cache)) == 0 })
	t.Logf("a change committed during the storm was read %v later", took)
	singles := 0
	for time.Since(start) < interval {
		if _, err := attacker.Exec(ctx, `SELECT pg_notify($1, 'changed')`, mapping.CatalogChannel); err != nil {
			t.Fatal(err)
		}
		singles++
	}
	until(t, changeBound, "in use again after the storm", e.cache.Fresh)
	if got := enabledNames(t, e.cache); len(got) != 0 {
		t.Fatalf("the reloaded snapshot misses the change: %v", got)
	}
	elapsed := time.Since(start)
	reloads := e.nReloads.Load() - before
	// One at once, then at most one per interval started.
	bound := 2 + int64(elapsed/interval)
	t.Logf("%d notifications over %v: %d reloads (bound %d), %d coalesced", n+singles+1, elapsed.Round(time.Millisecond), reloads, bound, e.nCoalesced.Load())
	if reloads > bound {
		t.Fatalf("%d reloads for a storm of %d notifications over %v, want at most %d", reloads, n+singles+1, elapsed, bound)
	}
	if e.nCoalesced.Load() < n-bound {
		t.Fatalf("coalesced %d, want at least %d", e.nCoalesced.Load(), n-bound)
	}
}
