package ciclient

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/bridge/client"
)

// The user name git sends with an installation token (any name works;
// GitHub documents this one).
const gitUsername = "x-access-token"

// EnvGitTokenFile names the token file that exchange --git-helper writes,
// for a later revoke or cleanup.
const EnvGitTokenFile = "OIDC_BRIDGE_GIT_TOKEN_FILE"

// gitHelperLines are the export lines of --git-helper: the github token in a
// 0600 file of a private folder (in the CI's per-job temporary folder when
// there is one), and git configured through GIT_CONFIG_COUNT/KEY/VALUE (the
// shell's environment; no file of git's is written) to ask `exe
// git-credential` for the server's URL only, after an empty helper that
// clears whatever helpers other configuration lists for that URL.
func (c *Config) gitHelperLines(resp *api.ExchangeResponse) (string, error) {
	if resp.Provider != "github" {
		return "", fmt.Errorf("exchange: --git-helper is for mappings of provider github; mapping %q issues %s credentials",
			resp.Mapping, client.Printable(resp.Provider))
	}
	creds, err := gitHubCredentials(resp)
	if err != nil {
		return "", err
	}
	server := strings.TrimRight(creds.ServerURL, "/")
	if server == "" {
		server = "https://github.com"
	}
	n := 0
	if v := strings.TrimSpace(c.env["GIT_CONFIG_COUNT"]); v != "" {
		if n, err = strconv.Atoi(v); err != nil || n < 0 || n > 1000 {
			return "", fmt.Errorf("exchange: --git-helper: GIT_CONFIG_COUNT is %q, not a count", client.Printable(v))
		}
	}
	parent := jobTempParent(c.env)
	dir, err := os.MkdirTemp(parent, "oidc-bridge-git-")
	if err != nil {
		return "", fmt.Errorf("exchange: --git-helper: %w", err)
	}
	file := filepath.Join(dir, "token")
	if err := writePrivateFile(file, []byte(creds.Token+"\n")); err != nil {
		return "", fmt.Errorf("exchange: --git-helper: %w", err)
	}
	helper := "!" + shellQuote(c.executable) + " git-credential --server-url " + shellQuote(server+"/") + " --token-file " + shellQuote(file)
	key := "credential." + server + ".helper"
	var b strings.Builder
	fmt.Fprintf(&b, "export GIT_CONFIG_KEY_%d=%s\nexport GIT_CONFIG_VALUE_%d=''\n", n, shellQuote(key), n)
	fmt.Fprintf(&b, "export GIT_CONFIG_KEY_%d=%s\nexport GIT_CONFIG_VALUE_%d=%s\n", n+1, shellQuote(key), n+1, shellQuote(helper))
	fmt.Fprintf(&b, "export GIT_CONFIG_COUNT=%d\n", n+2)
	fmt.Fprintf(&b, "export %s=%s\n", EnvGitTokenFile, shellQuote(file))
	return b.String(), nil
}

// jobTempParent is where --git-helper makes its folder: the CI's per-job
// temporary folder, else $TMPDIR, else the system's.
func jobTempParent(env map[string]string) string {
	for _, d := range jobTempDirs {
		if t := env[d.variable]; t != "" && filepath.IsAbs(t) {
			return t
		}
	}
	if t := env["TMPDIR"]; t != "" && filepath.IsAbs(t) {
		return t
	}
	return os.TempDir()
}

// GitCredentialOptions configure the git credential helper.
type GitCredentialOptions struct {
	// ServerURL is the git host the helper answers for (https://github.com/
	// or a GitHub Enterprise Server's URL); other hosts get no answer.
	ServerURL string
	// TokenFile or TokenEnv holds the installation token (one of them).
	TokenFile, TokenEnv string
}

// maxGitRequest bounds what the helper reads of git's request.
const maxGitRequest = 64 << 10

// GitCredential is a git credential helper (gitcredentials(7)): for `get`
// it reads git's attributes from in and, when protocol and host are
// o.ServerURL's, writes username=x-access-token and password=<token> to
// out; for another host it writes nothing, so git asks its other helpers.
// store and erase are ignored (the token is the bridge's to end: revoke). The
// token is never in an error: git shows helpers' stderr.
func GitCredential(env map[string]string, o GitCredentialOptions, op string, in io.Reader, out io.Writer) error {
	u, err := url.Parse(o.ServerURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return usage(fmt.Errorf("--server-url %q: give the git host's URL, e.g. https://github.com/", o.ServerURL))
	}
	if (o.TokenFile == "") == (o.TokenEnv == "") {
		return usage(errors.New("give exactly one of --token-file and --token-env"))
	}
	attrs := map[string]string{}
	sc := bufio.NewScanner(io.LimitReader(in, maxGitRequest))
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			break
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			attrs[k] = v
		}
	}
	if op != "get" {
		return nil
	}
	if attrs["protocol"] != u.Scheme || !strings.EqualFold(attrs["host"], u.Host) {
		return nil
	}
	var token string
	if o.TokenFile != "" {
		b, err := os.ReadFile(o.TokenFile)
		if err != nil {
			return fmt.Errorf("git-credential: read the token file: %w", err)
		}
		token = strings.TrimRight(string(b), "\r\n")
	} else {
		token = env[o.TokenEnv]
	}
	if !bearerToken(token) {
		return fmt.Errorf("git-credential: no token in %s (empty, or not one line of a token's characters)", tokenPlace(o))
	}
	_, err = fmt.Fprintf(out, "username=%s\npassword=%s\n", gitUsername, token)
	return err
}

func tokenPlace(o GitCredentialOptions) string {
	if o.TokenFile != "" {
		return "the token file " + o.TokenFile
	}
	return "$" + o.TokenEnv
}

// RevokeOptions configure a revocation at a job's end.
type RevokeOptions struct {
	BridgeURL string
	// TokenFile or TokenEnv holds the credential to hand back; neither:
	// $GITHUB_TOKEN.
	TokenFile, TokenEnv string
	// CacheDir is the exchange's credential cache, whose entries holding the
	// token are dropped ("" : the CI's per-job default, if any).
	CacheDir string
}

// Revoke hands the token back at the bridge's POST /v1/credentials/revoke
// (client.RevokeCredential, without an admin token: holding the token is the
// authorization), then drops it from the credential cache so that a later
// exchange does not answer a dead token.
func Revoke(ctx context.Context, env map[string]string, o RevokeOptions, hc *http.Client) (api.RevokeCredentialResponse, error) {
	var none api.RevokeCredentialResponse
	if o.BridgeURL == "" {
		return none, usage(fmt.Errorf("the bridge's URL is required: --bridge-url or %s", EnvBridgeURL))
	}
	u, err := client.CheckEndpoint(o.BridgeURL)
	if err != nil {
		return none, usage(err)
	}
	if o.TokenFile != "" && o.TokenEnv != "" {
		return none, usage(errors.New("give at most one of --token-file and --token-env"))
	}
	g := GitCredentialOptions{TokenFile: o.TokenFile, TokenEnv: o.TokenEnv}
	if g.TokenFile == "" && g.TokenEnv == "" {
		g.TokenEnv = "GITHUB_TOKEN"
	}
	token := env[g.TokenEnv]
	if g.TokenFile != "" {
		b, err := os.ReadFile(g.TokenFile)
		if err != nil {
			return none, fmt.Errorf("revoke: read the token file: %w", err)
		}
		token = strings.TrimRight(string(b), "\r\n")
	}
	if !bearerToken(token) {
		return none, fmt.Errorf("revoke: no token in %s (empty, or not one line of a token's characters)", tokenPlace(g))
	}
	c := client.New(strings.TrimRight(u.String(), "/"), "", client.WithHTTPClient(hc), client.WithUserAgent("oidc-bridge-cli revoke"))
	resp, err := c.RevokeCredential(ctx, token)
	if err != nil {
		if client.IsNotFound(err) {
			return none, fmt.Errorf("revoke: the bridge issued no credential with the token in %s (it revokes only the credentials it issued): %w", tokenPlace(g), err)
		}
		return none, fmt.Errorf("revoke: %w", err)
	}
	dir := o.CacheDir
	if dir == "" {
		dir = env[EnvCacheDir]
	}
	if dir == "" {
		dir = jobTempCacheDir(env)
	}
	if dir != "" {
		dropCachedToken(dir, token)
	}
	return resp, nil
}

// dropCachedToken removes the cache entries whose github credentials are
// token; a cache it cannot read is left as it is.
func dropCachedToken(dir, token string) {
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var e cacheEntry
		var g api.GitHubCredentials
		if json.Unmarshal(b, &e) != nil || e.Response.Provider != "github" || json.Unmarshal(e.Response.Credentials, &g) != nil {
			continue
		}
		if g.Token == token {
			_ = os.Remove(f)
		}
	}
}
