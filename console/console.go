package console

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/identity"
	"github.com/oidc-bridge/oidc-bridge/internal/admintoken"
	"github.com/oidc-bridge/oidc-bridge/ledger"
	"github.com/oidc-bridge/oidc-bridge/mapping"
)

// Ledger is what the console reads of the issuance ledger (*ledger.Ledger).
type Ledger interface {
	Search(ctx context.Context, s ledger.Search) ([]ledger.Record, error)
	EachRecord(ctx context.Context, s ledger.Search, fn func(ledger.Record) error) error
	Record(ctx context.Context, id string) (ledger.Record, error)
	Outcomes24h(ctx context.Context, now time.Time) (map[int64]*ledger.HourlyOutcomes, error)
	HourUsage(ctx context.Context, now time.Time) (map[int64]ledger.HourUse, error)
}

// Catalog is what the console reads of issuers and mappings (a
// mapping.Store).
type Catalog interface {
	ListIssuers(ctx context.Context) ([]mapping.Issuer, error)
	ListMappings(ctx context.Context, f mapping.Filter) ([]mapping.Mapping, error)
}

// Explainer is the bridge's policy explainer (*bridge.Server).
type Explainer interface {
	Explain(ctx context.Context, req api.ExplainRequest) (api.ExplainResponse, error)
	ExplainClaims(ctx context.Context, claims *identity.Claims, req api.ExplainRequest) (api.ExplainResponse, error)
}

// Tokens checks admin tokens by fingerprint (*admintoken.Store).
type Tokens interface {
	Check(ctx context.Context, f admintoken.Fingerprint) (admintoken.Principal, error)
}

// Options are the console's dependencies.
type Options struct {
	Ledger    Ledger
	Catalog   Catalog
	Explainer Explainer
	Tokens    Tokens
	// ErrorBody says an explainer's error to a person (bridge.ErrorBody).
	ErrorBody func(error) api.Error
	// SecureCookie marks the session cookie Secure even on a plain HTTP
	// request (TLS ends at a load balancer: BRIDGE_PUBLIC_URL is https).
	// A request that arrives over TLS always gets a Secure cookie.
	SecureCookie bool
	// SessionTTL is a session's lifetime (DefaultSessionTTL when 0).
	SessionTTL time.Duration
	Logger     *slog.Logger
	// Now is the clock (time.Now when nil), for tests.
	Now func() time.Time
}

// Console is the console's http.Handler.
type Console struct {
	opts     Options
	log      *slog.Logger
	mux      *http.ServeMux
	pages    map[string]*template.Template
	sessions *sessions
	failures failures
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// contentSecurityPolicy allows the console's own stylesheet and images and
// nothing else: no script of any kind, no frames of it, forms posting only
// to itself.
const contentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'"

// New returns the console.
func New(opts Options) *Console {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = DefaultSessionTTL
	}
	if opts.ErrorBody == nil {
		opts.ErrorBody = func(error) api.Error {
			return api.Error{Error: api.CodeInternal, Message: "internal error; the server log has the detail"}
		}
	}
	c := &Console{opts: opts, log: opts.Logger, mux: http.NewServeMux(), pages: parsePages(), sessions: newSessions()}
	static, _ := fs.Sub(staticFS, "static")
	c.mux.Handle("GET "+Path+"/static/", http.StripPrefix(Path+"/static/", http.FileServerFS(static)))
	c.mux.HandleFunc("GET "+Path+"/signin", c.signInPage)
	c.mux.HandleFunc("POST "+Path+"/signin", c.signIn)
	c.mux.HandleFunc("POST "+Path+"/signout", c.signOut)
	c.mux.Handle("GET "+Path+"/{$}", c.auth(func(w http.ResponseWriter, r *http.Request, _ *view) {
		http.Redirect(w, r, Path+"/denials", http.StatusSeeOther)
	}))
	c.mux.Handle("GET "+Path+"/denials", c.auth(c.denials))
	c.mux.Handle("GET "+Path+"/denials/{id}", c.auth(c.denial))
	c.mux.Handle("GET "+Path+"/issuances", c.auth(c.issuances))
	c.mux.Handle("GET "+Path+"/issuances.csv", c.auth(c.issuancesCSV))
	c.mux.Handle("GET "+Path+"/mappings", c.auth(c.mappings))
	c.mux.Handle("GET "+Path+"/explain", c.auth(c.explainPage))
	c.mux.Handle("POST "+Path+"/explain", c.auth(c.explain))
	return c
}

// Path is where the console lives (bridge.ConsolePath).
const Path = "/console"

// ServeHTTP sets the console's security headers on every answer and
// routes.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin") // no-referrer would make browsers send "Origin: null" on our own POSTs
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	if !strings.HasPrefix(r.URL.Path, Path+"/static/") {
		h.Set("Cache-Control", "no-store")
	}
	if r.URL.Path == Path {
		http.Redirect(w, r, Path+"/", http.StatusSeeOther)
		return
	}
	c.mux.ServeHTTP(w, r)
}

// view is what every page's template sees.
type view struct {
	Title   string
	Nav     string
	User    string
	Error   string
	Notice  string
	Data    any
	Request *http.Request
}

type handler func(w http.ResponseWriter, r *http.Request, v *view)

// auth admits a request with a live session whose admin token still holds
// the read scope; any other is sent to sign in (a session whose token was
// revoked or expired is ended first).
func (c *Console) auth(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := ""
		if ck, err := r.Cookie(CookieName); err == nil {
			id = ck.Value
		}
		s, ok := c.sessions.get(id, c.opts.Now())
		if !ok {
			c.toSignIn(w, r, "")
			return
		}
		p, err := c.opts.Tokens.Check(r.Context(), s.fingerprint)
		switch {
		case errors.Is(err, admintoken.ErrUnauthorized) || (err == nil && !p.Can(admintoken.ScopeRead)):
			c.sessions.end(id)
			c.clearCookie(w, r)
			c.toSignIn(w, r, "Your admin token was revoked, expired or lost its read scope: the session has ended.")
			return
		case err != nil:
			c.log.Error("console: check session token", "err", err)
			c.fail(w, r, http.StatusServiceUnavailable, "The database is unavailable; try again later.")
			return
		}
		h(w, r, &view{User: p.Name, Request: r})
	})
}

func (c *Console) toSignIn(w http.ResponseWriter, r *http.Request, notice string) {
	q := url.Values{}
	if r.Method == http.MethodGet && r.URL.Path != Path+"/" {
		q.Set("next", r.URL.RequestURI())
	}
	if notice != "" {
		q.Set("ended", "1")
	}
	target := Path + "/signin"
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// safeNext is next when it is a path of the console, else the denials page:
// the sign-in form never sends anyone elsewhere.
func safeNext(next string) string {
	u, err := url.Parse(next)
	if err != nil || u.IsAbs() || u.Host != "" || u.Opaque != "" || !strings.HasPrefix(u.Path, Path+"/") ||
		strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return Path + "/denials"
	}
	return u.RequestURI()
}

func (c *Console) signInPage(w http.ResponseWriter, r *http.Request) {
	v := &view{Title: "Sign in", Request: r, Data: safeNext(r.URL.Query().Get("next"))}
	if r.URL.Query().Get("ended") != "" {
		v.Notice = "Your session ended: its admin token was revoked, expired or lost its read scope. Sign in again."
	}
	c.render(w, r, http.StatusOK, "signin", v)
}

// sameOrigin is the console's CSRF check of a POST. Its cookie is
// SameSite=Strict, so a browser sends it with no request another site
// starts; besides, a POST must come from the console's own origin
// (Origin, or Sec-Fetch-Site where a browser sends no Origin). Both POSTs
// only read (sign-in opens a session of the submitted token; explain
// evaluates), so a forged one could at worst sign a person in with the
// attacker's token, which these checks refuse too.
func sameOrigin(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		return err == nil && u.Host == r.Host && (u.Scheme == "http" || u.Scheme == "https")
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
		return true
	}
	return false
}

func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		c.fail(w, r, http.StatusForbidden, "This form must be sent from the console's own pages.")
		return
	}
	client := clientOf(r)
	next := safeNext(r.PostFormValue("next"))
	v := &view{Title: "Sign in", Request: r, Data: next}
	if c.failures.blocked(client) {
		v.Error = "Too many failed sign-ins from this address; wait a minute and try again."
		c.render(w, r, http.StatusTooManyRequests, "signin", v)
		return
	}
	token := strings.TrimSpace(r.PostFormValue("token"))
	var (
		p   admintoken.Principal
		err = admintoken.ErrUnauthorized
	)
	fp := admintoken.FingerprintOf(token)
	if token != "" && len(token) <= 512 {
		p, err = c.opts.Tokens.Check(r.Context(), fp)
	}
	switch {
	case errors.Is(err, admintoken.ErrUnauthorized):
		c.failures.failed(client)
		v.Error = "That is not a valid admin token (or it was revoked or has expired)."
		c.render(w, r, http.StatusUnauthorized, "signin", v)
		return
	case err != nil:
		c.log.Error("console: sign in", "err", err)
		v.Error = "The database is unavailable; try again later."
		c.render(w, r, http.StatusServiceUnavailable, "signin", v)
		return
	case !p.Can(admintoken.ScopeRead):
		v.Error = "This admin token lacks the read scope the console needs."
		c.render(w, r, http.StatusForbidden, "signin", v)
		return
	}
	now := c.opts.Now()
	id := c.sessions.open(session{name: p.Name, fingerprint: fp, expires: now.Add(c.opts.SessionTTL)}, now)
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: id, Path: Path, HttpOnly: true,
		Secure: c.secure(r), SameSite: http.SameSiteStrictMode, MaxAge: int(c.opts.SessionTTL / time.Second)})
	c.log.Info("console: signed in", "admin", p.Name, "client_ip", client)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (c *Console) signOut(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		c.fail(w, r, http.StatusForbidden, "This form must be sent from the console's own pages.")
		return
	}
	if ck, err := r.Cookie(CookieName); err == nil {
		c.sessions.end(ck.Value)
	}
	c.clearCookie(w, r)
	http.Redirect(w, r, Path+"/signin", http.StatusSeeOther)
}

func (c *Console) secure(r *http.Request) bool { return r.TLS != nil || c.opts.SecureCookie }

func (c *Console) clearCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: Path, HttpOnly: true,
		Secure: c.secure(r), SameSite: http.SameSiteStrictMode, MaxAge: -1})
}

// fail answers a page saying msg.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	c.render(w, r, status, "error", &view{Title: http.StatusText(status), Error: msg, Request: r})
}

// render executes page into a buffer first, so that a template error
// answers 500 instead of half a page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, page string, v *view) {
	var b bytes.Buffer
	if err := c.pages[page].ExecuteTemplate(&b, "layout", v); err != nil {
		c.log.Error("console: render", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b.Bytes())
	}
}
