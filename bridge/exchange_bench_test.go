package bridge_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oidc-bridge/oidc-bridge/bridge"
)

// BenchmarkExchange measures whole exchanges over loopback HTTP: token
// verification (warm key cache), mapping selection, the ledger's reserve and
// record transactions on real Postgres, and AssumeRole through the real AWS
// SDK against the STS fake. It reports exchanges per second and the p50 and
// p99 latency of one exchange, with 2 and with 16 concurrent clients (on
// GOMAXPROCS=2).
func BenchmarkExchange(b *testing.B) {
	for _, p := range []int{1, 8} {
		b.Run(fmt.Sprintf("clients=%d", p*runtime.GOMAXPROCS(0)), func(b *testing.B) { benchmarkExchange(b, p) })
	}
}

func benchmarkExchange(b *testing.B, parallelism int) {
	x := newExchangeEnv(b, func(o *bridge.Options) { o.Logger = slog.New(slog.DiscardHandler) })
	x.mapping("bench", `"repository": "acme/web"`, "")
	srv := httptest.NewServer(x.srv.Handler())
	defer srv.Close()
	tokens := make([]string, b.N)
	for i := range tokens {
		tokens[i] = x.gh.Mint(b, x.gh.GitHubClaims(nil))
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var (
		next      atomic.Int64
		mu        sync.Mutex
		latencies = make([]time.Duration, 0, b.N)
		failures  atomic.Int64
	)
	b.SetParallelism(parallelism)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		local := make([]time.Duration, 0, 64)
		for pb.Next() {
			tok := tokens[next.Add(1)-1]
			req, _ := http.NewRequest("POST", srv.URL+"/v1/exchange", strings.NewReader(`{"mapping": "bench"}`))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/json")
			t0 := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				failures.Add(1)
				continue
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			local = append(local, time.Since(t0))
			if resp.StatusCode != 200 {
				failures.Add(1)
			}
		}
		mu.Lock()
		latencies = append(latencies, local...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if n := failures.Load(); n > 0 {
		b.Fatalf("%d of %d exchanges failed", n, b.N)
	}
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		return float64(latencies[int(p*float64(len(latencies)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "exchanges/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
