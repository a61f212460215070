package main

// The soak (make soak, `go run ./test/load -soak 30m`): three replicas on
// one PostgreSQL at a fixed rate for a long time, with a quota on the
// mapping (the quota path: a transaction, an advisory lock per bucket, a
// count), sampling each replica's RSS, goroutines and database connections
// and the minute's p99 once a minute, printing them, and plotting them into
// an SVG (written with the standard library only). What it looks for is a
// leak or a slow drift: every series should be flat.

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/oidc-bridge/oidc-bridge/internal/pgcluster"
	"github.com/oidc-bridge/oidc-bridge/test/ststest"
)

var (
	soakFor      = flag.Duration("soak", 0, "run the soak for this long instead of the benchmark (make soak; SOAK_DURATION)")
	soakRate     = flag.Float64("soak-rate", 200, "exchanges per second of the soak, over all replicas")
	soakSVG      = flag.String("soak-svg", "", "write the soak's chart (SVG) to this file")
	soakInterval = flag.Duration("soak-interval", time.Minute, "how often the soak samples")
)

// sample is one replica's gauges at one moment.
type sample struct {
	rss, goroutines, conns float64
}

// soakRow is one interval: each replica's gauges at its end, and the
// interval's exchanges.
type soakRow struct {
	at        time.Duration
	replicas  []sample
	n, failed int
	p50, p99  float64 // ms
	pgConns   float64 // backends of the bridge in pg_stat_activity
	lag       float64 // s: how far the generator fell behind its schedule at worst
}

func soak() error {
	ctx := context.Background()
	bin, tmp, done, err := workdir("oidc-bridge-soak-")
	if err != nil {
		return err
	}
	defer done()
	pgPort := freePort()
	cl, err := pgcluster.Start(ctx, pgcluster.Options{DataDir: filepath.Join(tmp, "pg"), Port: pgPort, Unsafe: *unsafe,
		Settings: map[string]string{"max_connections": "200"}})
	if err != nil {
		return err
	}
	defer cl.Stop(context.Background())
	if err := cl.EnsureDatabase(ctx, "bridge"); err != nil {
		return err
	}
	dbURL := cl.URL("bridge")

	sts := ststest.NewHandler()
	stsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go (&http.Server{Handler: sts, ReadHeaderTimeout: 10 * time.Second}).Serve(stsLn)
	iss, err := newIssuer()
	if err != nil {
		return err
	}
	env := bridgeEnv(dbURL, stsLn.Addr().String(), "BRIDGE_LOG_LEVEL=warn")
	mig := exec.Command(bin, "migrate")
	mig.Env = env
	if out, err := mig.CombinedOutput(); err != nil {
		return fmt.Errorf("migrate: %v\n%s", err, out)
	}
	var replicas []*replica
	defer func() {
		for _, r := range replicas {
			r.cmd.Process.Signal(os.Interrupt)
			r.cmd.Wait()
		}
	}()
	for i := range 3 {
		port := freePort()
		logf, err := os.Create(filepath.Join(tmp, fmt.Sprintf("bridge-%d.log", i+1)))
		if err != nil {
			return err
		}
		cmd := exec.Command(bin, "serve", "--no-migrate")
		cmd.Env = append(slices.Clone(env), fmt.Sprintf("BRIDGE_LISTEN_ADDR=127.0.0.1:%d", port))
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			return err
		}
		r := &replica{cmd: cmd, url: fmt.Sprintf("http://127.0.0.1:%d", port)}
		replicas = append(replicas, r)
		if err := waitReady(r.url, logf.Name()); err != nil {
			return err
		}
	}
	admin := func(path, body string) error { return adminPost(replicas[0].url, path, body) }
	if err := admin("/v1/admin/issuers", fmt.Sprintf(`{"name": "github", "url": %q, "audiences": [%q], "kind": "github",
		"max_token_age_seconds": 1800, "max_token_lifetime_seconds": 1800}`, iss.url, audience)); err != nil {
		return err
	}
	// The quota path: per_job takes the quota transaction (advisory lock,
	// count, insert) on every exchange; each token is its own job, so none
	// is refused and the cost stays that of the path, not of a growing
	// count (per_hour's count over the hour's rows is what issue 22's
	// history half replaces).
	if err := admin("/v1/admin/mappings", `{"name": "load", "issuer": "github",
		"conditions": {"repository": "acme/web", "repository_id": "1339936803", "ref": "refs/heads/main",
		               "environment": "production", "event_name": ["push", "workflow_dispatch"]},
		"provider": "aws", "target": {"role_arn": "arn:aws:iam::123456789012:role/deploy", "region": "eu-west-1"},
		"max_duration_seconds": 3600, "quota": {"per_job": 5}}`); err != nil {
		return err
	}

	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 256}, Timeout: 30 * time.Second}
	// Tokens are minted just ahead of use by a producer (minting them all
	// first would hold hundreds of MB of tokens).
	tokens := make(chan string, int(*soakRate)*5)
	stopMint := make(chan struct{})
	var minted atomic.Int64
	minted.Store(1 << 30) // apart from warm-up's token numbers
	for w := range 2 {
		go func() {
			for {
				n := int(minted.Add(1))
				t, err := iss.mint(n%*pipelines+w, n)
				if err != nil {
					log.Fatal(err)
				}
				select {
				case tokens <- t:
				case <-stopMint:
					return
				}
			}
		}()
	}
	defer close(stopMint)
	warm(client, replicas, &tokenSource{iss: iss})

	fmt.Printf("\noidc-bridge soak: 3 replicas, %.0f exchanges/s, %s, quota per_job on, sampled every %s\n", *soakRate, *soakFor, *soakInterval)
	fmt.Printf("%6s %8s %7s %8s %8s  %-26s %-17s %-11s %s\n", "minute", "n", "failed", "p50 ms", "p99 ms",
		"RSS MiB (r1 r2 r3)", "goroutines", "pool conns", "pg backends  lag s")
	var (
		mu      sync.Mutex
		lat     []time.Duration
		failed  int
		rows    []soakRow
		wg      sync.WaitGroup
		lateLog atomic.Int64
		maxLag  time.Duration
	)
	interval := time.Duration(float64(time.Second) / *soakRate)
	t0 := time.Now()
	end := t0.Add(*soakFor)
	nextSample := t0.Add(*soakInterval)
	takeRow := func(now time.Time) {
		mu.Lock()
		l, f, lag := lat, failed, maxLag
		lat, failed, maxLag = nil, 0, 0
		mu.Unlock()
		slices.Sort(l)
		pct := func(p float64) float64 {
			if len(l) == 0 {
				return math.NaN()
			}
			return float64(l[int(p*float64(len(l)-1))].Microseconds()) / 1000
		}
		row := soakRow{at: now.Sub(t0), n: len(l), failed: f, lag: lag.Seconds(), p50: pct(.5), p99: pct(.99), pgConns: pgBackends(ctx, dbURL)}
		for _, r := range replicas {
			row.replicas = append(row.replicas, gauges(r.url))
		}
		rows = append(rows, row)
		var rss, gor, conns []string
		for _, s := range row.replicas {
			rss = append(rss, fmt.Sprintf("%.1f", s.rss/(1<<20)))
			gor = append(gor, fmt.Sprintf("%.0f", s.goroutines))
			conns = append(conns, fmt.Sprintf("%.0f", s.conns))
		}
		fmt.Printf("%6.1f %8d %7d %8.2f %8.2f  %-26s %-17s %-11s %11.0f  %5.1f\n", row.at.Minutes(), row.n, row.failed, row.p50, row.p99,
			strings.Join(rss, " "), strings.Join(gor, " "), strings.Join(conns, " "), row.pgConns, row.lag)
	}
	for i := 0; ; i++ {
		due := t0.Add(time.Duration(i) * interval)
		if !due.Before(end) {
			break
		}
		if now := time.Now(); !due.After(now) && now.Sub(due) > time.Second && lateLog.Add(1) <= 3 {
			log.Printf("the load generator is %v behind its schedule (the machine is saturated)", now.Sub(due).Round(time.Millisecond))
		}
		time.Sleep(time.Until(due))
		if !due.Before(nextSample) {
			takeRow(due)
			nextSample = nextSample.Add(*soakInterval)
		}
		tok := <-tokens
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The request's own latency: when the machine is saturated the
			// generator falls behind its schedule, which is reported apart
			// (lag), not counted in every later request.
			d, code, err := exchange(client, replicas[i%len(replicas)].url, tok)
			mu.Lock()
			lat = append(lat, d)
			maxLag = max(maxLag, time.Since(due)-d)
			if err != nil || code != 200 {
				if failed++; failed <= 3 {
					log.Printf("exchange failed: %d %v", code, err)
				}
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	takeRow(time.Now())

	// Flatness: the last third's mean against the first third's (after
	// the first sample, which includes the warm-up).
	verdict := flatness(rows)
	fmt.Print(verdict)
	if *soakSVG != "" {
		if err := os.WriteFile(*soakSVG, []byte(soakChart(rows, *soakRate)), 0o644); err != nil {
			return err
		}
		log.Printf("wrote %s", *soakSVG)
	}
	return nil
}

// gauges scrapes one replica's RSS, goroutines and pool connections.
func gauges(url string) sample {
	var s sample
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		log.Printf("scrape %s: %v", url, err)
		return s
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		v, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "process_resident_memory_bytes":
			s.rss = v
		case "go_goroutines":
			s.goroutines = v
		case "oidc_bridge_db_pool_acquired_connections", "oidc_bridge_db_pool_idle_connections":
			s.conns += v
		}
	}
	return s
}

// pgBackends counts the bridge's sessions on the server.
func pgBackends(ctx context.Context, url string) float64 {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		log.Printf("count backends: %v", err)
		return math.NaN()
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = 'oidc-bridge'`).Scan(&n); err != nil {
		log.Printf("count backends: %v", err)
		return math.NaN()
	}
	return float64(n)
}

// flatness compares the mean of each series over the last third of the
// samples with the first third's (the first sample, with the warm-up,
// left out).
func flatness(rows []soakRow) string {
	if len(rows) < 4 {
		return "\ntoo few samples to judge flatness\n"
	}
	body := rows[1:]
	k := max(1, len(body)/3)
	first, last := body[:k], body[len(body)-k:]
	mean := func(rs []soakRow, f func(soakRow) float64) float64 {
		s := 0.0
		for _, r := range rs {
			s += f(r)
		}
		return s / float64(len(rs))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n== flatness (mean of the last %d samples ÷ the first %d, after the first)\n", k, k)
	check := func(name string, f func(soakRow) float64, limit float64) {
		a, z := mean(first, f), mean(last, f)
		ratio := z / a
		s := "flat"
		if ratio > limit {
			s = "NOT FLAT"
		}
		fmt.Fprintf(&b, "  %-26s %10.2f → %10.2f  ×%.2f (limit ×%.2f) %s\n", name, a, z, ratio, limit, s)
	}
	sum := func(g func(sample) float64) func(soakRow) float64 {
		return func(r soakRow) float64 {
			t := 0.0
			for _, s := range r.replicas {
				t += g(s)
			}
			return t
		}
	}
	check("RSS, all replicas (MiB)", func(r soakRow) float64 { return sum(func(s sample) float64 { return s.rss })(r) / (1 << 20) }, 1.25)
	check("goroutines, all replicas", sum(func(s sample) float64 { return s.goroutines }), 1.25)
	check("pool connections, all", sum(func(s sample) float64 { return s.conns }), 1.5)
	check("PostgreSQL backends", func(r soakRow) float64 { return r.pgConns }, 1.5)
	check("p99 (ms)", func(r soakRow) float64 { return r.p99 }, 2)
	return b.String()
}

// soakChart draws the samples as four small line charts in one SVG.
func soakChart(rows []soakRow, rate float64) string {
	type series struct {
		name  string
		color string
		ys    []float64
	}
	type panel struct {
		title  string
		series []series
	}
	perReplica := func(g func(sample) float64) []series {
		colors := []string{"#1f77b4", "#ff7f0e", "#2ca02c"}
		var out []series
		for i := range 3 {
			s := series{name: fmt.Sprintf("replica %d", i+1), color: colors[i]}
			for _, r := range rows {
				if i < len(r.replicas) {
					s.ys = append(s.ys, g(r.replicas[i]))
				}
			}
			out = append(out, s)
		}
		return out
	}
	col := func(f func(soakRow) float64) []float64 {
		var ys []float64
		for _, r := range rows {
			ys = append(ys, f(r))
		}
		return ys
	}
	panels := []panel{
		{"RSS (MiB)", perReplica(func(s sample) float64 { return s.rss / (1 << 20) })},
		{"goroutines", perReplica(func(s sample) float64 { return s.goroutines })},
		{"DB connections", append(perReplica(func(s sample) float64 { return s.conns }),
			series{"pg backends (all)", "#7f7f7f", col(func(r soakRow) float64 { return r.pgConns })})},
		{"latency (ms)", []series{{"p99", "#d62728", col(func(r soakRow) float64 { return r.p99 })},
			{"p50", "#9467bd", col(func(r soakRow) float64 { return r.p50 })}}},
	}
	const (
		pw, ph       = 360.0, 170.0 // a panel
		ml, mt       = 46.0, 24.0   // margins inside a panel
		plotW, plotH = pw - ml - 12, ph - mt - 34
	)
	var b strings.Builder
	width, height := 2*pw, 2*ph+28
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="10">`+"\n",
		width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	total := 0.0
	if len(rows) > 0 {
		total = rows[len(rows)-1].at.Minutes()
	}
	fmt.Fprintf(&b, `<text x="8" y="16" font-size="12">oidc-bridge soak: 3 replicas, %.0f exchanges/s, %.0f min, quota on; one sample per minute</text>`+"\n", rate, total)
	for pi, p := range panels {
		ox, oy := float64(pi%2)*pw, 28+float64(pi/2)*ph
		maxY := 0.0
		for _, s := range p.series {
			for _, y := range s.ys {
				if !math.IsNaN(y) {
					maxY = max(maxY, y)
				}
			}
		}
		maxY = niceCeil(maxY * 1.1)
		x0, y0 := ox+ml, oy+mt
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="11" font-weight="bold">%s</text>`+"\n", x0, oy+14, p.title)
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#ccc"/>`+"\n", x0, y0, plotW, plotH)
		for _, f := range []float64{0, 0.5, 1} {
			y := y0 + plotH*(1-f)
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n", x0-4, y+3, strconv.FormatFloat(maxY*f, 'g', 4, 64))
			if f == 0.5 {
				fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eee"/>`+"\n", x0, y, x0+plotW, y)
			}
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f">0</text><text x="%.1f" y="%.1f" text-anchor="end">%.0f min</text>`+"\n",
			x0, y0+plotH+12, x0+plotW, y0+plotH+12, total)
		for si, s := range p.series {
			var pts []string
			for i, y := range s.ys {
				if math.IsNaN(y) || maxY == 0 {
					continue
				}
				x := x0
				if total > 0 {
					x = x0 + plotW*rows[i].at.Minutes()/total
				}
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y0+plotH*(1-y/maxY)))
			}
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", s.color, strings.Join(pts, " "))
			lx := x0 + float64(si)*78
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="8" height="8" fill="%s"/><text x="%.1f" y="%.1f">%s</text>`+"\n",
				lx, y0+plotH+18, s.color, lx+11, y0+plotH+26, s.name)
		}
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}
