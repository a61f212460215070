package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// buildCacheDir runs scripts/build-cache.sh (where ensure-tofu.sh and
// ensure-promtool.sh keep their builds) with env.
func buildCacheDir(t *testing.T, env map[string]string) (string, error) {
	t.Helper()
	cmd := exec.Command("bash", filepath.Join("..", "..", "scripts", "build-cache.sh"))
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
		creds := []string{env[envCacheDir], jobTempCacheDir(env)}
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

// TestExchangeCacheBesideOldBuildCache: a machine with the old shared
// ~/.cache/oidc-bridge (0755, holding a tofu build) keeps the CLI's
// credential cache working: the cache lives in the job's folder (0700) and
// nothing is written to the old folder, which keeps its mode.
func TestExchangeCacheBesideOldBuildCache(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	home, runner := filepath.Join(root, "home"), filepath.Join(root, "runner")
	old := filepath.Join(home, ".cache", "oidc-bridge")
	if err := os.MkdirAll(filepath.Join(old, "tofu-v1.10.10"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(old, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(old, "tofu-v1.10.10", "tofu"), []byte("#!/bin/sh\n"), 0o755); err != nil { // #nosec G306 -- a stand-in executable
		t.Fatal(err)
	}
	if err := os.Mkdir(runner, 0o700); err != nil {
		t.Fatal(err)
	}
	tf := filepath.Join(root, "tok")
	if err := os.WriteFile(tf, []byte("tok-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFakeExchangeBridge(t, time.Hour)
	env := []string{"HOME=" + home, "RUNNER_TEMP=" + runner, "GITHUB_RUN_ID=7"}
	for range 2 {
		_, errOut, err := runExchangeCLI(t, env, "--bridge-url", f.srv.URL, "--token-file", tf, "--mapping", "web",
			"--format", "aws-credential-process")
		if err != nil || strings.Contains(errOut, "cache") {
			t.Fatalf("exchange: %v\n%s", err, errOut)
		}
	}
	if n := f.calls.Load(); n != 1 {
		t.Fatalf("%d exchanges, want 1 (the second from the cache)", n)
	}
	entries, _ := filepath.Glob(filepath.Join(runner, "oidc-bridge", "*.json"))
	if len(entries) != 1 {
		t.Fatalf("cache entries %v", entries)
	}
	if got := filesUnder(t, old); len(got) != 2 {
		t.Fatalf("the old folder changed: %v", got)
	}
	if fi, err := os.Stat(old); err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("old folder: %v %v", fi.Mode(), err)
	}
}
