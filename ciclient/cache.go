package ciclient

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
)

const (
	cacheVersion = 1
	lockWait     = 2 * time.Minute
)

// jobTempDirs: the per-job temporary folders of the CIs that delete them
// when the job ends, whoever runs next on the runner. Only these hold the
// cache by default: on shared runners jobs of other projects run as the same
// OS user, so file modes do not keep a lasting folder private.
//
// Left out on purpose: GitLab (RUNNER_TEMP_PROJECT_DIR is per project, kept
// for the project's next job; CI_PROJECT_DIR is the checkout, kept by the
// fetch strategy), Jenkins (WORKSPACE_TMP is workspace@tmp, kept between
// builds unless a cleanup step deletes it), Buildkite and CircleCI (no such
// folder), and $HOME/.cache or $XDG_CACHE_HOME.
var jobTempDirs = []struct{ ci, variable string }{
	{"GitHub Actions", "RUNNER_TEMP"},          // emptied at the start and end of each job
	{"Azure Pipelines", "AGENT_TEMPDIRECTORY"}, // cleaned after each pipeline job
}

// jobTempCacheDir is the default cache folder: oidc-bridge in the CI's
// per-job temporary folder, "" (no cache) when none is known.
func jobTempCacheDir(env map[string]string) string {
	for _, d := range jobTempDirs {
		if t := env[d.variable]; t != "" && filepath.IsAbs(t) {
			return filepath.Join(t, "oidc-bridge")
		}
	}
	return ""
}

// credCache keeps the last credentials per bridge, mapping and job, one
// JSON file each (0600) in a directory only the user may enter (0700).
type credCache struct{ dir string }

type cacheEntry struct {
	Version  int                  `json:"version"`
	Bridge   string               `json:"bridge"`
	Mapping  string               `json:"mapping"`
	TokenID  string               `json:"token_id"` // the CI token exchanged, as the ledger names it
	StoredAt time.Time            `json:"stored_at"`
	Response api.ExchangeResponse `json:"response"`
}

func openCredCache(dir string) (*credCache, error) {
	if !filepath.IsAbs(dir) {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, err
		}
		dir = abs
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() {
		return nil, fmt.Errorf("%s belongs to another user", dir)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s may be read by other users (mode %v); chmod 700 it", dir, fi.Mode().Perm())
	}
	return &credCache{dir: dir}, nil
}

func (c *credCache) key(base, mapping, provider, scope string) string {
	sum := sha256.Sum256([]byte(strings.Join([]string{"v1", base, mapping, provider, scope}, "\x00")))
	return hex.EncodeToString(sum[:16])
}

// narrowing is what of req narrows its credentials, for the cache key: a
// credential narrowed by a session policy or scopes is never reused for
// another request, nor a wider one for it. "" when req narrows nothing, so
// that such keys stay what they were.
func narrowing(req api.ExchangeRequest) string {
	if req.InlinePolicy == "" && len(req.Scopes) == 0 {
		return ""
	}
	return "\x00policy=" + req.InlinePolicy + "\x00scopes=" + strings.Join(req.Scopes, " ")
}

// lock serializes the processes that would exchange for one key, so that
// concurrent SDK calls exchange once.
func (c *credCache) lock(ctx context.Context, key string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(c.dir, key+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("exchange: credential cache: %w", err)
	}
	deadline := time.Now().Add(lockWait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("exchange: lock the credential cache: %w", err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, errors.New("exchange: another oidc-bridge exchange holds the credential cache's lock")
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// load returns the entry for key if it answers req; nil otherwise.
func (c *credCache) load(key, base string, req api.ExchangeRequest) *cacheEntry {
	p := filepath.Join(c.dir, key+".json")
	fi, err := os.Lstat(p)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o077 != 0 {
		return nil
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil
	}
	var e cacheEntry
	if json.Unmarshal(b, &e) != nil || e.Version != cacheVersion || e.Bridge != base || e.Mapping != req.Mapping ||
		(req.Provider != "" && e.Response.Provider != req.Provider) || len(e.Response.Credentials) == 0 {
		return nil
	}
	return &e
}

func (c *credCache) store(key string, e *cacheEntry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return writePrivateFile(filepath.Join(c.dir, key+".json"), b)
}

// writePrivateFile replaces name atomically with a 0600 file holding b.
func writePrivateFile(name string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(name), ".oidc-bridge-*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}
