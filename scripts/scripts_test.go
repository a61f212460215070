// Package scripts holds the tests of the shell scripts beside it.
package scripts

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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

// TestRelease runs scripts/release.sh for this machine's platform only
// (RELEASE_TARGETS; the four targets take minutes) into a temporary folder,
// without the image step: the binary has the release's name, SHA256SUMS
// lists exactly it and verifies with `sha256sum -c`, and the binary
// prints the version it was built as. A version that is not a release tag
// is refused before anything is built.
func TestRelease(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	target := runtime.GOOS + "/" + runtime.GOARCH
	if target != "linux/amd64" && target != "linux/arm64" && target != "darwin/amd64" && target != "darwin/arm64" {
		t.Fatalf("release.sh has no target for this machine (%s)", target)
	}
	release := func(version string) ([]byte, error) {
		cmd := exec.Command("bash", "release.sh", version, out)
		cmd.Env = append(os.Environ(), "RELEASE_TARGETS="+target, "RELEASE_IMAGE=none")
		return cmd.CombinedOutput()
	}
	if b, err := release("v1.2.3-rc.1"); err != nil {
		t.Fatalf("release.sh: %v\n%s", err, b)
	}
	name := "oidc-bridge_v1.2.3-rc.1_" + runtime.GOOS + "_" + runtime.GOARCH
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, " ") != "SHA256SUMS "+name {
		t.Fatalf("release.sh wrote %v, want [SHA256SUMS %s]", got, name)
	}
	sums, err := os.ReadFile(filepath.Join(out, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(string(sums)), "\n"); len(lines) != 1 || !strings.HasSuffix(lines[0], "  "+name) {
		t.Fatalf("SHA256SUMS is %q, want one line for %s", sums, name)
	}
	check := exec.Command("sha256sum", "-c", "SHA256SUMS")
	check.Dir = out
	if b, err := check.CombinedOutput(); err != nil {
		t.Fatalf("sha256sum -c SHA256SUMS: %v\n%s", err, b)
	}
	v, err := exec.Command(filepath.Join(out, name), "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", name, err)
	}
	if strings.TrimSpace(string(v)) != "oidc-bridge v1.2.3-rc.1" {
		t.Fatalf("%s --version printed %q, want \"oidc-bridge v1.2.3-rc.1\"", name, v)
	}
	for _, bad := range []string{"1.2.3", "latest", "v1.2", "v1.2.3;true"} {
		if b, err := release(bad); err == nil || !strings.Contains(string(b), "must be a release tag") {
			t.Errorf("release.sh %q: %v, %s; want a refusal", bad, err, b)
		}
	}
}

// TestEnsureMoto: scripts/ensure-moto.sh prints the path the interpreter
// reports (sys.executable: a pyenv shim's target, not the shim) of the
// first python3 that runs moto; when none does and moto cannot be
// installed, it fails and says what to do. python3 is a stand-in here.
func TestEnsureMoto(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, python, want, wantErr string
	}{
		{"machine's python", "#!/bin/sh\n[ \"$1\" = - ] && [ \"$2\" = 5.2.1 ] && echo /opt/py/bin/python3.11\n", "/opt/py/bin/python3.11", ""},
		{"no moto, no venv", "#!/bin/sh\nexit 1\n", "", "install Python's venv module"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			bin := filepath.Join(dir, "bin")
			if err := os.Mkdir(bin, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(bin, "python3"), []byte(tt.python), 0o755); err != nil { // #nosec G306 -- a stand-in executable
				t.Fatal(err)
			}
			cmd := exec.Command("bash", "ensure-moto.sh")
			cmd.Env = []string{"PATH=" + bin + ":/usr/bin:/bin", "HOME=" + dir, "OIDC_BRIDGE_BUILD_CACHE=" + filepath.Join(dir, "cache")}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			got := strings.TrimSpace(string(out))
			if tt.wantErr == "" {
				if err != nil || got != tt.want {
					t.Fatalf("ensure-moto.sh: %q, %v\n%s", got, err, stderr.String())
				}
				return
			}
			if err == nil || got != "" || !strings.Contains(stderr.String(), tt.wantErr) {
				t.Fatalf("ensure-moto.sh: %q, %v, stderr %s; want a failure saying %q", got, err, stderr.String(), tt.wantErr)
			}
		})
	}
}

// TestEnsureMinIOReusesTheBuild: a MinIO in the build cache whose VERSION
// is the one asked for is printed without a build (GO=false: any build
// attempt fails); one built for another version is rebuilt, and a failed
// build fails the script and leaves the old binary alone.
func TestEnsureMinIOReusesTheBuild(t *testing.T) {
	t.Parallel()
	cache := t.TempDir()
	dir := filepath.Join(cache, "minio-v9.9.9")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "minio")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho minio version v9.9.9\n"), 0o755); err != nil { // #nosec G306 -- a stand-in executable
		t.Fatal(err)
	}
	run := func(version string) (string, error) {
		cmd := exec.Command("bash", "ensure-minio.sh")
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "OIDC_BRIDGE_BUILD_CACHE=" + cache,
			"MINIO_VERSION=" + version, "GO=false"}
		out, err := cmd.Output()
		return strings.TrimSpace(string(out)), err
	}
	if err := os.WriteFile(filepath.Join(dir, "VERSION"), []byte("v9.9.9\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if got, err := run("v9.9.9"); err != nil || got != bin {
			t.Fatalf("ensure-minio.sh printed %q, %v; want %q without a build", got, err, bin)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "VERSION"), []byte("v9.9.8\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := run("v9.9.9"); err == nil {
		t.Fatalf("ensure-minio.sh reused a build of another version: %q", got)
	}
	if b, err := os.ReadFile(bin); err != nil || !strings.Contains(string(b), "v9.9.9") {
		t.Fatalf("a failed build touched the cached binary: %v", err)
	}
}
