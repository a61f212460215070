package githubtest

import (
	"net/http"
	"slices"
	"strings"
	"time"
)

// ServeGit makes the fake a git host as well, on its own address as GitHub
// Enterprise Server serves git beside /api/v3/: a request for
// /{owner}/{repo}.git/... is authorized as GitHub authorizes git over HTTPS
// with an installation token (HTTP Basic, any user name, the token as
// password), then handed to backend (e.g. git-http-backend run by
// net/http/cgi, its project root holding {owner}/{repo}.git). The token must
// be one the fake issued, neither revoked nor expired (else 401), and the
// repository within its scope with contents: read to fetch, contents: write
// to push (else 403, or 404 outside its repositories, as GitHub answers).
func (s *Server) ServeGit(backend http.Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.git = backend
}

// GitRefusals counts the git requests refused for their token.
func (s *Server) GitRefusals() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gitRefused
}

// serveGit answers a git request when ServeGit was called and the path is a
// repository's; it reports whether it did.
func (s *Server) serveGit(w http.ResponseWriter, r *http.Request) bool {
	owner, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	repo, _, ok := strings.Cut(rest, ".git/")
	if !ok || owner == "" || repo == "" || strings.Contains(repo, "/") {
		return false
	}
	s.mu.Lock()
	backend := s.git
	if backend == nil {
		s.mu.Unlock()
		return false
	}
	need := "read"
	if r.URL.Query().Get("service") == "git-receive-pack" || strings.HasSuffix(r.URL.Path, "/git-receive-pack") {
		need = "write"
	}
	status, why := 0, ""
	_, pass, _ := r.BasicAuth()
	t := s.tokens[pass]
	switch {
	case pass == "" || t == nil || t.revoked || !time.Now().Before(t.expires):
		status, why = http.StatusUnauthorized, "Invalid username or token."
	case !strings.EqualFold(owner, t.install.Owner) || !slices.ContainsFunc(t.repos, func(x string) bool { return strings.EqualFold(x, repo) }):
		status, why = http.StatusNotFound, "Repository not found."
	case rank[t.permissions["contents"]] < rank[need]:
		status, why = http.StatusForbidden, "Permission to "+owner+"/"+repo+".git denied to the installation."
	}
	if status != 0 {
		s.gitRefused++
	}
	s.mu.Unlock()
	if status != 0 {
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Basic realm="GitHub"`)
		}
		http.Error(w, why, status)
		return true
	}
	backend.ServeHTTP(w, r)
	return true
}
