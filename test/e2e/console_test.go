package e2e

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// ensured runs scripts/<script> (which installs or finds a tool and prints
// its path) unless env names the tool already: `make test` passes the
// paths, a plain `go test` runs the scripts itself.
func ensured(env, script string) func() (string, error) {
	return sync.OnceValues(func() (string, error) {
		if p := os.Getenv(env); p != "" {
			return p, nil
		}
		path, err := filepath.Abs(filepath.Join("..", "..", "scripts", script))
		if err != nil {
			return "", err
		}
		var stderr bytes.Buffer
		cmd := exec.Command("bash", path)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("%s (set %s): %v\n%s", path, env, err, stderr.String())
		}
		return strings.TrimSpace(string(out)), nil
	})
}

var (
	// chromiumPath is Debian's chromium: $OIDC_BRIDGE_CHROMIUM, else
	// scripts/ensure-chromium.sh (apt-get install chromium when missing).
	chromiumPath = ensured("OIDC_BRIDGE_CHROMIUM", "ensure-chromium.sh")
	// axePath is axe-core's axe.min.js from npm: $OIDC_BRIDGE_AXE, else
	// scripts/ensure-axe.sh (npm install into the build cache).
	axePath = ensured("OIDC_BRIDGE_AXE", "ensure-axe.sh")
)

// browser is a headless Chromium tab on the console.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
	shot string // the folder of the screenshots
	axe  string
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	exe, err := chromiumPath()
	if err != nil {
		t.Fatal(err)
	}
	axeFile, err := axePath()
	if err != nil {
		t.Fatal(err)
	}
	axe, err := os.ReadFile(axeFile) // #nosec G304 -- the path the script printed
	if err != nil {
		t.Fatal(err)
	}
	// Chromium's profile: removed by our cleanup once the browser has
	// exited (its helpers write into it for a moment after the main
	// process is gone, which t.TempDir's removal would race).
	profile, err := os.MkdirTemp("", "console-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	// Its own temporary files (org.chromium.Chromium.*) go there too.
	tmp := filepath.Join(profile, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.UserDataDir(filepath.Join(profile, "profile")), chromedp.Env("TMPDIR="+tmp), chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-dev-shm-usage", true))
	if os.Geteuid() == 0 {
		// Chromium refuses to run its sandbox as root (these machines run
		// the tests as root); as another user the sandbox stays on.
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(func() {
		_ = chromedp.Cancel(ctx) // closes the browser and waits for it
		cancelT()
		cancelC()
		cancelA()
		for i := 0; ; i++ {
			err := os.RemoveAll(profile)
			if err == nil {
				return
			}
			if i == 50 {
				t.Errorf("remove the browser profile: %v", err)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("start chromium %s: %v", exe, err)
	}
	return &browser{t: t, ctx: ctx, base: base, shot: t.TempDir(), axe: string(axe)}
}

func (b *browser) run(actions ...chromedp.Action) {
	b.t.Helper()
	if err := chromedp.Run(b.ctx, actions...); err != nil {
		b.t.Fatal(err)
	}
}

// open navigates to path and returns the path the browser ends on.
func (b *browser) open(path string) string {
	b.t.Helper()
	var loc string
	b.run(chromedp.Navigate(b.base+path), chromedp.WaitReady("body"), chromedp.Location(&loc))
	u, err := url.Parse(loc)
	if err != nil {
		b.t.Fatal(err)
	}
	return u.Path
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	var s string
	b.run(chromedp.Text(sel, &s, chromedp.ByQuery))
	return s
}

// screenshot saves the whole page as name.png in the test's folder.
func (b *browser) screenshot(name string) string {
	b.t.Helper()
	var png []byte
	b.run(chromedp.Evaluate(`document.activeElement && document.activeElement.blur()`, nil), chromedp.FullScreenshot(&png, 100))
	path := filepath.Join(b.shot, name+".png")
	if err := os.WriteFile(path, png, 0o600); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s", path)
	return path
}

// axeResult is what axe.run answers, in part.
type axeResult struct {
	Violations []struct {
		ID     string `json:"id"`
		Impact string `json:"impact"`
		Help   string `json:"help"`
		Nodes  []struct {
			Target []any `json:"target"`
		} `json:"nodes"`
	} `json:"violations"`
}

// accessible runs axe-core on the page (WCAG 2.1 A and AA rules and best
// practices) and fails on every violation of moderate, serious or
// critical impact.
func (b *browser) accessible(page string) {
	b.t.Helper()
	var res axeResult
	b.run(chromedp.Evaluate(b.axe, nil),
		chromedp.Evaluate(`axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]}})`,
			&res, func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }))
	for _, v := range res.Violations {
		if v.Impact == "minor" {
			b.t.Logf("%s: axe (minor) %s: %s", page, v.ID, v.Help)
			continue
		}
		b.t.Errorf("%s: axe %s violation %s: %s at %v", page, v.Impact, v.ID, v.Help, v.Nodes)
	}
}

// tabReachesEverything presses Tab through the page and fails unless every
// visible control (links, buttons, fields) gets the focus, in document
// order.
func (b *browser) tabReachesEverything(page string) {
	b.t.Helper()
	var controls []string
	b.run(chromedp.Evaluate(`(() => {
		let n = 0;
		const all = [...document.querySelectorAll("a[href], button, input:not([type=hidden]), select, textarea")];
		return all.filter(e => e.getClientRects().length > 0 || e.classList.contains("skip")).map(e => {
			if (!e.dataset.tabProbe) e.dataset.tabProbe = "c" + (n++);
			return e.dataset.tabProbe;
		});
	})()`, &controls), chromedp.Evaluate(`document.activeElement && document.activeElement.blur()`, nil))
	var seen []string
	// A date-time field takes a Tab per part (day, month, year, ...).
	for i := 0; i < 10*len(controls) && len(seen) < len(controls); i++ {
		var id string
		b.run(chromedp.KeyEvent(kb.Tab), chromedp.Evaluate(`document.activeElement ? (document.activeElement.dataset.tabProbe || "") : ""`, &id))
		if id != "" && !slices.Contains(seen, id) {
			seen = append(seen, id)
		}
	}
	for _, c := range controls {
		if !slices.Contains(seen, c) {
			b.t.Errorf("%s: Tab never reaches control %s of %v (reached %v)", page, c, controls, seen)
		}
	}
	if len(seen) >= 2 && slices.Index(controls, seen[0]) > slices.Index(controls, seen[1]) {
		b.t.Errorf("%s: tab order %v is not the document's %v", page, seen, controls)
	}
}

// cookie is the console's session cookie in the browser.
func (b *browser) cookie() *http.Cookie {
	b.t.Helper()
	var cookies []*network.Cookie
	b.run(chromedp.ActionFunc(func(ctx context.Context) error {
		var err error
		cookies, err = network.GetCookies().Do(ctx)
		return err
	}))
	for _, c := range cookies {
		if c.Name == "oidc_bridge_console" {
			if !c.HTTPOnly || c.SameSite != network.CookieSameSiteStrict || c.Path != "/console" {
				b.t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/console", c)
			}
			return &http.Cookie{Name: c.Name, Value: c.Value}
		}
	}
	b.t.Fatal("no session cookie in the browser")
	return nil
}

// noRedirect is an HTTP client that shows redirects instead of following.
var noRedirect = &http.Client{Timeout: 30 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func get(t *testing.T, u string, c *http.Cookie) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c != nil {
		req.AddCookie(c)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// TestConsoleInBrowser: the real binary with BRIDGE_CONSOLE=true, a real
// Chromium: nothing without signing in; sign-in with a read-only admin
// token; a denial opens to its failing condition and the value seen; the
// issuances search finds the issued credential and exports it as CSV; the
// mappings page shows a lint warning; the explainer answers a pasted
// token; every page passes axe-core and Tab reaches all its controls; and
// revoking the admin token ends the session.
func TestConsoleInBrowser(t *testing.T) {
	t.Parallel()
	x := newExchangeEnv(t, "BRIDGE_CONSOLE=true")
	s := startServer(t, x.env)
	x.register(s, "")
	// A mapping that lints: a wildcard repository, no immutable id.
	var wide struct {
		Warnings []struct {
			Code string `json:"code"`
		} `json:"warnings"`
	}
	s.must(201, "POST", "/v1/admin/mappings", `{"name": "acme-any", "issuer": "github", "mode": "audit",
		"conditions": {"repository": "acme/*", "ref": "refs/heads/main"}, "quota": {"per_hour": 5},
		"provider": "aws", "target": {"role_arn": "arn:aws:iam::123456789012:role/any", "region": "eu-west-1"}}`).json(t, &wide)
	if len(wide.Warnings) == 0 {
		t.Fatal("acme-any drew no lint warning")
	}
	good := x.gh.Mint(t, x.gh.GitHubClaims(nil))
	if r := exchange(s, good, ""); r.status != 200 {
		t.Fatalf("exchange: %d %s", r.status, r.body)
	}
	// A denial: a feature branch, by an actor whose name a spreadsheet
	// would run as a formula.
	badClaims := x.gh.GitHubClaims(map[string]any{"ref": "refs/heads/feature/x", "actor": "=1+2"})
	if r := exchange(s, x.gh.Mint(t, badClaims), ""); r.status != 403 {
		t.Fatalf("denied exchange: %d %s", r.status, r.body)
	}
	out, errOut, code := cli(t, x.env, "admin-token", "create", "console-reader", "--scope", "read", "--expires-in", "1h")
	if code != 0 {
		t.Fatalf("admin-token create: %d %s", code, errOut)
	}
	readToken := strings.TrimSpace(out)
	ledgerRows := func() int {
		var n int
		if err := openDB(t, x.dbURL).QueryRow(t.Context(), `SELECT count(*) FROM audit.issuances`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := ledgerRows()

	// Off unless BRIDGE_CONSOLE=true: another replica without it has no
	// console at all.
	plain := startServer(t, slices.DeleteFunc(slices.Clone(x.env), func(kv string) bool { return kv == "BRIDGE_CONSOLE=true" }))
	for _, p := range []string{"/console", "/console/", "/console/signin"} {
		if resp, _ := get(t, plain.url+p, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s without BRIDGE_CONSOLE: %d, want 404", p, resp.StatusCode)
		}
	}
	plain.stopClean()

	// Without a session: every page and the export go to sign-in.
	for _, p := range []string{"/console/", "/console/denials", "/console/issuances", "/console/issuances.csv",
		"/console/mappings", "/console/explain", "/console/denials/00000000-0000-0000-0000-000000000000"} {
		resp, _ := get(t, s.url+p, nil)
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/console/signin") {
			t.Errorf("GET %s without a session: %d %s; want 303 to sign-in", p, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	resp, _ := get(t, s.url+"/console/signin", nil)
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") ||
		strings.Contains(csp, "unsafe") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP %q", csp)
	}
	// The admin API's bearer token is no session.
	resp, _ = get(t, s.url+"/console/denials", &http.Cookie{Name: "oidc_bridge_console", Value: adminToken})
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("a guessed cookie: %d", resp.StatusCode)
	}

	b := newBrowser(t, s.url)
	if p := b.open("/console/denials"); p != "/console/signin" {
		t.Fatalf("without signing in the browser is on %s", p)
	}
	b.accessible("sign-in")
	b.tabReachesEverything("sign-in")
	b.screenshot("signin")
	// A wrong token is refused; the read token signs in and lands on the
	// page asked for.
	b.run(chromedp.SendKeys("#token", "obat_not-a-token", chromedp.ByQuery), chromedp.Submit("#token", chromedp.ByQuery), chromedp.WaitReady(".error", chromedp.ByQuery))
	if e := b.text(".error"); !strings.Contains(e, "not a valid admin token") {
		t.Errorf("wrong token: %q", e)
	}
	b.run(chromedp.SendKeys("#token", readToken, chromedp.ByQuery), chromedp.Submit("#token", chromedp.ByQuery), chromedp.WaitReady("table", chromedp.ByQuery))
	var loc string
	b.run(chromedp.Location(&loc))
	if !strings.HasSuffix(loc, "/console/denials") {
		t.Fatalf("after sign-in: %s", loc)
	}
	cookie := b.cookie()

	// Denials: the one denial, filtered by repository and error code.
	b.open("/console/denials?repository=acme%2Fweb&error_code=no_matching_mapping")
	if tbl := b.text("table tbody"); !strings.Contains(tbl, "no_matching_mapping") || !strings.Contains(tbl, "acme/web") {
		t.Fatalf("denials table: %q", tbl)
	}
	b.accessible("denials")
	b.tabReachesEverything("denials")
	b.screenshot("denials")
	b.run(chromedp.Click("tbody a", chromedp.ByQuery), chromedp.WaitReady("table.explain", chromedp.ByQuery))
	var failing string
	b.run(chromedp.Evaluate(`[...document.querySelectorAll("table.explain tr.fail")].map(r => r.innerText.replace(/\s+/g, " ")).join(" | ")`, &failing))
	if !strings.Contains(failing, "ref") || !strings.Contains(failing, "refs/heads/feature/x") || !strings.Contains(failing, "refs/heads/main") {
		t.Fatalf("the denial's failing condition: %q", failing)
	}
	if d := b.text(".decision"); !strings.Contains(d, "no_match") {
		t.Errorf("decision %q", d)
	}
	b.accessible("denial")
	b.tabReachesEverything("denial")
	shot := b.screenshot("denial")
	if dst := os.Getenv("OIDC_BRIDGE_CONSOLE_SCREENSHOT"); dst != "" {
		// How docs/console-denial.png is made: make console-screenshot.
		png, _ := os.ReadFile(shot)                           // #nosec G304 -- our own file
		if err := os.WriteFile(dst, png, 0o644); err != nil { // #nosec G306 -- a documentation image
			t.Fatal(err)
		}
	}

	// Issuances: the issued credential, by repository and outcome.
	b.open("/console/issuances?repository=acme%2Fweb&outcome=issued")
	rows := b.text("table tbody")
	if !strings.Contains(rows, "issued") || !strings.Contains(rows, "web-prod") || !strings.Contains(rows, "ASIA") {
		t.Fatalf("issuances table: %q", rows)
	}
	b.accessible("issuances")
	b.tabReachesEverything("issuances")
	b.screenshot("issuances")
	// The CSV export of every outcome: the formula-looking run id is
	// neutralised, the rest as recorded.
	resp, body := get(t, s.url+"/console/issuances.csv?repository=acme%2Fweb", cookie)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") ||
		!strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("CSV: %d %v", resp.StatusCode, resp.Header)
	}
	recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	// The two exchanges and the audit-mode mapping's would_issue and
	// would_deny.
	if err != nil || len(recs) != 5 || recs[0][0] != "id" {
		t.Fatalf("CSV %v:\n%s", err, body)
	}
	actorCol := slices.Index(recs[0], "actor")
	var actors []string
	for _, r := range recs[1:] {
		actors = append(actors, r[actorCol])
	}
	if !slices.Contains(actors, "'=1+2") {
		t.Errorf("CSV actors %q: want the formula neutralised as '=1+2", actors)
	}

	// Mappings: the lint warning, the quota, the chart.
	b.open("/console/mappings")
	page := b.text("main")
	if !strings.Contains(page, wide.Warnings[0].Code) || !strings.Contains(page, "acme-any") || !strings.Contains(page, "audit") {
		t.Fatalf("mappings page lacks the warning %s: %q", wide.Warnings[0].Code, page)
	}
	var bars int
	b.run(chromedp.Evaluate(`document.querySelectorAll("svg.chart rect").length`, &bars))
	if bars == 0 {
		t.Error("no bars in the mappings' charts")
	}
	b.accessible("mappings")
	b.tabReachesEverything("mappings")
	b.screenshot("mappings")

	// Explain a token: pasted, verified, the failing condition shown.
	b.open("/console/explain")
	b.accessible("explain")
	b.tabReachesEverything("explain")
	b.run(chromedp.SetValue("#e-token", x.gh.Mint(t, x.gh.GitHubClaims(map[string]any{"environment": "staging"})), chromedp.ByQuery),
		chromedp.Submit("#e-token", chromedp.ByQuery), chromedp.WaitReady("table.explain", chromedp.ByQuery))
	var tokenLeft string
	b.run(chromedp.Value("#e-token", &tokenLeft, chromedp.ByQuery))
	b.run(chromedp.Evaluate(`[...document.querySelectorAll("table.explain tr.fail")].map(r => r.innerText).join(" | ")`, &failing))
	if !strings.Contains(failing, "environment") || !strings.Contains(failing, "staging") || tokenLeft != "" {
		t.Fatalf("explain: failing %q, token left in the form %d bytes", failing, len(tokenLeft))
	}
	b.accessible("explain result")
	b.screenshot("explain")

	// A POST from another origin is refused.
	req, _ := http.NewRequest("POST", s.url+"/console/explain", strings.NewReader("token=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	req.AddCookie(cookie)
	if resp, err := noRedirect.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin POST: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	// Nothing the console did was recorded.
	if n := ledgerRows(); n != before {
		t.Errorf("ledger rows %d after the console's pages, %d before", n, before)
	}

	// Revoking the admin token ends the session on its next request.
	if _, errOut, code := cli(t, x.env, "admin-token", "revoke", "console-reader"); code != 0 {
		t.Fatalf("revoke: %s", errOut)
	}
	if p := b.open("/console/mappings"); p != "/console/signin" {
		t.Fatalf("after revocation the browser is on %s", p)
	}
	if n := b.text("main"); !strings.Contains(n, "session ended") {
		t.Errorf("sign-in after revocation says %q", n)
	}
	if resp, _ := get(t, s.url+"/console/denials", cookie); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the revoked session's cookie: %d", resp.StatusCode)
	}
	t.Logf("screenshots in %s", b.shot)
	s.stopClean()
}
