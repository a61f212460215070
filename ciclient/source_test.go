package ciclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/bridge/client"
)

func TestTokenScope(t *testing.T) {
	t.Parallel()
	// iss and sub of a JWT, unverified; anything else by its hash.
	jwt := "eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwczovL2dpdGxhYi5leGFtcGxlIiwic3ViIjoicHJvamVjdF9wYXRoOmEvYiJ9.sig"
	if got := tokenScope(jwt); got != "iss=https://gitlab.example,sub=project_path:a/b" {
		t.Fatalf("jwt scope %q", got)
	}
	if got := tokenScope("opaque"); !strings.HasPrefix(got, "sha256:") {
		t.Fatalf("opaque scope %q", got)
	}
}

// TestNewSource: --token-file, then --token-env, then each CI in cis
// order; nothing found is a usage error naming the flags.
func TestNewSource(t *testing.T) {
	t.Parallel()
	gh := map[string]string{envGitHubReqURL: "https://gh.example/token", envGitHubReqToken: "b", EnvIDToken: "gl"}
	for _, c := range []struct {
		name    string
		env     map[string]string
		o       Options
		want    string // Describe
		wantErr string
		usage   bool
	}{
		{name: "file", env: gh, o: Options{TokenFile: "/f"}, want: "the token file /f"},
		{name: "variable", env: map[string]string{"T": " tok\n"}, o: Options{TokenEnv: "T"}, want: "$T"},
		{name: "github before gitlab", env: gh, want: "GitHub Actions' token request"},
		{name: "github needs both", env: map[string]string{envGitHubReqURL: "u", EnvIDToken: "gl"}, want: "$" + EnvIDToken},
		{name: "gitlab", env: map[string]string{EnvIDToken: "gl"}, want: "$" + EnvIDToken},
		{name: "gitlab blank", env: map[string]string{EnvIDToken: "  "}, wantErr: "$OIDC_BRIDGE_ID_TOKEN is empty or unset"},
		{name: "variable unset", o: Options{TokenEnv: "T"}, wantErr: "$T is empty or unset"},
		{name: "two", o: Options{TokenFile: "f", TokenEnv: "T"}, wantErr: "at most one", usage: true},
		{name: "none", env: map[string]string{"GITLAB_CI": "true"}, wantErr: "no CI token: give --token-file or --token-env", usage: true},
	} {
		s, err := newSource(c.env, c.o)
		var ue *UsageError
		switch {
		case c.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), c.wantErr) || errors.As(err, &ue) != c.usage {
				t.Errorf("%s: %v, want %q (usage %v)", c.name, err, c.wantErr, c.usage)
			}
		case err != nil:
			t.Errorf("%s: %v, want %s", c.name, err, c.want)
		case s.Describe() != c.want:
			t.Errorf("%s: %s, want %s", c.name, s.Describe(), c.want)
		}
	}
}

// TestFileSource: read anew each time (a file the CI refreshes gives fresh
// tokens), trimmed, bounded.
func TestFileSource(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "tok")
	s := &fileSource{path: p}
	for _, tok := range []string{"one", "two"} {
		if err := os.WriteFile(p, []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Token(context.Background(), nil); err != nil || got != tok {
			t.Fatalf("token %q %v, want %q", got, err, tok)
		}
	}
	for content, want := range map[string]string{"\n": "is empty", strings.Repeat("x", maxTokenFile+1): "larger than"} {
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Token(context.Background(), nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%d bytes: %v, want %q", len(content), err, want)
		}
	}
	if s.Static() {
		t.Error("a token file is not static")
	}
}

// TestGitHubSource: GitHub Actions' token request carries the audience and
// the request token; each call is a fresh request; 5xx and 429 may pass,
// other refusals do not.
func TestGitHubSource(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	status := atomic.Int32{}
	status.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		if r.Header.Get("Authorization") != "Bearer req-token" || r.URL.Query().Get("audience") != "https://bridge.example" ||
			r.URL.Query().Get("api-version") != "2.0" {
			http.Error(w, "bad request "+r.URL.String(), http.StatusBadRequest)
			return
		}
		if s := int(status.Load()); s != http.StatusOK {
			w.WriteHeader(s)
			return
		}
		fmt.Fprintf(w, `{"count":1,"value":"jwt-%d"}`, n)
	}))
	t.Cleanup(srv.Close)
	env := map[string]string{envGitHubReqURL: srv.URL + "/token?api-version=2.0", envGitHubReqToken: "req-token"}
	s, err := newSource(env, Options{Audience: "https://bridge.example"})
	if err != nil {
		t.Fatal(err)
	}
	hc := client.NoRedirects(srv.Client())
	for _, want := range []string{"jwt-1", "jwt-2"} {
		if got, err := s.Token(context.Background(), hc); err != nil || got != want {
			t.Fatalf("token %q %v, want %q", got, err, want)
		}
	}
	for code, transient := range map[int]bool{http.StatusServiceUnavailable: true, http.StatusTooManyRequests: true, http.StatusForbidden: false} {
		status.Store(int32(code))
		_, err := s.Token(context.Background(), hc)
		var te *client.TransientError
		if err == nil || errors.As(err, &te) != transient || !strings.Contains(err.Error(), "id-token: write") {
			t.Errorf("%d: %v, want transient %v", code, err, transient)
		}
	}
	if s.Static() || strings.Contains(s.Scope(), "req-token") {
		t.Errorf("static %v, scope %q", s.Static(), s.Scope())
	}
}
