package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

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
