// Command load benchmarks the real oidc-bridge binary end to end on this
// machine: a private PostgreSQL cluster, the STS fake answering instantly, a
// local GitHub-shaped issuer, N concurrent pipelines against 1 and then 3
// replicas, a fixed-rate phase, and pgbench on the ledger's writes for the
// ceiling. See docs/performance.md.
//
//	make build && go run ./test/load [-pipelines 32] [-duration 15s]
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
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

// loadMapping is the mapping the exchanges name.
var loadMapping = "load"

const adminToken = "load-admin-token-0123456789abcdefghijklmnop"

var (
	binary    = flag.String("bin", "bin/oidc-bridge", "the oidc-bridge binary")
	pipelines = flag.Int("pipelines", 32, "concurrent simulated pipelines")
	duration  = flag.Duration("duration", 15*time.Second, "length of each phase")
	rate      = flag.Float64("rate", 200, "requests per second of the fixed-rate phase")
	maxTokens = flag.Int("tokens", 30000, "tokens pre-minted per closed-loop phase (2,000/s x 15 s); a phase ends early when they run out")
	unsafe    = flag.Bool("unsafe", false, "PostgreSQL with fsync/synchronous_commit off (not comparable to production)")
	keep      = flag.Bool("keep", false, "keep the temporary folder")
	history   = flag.Int("history", 0, "instead of the exchange phases: fill a fresh ledger with this many rows of history and measure the audit cookbook, sizes and a partition drop (see history.go)")
	months    = flag.Int("history-months", 6, "months the -history rows are spread over")
	histDir   = flag.String("history-dir", "", "keep the -history cluster in this folder (never removed); when it already holds the history, measure it without generating again")
	exchOnly  = flag.Bool("exchange-only", false, "only the 1-replica phases (closed loop, fixed rate): to compare ledgers, e.g. an empty one and a -history-dir one")
	quotaHour = flag.Int("quota", 0, "give the load mapping this per_hour quota (0: none), to time the quota path through the binary")
	histDrop  = flag.Bool("history-drop", true, "end the -history measurements with a partition drop under writes (it drops the oldest month)")
	genOnly   = flag.Bool("history-gen-only", false, "with -history-dir: generate the history, then stop (measure later, in one sitting)")
	profile   = flag.String("profile", "", "write a CPU profile of replica 1 during the 1-replica closed-loop phase to this file, and print its top entries")
)

func main() {
	flag.Parse()
	log.SetFlags(log.Ltime)
	if *history > 0 || (*histDir != "" && *genOnly) {
		if err := runHistory(); err != nil {
			log.Fatal(err)
		}
		return
	}
	do := run
	switch {
	case *soakFor > 0:
		do = soak
	case *consoleMode:
		do = runConsole // test/load/console.go
	}
	if err := do(); err != nil {
		log.Fatal(err)
	}
}

type replica struct {
	cmd   *exec.Cmd
	url   string
	pprof string // its BRIDGE_PPROF_ADDR, if profiled
}

func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func run() error {
	ctx := context.Background()
	bin, tmp, done, err := workdir("oidc-bridge-load-")
	if err != nil {
		return err
	}
	defer done()

	// PostgreSQL: a fresh cluster, or -history-dir's (same settings).
	pgDir := filepath.Join(tmp, "pg")
	if *histDir != "" {
		pgDir = filepath.Join(*histDir, "pg")
	}
	log.Printf("starting PostgreSQL in %s (unsafe=%v)", pgDir, *unsafe)
	pgPort := freePort()
	cl, err := pgcluster.Start(ctx, pgcluster.Options{DataDir: pgDir, Port: pgPort, Unsafe: *unsafe,
		Settings: map[string]string{"max_connections": "200"}})
	if err != nil {
		return err
	}
	defer cl.Stop(context.Background())
	if err := cl.EnsureDatabase(ctx, "bridge"); err != nil {
		return err
	}
	dbURL := cl.URL("bridge")
	if *histDir != "" {
		var rows int64
		if err := pgxScalar(ctx, dbURL, `SELECT coalesce(sum(reltuples), 0)::bigint FROM pg_class WHERE relname LIKE 'issuances_2%' AND relkind = 'r'`, &rows); err != nil {
			return err
		}
		log.Printf("ledger of %s holds about %d issuances", *histDir, rows)
	}
	postmaster, err := postmasterPID(filepath.Join(pgDir, "pgdata"))
	if err != nil {
		return err
	}

	// STS fake, issuer.
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

	// One role for both: serve migrates the fresh database at start.
	env := bridgeEnv(dbURL, stsLn.Addr().String(), "BRIDGE_MIGRATION_DATABASE_URL="+dbURL)
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
	start := func() error {
		port := freePort()
		logf, err := os.Create(filepath.Join(tmp, fmt.Sprintf("bridge-%d.log", len(replicas)+1)))
		if err != nil {
			return err
		}
		cmd := exec.Command(bin, "serve", "--no-migrate")
		cmd.Env = append(slices.Clone(env), fmt.Sprintf("BRIDGE_LISTEN_ADDR=127.0.0.1:%d", port))
		r := &replica{cmd: cmd, url: fmt.Sprintf("http://127.0.0.1:%d", port)}
		if *profile != "" && len(replicas) == 0 {
			r.pprof = fmt.Sprintf("127.0.0.1:%d", freePort())
			cmd.Env = append(cmd.Env, "BRIDGE_PPROF_ADDR="+r.pprof)
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			return err
		}
		replicas = append(replicas, r)
		return waitReady(r.url, logf.Name())
	}
	if err := start(); err != nil {
		return err
	}
	admin := func(path, body string) error { return adminPost(replicas[0].url, path, body) }
	// The tokens live 30 minutes (they are minted ahead of the phases that
	// use them), beyond the github kind's default 15-minute limits.
	// Names of their own on a kept ledger, which earlier runs' catalog may
	// hold (their issuer's URL differs: their mappings never match).
	issName, mapName := "github", loadMapping
	if *histDir != "" {
		issName, mapName = fmt.Sprintf("github-%d", time.Now().Unix()), fmt.Sprintf("load-%d", time.Now().Unix())
		loadMapping = mapName
	}
	if err := admin("/v1/admin/issuers", fmt.Sprintf(`{"name": %q, "url": %q, "audiences": [%q], "kind": "github",
		"max_token_age_seconds": 1800, "max_token_lifetime_seconds": 1800}`, issName, iss.url, audience)); err != nil {
		return err
	}
	if err := admin("/v1/admin/mappings", fmt.Sprintf(`{"name": %q, "issuer": %q,
		"conditions": {"repository": "acme/web", "repository_id": "1339936803", "ref": "refs/heads/main",
		               "environment": "production", "event_name": ["push", "workflow_dispatch"]},
		"provider": "aws", "target": {"role_arn": "arn:aws:iam::123456789012:role/deploy", "region": "eu-west-1"},
		"max_duration_seconds": 3600, "quota": {"per_hour": %d}}`, mapName, issName, *quotaHour)); err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	var mappingID int64
	if err := conn.QueryRow(ctx, `SELECT id FROM mappings WHERE name = $1`, mapName).Scan(&mappingID); err != nil {
		return err
	}
	conn.Close(ctx)

	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 256}, Timeout: 30 * time.Second}
	minter := &tokenSource{iss: iss}
	ncpu := runtime.NumCPU()
	fmt.Printf("\noidc-bridge load test: %d cores, %d pipelines, %s per phase, PostgreSQL unsafe=%v\n", ncpu, *pipelines, *duration, *unsafe)

	// Phase 1: one replica, closed loop.
	if err := warm(client, replicas, minter); err != nil {
		return err
	}
	var prof func() error
	r1, err := closedLoop(client, replicas, minter, postmaster, func() { prof = startProfile(replicas[0]) })
	if err != nil {
		return err
	}
	r1.print("1 replica")
	if err := prof(); err != nil {
		return err
	}
	// Fixed rate on one replica.
	fr, err := fixedRate(client, replicas, minter, postmaster)
	if err != nil {
		return err
	}
	fr.print(fmt.Sprintf("1 replica, fixed %.0f req/s", *rate))
	if *exchOnly {
		fmt.Printf("\n== exchange-only: %.0f exchanges/s, p99 %.2f ms closed loop; p99 %.2f ms at %.0f req/s\n", r1.xps, r1.p99, fr.p99, *rate)
		return nil
	}
	// Phase 2: three replicas.
	for len(replicas) < 3 {
		if err := start(); err != nil {
			return err
		}
	}
	if err := warm(client, replicas, minter); err != nil {
		return err
	}
	r3, err := closedLoop(client, replicas, minter, postmaster, func() {})
	if err != nil {
		return err
	}
	r3.print("3 replicas")

	// pgbench ceiling: with as many clients as cores, and with as many as
	// the pipelines (more commits share each WAL flush); the higher is
	// the machine's ceiling.
	var pb pgbenchResult
	for _, clients := range []int{ncpu, *pipelines} {
		r, err := pgbench(cl, pgPort, mappingID, clients, postmaster)
		if err != nil {
			return err
		}
		fmt.Printf("\n== pgbench ledger.pgbench (-c %d -j %d -T %s)\n  tps %.0f, PostgreSQL CPU %.0f µs/txn, latency avg %.2f ms\n",
			clients, ncpu, *duration, r.tps, r.pgCPU*1e6, r.latMS)
		if r.tps > pb.tps {
			pb = r
		}
	}
	fmt.Printf("  ceiling: %.0f tps, PostgreSQL CPU %.0f µs/txn\n", pb.tps, pb.pgCPU*1e6)

	best := r1
	if r3.xps > best.xps {
		best = r3
	}
	maxRSS := 0.0
	for _, r := range append(slices.Clone(r1.rss), r3.rss...) {
		maxRSS = max(maxRSS, r)
	}
	fmt.Printf("\n== targets (best closed-loop phase: %s)\n", best.name)
	check := func(name string, got, target string, ok bool) {
		s := "NOT MET"
		if ok {
			s = "met"
		}
		fmt.Printf("  %-42s %-14s target %-12s %s\n", name, got, target, s)
	}
	check("throughput (exchanges/s)", fmt.Sprintf("%.0f", best.xps), "≥ 2000", best.xps >= 2000)
	ratio := best.xps / pb.tps
	check("share of pgbench ceiling", fmt.Sprintf("%.1f %%", 100*ratio), "≥ 35 %", ratio >= 0.35)
	check("bridge CPU per exchange (1 replica)", fmt.Sprintf("%.0f µs", r1.bridgeCPU*1e6), "≤ 250 µs", r1.bridgeCPU <= 250e-6)
	check("bridge CPU per exchange (3 replicas)", fmt.Sprintf("%.0f µs", r3.bridgeCPU*1e6), "≤ 250 µs", r3.bridgeCPU <= 250e-6)
	pgRatio := best.pgCPU / pb.pgCPU
	check("PostgreSQL CPU/exchange ÷ per pgbench txn", fmt.Sprintf("%.2f×", pgRatio), "≤ 1.5×", pgRatio <= 1.5)
	check(fmt.Sprintf("p99 at %.0f req/s", *rate), fmt.Sprintf("%.2f ms", fr.p99), "≤ 5 ms", fr.p99 <= 5)
	check("RSS per replica (max)", fmt.Sprintf("%.1f MiB", maxRSS/(1<<20)), "≤ 100 MiB", maxRSS <= 100<<20)
	fmt.Printf("  exchanges/s ÷ pgbench tps = %.3f (1 replica %.3f, 3 replicas %.3f)\n", ratio, r1.xps/pb.tps, r3.xps/pb.tps)
	return nil
}

// tokenSource mints tokens outside the timed phases.
type tokenSource struct {
	iss *issuer
	n   atomic.Int64
}

func (s *tokenSource) mint(count int) []string {
	out := make([]string, count)
	var wg sync.WaitGroup
	workers := runtime.NumCPU()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < count; i += workers {
				t, err := s.iss.mint(i%*pipelines, int(s.n.Add(1)))
				if err != nil {
					log.Fatal(err)
				}
				out[i] = t
			}
		}()
	}
	wg.Wait()
	return out
}

func exchange(client *http.Client, url, token string) (time.Duration, int, error) {
	req, _ := http.NewRequest("POST", url+"/v1/exchange", strings.NewReader(`{"mapping": "`+loadMapping+`", "duration_seconds": 900}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	t0 := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return time.Since(t0), resp.StatusCode, nil
}

// warm runs a few exchanges per replica (JWKS fetch, connection pools).
func warm(client *http.Client, replicas []*replica, src *tokenSource) error {
	toks := src.mint(20 * len(replicas))
	for i, t := range toks {
		if _, code, err := exchange(client, replicas[i%len(replicas)].url, t); err != nil || code != 200 {
			return fmt.Errorf("warm-up exchange: %d %v", code, err)
		}
	}
	return nil
}

type result struct {
	name                   string
	n, failed              int
	elapsed                time.Duration
	xps                    float64
	p50, p95, p99          float64 // ms
	stages                 map[string][2]float64
	rss                    []float64
	bridgeCPU, pgCPU       float64 // seconds per exchange
	bridgeCPUs, pgCPUTotal float64
}

type snapshot struct {
	bridge []float64
	pg     float64
	stages map[string][2]float64
}

func takeSnapshot(replicas []*replica, postmaster int) snapshot {
	s := snapshot{stages: map[string][2]float64{}}
	for _, r := range replicas {
		s.bridge = append(s.bridge, procCPU(r.cmd.Process.Pid))
		m := scrape(r.url)
		for k, v := range m.stages {
			a := s.stages[k]
			s.stages[k] = [2]float64{a[0] + v[0], a[1] + v[1]}
		}
	}
	s.pg = pgCPU(postmaster)
	return s
}

func finish(name string, lat []time.Duration, failed int, elapsed time.Duration, replicas []*replica, before, after snapshot) *result {
	slices.Sort(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000
	}
	r := &result{name: name, n: len(lat), failed: failed, elapsed: elapsed, p50: pct(.5), p95: pct(.95), p99: pct(.99),
		stages: map[string][2]float64{}}
	ok := float64(len(lat) - failed)
	r.xps = ok / elapsed.Seconds()
	for k, v := range after.stages {
		b := before.stages[k]
		r.stages[k] = [2]float64{v[0] - b[0], v[1] - b[1]}
	}
	for i := range replicas {
		r.bridgeCPUs += after.bridge[i] - before.bridge[i]
		r.rss = append(r.rss, scrape(replicas[i].url).rss)
	}
	r.pgCPUTotal = after.pg - before.pg
	if ok > 0 {
		r.bridgeCPU = r.bridgeCPUs / ok
		r.pgCPU = r.pgCPUTotal / ok
	}
	return r
}

func (r *result) print(title string) {
	r.name = title
	fmt.Printf("\n== %s\n  %d exchanges (%d failed) in %.1fs: %.0f exchanges/s\n  latency p50 %.2f ms, p95 %.2f ms, p99 %.2f ms\n",
		title, r.n, r.failed, r.elapsed.Seconds(), r.xps, r.p50, r.p95, r.p99)
	fmt.Printf("  stage means:")
	for _, st := range []string{"verify", "select", "reserve", "mint", "record"} {
		if v, ok := r.stages[st]; ok && v[1] > 0 {
			fmt.Printf(" %s %.3f ms", st, 1000*v[0]/v[1])
		}
	}
	fmt.Printf("\n  RSS per replica:")
	for _, b := range r.rss {
		fmt.Printf(" %.1f MiB", b/(1<<20))
	}
	fmt.Printf("\n  CPU per exchange: bridge %.0f µs (%.2f core-s total), PostgreSQL %.0f µs (%.2f core-s total)\n",
		r.bridgeCPU*1e6, r.bridgeCPUs, r.pgCPU*1e6, r.pgCPUTotal)
}

// closedLoop runs the closed-loop phase; started is called when its tokens
// are minted and the timed part begins.
func closedLoop(client *http.Client, replicas []*replica, src *tokenSource, postmaster int, started func()) (*result, error) {
	log.Printf("minting %d tokens", *maxTokens)
	toks := src.mint(*maxTokens)
	started()
	log.Printf("closed loop: %d pipelines, %d replicas, %s", *pipelines, len(replicas), *duration)
	var (
		next   atomic.Int64
		failed atomic.Int64
		mu     sync.Mutex
		lat    []time.Duration
		wg     sync.WaitGroup
	)
	before := takeSnapshot(replicas, postmaster)
	t0 := time.Now()
	deadline := t0.Add(*duration)
	for p := range *pipelines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 1024)
			for time.Now().Before(deadline) {
				i := int(next.Add(1)) - 1
				if i >= len(toks) {
					break
				}
				d, code, err := exchange(client, replicas[(i+p)%len(replicas)].url, toks[i])
				if err != nil || code != 200 {
					if failed.Add(1) <= 3 {
						log.Printf("exchange failed: %d %v", code, err)
					}
				}
				local = append(local, d)
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(t0)
	after := takeSnapshot(replicas, postmaster)
	if int(next.Load()) >= len(toks) {
		log.Printf("the %d tokens ran out after %s: the phase ended early (throughput is over the time it ran)", len(toks), elapsed)
	}
	return finish("", lat, int(failed.Load()), elapsed, replicas, before, after), nil
}

func fixedRate(client *http.Client, replicas []*replica, src *tokenSource, postmaster int) (*result, error) {
	n := int(*rate * duration.Seconds())
	log.Printf("minting %d tokens", n)
	toks := src.mint(n)
	log.Printf("fixed rate: %.0f req/s on %d replica(s), %s", *rate, len(replicas), *duration)
	var (
		failed atomic.Int64
		lat    = make([]time.Duration, n)
		wg     sync.WaitGroup
	)
	interval := time.Duration(float64(time.Second) / *rate)
	before := takeSnapshot(replicas, postmaster)
	t0 := time.Now()
	for i := range n {
		// Open loop: request i is due at t0 + i*interval, whatever the
		// earlier ones do; latency counts from when it was due.
		due := t0.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(due))
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, code, err := exchange(client, replicas[i%len(replicas)].url, toks[i])
			lat[i] = time.Since(due)
			if err != nil || code != 200 {
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(t0)
	after := takeSnapshot(replicas, postmaster)
	return finish("", lat, int(failed.Load()), elapsed, replicas, before, after), nil
}

type pgbenchResult struct{ tps, pgCPU, latMS float64 }

func pgbench(cl *pgcluster.Cluster, port int, mappingID int64, clients int, postmaster int) (pgbenchResult, error) {
	path := "/usr/lib/postgresql/15/bin/pgbench"
	if p, err := exec.LookPath("pgbench"); err == nil {
		path = p
	}
	script, err := filepath.Abs("test/load/ledger.pgbench")
	if err != nil {
		return pgbenchResult{}, err
	}
	log.Printf("pgbench: -M prepared -c %d -T %s", clients, *duration)
	// No -i: the script needs only the mapping row that the admin API created.
	cmd := exec.Command(path, "-n", "-M", "prepared", "-f", script, "-c", strconv.Itoa(clients), "-j", strconv.Itoa(min(clients, runtime.NumCPU())),
		"-T", strconv.Itoa(int(duration.Seconds())), "-D", fmt.Sprintf("mapping_id=%d", mappingID),
		"-D", `target={"role_arn": "arn:aws:iam::123456789012:role/deploy", "region": "eu-west-1"}`,
		"-D", "subject=repo:acme/web:environment:production",
		"-h", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "postgres", "bridge")
	meter := startPGMeter(postmaster)
	out, err := cmd.CombinedOutput()
	used := meter()
	if err != nil {
		return pgbenchResult{}, fmt.Errorf("pgbench: %v\n%s", err, out)
	}
	var r pgbenchResult
	var txns float64
	for _, line := range strings.Split(string(out), "\n") {
		if m := regexp.MustCompile(`^tps = ([0-9.]+)`).FindStringSubmatch(line); m != nil {
			r.tps, _ = strconv.ParseFloat(m[1], 64)
		}
		if m := regexp.MustCompile(`number of transactions actually processed: (\d+)`).FindStringSubmatch(line); m != nil {
			txns, _ = strconv.ParseFloat(m[1], 64)
		}
		if m := regexp.MustCompile(`latency average = ([0-9.]+) ms`).FindStringSubmatch(line); m != nil {
			r.latMS, _ = strconv.ParseFloat(m[1], 64)
		}
		if m := regexp.MustCompile(`number of failed transactions: (\d+)`).FindStringSubmatch(line); m != nil && m[1] != "0" {
			return r, fmt.Errorf("pgbench had failures:\n%s", out)
		}
	}
	if txns > 0 {
		r.pgCPU = used / txns
	}
	return r, nil
}

// metrics scraped from one replica.
type metrics struct {
	stages map[string][2]float64 // sum, count
	rss    float64
}

var stageRE = regexp.MustCompile(`^oidc_bridge_exchange_stage_duration_seconds_(sum|count)\{.*stage="([a-z]+)".*\} ([0-9.eE+-]+)$`)

func scrape(url string) metrics {
	m := metrics{stages: map[string][2]float64{}}
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		log.Printf("scrape %s: %v", url, err)
		return m
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if s := stageRE.FindStringSubmatch(line); s != nil {
			v, _ := strconv.ParseFloat(s[3], 64)
			a := m.stages[s[2]]
			if s[1] == "sum" {
				a[0] += v
			} else {
				a[1] += v
			}
			m.stages[s[2]] = a
		} else if strings.HasPrefix(line, "process_resident_memory_bytes ") {
			m.rss, _ = strconv.ParseFloat(strings.Fields(line)[1], 64)
		}
	}
	return m
}

const clockTicks = 100 // USER_HZ on Linux

// procCPU is utime+stime of pid, in seconds.
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	// After "pid (comm) ": state ppid ... utime is field 14 overall, index 11 here.
	u, _ := strconv.ParseFloat(f[11], 64)
	s, _ := strconv.ParseFloat(f[12], 64)
	// cutime+cstime (15,16 here) count reaped children: for the postmaster,
	// the CPU of backends that have exited (pgbench's connections).
	return (u + s) / clockTicks
}

func procChildCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	cu, _ := strconv.ParseFloat(f[13], 64)
	cs, _ := strconv.ParseFloat(f[14], 64)
	return (cu + cs) / clockTicks
}

// pgCPU is the CPU seconds of the PostgreSQL server: the postmaster, its
// live children (backends, walwriter, checkpointer, ...) and, through the
// postmaster's cutime/cstime, the children that already exited.
func pgCPU(postmaster int) float64 {
	total := procCPU(postmaster) + procChildCPU(postmaster)
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		if ppid, _ := strconv.Atoi(f[1]); ppid == postmaster {
			total += procCPU(pid)
		}
	}
	return total
}

// startPGMeter polls the postmaster's children every 50 ms and returns a
// function giving the CPU seconds they used since: per process, from its
// first sample (0 for processes born meanwhile) to its last, so backends
// that exit (pgbench's, at its end) still count, less at most 50 ms each.
func startPGMeter(postmaster int) func() float64 {
	first, last := map[int]float64{}, map[int]float64{}
	sample := func(initial bool) {
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			if err != nil {
				continue
			}
			f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
			if ppid, _ := strconv.Atoi(f[1]); ppid != postmaster && pid != postmaster {
				continue
			}
			v := procCPU(pid)
			if _, ok := first[pid]; !ok {
				if initial {
					first[pid] = v
				} else {
					first[pid] = 0
				}
			}
			last[pid] = v
		}
	}
	sample(true)
	stop := make(chan struct{})
	done := make(chan float64)
	go func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				sample(false)
			case <-stop:
				sample(false)
				total := 0.0
				for pid, v := range last {
					total += v - first[pid]
				}
				done <- total
				return
			}
		}
	}()
	return func() float64 { close(stop); return <-done }
}

func postmasterPID(pgdata string) (int, error) {
	b, err := os.ReadFile(filepath.Join(pgdata, "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
}

// startProfile starts a CPU profile of r (when -profile asks for one)
// covering most of the phase that follows; the returned func waits for it,
// writes it to -profile and prints its top entries.
func startProfile(r *replica) func() error {
	if r.pprof == "" {
		return func() error { return nil }
	}
	secs := max(int(duration.Seconds())-2, 1)
	done := make(chan error, 1)
	go func() {
		// Let the phase ramp up first.
		time.Sleep(time.Second)
		resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", r.pprof, secs))
		if err != nil {
			done <- err
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(*profile)
		if err != nil {
			done <- err
			return
		}
		if _, err := io.Copy(f, resp.Body); err != nil {
			f.Close()
			done <- err
			return
		}
		done <- f.Close()
	}()
	return func() error {
		if err := <-done; err != nil {
			return fmt.Errorf("profile: %w", err)
		}
		out, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=25", *binary, *profile).CombinedOutput()
		if err != nil {
			return fmt.Errorf("go tool pprof: %v\n%s", err, out)
		}
		fmt.Printf("\n== CPU profile of replica 1 (%s)\n%s", *profile, out)
		// Allocations since the replica started (mostly this phase's).
		allocs := *profile + ".allocs"
		resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/allocs", r.pprof))
		if err != nil {
			return fmt.Errorf("allocs profile: %w", err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return fmt.Errorf("allocs profile: %w", err)
		}
		if err := os.WriteFile(allocs, b, 0o644); err != nil {
			return err
		}
		out, err = exec.Command("go", "tool", "pprof", "-top", "-sample_index=alloc_space", "-nodecount=15", *binary, allocs).CombinedOutput()
		if err != nil {
			return fmt.Errorf("go tool pprof: %v\n%s", err, out)
		}
		fmt.Printf("\n== allocations of replica 1 since it started (%s)\n%s", allocs, out)
		return nil
	}
}

// pgxScalar scans the one value of query into dst.
func pgxScalar(ctx context.Context, url, query string, dst any) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return conn.QueryRow(ctx, query).Scan(dst)
}
