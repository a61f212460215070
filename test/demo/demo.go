package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/internal/pgcluster"
	"github.com/oidc-bridge/oidc-bridge/providers"
	"github.com/oidc-bridge/oidc-bridge/test/logtest"
	"github.com/oidc-bridge/oidc-bridge/test/oidctest"
	"github.com/oidc-bridge/oidc-bridge/test/ststest"
)

// options configures run.
type options struct {
	// bin is the oidc-bridge binary.
	bin string
	// out receives the demo's account of what it does.
	out io.Writer
	// tempRoot is where the demo's temporary folder is made; empty means
	// os.TempDir().
	tempRoot string
}

// The demo's names.
const (
	issuerName  = "demo-github"
	mappingName = "web-prod"
	roleARN     = "arn:aws:iam::123456789012:role/web-deploy"
	// embeddedDatabase is the embedded default's database
	// (cmd/oidc-bridge/db.go).
	embeddedDatabase = "oidc_bridge"
	// fallbackMsg is the log line of pgcluster that names the cluster's
	// folder when, as root, the postgres user cannot reach the data folder.
	fallbackMsg = "pgcluster: the cluster is kept outside the data folder"
)

// demo is one run's state.
type demo struct {
	o       options
	dir     string // the temporary folder, removed at the end
	dataDir string // BRIDGE_DATA_DIR
	env     []string
	url     string // the bridge's base URL
	admin   string // the admin token
	iss     *oidctest.Issuer
	sts     *ststest.Handler

	serve     *exec.Cmd
	serveDone chan struct{}
	serveErr  error
	logs      *logtest.Buffer
	stopFakes func()

	mu         sync.Mutex
	clusterDir string // the fallback cluster folder, when the log names one
}

// fallbackDir is the cluster folder outside the data folder that the
// bridge's log named, or "".
func (d *demo) fallbackDir() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.clusterDir
}

// run runs the demo and removes everything it made, whatever happens.
func run(ctx context.Context, o options) (err error) {
	began := time.Now()
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("%w (run `make build` first, or pass -bin)", err)
	}
	o.bin = bin
	d := &demo{o: o, logs: &logtest.Buffer{}}
	if d.dir, err = os.MkdirTemp(o.tempRoot, "oidc-bridge-demo-"); err != nil {
		return err
	}
	defer func() { err = errors.Join(err, d.cleanup()) }()
	// Running as root, the embedded cluster runs as the postgres user, who
	// must be able to enter the data folder; if a folder above it is closed
	// (a TMPDIR under /root), the binary keeps the cluster under
	// /var/lib/oidc-bridge instead, and cleanup removes it from there.
	if err := os.Chmod(d.dir, 0o755); err != nil {
		return err
	}
	d.dataDir = filepath.Join(d.dir, "data")

	d.say("oidc-bridge demo: one exchange end to end, on this machine only")
	d.say("Temporary folder: %s (removed at the end; your ./.oidc-bridge is not touched)", d.dir)

	if err := d.startFakes(); err != nil {
		return err
	}
	steps := []struct {
		title string
		run   func(context.Context) error
	}{
		{"Start the bridge", d.startBridge},
		{"Make an admin token", d.makeAdminToken},
		{"Register the issuer and an AWS mapping", d.register},
		{"Exchange a job's token for AWS credentials", d.exchangeAllowed},
		{"A token from another repository is refused", d.exchangeDenied},
		{"The audit rows", d.auditRows},
	}
	for i, s := range steps {
		d.say("\n== %d. %s", i+1, s.title)
		if err := s.run(ctx); err != nil {
			if logs := d.logs.String(); logs != "" {
				d.say("\nThe bridge's log:\n%s", tail(logs, 40))
			}
			return fmt.Errorf("%s: %w", strings.ToLower(s.title), err)
		}
	}
	d.say("\n== Done in %s", time.Since(began).Round(100*time.Millisecond))
	return nil
}

func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.o.out, format+"\n", args...)
}

// startFakes starts the demo OIDC issuer and the STS fake on loopback.
func (d *demo) startFakes() error {
	d.iss = oidctest.Start()
	d.sts = ststest.NewHandler()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: d.sts, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	stsURL := "http://" + ln.Addr().String()
	d.stopFakes = func() {
		d.sts.Close() // release held requests first: Close waits for them
		_ = srv.Close()
		d.iss.Close()
	}
	d.say("Demo OIDC issuer (GitHub Actions-shaped, RS256, discovery and JWKS): %s", d.iss.URL())
	d.say("AWS STS fake (checks SigV4, answers AssumeRole with ASIA... keys):    %s", stsURL)

	d.env = cleanEnv(os.Environ())
	d.env = append(d.env,
		"BRIDGE_DATA_DIR="+d.dataDir,
		"BRIDGE_LISTEN_ADDR=127.0.0.1:0",
		"BRIDGE_ALLOW_INSECURE_ISSUERS=true",
		"BRIDGE_LOG_LEVEL=info",
		// The bridge's own AWS identity, the one that calls AssumeRole: the
		// fake's key, and the fake as STS. Nothing of the machine's AWS
		// setup is read.
		"AWS_ACCESS_KEY_ID="+ststest.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY="+ststest.SecretAccessKey,
		"AWS_REGION=us-east-1",
		"AWS_ENDPOINT_URL_STS="+stsURL,
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true",
	)
	return nil
}

// cleanEnv is the machine's environment without what could change the
// bridge or its clients: its own variables, the clouds' and the CI's.
func cleanEnv(environ []string) []string {
	drop := []string{"BRIDGE_", "OIDC_BRIDGE_", "AWS_", "GOOGLE_", "AZURE_", "OTEL_", "ACTIONS_ID_TOKEN_",
		"RUNNER_TEMP=", "AGENT_TEMPDIRECTORY="}
	var env []string
next:
	for _, kv := range environ {
		for _, p := range drop {
			if strings.HasPrefix(kv, p) {
				continue next
			}
		}
		env = append(env, kv)
	}
	return env
}

// startBridge runs `oidc-bridge serve` on the embedded default and waits
// until it is ready.
func (d *demo) startBridge(ctx context.Context) error {
	d.say("$ BRIDGE_DATA_DIR=%s BRIDGE_LISTEN_ADDR=127.0.0.1:0 \\", d.dataDir)
	d.say("    BRIDGE_ALLOW_INSECURE_ISSUERS=true AWS_ENDPOINT_URL_STS=<the STS fake> AWS_ACCESS_KEY_ID=<the fake's key> ... \\")
	d.say("    oidc-bridge serve")
	d.say("BRIDGE_ALLOW_INSECURE_ISSUERS=true because the demo issuer serves plain http on 127.0.0.1: the bridge")
	d.say("accepts http issuers only with it, and only on loopback addresses. Safe for local tests and demos;")
	d.say("never set it in production, where issuers are https (https://token.actions.githubusercontent.com).")

	cmd := exec.Command(d.o.bin, "serve")
	cmd.Dir = d.dir // relative defaults land in the temporary folder
	cmd.Env = d.env
	pr, pw := io.Pipe()
	cmd.Stderr = io.MultiWriter(d.logs, pw)
	if err := cmd.Start(); err != nil {
		return err
	}
	d.serve, d.serveDone = cmd, make(chan struct{})
	go func() {
		d.serveErr = cmd.Wait()
		pw.Close()
		close(d.serveDone)
	}()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var line struct {
				Msg        string `json:"msg"`
				Addr       string `json:"addr"`
				ClusterDir string `json:"cluster_dir"`
			}
			if json.Unmarshal(sc.Bytes(), &line) != nil {
				continue
			}
			switch {
			case line.Msg == "listening":
				select {
				case addr <- line.Addr:
				default:
				}
			case strings.HasPrefix(line.Msg, fallbackMsg) && line.ClusterDir != "":
				d.mu.Lock()
				d.clusterDir = line.ClusterDir
				d.mu.Unlock()
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	select {
	case a := <-addr:
		d.url = "http://" + a
	case <-d.serveDone:
		return fmt.Errorf("oidc-bridge serve exited before listening: %v", d.serveErr)
	case <-time.After(60 * time.Second):
		return errors.New("oidc-bridge serve did not listen within 60s")
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := d.waitReady(ctx); err != nil {
		return err
	}
	where := filepath.Join(d.dataDir, "postgres")
	if dir := d.fallbackDir(); dir != "" {
		where = dir + " (the postgres user cannot reach the temporary folder; removed at the end too)"
	}
	d.say("Listening on %s; /readyz answers 200. Embedded PostgreSQL cluster: %s", d.url, where)
	return nil
}

func (d *demo) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		status, _, err := d.call(ctx, "GET", "/readyz", "", "")
		if err == nil && status == http.StatusOK {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("/readyz answers %d (%v) after 60s", status, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// makeAdminToken runs `oidc-bridge admin-token create`, which reaches the
// cluster the running service uses (the same BRIDGE_DATA_DIR).
func (d *demo) makeAdminToken(ctx context.Context) error {
	d.say("$ BRIDGE_DATA_DIR=%s oidc-bridge admin-token create demo-admin --actor demo", d.dataDir)
	out, errOut, err := d.cli(ctx, "admin-token", "create", "demo-admin", "--actor", "demo")
	if err != nil {
		return fmt.Errorf("admin-token create: %w\n%s", err, errOut)
	}
	d.admin = strings.TrimSpace(out)
	if d.admin == "" || strings.ContainsAny(d.admin, " \n") {
		return fmt.Errorf("admin-token create printed %q", out)
	}
	d.say("%s", strings.TrimSpace(errOut))
	d.say("(the token itself is printed once on standard output; the demo keeps it in memory and does not show it)")
	return nil
}

// register creates the issuer and the mapping through the admin API.
func (d *demo) register(ctx context.Context) error {
	issuer := fmt.Sprintf(`{"name": %q, "url": %q, "audiences": [%q], "kind": "github"}`,
		issuerName, d.iss.URL(), oidctest.DefaultAudience)
	mappingBody := fmt.Sprintf(`{"name": %q, "issuer": %q,
  "conditions": {"repository": "acme/web", "repository_id": "1339936803", "ref": "refs/heads/main",
                 "environment": "production", "event_name": ["push", "workflow_dispatch"],
                 "claims": {"runner_environment": "github-hosted"}},
  "provider": "aws", "target": {"role_arn": %q, "region": "eu-west-1"},
  "max_duration_seconds": 3600}`, mappingName, issuerName, roleARN)
	for _, r := range []struct{ path, body string }{
		{"/v1/admin/issuers?lint=strict", issuer},
		{"/v1/admin/mappings?lint=strict", mappingBody},
	} {
		d.say("$ curl -sS '%s%s' -H 'Authorization: Bearer $ADMIN_TOKEN' -H 'Content-Type: application/json' -d '%s'",
			d.url, r.path, r.body)
		status, body, err := d.call(ctx, "POST", r.path, r.body, d.admin)
		if err != nil {
			return err
		}
		if status != http.StatusCreated {
			return fmt.Errorf("POST %s: %d %s", r.path, status, body)
		}
		var obj struct {
			Name     string            `json:"name"`
			Warnings []json.RawMessage `json:"warnings"`
		}
		if err := json.Unmarshal(body, &obj); err != nil {
			return err
		}
		d.say("201 Created: %q, lint-clean (?lint=strict refuses any warning)", obj.Name)
	}
	return nil
}

// exchangeAllowed mints a job's token and exchanges it with the CLI.
func (d *demo) exchangeAllowed(ctx context.Context) error {
	claims := d.iss.GitHubClaims(nil)
	tokenFile, err := d.writeToken("job-token.jwt", claims)
	if err != nil {
		return err
	}
	d.say("The demo issuer signs a job's token (RS256, its key published in its JWKS):")
	d.sayClaims(claims)
	d.say("$ oidc-bridge exchange --bridge-url %s --mapping %s --token-file %s --format json --no-cache",
		d.url, mappingName, filepath.Base(tokenFile))
	out, errOut, err := d.cli(ctx, "exchange", "--bridge-url", d.url, "--mapping", mappingName,
		"--token-file", tokenFile, "--format", "json", "--no-cache")
	if err != nil {
		return fmt.Errorf("oidc-bridge exchange: %w\n%s", err, errOut)
	}
	var resp api.ExchangeResponse
	if err := json.Unmarshal([]byte(out), &resp); err != nil {
		return fmt.Errorf("oidc-bridge exchange printed no JSON answer: %w", err)
	}
	var creds providers.AWSCredentials
	if err := json.Unmarshal(resp.Credentials, &creds); err != nil {
		return err
	}
	if !strings.HasPrefix(creds.AccessKeyID, "ASIA") || creds.SecretAccessKey == "" || creds.SessionToken == "" {
		return fmt.Errorf("the answer holds no AWS session credentials (access key id %q)", creds.AccessKeyID)
	}
	d.say("issued: issuance_id %s, mapping %s, provider %s", resp.IssuanceID, resp.Mapping, resp.Provider)
	d.say("  access_key_id %s, region %s, expires %s (in %s)", creds.AccessKeyID, creds.Region,
		creds.Expiration.UTC().Format(time.RFC3339), time.Until(creds.Expiration).Round(time.Minute))
	d.say("  secret_access_key and session_token: present, not shown")
	for _, c := range d.sts.Calls() {
		if c.Action == "AssumeRole" && c.IssuedAccessKeyID == creds.AccessKeyID {
			d.say("The STS fake saw AssumeRole %s, RoleSessionName %s, SourceIdentity %s, %d session tags",
				c.RoleArn, c.RoleSessionName, c.SourceIdentity, len(c.Tags))
		}
	}
	return nil
}

// exchangeDenied exchanges a token of another repository (refused by the
// mapping's conditions) and asks the policy explainer why.
func (d *demo) exchangeDenied(ctx context.Context) error {
	claims := d.iss.GitHubClaims(map[string]any{
		"repository": "acme/other", "repository_id": "2468013579",
		"sub":              "repo:acme/other:environment:production",
		"job_workflow_ref": "acme/other/.github/workflows/deploy.yml@refs/heads/main",
		"workflow_ref":     "acme/other/.github/workflows/deploy.yml@refs/heads/main",
	})
	tokenFile, err := d.writeToken("other-token.jwt", claims)
	if err != nil {
		return err
	}
	d.say("A token of acme/other, otherwise alike:")
	d.sayClaims(claims)
	d.say("$ oidc-bridge exchange --bridge-url %s --mapping %s --token-file %s --format json --no-cache",
		d.url, mappingName, filepath.Base(tokenFile))
	out, errOut, err := d.cli(ctx, "exchange", "--bridge-url", d.url, "--mapping", mappingName,
		"--token-file", tokenFile, "--format", "json", "--no-cache")
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		return fmt.Errorf("oidc-bridge exchange of another repository's token: %v, want a refusal\n%s", err, out)
	}
	d.say("exit status %d: %s", exit.ExitCode(), strings.TrimSpace(errOut))

	// The same answer over HTTP, with its status.
	tok, err := os.ReadFile(tokenFile)
	if err != nil {
		return err
	}
	status, body, err := d.call(ctx, "POST", "/v1/admin/explain",
		fmt.Sprintf(`{"token": %q, "mapping": %q}`, strings.TrimSpace(string(tok)), mappingName), d.admin)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("POST /v1/admin/explain: %d %s", status, body)
	}
	var ex struct {
		Mappings []struct {
			Mapping    string `json:"mapping"`
			Admitted   bool   `json:"admitted"`
			Reason     string `json:"reason"`
			Detail     string `json:"detail"`
			Conditions []struct {
				Condition string   `json:"condition"`
				Patterns  []string `json:"patterns"`
				Value     string   `json:"value"`
				Matched   bool     `json:"matched"`
			} `json:"conditions"`
		} `json:"mappings"`
		Decision struct {
			Outcome string `json:"outcome"`
			Message string `json:"message"`
		} `json:"decision"`
	}
	if err := json.Unmarshal(body, &ex); err != nil {
		return err
	}
	d.say("The policy explainer (POST /v1/admin/explain, or `oidc-bridge explain --token-file ...`) says why:")
	d.say("  decision: %s: %s", ex.Decision.Outcome, ex.Decision.Message)
	for _, m := range ex.Mappings {
		d.say("  mapping %s: admitted %v (%s)", m.Mapping, m.Admitted, m.Detail)
		tw := tabwriter.NewWriter(d.o.out, 0, 4, 2, ' ', 0)
		for _, c := range m.Conditions {
			mark := "ok"
			if !c.Matched {
				mark = "FAIL"
			}
			fmt.Fprintf(tw, "    %s\t%s\twants %s\ttoken has %q\n", mark, c.Condition, strings.Join(c.Patterns, " | "), c.Value)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if ex.Decision.Outcome != api.CodeNoMatchingMapping {
		return fmt.Errorf("the explainer's decision is %q, want %s", ex.Decision.Outcome, api.CodeNoMatchingMapping)
	}
	return nil
}

// auditRows reads audit.issuances as the database's owner, the embedded
// cluster's superuser (an auditor's login reads the same view).
func (d *demo) auditRows(ctx context.Context) error {
	const query = `SELECT requested_at, outcome, coalesce(error_code, ''), coalesce(mapping, ''),
       coalesce(repository, ''), coalesce(ref, ''), coalesce(credential_id, ''), expires_at
FROM audit.issuances ORDER BY requested_at, id`
	dir := d.fallbackDir()
	if dir == "" {
		dir = filepath.Join(d.dataDir, "postgres")
	}
	// The running server is reused, not started: Stop leaves it to serve.
	cl, err := pgcluster.Start(ctx, pgcluster.Options{DataDir: dir})
	if err != nil {
		return err
	}
	defer func() { _ = cl.Stop(context.WithoutCancel(ctx)) }()
	conn, err := pgx.Connect(ctx, cl.URL(embeddedDatabase))
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	d.say("Every issuance and every refusal of a verified token is a row of the view audit.issuances")
	d.say("(docs/audit.md); read here as the database's owner:")
	d.say("  %s", strings.ReplaceAll(query, "\n", "\n  "))
	rows, err := conn.Query(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	tw := tabwriter.NewWriter(d.o.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  requested_at\toutcome\terror_code\tmapping\trepository\tref\tcredential_id\texpires_at")
	n := 0
	for rows.Next() {
		var at time.Time
		var expires *time.Time
		var outcome, code, mapping, repo, ref, cred string
		if err := rows.Scan(&at, &outcome, &code, &mapping, &repo, &ref, &cred, &expires); err != nil {
			return err
		}
		exp := ""
		if expires != nil {
			exp = expires.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", at.UTC().Format(time.RFC3339), outcome, code, mapping, repo, ref, cred, exp)
		n++
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if n < 2 {
		return fmt.Errorf("%d audit rows, want the issuance and the refusal", n)
	}
	return nil
}

// writeToken signs claims with the demo issuer into a 0600 file.
func (d *demo) writeToken(name string, claims map[string]any) (string, error) {
	tok, err := d.iss.Sign(claims)
	if err != nil {
		return "", err
	}
	path := filepath.Join(d.dir, name)
	return path, os.WriteFile(path, []byte(tok+"\n"), 0o600)
}

func (d *demo) sayClaims(c map[string]any) {
	d.say("  iss %v, aud %v", c["iss"], c["aud"])
	d.say("  sub %v, repository %v (id %v), ref %v, environment %v, event_name %v, jti %v",
		c["sub"], c["repository"], c["repository_id"], c["ref"], c["environment"], c["event_name"], c["jti"])
}

// cli runs an oidc-bridge command with the demo's environment.
func (d *demo) cli(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, d.o.bin, args...)
	cmd.Dir = d.dir
	cmd.Env = d.env
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// call sends a request to the bridge with token as its bearer, if any.
func (d *demo) call(ctx context.Context, method, path, body, token string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, d.url+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, err
}

// cleanup stops the bridge (which stops the embedded cluster it started)
// and the fakes, and removes the cluster's fallback folder, if any, and the
// temporary folder.
func (d *demo) cleanup() error {
	var errs []error
	if d.serve != nil {
		_ = d.serve.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.serveDone:
			if d.serveErr != nil {
				errs = append(errs, fmt.Errorf("oidc-bridge serve exited with %v", d.serveErr))
			}
		case <-time.After(30 * time.Second):
			_ = d.serve.Process.Kill()
			<-d.serveDone
			errs = append(errs, errors.New("oidc-bridge serve did not stop within 30s of SIGTERM"))
		}
	}
	if d.stopFakes != nil {
		d.stopFakes()
	}
	if dir := d.fallbackDir(); dir != "" {
		errs = append(errs, removeFallback(dir, filepath.Join(d.dataDir, "postgres")))
	}
	errs = append(errs, os.RemoveAll(d.dir))
	if err := errors.Join(errs...); err != nil {
		return err
	}
	d.say("Stopped the bridge and its embedded cluster; removed %s.", d.dir)
	return nil
}

// removeFallback removes the cluster folder the binary made outside the data
// folder, after checking that it is the one made for this demo's data
// folder (pgcluster writes the data folder's path into it).
func removeFallback(clusterDir, requested string) error {
	origin, err := os.ReadFile(filepath.Join(clusterDir, "data-dir"))
	if err != nil {
		return fmt.Errorf("the cluster folder %s: %w; not removed", clusterDir, err)
	}
	if strings.TrimSpace(string(origin)) != requested {
		return fmt.Errorf("the cluster folder %s serves %s, not %s; not removed", clusterDir, strings.TrimSpace(string(origin)), requested)
	}
	if _, err := os.Stat(filepath.Join(clusterDir, "pgdata", "postmaster.pid")); err == nil {
		return fmt.Errorf("the cluster in %s still runs; not removed", clusterDir)
	}
	if err := os.RemoveAll(clusterDir); err != nil {
		return err
	}
	// The folder of such clusters too, when this one was its only one (it
	// is made again when needed).
	_ = os.Remove(filepath.Dir(clusterDir))
	return nil
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
