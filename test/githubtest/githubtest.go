package githubtest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// TokenTTL is an installation token's life, as GitHub's.
const TokenTTL = time.Hour

// maxJWTLife is GitHub's longest App JWT: exp at most 10 minutes after iat.
const maxJWTLife = 10 * time.Minute

const docs = "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app"

// Server is the fake.
type Server struct {
	srv *httptest.Server

	mu         sync.Mutex
	apps       map[int64]*app
	installs   map[int64]*Installation
	tokens     map[string]*token
	nextID     int64
	rateLimit  time.Duration // > 0: every call answers 403 rate limited
	tokenCalls int
	git        http.Handler // ServeGit
	gitRefused int
}

type app struct {
	keys []*rsa.PublicKey
}

// Installation is an App's installation on an account.
type Installation struct {
	ID    int64
	AppID int64
	Owner string
	Org   bool
	// Permissions are what the installation was granted.
	Permissions map[string]string
	// Repositories are the names (under Owner) it may reach.
	Repositories []string
}

type token struct {
	install     *Installation
	repos       []string
	permissions map[string]string
	expires     time.Time
	revoked     bool
}

// New starts the fake; it stops at the end of the test.
func New(t testing.TB) *Server {
	s := &Server{apps: map[int64]*app{}, installs: map[int64]*Installation{}, tokens: map[string]*token{}, nextID: 1000}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v3/orgs/{owner}/installation", s.findInstallation(true))
	mux.HandleFunc("GET /api/v3/users/{owner}/installation", s.findInstallation(false))
	mux.HandleFunc("POST /api/v3/app/installations/{id}/access_tokens", s.accessToken)
	mux.HandleFunc("GET /api/v3/installation/repositories", s.listRepos)
	mux.HandleFunc("GET /api/v3/repos/{owner}/{repo}", s.getRepo)
	mux.HandleFunc("DELETE /api/v3/installation/token", s.revoke)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if !s.serveGit(w, r) {
			fail(w, http.StatusNotFound, "Not Found")
		}
	})
	s.srv = httptest.NewTLSServer(s.limits(mux))
	t.Cleanup(s.srv.Close)
	return s
}

// BaseURL is the fake's REST API, https://127.0.0.1:PORT/api/v3/: an App's
// base_url.
func (s *Server) BaseURL() string { return s.srv.URL + "/api/v3/" }

// Client is an HTTP client that trusts the fake's certificate.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// WriteCertFile writes the fake's certificate to a test folder, for
// SSL_CERT_FILE of a child process.
func (s *Server) WriteCertFile(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "githubtest.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatalf("githubtest: %v", err)
	}
	return path
}

// AddKey registers pub as a key of App appID (creating the App).
func (s *Server) AddKey(appID int64, pub *rsa.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[appID]
	if a == nil {
		a = &app{}
		s.apps[appID] = a
	}
	a.keys = append(a.keys, pub)
}

// RemoveKey deletes pub from App appID's keys: its JWTs are refused (401).
func (s *Server) RemoveKey(appID int64, pub *rsa.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.apps[appID]; a != nil {
		a.keys = slices.DeleteFunc(a.keys, func(k *rsa.PublicKey) bool { return k.Equal(pub) })
	}
}

// Install installs App appID on owner (an organization when org) with
// permissions and repositories, and returns the installation's id.
func (s *Server) Install(appID int64, owner string, org bool, permissions map[string]string, repositories ...string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	s.installs[s.nextID] = &Installation{ID: s.nextID, AppID: appID, Owner: owner, Org: org,
		Permissions: permissions, Repositories: repositories}
	return s.nextID
}

// RateLimit makes every call answer 403 rate limited, with Retry-After
// wait, until RateLimit(0).
func (s *Server) RateLimit(wait time.Duration) {
	s.mu.Lock()
	s.rateLimit = wait
	s.mu.Unlock()
}

// TokenCalls counts the access-token requests received.
func (s *Server) TokenCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenCalls
}

func (s *Server) limits(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		wait := s.rateLimit
		s.mu.Unlock()
		h := w.Header()
		h.Set("X-RateLimit-Limit", "5000")
		if wait > 0 {
			reset := time.Now().Add(wait)
			h.Set("X-RateLimit-Remaining", "0")
			h.Set("X-RateLimit-Used", "5000")
			h.Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
			h.Set("X-RateLimit-Resource", "core")
			h.Set("Retry-After", strconv.Itoa(int(wait.Seconds())))
			fail(w, http.StatusForbidden, "API rate limit exceeded for installation.")
			return
		}
		h.Set("X-RateLimit-Remaining", "4999")
		h.Set("X-RateLimit-Used", "1")
		h.Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10))
		h.Set("X-RateLimit-Resource", "core")
		next.ServeHTTP(w, r)
	})
}

func fail(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg, "documentation_url": docs, "status": strconv.Itoa(status)})
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func bearer(r *http.Request) string {
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") && !strings.EqualFold(scheme, "token") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// appOf verifies the request's App JWT and returns the App's id.
func (s *Server) appOf(r *http.Request) (int64, string) {
	raw := bearer(r)
	if raw == "" {
		return 0, "A JSON web token could not be decoded"
	}
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil || len(jws.Signatures) != 1 {
		return 0, "A JSON web token could not be decoded"
	}
	var claims struct {
		Iss json.RawMessage `json:"iss"`
		Iat int64           `json:"iat"`
		Exp int64           `json:"exp"`
	}
	if json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &claims) != nil {
		return 0, "A JSON web token could not be decoded"
	}
	var iss string
	if json.Unmarshal(claims.Iss, &iss) != nil {
		iss = string(claims.Iss)
	}
	id, err := strconv.ParseInt(iss, 10, 64)
	if err != nil {
		return 0, "'Issuer' claim ('iss') must be an Integer"
	}
	s.mu.Lock()
	a := s.apps[id]
	var keys []*rsa.PublicKey
	if a != nil {
		keys = slices.Clone(a.keys)
	}
	s.mu.Unlock()
	verified := false
	for _, k := range keys {
		if _, err := jws.Verify(k); err == nil {
			verified = true
			break
		}
	}
	if !verified {
		return 0, "A JSON web token could not be decoded"
	}
	now := time.Now()
	iat, exp := time.Unix(claims.Iat, 0), time.Unix(claims.Exp, 0)
	switch {
	case claims.Iat == 0 || iat.After(now.Add(time.Minute)):
		return 0, "'Issued at' claim ('iat') must be an Integer representing a time in the past"
	case claims.Exp == 0 || !exp.After(now):
		return 0, "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires"
	case exp.Sub(iat) > maxJWTLife:
		return 0, "'Expiration time' claim ('exp') is too far in the future"
	}
	return id, ""
}

func (i *Installation) json() map[string]any {
	typ := "User"
	if i.Org {
		typ = "Organization"
	}
	return map[string]any{"id": i.ID, "app_id": i.AppID, "target_type": typ, "repository_selection": "selected",
		"account": map[string]any{"login": i.Owner, "type": typ}, "permissions": i.Permissions}
}

func (s *Server) findInstallation(org bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, why := s.appOf(r)
		if why != "" {
			fail(w, http.StatusUnauthorized, why)
			return
		}
		owner := r.PathValue("owner")
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, in := range s.installs {
			if in.AppID == id && in.Org == org && strings.EqualFold(in.Owner, owner) {
				reply(w, http.StatusOK, in.json())
				return
			}
		}
		fail(w, http.StatusNotFound, "Not Found")
	}
}

var rank = map[string]int{"read": 1, "write": 2, "admin": 3}

func (s *Server) accessToken(w http.ResponseWriter, r *http.Request) {
	appID, why := s.appOf(r)
	if why != "" {
		fail(w, http.StatusUnauthorized, why)
		return
	}
	var body struct {
		Repositories []string          `json:"repositories"`
		Permissions  map[string]string `json:"permissions"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	if err := dec.Decode(&body); err != nil {
		fail(w, http.StatusBadRequest, "Problems parsing JSON")
		return
	}
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenCalls++
	in := s.installs[id]
	if in == nil || in.AppID != appID {
		fail(w, http.StatusNotFound, "Not Found")
		return
	}
	perms := body.Permissions
	if len(perms) == 0 {
		perms = in.Permissions
	}
	for name, level := range perms {
		if rank[level] == 0 || rank[in.Permissions[name]] < rank[level] {
			fail(w, http.StatusUnprocessableEntity, "The permissions requested are not granted to this installation.")
			return
		}
	}
	repos := body.Repositories
	if len(repos) == 0 {
		repos = in.Repositories
	}
	for _, name := range repos {
		if !slices.ContainsFunc(in.Repositories, func(x string) bool { return strings.EqualFold(x, name) }) {
			fail(w, http.StatusUnprocessableEntity, "There is at least one repository that does not exist or is not accessible to the parent installation.")
			return
		}
	}
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	tok := "ghs_" + hex.EncodeToString(b)
	exp := time.Now().Add(TokenTTL).UTC().Truncate(time.Second)
	s.tokens[tok] = &token{install: in, repos: slices.Clone(repos), permissions: perms, expires: exp}
	out := []map[string]any{}
	for _, name := range repos {
		out = append(out, repoJSON(in.Owner, name))
	}
	reply(w, http.StatusCreated, map[string]any{"token": tok, "expires_at": exp.Format(time.RFC3339),
		"permissions": perms, "repository_selection": "selected", "repositories": out})
}

func repoJSON(owner, name string) map[string]any {
	return map[string]any{"name": name, "full_name": owner + "/" + name, "owner": map[string]any{"login": owner}, "private": true}
}

// tokenOf returns the request's live installation token.
func (s *Server) tokenOf(r *http.Request) *token {
	t := s.tokens[bearer(r)]
	if t == nil || t.revoked || !time.Now().Before(t.expires) {
		return nil
	}
	return t
}

func (s *Server) listRepos(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tokenOf(r)
	if t == nil {
		fail(w, http.StatusUnauthorized, "Bad credentials")
		return
	}
	out := []map[string]any{}
	for _, name := range t.repos {
		out = append(out, repoJSON(t.install.Owner, name))
	}
	reply(w, http.StatusOK, map[string]any{"total_count": len(out), "repositories": out})
}

func (s *Server) getRepo(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tokenOf(r)
	if t == nil {
		fail(w, http.StatusUnauthorized, "Bad credentials")
		return
	}
	owner, name := r.PathValue("owner"), r.PathValue("repo")
	if !strings.EqualFold(owner, t.install.Owner) || !slices.ContainsFunc(t.repos, func(x string) bool { return strings.EqualFold(x, name) }) {
		fail(w, http.StatusNotFound, "Not Found")
		return
	}
	reply(w, http.StatusOK, repoJSON(t.install.Owner, name))
}

func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tokenOf(r)
	if t == nil {
		fail(w, http.StatusUnauthorized, "Bad credentials")
		return
	}
	t.revoked = true
	w.WriteHeader(http.StatusNoContent)
}

// Live reports whether tok is a token the fake issued that is neither
// revoked nor expired.
func (s *Server) Live(tok string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokens[tok] != nil && !s.tokens[tok].revoked && time.Now().Before(s.tokens[tok].expires)
}

// LiveTokens counts the tokens the fake issued that are neither revoked nor
// expired.
func (s *Server) LiveTokens() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, t := range s.tokens {
		if !t.revoked && time.Now().Before(t.expires) {
			n++
		}
	}
	return n
}
