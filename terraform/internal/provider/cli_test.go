package provider_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/bridge/client"
)

// buildProvider builds the provider binary once per test binary, as a
// release would (terraform/main.go), into a fresh folder.
func buildProvider(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "terraform-provider-oidcbridge")
	cmd := exec.Command("go", "build", "-ldflags", "-X main.version=0.0.0-test", "-o", bin,
		"github.com/oidc-bridge/oidc-bridge/terraform")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build the provider: %v\n%s", err, out)
	}
	return dir
}

// tofuEnv runs the real tofu as an admin would: the provider found through
// dev_overrides (no registry, no `tofu init`, which fails with
// dev_overrides), the bridge's endpoint and token from the environment.
type tofuEnv struct {
	t    *testing.T
	dir  string
	env  []string
	tofu string
}

func newTofuEnv(t *testing.T, e *env, providerDir, src string) *tofuEnv {
	t.Helper()
	work := t.TempDir()
	if err := os.CopyFS(work, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	rc := filepath.Join(t.TempDir(), "tofurc")
	cfg := fmt.Sprintf(`provider_installation {
  dev_overrides {
    "registry.opentofu.org/oidc-bridge/oidcbridge" = %q
    "registry.terraform.io/oidc-bridge/oidcbridge" = %q
  }
}
`, providerDir, providerDir)
	if err := os.WriteFile(rc, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var envv []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "TF_") || strings.HasPrefix(k, "OIDC_BRIDGE_") {
			continue
		}
		envv = append(envv, kv)
	}
	envv = append(envv, "TF_CLI_CONFIG_FILE="+rc, "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1",
		"OIDC_BRIDGE_URL="+e.URL, "OIDC_BRIDGE_ADMIN_TOKEN="+e.Token)
	return &tofuEnv{t: t, dir: work, env: envv, tofu: os.Getenv("TF_ACC_TERRAFORM_PATH")}
}

// run runs tofu with args, requires exit code wantCode and returns the
// output.
func (te *tofuEnv) run(wantCode int, args ...string) string {
	te.t.Helper()
	cmd := exec.Command(te.tofu, append(args, "-no-color")...)
	cmd.Dir, cmd.Env = te.dir, te.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		te.t.Fatalf("tofu %s: %v", args[0], err)
	}
	if code != wantCode {
		te.t.Fatalf("tofu %s: exit %d, want %d\n%s", strings.Join(args, " "), code, wantCode, out.String())
	}
	return out.String()
}

// githubIssuer registers the issuer that the examples reading it by name
// (monorepo, many-repositories) expect to exist.
func githubIssuer(t *testing.T, c *client.Client) {
	if _, err := c.CreateIssuer(context.Background(), api.Issuer{Name: "github",
		URL: "https://token.actions.githubusercontent.com", Audiences: []string{"https://bridge.example.com"},
		Kind: "github", Enabled: true}); err != nil {
		t.Fatal(err)
	}
}

// noWarnings fails when tofu's output shows a diagnostic warning other
// than the one dev_overrides always draw: the examples are lint-clean (the
// provider reports the bridge's lint findings as plan warnings).
func noWarnings(t *testing.T, step, out string) {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if title, ok := strings.CutPrefix(strings.TrimSpace(line), "Warning:"); ok &&
			strings.TrimSpace(title) != "Provider development overrides are in effect" {
			t.Errorf("tofu %s warned:\n%s", step, out)
			return
		}
	}
}

// docExample writes the first terraform block of the provider's docs
// (docs/index.md, its "Example Usage") into a folder of its own.
func docExample(t *testing.T) string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "index.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```terraform\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("docs/index.md has no terraform block")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestTofuCLIExamples applies each example (and the docs' Example Usage)
// with the real tofu and a built provider binary, checks that no step warns (the examples are lint-clean),
// that a second plan finds nothing to change (plan -detailed-exitcode exits
// 0), and destroys it.
func TestTofuCLIExamples(t *testing.T) {
	preCheck(t)
	providerDir := buildProvider(t)
	for _, tc := range []struct {
		example  string
		setup    func(*testing.T, *client.Client)
		mappings int
	}{
		{"github-org", nil, 4},
		{"gitlab-group", nil, 2},
		{"monorepo", githubIssuer, 2},
		{"many-repositories", githubIssuer, 4},
		{"docs-index", nil, 1},
	} {
		t.Run(tc.example, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			if tc.setup != nil {
				tc.setup(t, e.c)
			}
			src := filepath.Join("..", "..", "examples", tc.example)
			if tc.example == "docs-index" {
				src = docExample(t)
			}
			te := newTofuEnv(t, e, providerDir, src)
			te.run(0, "fmt", "-check", "-diff")
			noWarnings(t, "validate", te.run(0, "validate"))
			noWarnings(t, "apply", te.run(0, "apply", "-auto-approve", "-input=false"))
			ms, err := e.c.ListMappings(context.Background(), client.ListMappingsOptions{})
			if err != nil || len(ms) != tc.mappings {
				t.Fatalf("after apply: %d mappings, %v; want %d", len(ms), err, tc.mappings)
			}
			for _, m := range ms {
				if len(m.Warnings) != 0 {
					t.Errorf("mapping %s: lint warnings %+v", m.Name, m.Warnings)
				}
			}
			out := te.run(0, "plan", "-detailed-exitcode", "-input=false")
			if !strings.Contains(out, "No changes") {
				t.Errorf("second plan:\n%s", out)
			}
			noWarnings(t, "plan", out)
			te.run(0, "destroy", "-auto-approve", "-input=false")
			ms, err = e.c.ListMappings(context.Background(), client.ListMappingsOptions{})
			if err != nil || len(ms) != 0 {
				t.Errorf("after destroy: %d mappings, %v", len(ms), err)
			}
		})
	}
}

// installMirror runs scripts/install-terraform-provider.sh (what `make
// terraform-provider` runs) into mirror and returns the provider version.
func installMirror(t *testing.T, mirror string) string {
	t.Helper()
	const version = "0.1.0"
	cmd := exec.Command("bash", filepath.Join("..", "..", "..", "scripts", "install-terraform-provider.sh"))
	cmd.Env = append(os.Environ(), "TF_PROVIDER_MIRROR="+mirror, "TF_PROVIDER_VERSION="+version)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("install-terraform-provider.sh: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "filesystem_mirror") {
		t.Errorf("install-terraform-provider.sh prints no CLI configuration:\n%s", out)
	}
	return version
}

// offlineEnv is the environment of a tofu that must not reach the network:
// no TF_ or OIDC_BRIDGE_ variables, a HOME of its own, and a proxy on a
// closed port, so that any registry request fails.
func offlineEnv(home string, extra ...string) []string {
	var envv []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "TF_"), strings.HasPrefix(k, "OIDC_BRIDGE_"), strings.HasSuffix(strings.ToUpper(k), "_PROXY"),
			k == "HOME", strings.HasPrefix(k, "XDG_"):
			continue
		}
		envv = append(envv, kv)
	}
	envv = append(envv, "HOME="+home, "CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1",
		"HTTPS_PROXY=http://127.0.0.1:9", "HTTP_PROXY=http://127.0.0.1:9", "NO_PROXY=")
	return append(envv, extra...)
}

// TestTofuInitFromMirror: the provider installed as `make terraform-provider`
// installs it (the registry layout under registry.terraform.io and
// registry.opentofu.org) lets the real tofu init and validate every example
// offline: through the documented provider_installation block with a
// filesystem_mirror, and through the default mirror ~/.terraform.d/plugins
// with no CLI configuration at all.
func TestTofuInitFromMirror(t *testing.T) {
	preCheck(t)
	tofu := os.Getenv("TF_ACC_TERRAFORM_PATH")
	mirror := t.TempDir()
	version := installMirror(t, mirror)
	for _, host := range []string{"registry.terraform.io", "registry.opentofu.org"} {
		bin := filepath.Join(mirror, host, "oidc-bridge", "oidcbridge", version, runtime.GOOS+"_"+runtime.GOARCH,
			"terraform-provider-oidcbridge_v"+version)
		if st, err := os.Stat(bin); err != nil || st.Mode().Perm()&0o100 == 0 {
			t.Fatalf("%s: %v", bin, err)
		}
	}
	rc := filepath.Join(t.TempDir(), "tofurc")
	cfg := fmt.Sprintf(`provider_installation {
  filesystem_mirror {
    path    = %q
    include = ["registry.terraform.io/oidc-bridge/*", "registry.opentofu.org/oidc-bridge/*"]
  }
  direct {
    exclude = ["registry.terraform.io/oidc-bridge/*", "registry.opentofu.org/oidc-bridge/*"]
  }
}
`, mirror)
	if err := os.WriteFile(rc, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// The default mirror: a HOME whose ~/.terraform.d/plugins holds the
	// provider, and an empty CLI configuration.
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".terraform.d"), 0o700); err != nil {
		t.Fatal(err)
	}
	installMirror(t, filepath.Join(home, ".terraform.d", "plugins"))
	empty := filepath.Join(t.TempDir(), "empty.tofurc")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	examples, err := filepath.Glob(filepath.Join("..", "..", "examples", "*", "main.tf"))
	if err != nil || len(examples) < 4 {
		t.Fatalf("examples %v %v", examples, err)
	}
	for _, how := range []struct {
		name string
		env  []string
	}{
		{"filesystem_mirror", offlineEnv(t.TempDir(), "TF_CLI_CONFIG_FILE="+rc)},
		{"default mirror", offlineEnv(home, "TF_CLI_CONFIG_FILE="+empty)},
	} {
		for _, ex := range examples {
			name := filepath.Base(filepath.Dir(ex))
			t.Run(how.name+"/"+name, func(t *testing.T) {
				work := t.TempDir()
				if err := os.CopyFS(work, os.DirFS(filepath.Dir(ex))); err != nil {
					t.Fatal(err)
				}
				te := &tofuEnv{t: t, dir: work, env: how.env, tofu: tofu}
				out := te.run(0, "init", "-input=false")
				if !strings.Contains(out, "Installed oidc-bridge/oidcbridge v"+version) {
					t.Errorf("init:\n%s", out)
				}
				lock, err := os.ReadFile(filepath.Join(work, ".terraform.lock.hcl"))
				if err != nil || !strings.Contains(string(lock), `provider "registry.opentofu.org/oidc-bridge/oidcbridge"`) ||
					!strings.Contains(string(lock), `version = "`+version+`"`) {
					t.Errorf("lock file: %v\n%s", err, lock)
				}
				noWarnings(t, "validate", te.run(0, "validate"))
			})
		}
	}
}
