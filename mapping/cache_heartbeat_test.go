package mapping

import (
	"strconv"
	"testing"
	"time"
)

// TestHeartbeatArrived pins which heartbeats prove a snapshot current: only
// this cache's own (its MAC verifies), each once, sent after the
// snapshot's load began, arrived within MaxStale; and the proof is the
// send time the cache remembers, never anything in the payload. The
// end-to-end cases (over a real channel) are TestCacheIgnoresForgedHeartbeats.
func TestHeartbeatArrived(t *testing.T) {
	t.Parallel()
	const maxStale = time.Second
	ms := func(d time.Duration) int64 { return int64(d) }
	hb := func(c *Cache, seq uint64) string {
		n := strconv.FormatUint(seq, 10)
		return c.id + ":" + n + ":" + c.mac(n)
	}
	// The cache's clock stands at now (offset from base); its snapshot was
	// loaded from minSeq 10 on and proven current as of fresh0. Outstanding:
	// seq 9 (sent before the load began, yet, here, after fresh0), 10 and 11
	// (sent after fresh0), 12 (sent longer than maxStale ago).
	const now = 10 * time.Second
	fresh0 := ms(now - 500*time.Millisecond)
	outstanding := map[uint64]int64{
		9:  ms(now - 300*time.Millisecond),
		10: ms(now - 200*time.Millisecond),
		11: ms(now - 100*time.Millisecond),
		12: ms(now - 2*maxStale),
	}
	other := NewCache(nil, nil, CacheOptions{})
	for _, tt := range []struct {
		name      string
		payloads  func(c *Cache) []string
		wantFresh int64
		wantWhy   []string
		wantLeft  []uint64 // sequence numbers still outstanding
	}{
		{"own heartbeat", func(c *Cache) []string { return []string{hb(c, 11)} },
			outstanding[11], nil, []uint64{9, 10, 12}},
		{"counts once", func(c *Cache) []string { return []string{hb(c, 10), hb(c, 10)} },
			outstanding[10], []string{HeartbeatUnknown}, []uint64{9, 11, 12}},
		{"MAC of another sequence number", func(c *Cache) []string {
			return []string{c.id + ":11:" + c.mac("10")}
		}, fresh0, []string{HeartbeatForged}, []uint64{9, 10, 11, 12}},
		{"no MAC", func(c *Cache) []string { return []string{c.id + ":11", c.id + ":11:"} },
			fresh0, []string{HeartbeatForged, HeartbeatForged}, []uint64{9, 10, 11, 12}},
		{"another cache's MAC", func(c *Cache) []string {
			// Another replica's key, under this one's id.
			return []string{c.id + ":11:" + other.mac("11")}
		}, fresh0, []string{HeartbeatForged}, []uint64{9, 10, 11, 12}},
		{"far-future timestamp (old format)", func(c *Cache) []string {
			return []string{c.id + ":" + strconv.FormatInt(ms(100*365*24*time.Hour), 10)}
		}, fresh0, []string{HeartbeatForged}, []uint64{9, 10, 11, 12}},
		{"never sent", func(c *Cache) []string { return []string{hb(c, 13)} },
			fresh0, []string{HeartbeatUnknown}, []uint64{9, 10, 11, 12}},
		{"sent before the snapshot's load", func(c *Cache) []string { return []string{hb(c, 9)} },
			fresh0, nil, []uint64{10, 11, 12}},
		{"late", func(c *Cache) []string { return []string{hb(c, 12)} },
			fresh0, []string{HeartbeatLate}, []uint64{9, 10, 11}},
		{"another replica's", func(c *Cache) []string { return []string{other.id + ":11:" + other.mac("11")} },
			fresh0, nil, []uint64{9, 10, 11, 12}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var why []string
			c := NewCache(nil, nil, CacheOptions{MaxStale: maxStale, OnHeartbeatIgnored: func(r string) { why = append(why, r) }})
			c.base = time.Now().Add(-now)
			c.seq = 12
			for s, at := range outstanding {
				c.sent[s] = at
			}
			c.snap.Store(&catalog{minSeq: 10})
			c.fresh.Store(fresh0)
			for _, p := range tt.payloads(c) {
				c.heartbeatArrived(p)
			}
			if got := c.fresh.Load(); got != tt.wantFresh {
				t.Errorf("fresh = now - %v, want now - %v", time.Duration(ms(now)-got), time.Duration(ms(now)-tt.wantFresh))
			}
			if len(why) != len(tt.wantWhy) {
				t.Errorf("ignored %q, want %q", why, tt.wantWhy)
			} else {
				for i := range why {
					if why[i] != tt.wantWhy[i] {
						t.Errorf("ignored %q, want %q", why, tt.wantWhy)
					}
				}
			}
			if len(c.sent) != len(tt.wantLeft) {
				t.Errorf("outstanding %v, want %v", c.sent, tt.wantLeft)
			}
			for _, s := range tt.wantLeft {
				if _, ok := c.sent[s]; !ok {
					t.Errorf("outstanding %v, want %v", c.sent, tt.wantLeft)
				}
			}
			if c.snap.Load() == nil || c.pending {
				t.Error("a heartbeat on a live snapshot dropped it")
			}
		})
	}
}
