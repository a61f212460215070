package bridge_test

// HTTP-level tests of the attack catalogue's cases (the project's shared
// security review catalogue, not in this repository) that the identity, mapping and
// ledger unit tests do not already cover end to end. Each test is named
// after its case number; docs/security/attack-coverage.md maps every case
// to its tests.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/oidc-bridge/oidc-bridge/bridge"
	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/ledger"
	"github.com/oidc-bridge/oidc-bridge/providers"
	"github.com/oidc-bridge/oidc-bridge/test/oidctest"
	"github.com/oidc-bridge/oidc-bridge/test/ststest"
)

// serveHTTP runs the env's server behind the http.Server that
// Server.HTTPServer builds (so its MaxHeaderBytes and timeouts apply) and
// returns its address and that http.Server.
func serveHTTP(t *testing.T, x *exchangeEnv) (string, *http.Server) {
	t.Helper()
	hs := x.srv.HTTPServer("127.0.0.1:0")
	ts := httptest.NewUnstartedServer(nil)
	ts.Config = hs
	ts.Start()
	t.Cleanup(ts.Close)
	return ts.Listener.Addr().String(), hs
}

// rawExchange writes head (the request line and headers, without the blank
// line) and then body (may be nil) on a fresh connection, while reading the
// response concurrently: the server may answer and close before the client
// has finished writing. It returns the status, the response body and how
// long the answer took.
func rawExchange(t *testing.T, addr, head string, body func(io.Writer) error) (int, string, time.Duration) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	go func() {
		if _, err := io.WriteString(conn, head+"\r\n"); err != nil {
			return
		}
		if body != nil {
			_ = body(conn) // the server may cut us off: that is the point
		}
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no response after %v: %v", time.Since(start), err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, string(b), time.Since(start)
}

func exchangeHead(token string, extra ...string) string {
	h := "POST /v1/exchange HTTP/1.1\r\nHost: bridge.test\r\nAuthorization: Bearer " + token + "\r\n"
	for _, e := range extra {
		h += e + "\r\n"
	}
	return h
}

// TestAttack13HugeTokens: an 8 MiB bearer of dots and a 1 MiB header
// segment are refused at the HTTP server (431, MaxHeaderBytes) before any
// handler runs; handed to the handler directly they are refused fast by the
// verifier's size cap (401, nothing recorded); a token just over the 16 KiB
// cap but under the header limit reaches the verifier and is 401.
func TestAttack13HugeTokens(t *testing.T) {
	x := newExchangeEnv(t)
	addr, _ := serveHTTP(t, x)
	for _, tc := range []struct{ name, token string }{
		{"8 MiB of dots", strings.Repeat(".", 8<<20)},
		{"1 MiB header segment", strings.Repeat("e", 1<<20) + ".e30.c2ln"},
	} {
		t.Run(tc.name+" over http", func(t *testing.T) {
			status, _, took := rawExchange(t, addr, exchangeHead(tc.token, "Content-Length: 0"), nil)
			if status != http.StatusRequestHeaderFieldsTooLarge {
				t.Fatalf("status %d, want 431", status)
			}
			if took > 5*time.Second {
				t.Errorf("refusal took %v", took)
			}
		})
		t.Run(tc.name+" to the handler", func(t *testing.T) {
			x := &exchangeEnv{env: x.env.in(t), gh: x.gh}
			start := time.Now()
			x.wantError(x.exchange(tc.token, ""), 401, api.CodeInvalidToken, "")
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("refusal took %v", took)
			}
		})
	}
	t.Run("just over the token cap", func(t *testing.T) {
		tok := x.token(map[string]any{"padding": strings.Repeat("p", 17<<10)})
		status, body, _ := rawExchange(t, addr, exchangeHead(tok, "Content-Length: 0"), nil)
		if status != 401 || !strings.Contains(body, api.CodeInvalidToken) {
			t.Fatalf("status %d body %s, want 401 invalid_token", status, body)
		}
	})
	if rows := x.rows(); len(rows) != 0 || sts.CallCount() != 0 {
		t.Fatalf("oversized tokens left rows %v / %d STS calls", rows, sts.CallCount())
	}
}

// TestAttack51HTTPServerLimits: the http.Server that HTTPServer returns has
// every timeout and the header limit set.
func TestAttack51HTTPServerLimits(t *testing.T) {
	x := newExchangeEnv(t)
	hs := x.srv.HTTPServer(":0")
	for name, d := range map[string]time.Duration{
		"ReadHeaderTimeout": hs.ReadHeaderTimeout, "ReadTimeout": hs.ReadTimeout,
		"WriteTimeout": hs.WriteTimeout, "IdleTimeout": hs.IdleTimeout,
	} {
		if d <= 0 || d > 2*time.Minute {
			t.Errorf("%s = %v, want set and at most 2m", name, d)
		}
	}
	if hs.ReadHeaderTimeout > 10*time.Second {
		t.Errorf("ReadHeaderTimeout %v, want at most 10s", hs.ReadHeaderTimeout)
	}
	if hs.MaxHeaderBytes <= 0 || hs.MaxHeaderBytes > 64<<10 {
		t.Errorf("MaxHeaderBytes %d, want set and at most 64 KiB", hs.MaxHeaderBytes)
	}
}

// TestAttack51OversizedBodies: a 50 MiB body is 413 request_too_large,
// whether it declares its length or is chunked, with a valid token (so the
// body would otherwise be read) and nothing is minted.
func TestAttack51OversizedBodies(t *testing.T) {
	x := newExchangeEnv(t)
	addr, _ := serveHTTP(t, x)
	const size = 50 << 20
	fill := func(w io.Writer, n int) error {
		chunk := []byte(strings.Repeat(" ", 64<<10))
		for n > 0 {
			k := min(n, len(chunk))
			if _, err := w.Write(chunk[:k]); err != nil {
				return err
			}
			n -= k
		}
		return nil
	}
	t.Run("content-length", func(t *testing.T) {
		head := exchangeHead(x.token(nil), "Content-Type: application/json", fmt.Sprintf("Content-Length: %d", size))
		status, body, _ := rawExchange(t, addr, head, func(w io.Writer) error { return fill(w, size) })
		if status != 413 || !strings.Contains(body, api.CodeRequestTooLarge) {
			t.Fatalf("status %d body %s, want 413 request_too_large", status, body)
		}
	})
	t.Run("chunked", func(t *testing.T) {
		head := exchangeHead(x.token(nil), "Content-Type: application/json", "Transfer-Encoding: chunked")
		status, body, _ := rawExchange(t, addr, head, func(w io.Writer) error {
			for sent := 0; sent < size; sent += 1 << 20 {
				if _, err := fmt.Fprintf(w, "%x\r\n", 1<<20); err != nil {
					return err
				}
				if err := fill(w, 1<<20); err != nil {
					return err
				}
				if _, err := io.WriteString(w, "\r\n"); err != nil {
					return err
				}
			}
			_, err := io.WriteString(w, "0\r\n\r\n")
			return err
		})
		if status != 413 || !strings.Contains(body, api.CodeRequestTooLarge) {
			t.Fatalf("status %d body %s, want 413 request_too_large", status, body)
		}
	})
	if n := sts.CallCount(); n != 0 {
		t.Fatalf("STS called %d times", n)
	}
}

// TestAttack51Slowloris: a client that trickles its headers a byte a second
// is cut off once ReadHeaderTimeout has passed.
func TestAttack51Slowloris(t *testing.T) {
	x := newExchangeEnv(t)
	addr, hs := serveHTTP(t, x)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(hs.ReadHeaderTimeout + 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	done := make(chan struct{})
	defer close(done)
	go func() {
		if _, err := io.WriteString(conn, "POST /v1/exchange HTTP/1.1\r\nHost: bridge.test\r\nX-Slow: "); err != nil {
			return
		}
		for {
			select {
			case <-done:
				return
			case <-time.After(time.Second):
			}
			if _, err := conn.Write([]byte("a")); err != nil {
				return
			}
		}
	}()
	_, err = io.Copy(io.Discard, conn) // returns when the server closes
	took := time.Since(start)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the server kept a slow client for %v (ReadHeaderTimeout %v)", took, hs.ReadHeaderTimeout)
	}
	if took < hs.ReadHeaderTimeout-time.Second || took > hs.ReadHeaderTimeout+5*time.Second {
		t.Fatalf("connection closed after %v, want about ReadHeaderTimeout %v", took, hs.ReadHeaderTimeout)
	}
}

// TestAttack55SQLInjectionThroughClaims: claims that are SQL (and shell) are
// data: a non-matching ref gives the normal 403, a matching one issues, the
// ledger stores each value verbatim, and the tables are intact.
func TestAttack55SQLInjectionThroughClaims(t *testing.T) {
	x := newExchangeEnv(t)
	ctx := context.Background()
	const (
		ref = `refs/heads/zzz";echo${IFS}"hello";#`
		env = `prod'); DROP TABLE mappings;--`
		act = `x' OR '1'='1`
	)
	hostile := map[string]any{"ref": ref, "environment": env, "actor": act}
	x.wantError(x.exchange(x.token(hostile), ""), 403, api.CodeNoMatchingMapping, "")

	// The same environment and actor on main: admitted, issued.
	if r := x.exchange(x.token(map[string]any{"environment": env, "actor": act}), `{"mapping": "web"}`); r.status != 200 {
		t.Fatalf("hostile environment/actor on main: %d %s", r.status, r.body)
	}
	// A mapping whose condition holds a quote matches only that exact value.
	x.mapping("quoted", `"repository": "acme/web", "ref": "refs/heads/main", "environment": "prod'); DROP TABLE mappings;--"`, "")
	x.wantError(x.exchange(x.token(map[string]any{"environment": "production"}), `{"mapping": "quoted"}`), 403, api.CodeNoMatchingMapping, "")
	if r := x.exchange(x.token(map[string]any{"environment": env}), `{"mapping": "quoted"}`); r.status != 200 {
		t.Fatalf("exact quoted environment: %d %s", r.status, r.body)
	}

	rows, err := x.pool.Query(ctx, `SELECT outcome, coalesce(ref, ''), coalesce(environment, ''), coalesce(actor, '') FROM audit.issuances`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var o, r, e, a string
		if err := rows.Scan(&o, &r, &e, &a); err != nil {
			t.Fatal(err)
		}
		got = append(got, o)
		if e != env && e != "production" {
			t.Errorf("environment stored as %q", e)
		}
		if o == "denied" && (r != ref || a != act) && e == env {
			t.Errorf("denied row stored ref %q actor %q", r, a)
		}
	}
	rows.Close()
	if want := "denied issued denied issued"; strings.Join(got, " ") != want {
		t.Errorf("outcomes %v, want %s", got, want)
	}
	var first [3]string
	if err := x.pool.QueryRow(ctx, `SELECT ref, environment, actor FROM audit.issuances LIMIT 1`).Scan(&first[0], &first[1], &first[2]); err != nil {
		t.Fatal(err)
	}
	if first != [3]string{ref, env, act} {
		t.Errorf("first row %q, want verbatim %q", first, [3]string{ref, env, act})
	}
	for table, want := range map[string]int{"mappings": 3, "issuers": 1} {
		var n int
		if err := x.pool.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil || n != want {
			t.Errorf("%s: %d rows, err %v; want %d", table, n, err, want)
		}
	}
}

// TestAttack56LogInjection: claims and kids meant to forge log lines or
// drive a terminal are refused (control characters are invalid_claim, an
// oversized actor is over the token cap) and the JSON log stays one record
// a line, with no raw control bytes and no forged "issued" record. Quotes
// and braces a ref may legally hold are escaped on the exchange line.
func TestAttack56LogInjection(t *testing.T) {
	x := newTracedEnv(t, false)
	forged := "\r\n{\"level\":\"INFO\",\"msg\":\"issued\",\"repository\":\"acme/prod\"}"
	refused := []struct {
		name string
		tok  string
	}{
		{"actor CRLF", x.token(map[string]any{"actor": "x" + forged})},
		{"environment LF", x.token(map[string]any{"environment": "prod\n{\"msg\":\"issued\"}"})},
		{"ref CRLF", x.token(map[string]any{"ref": "refs/heads/main" + forged})},
		{"actor ANSI", x.token(map[string]any{"actor": "\x1b[2Joctocat"})},
		{"job_workflow_ref ANSI", x.token(map[string]any{"job_workflow_ref": "acme/web/.github/workflows/x.yml@refs/heads/main\x1b[31m"})},
		{"kid CRLF", x.token(nil, oidctest.WithKid("k1"+forged))},
		{"kid ANSI", x.token(nil, oidctest.WithKid("\x1b[2J"))},
		{"actor 100 KB", x.token(map[string]any{"actor": strings.Repeat("a", 100_000)})},
	}
	for _, tc := range refused {
		r := x.exchange(tc.tok, "")
		e := x.wantError(r, 401, api.CodeInvalidToken, "")
		if strings.ContainsAny(string(r.body), "\r\x1b") || strings.Contains(e.Message, "acme/prod") {
			t.Errorf("%s: error body echoes the payload: %s", tc.name, r.body)
		}
	}
	// A ref git allows, full of JSON punctuation: verified, logged, escaped.
	legal := `refs/heads/a"}{"level"="INFO","msg"="issued",'repository'="acme/prod"}` // git refuses ':'

	r := x.exchange(x.token(map[string]any{"ref": legal}), "")
	x.wantError(r, 403, api.CodeNoMatchingMapping, "")

	logs := x.logs.String()
	if strings.ContainsAny(logs, "\r\x1b") {
		t.Errorf("raw CR or ESC in the logs")
	}
	var lines, exchanges int
	for _, l := range strings.Split(strings.TrimSuffix(logs, "\n"), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not one JSON record: %q: %v", l, err)
		}
		lines++
		if m["msg"] == "issued" || m["repository"] == "acme/prod" {
			t.Errorf("forged record: %s", l)
		}
		if m["msg"] == "exchange" {
			exchanges++
			if m["outcome"] == "denied" && m["ref"] != legal {
				t.Errorf("ref logged as %v, want %q", m["ref"], legal)
			}
		}
	}
	if exchanges != len(refused)+1 {
		t.Errorf("%d exchange lines in %d, want %d", exchanges, lines, len(refused)+1)
	}
}

// TestAttack57NoSecretsAnywhere: after one issuance and failures at several
// stages, with debug logging, no raw token, secret key or session token is
// in the logs, the audit rows or any error body.
func TestAttack57NoSecretsAnywhere(t *testing.T) {
	x := newTracedEnv(t, true)
	ok := x.token(nil)
	r := x.exchange(ok, "")
	if r.status != 200 {
		t.Fatalf("exchange: %d %s", r.status, r.body)
	}
	var resp api.ExchangeResponse
	var creds providers.AWSCredentials
	if err := json.Unmarshal(r.body, &resp); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(resp.Credentials, &creds); err != nil {
		t.Fatal(err)
	}
	secrets := []string{"eyJ", ok, creds.SecretAccessKey, creds.SessionToken, ststest.SecretAccessKey}
	var bodies []string
	fail := func(tok, body string) {
		secrets = append(secrets, tok)
		r := x.exchange(tok, body)
		if r.status == 200 {
			t.Fatalf("expected a failure: %s", r.body)
		}
		bodies = append(bodies, string(r.body))
	}
	sts.Refuse("AccessDenied")
	fail(x.token(nil), "")
	sts.Reset()
	fail(ok, "")                                                           // replayed
	fail(x.token(map[string]any{"ref": "refs/heads/dev"}), "")             // no mapping
	fail(x.token(nil, oidctest.WithUnpublishedKey()), "")                  // bad signature
	fail(x.token(map[string]any{"aud": "sts.amazonaws.com"}), "")          // audience
	fail(x.token(nil), `{"role_arn": "arn:aws:iam::222222222222:role/x"}`) // bad request
	fail(x.token(nil)+"x", "")                                             // malformed
	fail(x.token(nil, oidctest.WithAlg("none")), "")                       // unsigned

	var audit []string
	rows, err := x.pool.Query(context.Background(), `SELECT row_to_json(i)::text FROM audit.issuances i`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		audit = append(audit, s)
	}
	rows.Close()
	if !strings.Contains(strings.Join(audit, "\n"), creds.AccessKeyID) {
		t.Errorf("the audit does not identify the credential %s", creds.AccessKeyID)
	}
	spans, err := json.Marshal(x.spans.GetSpans())
	if err != nil {
		t.Fatal(err)
	}
	for where, text := range map[string]string{
		"spans": string(spans), "logs": x.logs.String(), "audit rows": strings.Join(audit, "\n"), "error bodies": strings.Join(bodies, "\n"),
	} {
		for _, s := range secrets {
			if s != "" && strings.Contains(text, s) {
				t.Errorf("%s hold %.24q…", where, s)
			}
		}
	}
}

// TestAttack40RequestSuppliedTarget: the request cannot name a role,
// service account, client or target, nor stretch the duration: 400
// invalid_request, nothing minted, no credentials.
func TestAttack40RequestSuppliedTarget(t *testing.T) {
	x := newExchangeEnv(t)
	for _, body := range []string{
		`{"target":"aws","role_arn":"arn:aws:iam::222222222222:role/admin","duration_seconds":43200}`,
		`{"role_arn":"arn:aws:iam::222222222222:role/admin"}`,
		`{"target":{"role_arn":"arn:aws:iam::222222222222:role/admin","region":"eu-west-1"}}`,
		`{"service_account":"prod-admin@victim.iam.gserviceaccount.com"}`,
		`{"provider":"azure","client_id":"00000000-0000-0000-0000-000000000000"}`,
		`{"mapping":"web","Role_Arn":"arn:aws:iam::222222222222:role/admin"}`,
		`{"duration_seconds":43200}`,
		`{"duration_seconds":-1}`,
		`{"mapping":"web","mapping":"tags"}`,
	} {
		t.Run(body, func(t *testing.T) {
			x := &exchangeEnv{env: x.env.in(t), gh: x.gh}
			r := x.exchange(x.token(nil), body)
			if r.status != 400 && r.status != 403 {
				t.Fatalf("status %d, want 400 (or 403); body %s", r.status, r.body)
			}
			if strings.Contains(string(r.body), "credentials") || strings.Contains(string(r.body), "222222222222") {
				t.Errorf("answer %s", r.body)
			}
			if n := sts.CallCount(); n != 0 {
				t.Errorf("STS called %d times", n)
			}
		})
	}
	// Only the mapping's role was ever assumed, even when a good request follows.
	if r := x.exchange(x.token(nil), `{"mapping":"web"}`); r.status != 200 {
		t.Fatalf("plain exchange: %d %s", r.status, r.body)
	}
	if c := sts.Calls(); len(c) != 1 || c[0].RoleArn != "arn:aws:iam::123456789012:role/web" {
		t.Fatalf("STS calls %+v", c)
	}
}

// TestAttack29RepositoryNameReuse: a mapping pinned to repository_id and
// repository_owner_id refuses a token for the same name with other ids.
func TestAttack29RepositoryNameReuse(t *testing.T) {
	x := newTracedEnv(t, false)
	x.mapping("app", `"repository": "acme/app", "repository_id": "260064828", "claims": {"repository_owner_id": "1342004"}`, "")
	app := func(over map[string]any) string {
		base := map[string]any{"repository": "acme/app", "repository_id": "260064828", "repository_owner_id": "1342004"}
		for k, v := range over {
			base[k] = v
		}
		return x.token(base)
	}
	for _, tc := range []struct {
		name   string
		over   map[string]any
		reason string
	}{
		{"resurrected repository", map[string]any{"repository_id": "999"}, "repository_id"},
		{"resurrected owner", map[string]any{"repository_owner_id": "999"}, "claims"},
		{"leading zero", map[string]any{"repository_id": "0260064828"}, "repository_id"},
	} {
		r := x.exchange(app(tc.over), `{"mapping": "app"}`)
		x.wantError(r, 403, api.CodeNoMatchingMapping, "")
		for _, l := range x.lines(t, r.header.Get("X-Request-ID")) {
			if l["msg"] != "exchange" {
				continue
			}
			d, _ := l["decisions"].(map[string]any)
			if d["app"] != tc.reason {
				t.Errorf("%s: decision %v, want %s", tc.name, d["app"], tc.reason)
			}
		}
	}
	if r := x.exchange(app(nil), ""); r.status != 200 {
		t.Fatalf("the real repository: %d %s", r.status, r.body)
	}
	want := "denied/no_matching_mapping denied/no_matching_mapping denied/no_matching_mapping issued/"
	if got := strings.Join(x.rows(), " "); got != want {
		t.Fatalf("ledger %s, want %s", got, want)
	}
}

// TestAttack30SubIsNotMatched: the decision uses the discrete claims, never
// sub: a sub naming the victim's repository does not admit another
// repository's token, and an odd (customised) sub does not stop the right one.
func TestAttack30SubIsNotMatched(t *testing.T) {
	x := newExchangeEnv(t)
	x.wantError(x.exchange(x.token(map[string]any{"repository": "acme/api", "repository_id": "7",
		"sub": "repo:acme/web:ref:refs/heads/main"}), ""), 403, api.CodeNoMatchingMapping, "")
	x.wantError(x.exchange(x.token(map[string]any{"repository": "acme/web-123456", "repository_id": "8",
		"sub": "repo:acme/web:ref:refs/heads/main"}), ""), 403, api.CodeNoMatchingMapping, "")
	if r := x.exchange(x.token(map[string]any{"sub": "repo:acme-123456/app-789:ref:refs/heads/main"}), `{"mapping": "web"}`); r.status != 200 {
		t.Fatalf("discrete claims admit regardless of sub: %d %s", r.status, r.body)
	}
}

// TestAttack31CaseAndUnicode: look-alike names are invalid_token (no row);
// a different case with the right ids is issued.
func TestAttack31CaseAndUnicode(t *testing.T) {
	x := newExchangeEnv(t)
	for _, repo := range []string{"\u0430cme/web", "acme/web\u200b", "acme/web ", "acme/w\u0435b", "acme/\uff57eb"} {
		x.wantError(x.exchange(x.token(map[string]any{"repository": repo}), ""), 401, api.CodeInvalidToken, "")
	}
	x.wantError(x.exchange(x.token(map[string]any{"repository_owner": "\u0430cme", "repository": "\u0430cme/web"}), ""), 401, api.CodeInvalidToken, "")
	if len(x.rows()) != 0 || sts.CallCount() != 0 {
		t.Fatalf("look-alike names left rows %v", x.rows())
	}
	for _, over := range []map[string]any{
		{"repository": "ACME/WEB", "repository_owner": "ACME"},
		{"repository": "Acme/Web", "repository_owner": "acme"},
	} {
		if r := x.exchange(x.token(over), ""); r.status != 200 {
			t.Fatalf("%v: %d %s", over, r.status, r.body)
		}
	}
}

// TestAttack37RefTricks: refs that path cleaning would turn into main are
// invalid_token; a ref that merely contains refs/heads/main is 403.
func TestAttack37RefTricks(t *testing.T) {
	x := newExchangeEnv(t)
	for _, ref := range []string{"refs/heads/x/../main", "refs/heads/main/", "refs/heads//main", "refs/heads/main\x00",
		"refs/heads/./main", "refs/heads/%6dain", "refs/heads/main%00"} {
		r := x.exchange(x.token(map[string]any{"ref": ref}), "")
		if ref == "refs/heads/%6dain" || ref == "refs/heads/main%00" {
			// Legal git names: never URL-decoded, so no mapping admits them.
			x.wantError(r, 403, api.CodeNoMatchingMapping, "")
			continue
		}
		x.wantError(r, 401, api.CodeInvalidToken, "")
	}
	x.wantError(x.exchange(x.token(map[string]any{"ref": "refs/heads/x/refs/heads/main"}), ""), 403, api.CodeNoMatchingMapping, "")
	if got := strings.Join(x.rows(), " "); got != "denied/no_matching_mapping denied/no_matching_mapping denied/no_matching_mapping" {
		t.Fatalf("ledger %s", got)
	}
	if sts.CallCount() != 0 {
		t.Fatal("STS called")
	}
}

// TestAttack48UnsignedTokensDoNotChargeQuota: 100 unsigned or forged tokens
// naming the victim's repository and mapping are all 401, write no ledger
// row and leave the mapping's usage untouched: its full quota remains.
func TestAttack48UnsignedTokensDoNotChargeQuota(t *testing.T) {
	x := newExchangeEnv(t)
	usage := func() ledger.Usage {
		var u ledger.Usage
		if err := json.Unmarshal(x.must(200, "GET", "/v1/admin/mappings/web/usage", ""), &u); err != nil {
			t.Fatal(err)
		}
		return u
	}
	before := usage()
	for i := range 100 {
		var tok string
		switch i % 4 {
		case 0:
			tok = x.token(nil, oidctest.WithAlg("none"))
		case 1:
			tok = x.token(nil, oidctest.WithUnpublishedKey())
		case 2:
			tok = x.token(nil, oidctest.WithKid(fmt.Sprintf("random-%d", i)))
		case 3:
			tok = x.token(nil, oidctest.WithAlg("HS256"))
		}
		x.wantError(x.exchange(tok, `{"mapping": "web"}`), 401, api.CodeInvalidToken, "")
	}
	after := usage()
	if after.Issued != before.Issued || len(after.Repositories) != 0 || len(after.Jobs) != 0 {
		t.Fatalf("usage changed: before %+v after %+v", before, after)
	}
	if rows := x.rows(); len(rows) != 0 {
		t.Fatalf("unverified tokens wrote %d ledger rows", len(rows))
	}
	for i := range 3 { // per_hour 3: all of it is still there
		if r := x.exchange(x.token(nil), `{"mapping": "web"}`); r.status != 200 {
			t.Fatalf("genuine exchange %d: %d %s", i, r.status, r.body)
		}
	}
}

// TestLogValuesCapped: token-supplied values in the exchange's log line are
// cut to 256 bytes at a character boundary and flagged (catalogue 56).
func TestLogValuesCapped(t *testing.T) {
	long := strings.Repeat("é", 200) // 400 bytes
	got, cut := bridge.CapLogValueForTest(long)
	if !cut || len(got) > 256 || !utf8.ValidString(got) || !strings.HasPrefix(long, got) {
		t.Fatalf("capped %d bytes, cut=%v, valid=%v", len(got), cut, utf8.ValidString(got))
	}
	if got, cut := bridge.CapLogValueForTest("refs/heads/main"); cut || got != "refs/heads/main" {
		t.Fatalf("a short value changed: %q %v", got, cut)
	}
}
