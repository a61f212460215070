package ciclient

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
)

const ghToken = "ghs_16C7e42F292c6912E7710c838347Ae178B4a"

func TestGitCredential(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte(ghToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte(ghToken+"\npassword=other\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"GH_PUSH": ghToken, "EMPTY": ""}
	answer := "username=x-access-token\npassword=" + ghToken + "\n"
	tests := []struct {
		name    string
		o       GitCredentialOptions
		op, in  string
		want    string
		wantErr bool
		usage   bool
	}{
		{"file", GitCredentialOptions{ServerURL: "https://github.com/", TokenFile: file}, "get",
			"protocol=https\nhost=github.com\npath=acme/other.git\n\n", answer, false, false},
		{"env", GitCredentialOptions{ServerURL: "https://github.com/", TokenEnv: "GH_PUSH"}, "get",
			"protocol=https\nhost=github.com\n", answer, false, false},
		{"ghes with port", GitCredentialOptions{ServerURL: "https://ghe.example.com:8443/", TokenEnv: "GH_PUSH"}, "get",
			"protocol=https\nhost=GHE.example.com:8443\n\n", answer, false, false},
		{"another host", GitCredentialOptions{ServerURL: "https://github.com/", TokenFile: file}, "get",
			"protocol=https\nhost=gitlab.com\n\n", "", false, false},
		{"a lookalike host", GitCredentialOptions{ServerURL: "https://github.com/", TokenFile: file}, "get",
			"protocol=https\nhost=github.com.evil.example\n\n", "", false, false},
		{"plain http", GitCredentialOptions{ServerURL: "https://github.com/", TokenFile: file}, "get",
			"protocol=http\nhost=github.com\n\n", "", false, false},
		{"store", GitCredentialOptions{ServerURL: "https://github.com/", TokenFile: file}, "store",
			"protocol=https\nhost=github.com\nusername=x\npassword=y\n\n", "", false, false},
		{"erase", GitCredentialOptions{ServerURL: "https://github.com/", TokenFile: file}, "erase",
			"protocol=https\nhost=github.com\n\n", "", false, false},
		{"a token of two lines", GitCredentialOptions{ServerURL: "https://github.com/", TokenFile: bad}, "get",
			"protocol=https\nhost=github.com\n\n", "", true, false},
		{"an empty variable", GitCredentialOptions{ServerURL: "https://github.com/", TokenEnv: "EMPTY"}, "get",
			"protocol=https\nhost=github.com\n\n", "", true, false},
		{"no token source", GitCredentialOptions{ServerURL: "https://github.com/"}, "get", "", "", true, true},
		{"two token sources", GitCredentialOptions{ServerURL: "https://github.com/", TokenFile: file, TokenEnv: "GH_PUSH"}, "get", "", "", true, true},
		{"no server", GitCredentialOptions{TokenFile: file}, "get", "", "", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			err := GitCredential(env, tt.o, tt.op, strings.NewReader(tt.in), &out)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, want error %v", err, tt.wantErr)
			}
			var ue *UsageError
			if errors.As(err, &ue) != tt.usage {
				t.Errorf("err %v: usage %v, want %v", err, !tt.usage, tt.usage)
			}
			if err != nil && strings.Contains(err.Error(), ghToken) {
				t.Errorf("the error shows the token: %v", err)
			}
			if out.String() != tt.want {
				t.Errorf("answer %q, want %q", out.String(), tt.want)
			}
		})
	}
}

func gitHubAnswer(t *testing.T, serverURL string) *api.ExchangeResponse {
	t.Helper()
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	c, err := json.Marshal(api.GitHubCredentials{Token: ghToken, TokenType: "Bearer", ExpiresAt: exp,
		Repositories: []string{"acme/web", "acme/other"}, Permissions: map[string]string{"contents": "write"},
		APIURL: "https://api.github.com/", ServerURL: serverURL})
	if err != nil {
		t.Fatal(err)
	}
	return &api.ExchangeResponse{IssuanceID: "0193b9e2-0000-7000-8000-000000000000", Mapping: "push", Provider: "github",
		ExpiresAt: exp, Credentials: c}
}

func TestGitHubEnv(t *testing.T) {
	t.Parallel()
	out, err := formatCredentials(FormatEnv, gitHubAnswer(t, "https://github.com/"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, want := range []string{"export GITHUB_TOKEN='" + ghToken + "'\n", "export GH_TOKEN='" + ghToken + "'\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("github.com: no %q in\n%s", want, s)
		}
	}
	if strings.Contains(s, "GH_HOST") || strings.Contains(s, "GH_ENTERPRISE_TOKEN") {
		t.Errorf("github.com: GH_HOST or GH_ENTERPRISE_TOKEN set:\n%s", s)
	}
	out, err = formatCredentials(FormatEnv, gitHubAnswer(t, "https://ghe.example.com/"))
	if err != nil || !strings.Contains(string(out), "export GH_HOST='ghe.example.com'\n") {
		t.Errorf("GHES: %v\n%s", err, out)
	}
	// A token that would break a line, or a server that is not https, is refused.
	for _, creds := range []string{`{"token":"ghs_x\npassword=y"}`, `{"token":"ghs_x","server_url":"http://github.com/"}`, `{}`} {
		r := &api.ExchangeResponse{Provider: "github", Credentials: json.RawMessage(creds)}
		if _, err := formatCredentials(FormatEnv, r); err == nil {
			t.Errorf("credentials %s accepted", creds)
		}
	}
}

func TestGitHelperLines(t *testing.T) {
	t.Parallel()
	temp := t.TempDir()
	c := &Config{env: map[string]string{"RUNNER_TEMP": temp, "GIT_CONFIG_COUNT": "1"}, gitHelper: true, executable: "/opt/oidc bridge/oidc-bridge"}
	out, err := c.gitHelperLines(gitHubAnswer(t, "https://ghe.example.com/"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, ghToken) {
		t.Fatalf("the token is in the export lines:\n%s", out)
	}
	files, _ := filepath.Glob(filepath.Join(temp, "oidc-bridge-git-*", "token"))
	if len(files) != 1 {
		t.Fatalf("token files under RUNNER_TEMP: %v", files)
	}
	fi, err := os.Stat(files[0])
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", fi.Mode(), err)
	}
	if d, _ := os.Stat(filepath.Dir(files[0])); d.Mode().Perm() != 0o700 {
		t.Errorf("token folder mode %v", d.Mode().Perm())
	}
	want := "export GIT_CONFIG_KEY_1='credential.https://ghe.example.com.helper'\nexport GIT_CONFIG_VALUE_1=''\n" +
		"export GIT_CONFIG_KEY_2='credential.https://ghe.example.com.helper'\n" +
		"export GIT_CONFIG_VALUE_2='!'\\''/opt/oidc bridge/oidc-bridge'\\'' git-credential --server-url '\\''https://ghe.example.com/'\\'' --token-file '\\''" + files[0] + "'\\'''\n" +
		"export GIT_CONFIG_COUNT=3\nexport OIDC_BRIDGE_GIT_TOKEN_FILE='" + files[0] + "'\n"
	if out != want {
		t.Errorf("lines:\n%s\nwant:\n%s", out, want)
	}
	aws := gitHubAnswer(t, "")
	aws.Provider = "aws"
	if _, err := c.gitHelperLines(aws); err == nil {
		t.Error("--git-helper accepted an aws answer")
	}
}

func TestGitHelperUsage(t *testing.T) {
	t.Parallel()
	base := Options{BridgeURL: "https://bridge.example.com", TokenEnv: "T", Format: FormatEnv, GitHelper: true, Executable: "/usr/bin/oidc-bridge"}
	env := map[string]string{"T": "a.b.c"}
	c, err := Load(env, base)
	if err != nil || c.req.Provider != "github" {
		t.Fatalf("--git-helper: %v, provider %q; want github", err, c.req.Provider)
	}
	for name, mut := range map[string]func(*Options){
		"json":     func(o *Options) { o.Format = FormatJSON },
		"aws":      func(o *Options) { o.Provider = "aws" },
		"relative": func(o *Options) { o.Executable = "oidc-bridge" },
	} {
		o := base
		mut(&o)
		var ue *UsageError
		if _, err := Load(env, o); !errors.As(err, &ue) {
			t.Errorf("%s: %v, want a usage error", name, err)
		}
	}
}
