// Package scripts holds the tests of the shell scripts beside it.
package scripts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestEnsureTofuMovesTheOldBuild: a tofu built into the old shared folder
// ~/.cache/oidc-bridge (which the credential cache once shared) is moved to
// the build cache ~/.cache/oidc-bridge-build, reused there without a build
// (GO=false: any build attempt fails), and the emptied old folder is removed.
func TestEnsureTofuMovesTheOldBuild(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	old := filepath.Join(home, ".cache", "oidc-bridge")
	oldTofu := filepath.Join(old, "tofu-v9.9.9")
	if err := os.MkdirAll(oldTofu, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(oldTofu, "tofu"), []byte("#!/bin/sh\necho OpenTofu v9.9.9\n"), 0o755); err != nil { // #nosec G306 -- a stand-in executable
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(oldTofu, "VERSION"), []byte("v9.9.9\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func() string {
		cmd := exec.Command("bash", "ensure-tofu.sh")
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "TOFU_VERSION=v9.9.9", "GO=false"}
		out, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("ensure-tofu.sh: %v\n%s", err, stderr)
		}
		return strings.TrimSpace(string(out))
	}
	want := filepath.Join(home, ".cache", "oidc-bridge-build", "tofu-v9.9.9", "tofu")
	for range 2 {
		if got := run(); got != want {
			t.Fatalf("ensure-tofu.sh printed %q, want %q", got, want)
		}
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Fatalf("the old shared folder is still there: %v", err)
	}
}
