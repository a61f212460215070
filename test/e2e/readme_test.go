package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestReadmeQuickStart walks the first hour as the README tells it, running
// its shell commands literally with bash, so that the test fails when the
// docs and the behaviour part ways. It reads README.md and docs/audit.md from
// the repository.
//
// The setup is what the quick start describes: the real binary as
// ./bin/oidc-bridge in a fresh folder, and `make run`, which is
// `./bin/oidc-bridge serve` on the embedded default (checked against the
// Makefile), started there with no BRIDGE_ variable but the listen address.
// The one change made to the commands: the README's address (localhost:8080
// and 127.0.0.1:8080) is rewritten to the port the test's server listens on,
// since 8080 may be busy on a shared machine; that the default listen
// address is the README's is checked against `--help`.
//
// What runs, in order:
//   - Quick start: "Check it: `curl ...` answers `...`" must print that answer.
//   - API in brief: the block that exports OIDC_BRIDGE_URL and
//     OIDC_BRIDGE_ADMIN_TOKEN (made with admin-token create), registers the
//     issuer, the mapping and reads the mapping's usage: every command exits
//     0, the POSTs answer 201 (the service's request log) with the object of
//     the name they sent, the mapping without lint warnings, and the usage
//     answers JSON.
//   - docs/audit.md, "Connecting": the `psql --auditor` examples (the
//     interactive one with its input at end of file) exit 0, the admin
//     history shows the quick start's mapping, and the refused query is
//     refused with the error the doc shows.
//
// What does not run, and why:
//   - the Quick start's block itself (`make run`, `make test`): make run is
//     replaced as above, and make test is the suite this test is part of;
//   - "See it work" (`make demo`): TestDemo runs it;
//   - the policy explainer's `explain --token-file job-token.jwt` and the
//     exchange's block: both need a real CI job's token, signed by GitHub
//     for token.actions.githubusercontent.com, which a test cannot have (the
//     explainer and the exchange are walked with local issuers in
//     explain_test.go and exchange_test.go);
//   - docs/audit.md's managed-database example: it needs a server at
//     db.internal and a queries.sql of the reader's;
//   - "Development" (make targets): the Makefile's own business.
func TestReadmeQuickStart(t *testing.T) {
	t.Parallel()
	readme := readRepoDoc(t, "README.md")
	auditDoc := readRepoDoc(t, filepath.Join("docs", "audit.md"))

	// Quick start: `make run` serves on the README's address.
	quick := docSection(t, readme, "## Quick start")
	blocks := codeBlocks(quick, "sh")
	if len(blocks) != 1 || !strings.HasPrefix(blocks[0], "make run") {
		t.Fatalf("README Quick start: want one sh block starting with make run, got %q", blocks)
	}
	m := regexp.MustCompile(`(?m)^make run .*serves on (\S+)`).FindStringSubmatch(blocks[0])
	if m == nil {
		t.Fatalf("README Quick start: make run's line does not say where it serves:\n%s", blocks[0])
	}
	readmeAddr := m[1]
	if mk := readRepoDoc(t, "Makefile"); !regexp.MustCompile(`(?m)^run:.*\n\t\./\$\(BIN\) serve\n`).MatchString(mk) {
		t.Fatal("the Makefile's run target is no longer ./$(BIN) serve: this walk starts serve in its place")
	}
	help, helpErr, _ := cli(t, nil, "--help")
	if want := "BRIDGE_LISTEN_ADDR (default " + readmeAddr + ")"; !strings.Contains(help+helpErr, want) {
		t.Fatalf("README Quick start says make run serves on %s; --help does not show %q:\n%s%s", readmeAddr, want, help, helpErr)
	}
	check := regexp.MustCompile("Check it: `([^`]+)` answers `([^`]+)`").FindStringSubmatch(quick)
	if check == nil {
		t.Fatal("README Quick start: no \"Check it: `command` answers `output`\" line")
	}

	// The folder of a fresh checkout, as far as the commands see it.
	dir := reachableTempDir(t)
	if err := os.Mkdir(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(binary, filepath.Join(dir, "bin", "oidc-bridge")); err != nil {
		t.Fatal(err)
	}
	s := startServerIn(t, dir, nil)
	s.waitReady(200)
	addr := strings.TrimPrefix(s.url, "http://")
	// The single rewrite: the README's address to the server's.
	rewrite := strings.NewReplacer("localhost:8080", addr, "127.0.0.1:8080", addr)
	if _, port, _ := net.SplitHostPort(readmeAddr); port != "8080" {
		t.Fatalf("README Quick start serves on %s; this walk rewrites only port 8080", readmeAddr)
	}

	res := walkShell(t, dir, []string{rewrite.Replace(check[1])})
	if got := strings.TrimSpace(res[0].stdout); res[0].code != 0 || got != check[2] {
		t.Errorf("README Quick start: %s printed %q (exit %d), the README says %s\n%s", check[1], got, res[0].code, check[2], res[0].stderr)
	}

	// API in brief: the admin token, the issuer, the mapping, its usage.
	var apiBlock string
	for _, b := range codeBlocks(docSection(t, readme, "## API in brief"), "sh") {
		if strings.Contains(b, "admin-token create") {
			apiBlock = b
		}
	}
	if apiBlock == "" {
		t.Fatal("README API in brief: no sh block with admin-token create")
	}
	cmds := shellCommands(apiBlock)
	for i := range cmds {
		cmds[i] = rewrite.Replace(cmds[i])
	}
	var sawURL, sawToken, sawIssuer, sawMapping, sawUsage bool
	var wantRequests []string
	for i, r := range walkShell(t, dir, cmds) {
		c := cmds[i]
		if r.code != 0 {
			t.Errorf("README API in brief, command %d exits %d:\n%s\nstdout: %s\nstderr: %s", i+1, r.code, c, r.stdout, r.stderr)
			continue
		}
		switch {
		case strings.HasPrefix(c, "export OIDC_BRIDGE_URL="):
			sawURL = true
		case strings.HasPrefix(c, "export OIDC_BRIDGE_ADMIN_TOKEN=$(./bin/oidc-bridge admin-token create"):
			sawToken = true
		case strings.HasPrefix(c, "curl ") && strings.Contains(c, " -d '"):
			path := curlPath(t, c)
			wantRequests = append(wantRequests, "POST "+path+" 201")
			sent, got := curlBody(t, c), map[string]any{}
			if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got["name"] != sent["name"] || got["error"] != nil || got["created_at"] == nil {
				t.Errorf("README API in brief, command %d answers %s (%v); want the object named %v\n%s", i+1, r.stdout, err, sent["name"], c)
			}
			switch path {
			case "/v1/admin/issuers":
				sawIssuer = true
			case "/v1/admin/mappings":
				sawMapping = true
			}
			// The example is there to be copied: it draws no lint warning.
			var lint struct {
				Warnings []struct{ Code string } `json:"warnings"`
			}
			_ = json.Unmarshal([]byte(r.stdout), &lint)
			for _, w := range lint.Warnings {
				t.Errorf("README API in brief, command %d: the example draws the lint warning %s\n%s\n%s", i+1, w.Code, c, r.stdout)
			}
		case strings.HasPrefix(c, "curl "):
			path := curlPath(t, c)
			wantRequests = append(wantRequests, "GET "+path+" 200")
			var got map[string]any
			if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got["error"] != nil {
				t.Errorf("README API in brief, command %d answers %q (%v); want a JSON object\n%s", i+1, r.stdout, err, c)
			}
			sawUsage = sawUsage || strings.HasSuffix(path, "/usage")
		default:
			t.Errorf("README API in brief, command %d is not one this walk knows how to check: teach it\n%s", i+1, c)
		}
	}
	if !sawURL || !sawToken || !sawIssuer || !sawMapping || !sawUsage {
		t.Errorf("README API in brief: the block no longer exports OIDC_BRIDGE_URL (%v) and OIDC_BRIDGE_ADMIN_TOKEN from admin-token create (%v), and registers an issuer (%v) and a mapping (%v) and reads its usage (%v)\n%s",
			sawURL, sawToken, sawIssuer, sawMapping, sawUsage, apiBlock)
	}
	// The statuses, from the service's request log (curl -sS prints only
	// the body): the admin requests, in order. The request log's line is
	// written after the answer is sent: the last one may still be coming.
	want := strings.Join(wantRequests, "\n")
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		got := strings.Join(adminRequests(s.logs.String(), apiBlockNames(cmds)), "\n")
		if got == want {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("README API in brief: the admin requests were\n%s\nwant\n%s", got, want)
			break
		}
	}

	// docs/audit.md, Connecting: psql --auditor on the quick start's data.
	connecting := docSection(t, auditDoc, "### Connecting: `oidc-bridge psql --auditor`")
	var auditCmds []string
	for _, b := range codeBlocks(connecting, "sh") {
		for _, c := range shellCommands(b) {
			if strings.HasPrefix(c, "BRIDGE_DATABASE_URL=") {
				continue // a managed database of the reader's (see above)
			}
			auditCmds = append(auditCmds, rewrite.Replace(c))
		}
	}
	if len(auditCmds) < 2 {
		t.Fatalf("docs/audit.md Connecting: want its psql --auditor examples, got %q", auditCmds)
	}
	var sawHistory bool
	for i, r := range walkShell(t, dir, auditCmds) {
		c := auditCmds[i]
		if !strings.HasPrefix(c, "./bin/oidc-bridge psql --auditor") {
			t.Errorf("docs/audit.md Connecting, command %d is not psql --auditor:\n%s", i+1, c)
		}
		if r.code != 0 {
			t.Errorf("docs/audit.md Connecting, command %d exits %d:\n%s\nstdout: %s\nstderr: %s", i+1, r.code, c, r.stdout, r.stderr)
		}
		if strings.Contains(c, "audit.admin_changes") && strings.Contains(c, "web-prod-deploy") {
			sawHistory = true
			if !strings.Contains(r.stdout, "web-prod-deploy") || !strings.Contains(r.stdout, "create") {
				t.Errorf("docs/audit.md Connecting, command %d does not show the quick start's mapping being created:\n%s\n%s", i+1, c, r.stdout)
			}
		}
		if strings.Contains(c, "-Atc 'SELECT count(*)") {
			if _, err := strconv.Atoi(strings.TrimSpace(r.stdout)); err != nil {
				t.Errorf("docs/audit.md Connecting, command %d prints %q, not a count", i+1, r.stdout)
			}
		}
	}
	if !sawHistory {
		t.Error("docs/audit.md Connecting: no example reads the quick start mapping's admin history")
	}
	// The refusal the doc shows: "$ command" then the error.
	var refusal []string
	for _, b := range codeBlocks(connecting, "") {
		if strings.HasPrefix(b, "$ ") {
			refusal = strings.Split(strings.TrimSpace(b), "\n")
		}
	}
	if len(refusal) < 2 {
		t.Fatal("docs/audit.md Connecting: no \"$ command\" block with the refusal it prints")
	}
	r := walkShell(t, dir, []string{rewrite.Replace(strings.TrimPrefix(refusal[0], "$ "))})[0]
	if r.code == 0 || !strings.Contains(r.stderr, strings.Join(refusal[1:], "\n")) {
		t.Errorf("docs/audit.md Connecting: %s exits %d and prints\n%s%s\nwant a failure printing\n%s",
			refusal[0], r.code, r.stdout, r.stderr, strings.Join(refusal[1:], "\n"))
	}

	s.stopClean()
}

// readRepoDoc reads a file of the repository (this package is test/e2e).
func readRepoDoc(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// docSection is the text under heading (a whole line, such as "## Quick
// start") up to the next heading of its level or a higher one, outside code
// blocks.
func docSection(t *testing.T, doc, heading string) string {
	t.Helper()
	level := strings.Index(heading, " ")
	var out []string
	in, fence := false, false
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "```") {
			fence = !fence
		}
		if !fence && !strings.HasPrefix(line, "```") {
			if line == heading {
				in = true
				continue
			}
			if n := len(line) - len(strings.TrimLeft(line, "#")); in && n > 0 && n <= level && strings.HasPrefix(line[n:], " ") {
				break
			}
		}
		if in {
			out = append(out, line)
		}
	}
	if !in {
		t.Fatalf("no section %q", heading)
	}
	return strings.Join(out, "\n")
}

// codeBlocks are the fenced blocks of text whose info string is lang.
func codeBlocks(text, lang string) []string {
	var blocks []string
	var cur []string
	in, want := false, false
	for _, line := range strings.Split(text, "\n") {
		switch {
		case !in && strings.HasPrefix(line, "```"):
			in, want, cur = true, line == "```"+lang, nil
		case in && line == "```":
			in = false
			if want {
				blocks = append(blocks, strings.Join(cur, "\n")+"\n")
			}
		case in:
			cur = append(cur, line)
		}
	}
	return blocks
}

// shellCommands splits a shell block into its commands: a command ends at a
// newline outside quotes not escaped by a backslash. Lines that are only
// comments, and blank lines, between commands are dropped.
func shellCommands(block string) []string {
	var cmds []string
	var cur strings.Builder
	single, double := false, false
	for _, line := range strings.Split(block, "\n") {
		if cur.Len() == 0 {
			if s := strings.TrimSpace(line); s == "" || strings.HasPrefix(s, "#") {
				continue
			}
		}
		cur.WriteString(line + "\n")
		escaped := false
	scan:
		for i := 0; i < len(line); i++ {
			c := line[i]
			switch {
			case escaped:
				escaped = false
			case single:
				single = c != '\''
			case c == '\\':
				escaped = true
			case double:
				double = c != '"'
			case c == '\'':
				single = true
			case c == '"':
				double = true
			case c == '#' && (i == 0 || line[i-1] == ' '):
				break scan
			}
		}
		if !single && !double && !escaped {
			cmds = append(cmds, strings.TrimSuffix(cur.String(), "\n"))
			cur.Reset()
		}
	}
	return cmds
}

type shellResult struct {
	stdout, stderr string
	code           int
}

// walkShell runs cmds with bash, in one shell (so exports carry over), in
// the folder dir, with the machine's environment without BRIDGE_ or
// OIDC_BRIDGE_ variables, each command's input at end of file. It runs them
// all, whatever their exit statuses.
func walkShell(t *testing.T, dir string, cmds []string) []shellResult {
	t.Helper()
	outDir := t.TempDir()
	var script strings.Builder
	for i, c := range cmds {
		f := filepath.Join(outDir, strconv.Itoa(i))
		fmt.Fprintf(&script, "{ %s\n} >'%s.out' 2>'%s.err' </dev/null; echo $? >'%s.rc'\n", c, f, f, f)
	}
	var env []string
	for _, kv := range baseEnv() {
		if !strings.HasPrefix(kv, "OIDC_BRIDGE_") {
			env = append(env, kv)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "--noprofile", "--norc", "-c", script.String())
	cmd.Dir, cmd.Env = dir, env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("bash: %v\n%s\nscript:\n%s", err, stderr.String(), script.String())
	}
	res := make([]shellResult, len(cmds))
	for i := range cmds {
		f := filepath.Join(outDir, strconv.Itoa(i))
		out, _ := os.ReadFile(f + ".out")
		errOut, _ := os.ReadFile(f + ".err")
		rc, err := os.ReadFile(f + ".rc")
		code, convErr := strconv.Atoi(strings.TrimSpace(string(rc)))
		if err != nil || convErr != nil {
			t.Fatalf("command %d did not finish (%v, %v):\n%s\n%s", i+1, err, convErr, cmds[i], stderr.String())
		}
		res[i] = shellResult{stdout: string(out), stderr: string(errOut), code: code}
	}
	return res
}

// curlPath is the path of the URL of a README curl command, written as
// $OIDC_BRIDGE_URL/PATH.
func curlPath(t *testing.T, c string) string {
	t.Helper()
	m := regexp.MustCompile(`\$OIDC_BRIDGE_URL(/\S*)`).FindStringSubmatch(c)
	if m == nil {
		t.Fatalf("a README curl command without $OIDC_BRIDGE_URL/...:\n%s", c)
	}
	return m[1]
}

// curlBody is the JSON of a curl command's -d '...'.
func curlBody(t *testing.T, c string) map[string]any {
	t.Helper()
	i := strings.Index(c, " -d '")
	j := strings.Index(c[i+5:], "'")
	var body map[string]any
	if j < 0 || json.Unmarshal([]byte(c[i+5:i+5+j]), &body) != nil {
		t.Fatalf("a README curl command whose -d is not JSON:\n%s", c)
	}
	return body
}

// apiBlockNames maps the names in the commands' URL paths to the route
// parameter the request log shows, so paths and routes compare.
func apiBlockNames(cmds []string) *strings.Replacer {
	var pairs []string
	for _, c := range cmds {
		if m := regexp.MustCompile(`/v1/admin/(issuers|mappings)/([^/\s]+)`).FindStringSubmatch(c); m != nil {
			pairs = append(pairs, "/v1/admin/"+m[1]+"/:name", "/v1/admin/"+m[1]+"/"+m[2])
		}
	}
	return strings.NewReplacer(pairs...)
}

// adminRequests are "METHOD path status" of the admin API's requests in a
// service log, routes written back as paths by names.
func adminRequests(logs string, names *strings.Replacer) []string {
	var out []string
	for _, line := range strings.Split(logs, "\n") {
		var l struct {
			Msg, Method, Route string
			Status             int
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "request" && strings.HasPrefix(l.Route, "/v1/admin/") {
			out = append(out, fmt.Sprintf("%s %s %d", l.Method, names.Replace(l.Route), l.Status))
		}
	}
	return out
}

// TestReadmeLayoutPaths: every file or folder the README's Development
// section names by its path from the root (`a/b.go`, `dir/`) exists, so that its layout and
// its "Where things are" lines lead somewhere.
func TestReadmeLayoutPaths(t *testing.T) {
	t.Parallel()
	dev := docSection(t, readRepoDoc(t, "README.md"), "## Development")
	var n int
	for _, m := range regexp.MustCompile("`([a-z0-9_.-]+/[a-z0-9_./-]*(?:/|\\.go|\\.md))`").FindAllStringSubmatch(dev, -1) {
		n++
		if _, err := os.Stat(filepath.Join("..", "..", m[1])); err != nil {
			t.Errorf("README's Development section names %s: %v", m[1], err)
		}
	}
	if n < 4 {
		t.Fatalf("README's Development section names %d paths; its layout lines are gone", n)
	}
}
