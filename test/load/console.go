package main

// The console's timing mode: every page of the web console (package
// console) fetched -console-rounds times, p50, p95 and the slowest
// reported, and the run failed when a page's p95 exceeds -console-budget.
//
//	# against a bridge that is already running with BRIDGE_CONSOLE=true,
//	# e.g. on the 20-million-row history (an admin token of the read scope
//	# in OIDC_BRIDGE_ADMIN_TOKEN):
//	go run ./test/load -console -console-url https://bridge.example.com
//	# or on a private cluster it fills itself with -console-rows rows:
//	make build && go run ./test/load -console -console-rows 300000
//	# or on the history generator's ledger (issue 22), generated once:
//	go run ./test/load -history 20000000 -history-dir $D -history-gen-only -unsafe
//	make build && go run ./test/load -console -history-dir $D

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/oidc-bridge/oidc-bridge/internal/pgcluster"
)

var (
	consoleMode   = flag.Bool("console", false, "time the web console's pages instead of the exchange")
	consoleURL    = flag.String("console-url", "", "with -console: a running bridge with BRIDGE_CONSOLE=true (admin token of the read scope in OIDC_BRIDGE_ADMIN_TOKEN); empty: a private cluster filled with -console-rows rows")
	consoleRows   = flag.Int("console-rows", 300_000, "with -console and no -console-url: ledger rows to generate, spread over 60 days")
	consoleRounds = flag.Int("console-rounds", 20, "with -console: fetches of each page")
	consoleBudget = flag.Duration("console-budget", 200*time.Millisecond, "with -console: the p95 every page must stay under")
)

func runConsole() error {
	if *consoleURL != "" {
		token := os.Getenv("OIDC_BRIDGE_ADMIN_TOKEN")
		if token == "" {
			return fmt.Errorf("-console-url needs an admin token of the read scope in OIDC_BRIDGE_ADMIN_TOKEN")
		}
		return timeConsole(strings.TrimSuffix(*consoleURL, "/"), token, consoleLiterals{mapping: "web-prod", runID: "1000000"})
	}
	ctx := context.Background()
	bin, tmp, done, err := workdir("oidc-bridge-console-load-")
	if err != nil {
		return err
	}
	defer done()
	// On the history generator's ledger (-history-dir, generated with
	// -history-gen-only), or on a private cluster filled here.
	dataDir, settings := filepath.Join(tmp, "pg"), map[string]string(nil)
	if *histDir != "" {
		dataDir = filepath.Join(*histDir, "pg")
		settings = map[string]string{"max_connections": "100", "shared_buffers": "256MB", "max_wal_size": "4GB"}
	}
	cl, err := pgcluster.Start(ctx, pgcluster.Options{DataDir: dataDir, Port: freePort(), Unsafe: *histDir == "", Settings: settings})
	if err != nil {
		return err
	}
	defer cl.Stop(context.Background())
	if err := cl.EnsureDatabase(ctx, "bridge"); err != nil {
		return err
	}
	dbURL := cl.URL("bridge")
	lits := consoleLiterals{mapping: "web-prod", runID: "1000000"}
	if *histDir != "" {
		if lits, err = historyConsoleLiterals(ctx, dbURL); err != nil {
			return err
		}
	}
	env := []string{"BRIDGE_DATABASE_URL=" + dbURL, "BRIDGE_MIGRATION_DATABASE_URL=" + dbURL, "BRIDGE_ADMIN_TOKEN=" + adminToken,
		"BRIDGE_ALLOW_INSECURE_ISSUERS=true", "BRIDGE_CONSOLE=true"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BRIDGE_") {
			env = append(env, kv)
		}
	}
	port := freePort()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	logf, err := os.Create(filepath.Join(tmp, "bridge.log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(env, fmt.Sprintf("BRIDGE_LISTEN_ADDR=127.0.0.1:%d", port))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() }()
	if err := waitReady(base, logf.Name()); err != nil {
		return err
	}
	if *histDir != "" {
		log.Printf("timing the console on the history in %s (mapping %s, repository %s, run %s)", *histDir, lits.mapping, lits.repo, lits.runID)
		return timeConsole(base, adminToken, lits)
	}
	post := func(path, body string) error { return adminPost(base, path, body) }
	const issuerURL = "https://token.actions.githubusercontent.com"
	if err := post("/v1/admin/issuers", `{"name": "github", "url": "`+issuerURL+`", "audiences": ["https://bridge.example.com"], "kind": "github"}`); err != nil {
		return err
	}
	for i, m := range []string{"web-prod", "org-any"} {
		cond := `{"repository": "org/repo-7", "repository_id": "7", "ref": "refs/heads/main"}`
		if i == 1 {
			cond = `{"repository": "org/*", "ref": "refs/heads/main"}`
		}
		if err := post("/v1/admin/mappings", `{"name": "`+m+`", "issuer": "github", "conditions": `+cond+`, "quota": {"per_hour": 100},
			"provider": "aws", "target": {"role_arn": "arn:aws:iam::123456789012:role/deploy", "region": "eu-west-1"}}`); err != nil {
			return err
		}
	}
	log.Printf("filling the ledger with %d rows over 60 days", *consoleRows)
	start := time.Now()
	if err := fillLedger(ctx, dbURL, issuerURL, *consoleRows); err != nil {
		return err
	}
	log.Printf("filled in %s", time.Since(start).Round(time.Second))
	return timeConsole(base, adminToken, lits)
}

// fillLedger writes n rows over the last 60 days (monthly partitions made
// for them): 500 repositories, outcomes mostly issued, some denied and
// failed, two mappings. It is a quick stand-in for the history generator.
func fillLedger(ctx context.Context, dbURL, issuerURL string, n int) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	now := time.Now().UTC()
	for m := 0; m <= 3; m++ {
		lo := time.Date(now.Year(), now.Month()-time.Month(m), 1, 0, 0, 0, 0, time.UTC)
		hi := lo.AddDate(0, 1, 0)
		name := "issuances_" + lo.Format("2006_01")
		if _, err := conn.Exec(ctx, fmt.Sprintf(`DO $$ BEGIN IF to_regclass('%s') IS NULL THEN
			CREATE TABLE %s PARTITION OF issuances FOR VALUES FROM ('%s') TO ('%s'); END IF; END $$`,
			name, name, lo.Format(time.RFC3339), hi.Format(time.RFC3339))); err != nil {
			return fmt.Errorf("partition %s: %w", name, err)
		}
	}
	_, err = conn.Exec(ctx, `
		INSERT INTO issuances (id, requested_at, completed_at, outcome, error_code, issuer, subject, repository,
			repository_id, ref, sha, environment, event_name, workflow_ref, actor, run_id, run_attempt, job_id,
			token_jti, mapping_id, mapping, provider, credential_id, expires_at, client_ip, user_agent)
		SELECT gen_random_uuid(), t, t, o,
			CASE o WHEN 'denied' THEN (ARRAY['no_matching_mapping', 'token_replayed', 'quota_exceeded'])[1 + g % 3]
			       WHEN 'failed' THEN 'provider_error' END,
			$1, 'repo:org/repo-' || (g % 500) || ':ref:refs/heads/main', 'org/repo-' || (g % 500), (g % 500)::text,
			CASE WHEN g % 11 = 0 THEN 'refs/heads/feature/' || g ELSE 'refs/heads/main' END,
			md5(g::text), 'production', 'push', 'org/repo-' || (g % 500) || '/.github/workflows/deploy.yml@refs/heads/main',
			'user' || (g % 97), (1000000 + g / 3)::text, '1', g::text, 'jti-' || g, 1 + g % 2,
			(ARRAY['web-prod', 'org-any'])[1 + g % 2], 'aws',
			CASE WHEN o = 'issued' THEN 'ASIA' || upper(substr(md5(g::text), 1, 16)) END,
			CASE WHEN o = 'issued' THEN t + interval '1 hour' END, '10.0.0.1', 'oidc-bridge-load'
		FROM generate_series(1, $2::int) AS g,
			LATERAL (SELECT now() - (g::float8 / $2 * interval '60 days') AS t,
				CASE WHEN g % 50 = 0 THEN 'denied' WHEN g % 97 = 0 THEN 'failed' ELSE 'issued' END AS o) x`, issuerURL, n)
	if err != nil {
		return fmt.Errorf("fill: %w", err)
	}
	_, err = conn.Exec(ctx, `ANALYZE issuances`)
	return err
}

var (
	denialLink = regexp.MustCompile(`/console/denials/([0-9a-f-]{36})`)
	olderLink  = regexp.MustCompile(`href="(/console/issuances\?[^"]*after=[^"]*)"`)
	repoCell   = regexp.MustCompile(`<td>([a-z0-9._-]+/[a-z0-9._-]+)</td>`)
)

// consoleLiterals are the values the timed searches name; an empty
// repository is taken from the newest issuances.
type consoleLiterals struct{ repo, mapping, runID string }

// historyConsoleLiterals picks, on the history generator's ledger, the
// mapping of median activity over the last 7 days (as the cookbook's
// timing does), a repository of median activity over 30 days and the
// newest run of that repository.
func historyConsoleLiterals(ctx context.Context, dbURL string) (consoleLiterals, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return consoleLiterals{}, err
	}
	defer conn.Close(ctx)
	var l consoleLiterals
	if err := conn.QueryRow(ctx, `
		SELECT mapping FROM (SELECT mapping, count(*) AS n FROM issuances
			WHERE requested_at >= now() - interval '7 days' AND mapping LIKE 'hist-%' GROUP BY 1) s
		ORDER BY n, mapping OFFSET (SELECT count(DISTINCT mapping) / 2 FROM issuances
			WHERE requested_at >= now() - interval '7 days' AND mapping LIKE 'hist-%') LIMIT 1`).Scan(&l.mapping); err != nil {
		return l, fmt.Errorf("history literals: is %s a generated history (-history N -history-dir D -history-gen-only)? %w", *histDir, err)
	}
	if err := conn.QueryRow(ctx, `
		WITH r AS (SELECT repository, count(*) AS n FROM issuances
			WHERE requested_at >= now() - interval '30 days' AND repository IS NOT NULL GROUP BY 1)
		SELECT repository FROM r ORDER BY n, repository OFFSET (SELECT count(*) / 2 FROM r) LIMIT 1`).Scan(&l.repo); err != nil {
		return l, fmt.Errorf("history literals: %w", err)
	}
	if err := conn.QueryRow(ctx, `
		SELECT run_id FROM issuances WHERE repository = $1 AND run_id IS NOT NULL
		ORDER BY requested_at DESC LIMIT 1`, l.repo).Scan(&l.runID); err != nil {
		return l, fmt.Errorf("history literals: %w", err)
	}
	return l, nil
}

// timeConsole signs in to the console at base with token and times every
// page; it fails when a page's p95 exceeds the budget.
func timeConsole(base, token string, lits consoleLiterals) error {
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	form := url.Values{"token": {token}}
	req, _ := http.NewRequest("POST", base+"/console/signin", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(resp.Request.URL.Path, "/console/denials") {
		return fmt.Errorf("sign-in: %d at %s (is BRIDGE_CONSOLE=true, and the token of the read scope?)", resp.StatusCode, resp.Request.URL)
	}
	fetch := func(path string) (string, time.Duration, error) {
		start := time.Now()
		resp, err := client.Get(base + path)
		if err != nil {
			return "", 0, err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		d := time.Since(start)
		if err == nil && resp.StatusCode != 200 {
			err = fmt.Errorf("GET %s: %d", path, resp.StatusCode)
		}
		return string(b), d, err
	}
	// Values to search for, taken from the ledger through the console.
	first, _, err := fetch("/console/denials")
	if err != nil {
		return err
	}
	recent, _, err := fetch("/console/issuances")
	if err != nil {
		return err
	}
	repo := lits.repo
	if m := repoCell.FindStringSubmatch(recent); repo == "" && m != nil {
		repo = m[1]
	}
	if repo == "" {
		repo = "org/repo-7"
	}
	q := url.QueryEscape
	month := time.Now().UTC().AddDate(0, 0, -30).Format("2006-01-02T15:04")
	pages := []string{
		"/console/denials",
		"/console/denials?repository=" + q(repo),
		"/console/denials?error_code=quota_exceeded",
		"/console/denials?run_id=" + q(lits.runID),
		"/console/issuances",
		"/console/issuances?repository=" + q(repo) + "&from=" + q(month),
		"/console/issuances?mapping=" + q(lits.mapping) + "&outcome=issued",
		"/console/issuances?run_id=" + q(lits.runID),
		"/console/issuances?outcome=failed&from=" + q(month),
		"/console/mappings",
		"/console/explain",
	}
	if m := denialLink.FindStringSubmatch(first); m != nil {
		pages = append(pages, "/console/denials/"+m[1])
	}
	if m := olderLink.FindStringSubmatch(recent); m != nil {
		pages = append(pages, strings.ReplaceAll(m[1], "&amp;", "&"))
	}
	exports := []string{"/console/issuances.csv?repository=" + q(repo)}
	failed := 0
	report := func(path string, budget time.Duration) error {
		var ds []time.Duration
		for range *consoleRounds {
			_, d, err := fetch(path)
			if err != nil {
				return err
			}
			ds = append(ds, d)
		}
		slices.Sort(ds)
		p50, p95 := ds[len(ds)/2], ds[(len(ds)*95+99)/100-1]
		verdict := "ok"
		if budget > 0 && p95 > budget {
			verdict, failed = "OVER BUDGET", failed+1
		}
		fmt.Printf("%-90s p50 %6.1f ms  p95 %6.1f ms  max %6.1f ms  %s\n", path,
			ms(p50), ms(p95), ms(ds[len(ds)-1]), verdict)
		return nil
	}
	fmt.Printf("console pages, %d fetches each, budget p95 %s:\n", *consoleRounds, *consoleBudget)
	for _, p := range pages {
		if err := report(p, *consoleBudget); err != nil {
			return err
		}
	}
	fmt.Println("exports (not pages: no budget):")
	for _, p := range exports {
		if err := report(p, 0); err != nil {
			return err
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d console pages over the %s budget", failed, *consoleBudget)
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
