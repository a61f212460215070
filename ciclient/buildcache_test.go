package ciclient

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// buildCacheDir runs scripts/build-cache.sh (where ensure-tofu.sh and
// ensure-promtool.sh keep their builds) with env.
func buildCacheDir(t *testing.T, env map[string]string) (string, error) {
	t.Helper()
	cmd := exec.Command("bash", filepath.Join("..", "scripts", "build-cache.sh"))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.Output()
	return strings.TrimSpace(string(out)), err
}

// within reports whether p is dir or inside it.
func within(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// TestBuildCacheIsNoCredentialCache: the folder of the test tool builds
// (tofu, promtool: 0755) is never the credential cache's folder, nor inside
// it or around it, whatever the CI's folders; even XDG_CACHE_HOME set to the
// job's temporary folder (where the old shared ~/.cache/oidc-bridge scheme
// landed on $RUNNER_TEMP/oidc-bridge, the CLI's default). A build cache
// asked for in a credential cache's folder is refused.
func TestBuildCacheIsNoCredentialCache(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	home, runner, agent := filepath.Join(root, "home"), filepath.Join(root, "runner"), filepath.Join(root, "agent")
	for _, env := range []map[string]string{
		{"HOME": home},
		{"HOME": home, "RUNNER_TEMP": runner},
		{"HOME": home, "AGENT_TEMPDIRECTORY": agent},
		{"HOME": home, "RUNNER_TEMP": runner, "XDG_CACHE_HOME": runner},
		{"HOME": home, "AGENT_TEMPDIRECTORY": agent, "XDG_CACHE_HOME": agent},
		{"HOME": home, "OIDC_BRIDGE_CACHE_DIR": filepath.Join(home, ".cache", "oidc-bridge")},
	} {
		build, err := buildCacheDir(t, env)
		if err != nil || !filepath.IsAbs(build) {
			t.Fatalf("%v: build cache %q, %v", env, build, err)
		}
		creds := []string{env[EnvCacheDir], jobTempCacheDir(env)}
		for _, c := range creds {
			if c != "" && (within(build, c) || within(c, build)) {
				t.Errorf("%v: build cache %s and credential cache %s overlap", env, build, c)
			}
		}
		if !strings.HasSuffix(build, "oidc-bridge-build") {
			t.Errorf("%v: build cache %s", env, build)
		}
	}
	for _, env := range []map[string]string{
		{"HOME": home, "RUNNER_TEMP": runner, "OIDC_BRIDGE_BUILD_CACHE": filepath.Join(runner, "oidc-bridge")},
		{"HOME": home, "OIDC_BRIDGE_CACHE_DIR": filepath.Join(root, "c"), "OIDC_BRIDGE_BUILD_CACHE": filepath.Join(root, "c")},
	} {
		if build, err := buildCacheDir(t, env); err == nil {
			t.Errorf("%v: build cache %s accepted", env, build)
		}
	}
}
