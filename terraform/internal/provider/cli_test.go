package provider_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/bridge/client"
	"github.com/oidc-bridge/oidc-bridge/mapping"
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

func newTofuEnv(t *testing.T, e *env, providerDir, example string) *tofuEnv {
	t.Helper()
	work := t.TempDir()
	if err := os.CopyFS(work, os.DirFS(filepath.Join("..", "..", "examples", example))); err != nil {
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

// TestTofuCLIExamples applies each example with the real tofu and a built
// provider binary, checks that a second plan finds nothing to change
// (plan -detailed-exitcode exits 0), and destroys it.
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
		{"monorepo", func(t *testing.T, c *client.Client) {
			if _, err := c.CreateIssuer(context.Background(), mapping.Issuer{Name: "github",
				URL: "https://token.actions.githubusercontent.com", Audiences: []string{"https://bridge.example.com"},
				Kind: "github", Enabled: true}); err != nil {
				t.Fatal(err)
			}
		}, 2},
	} {
		t.Run(tc.example, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			if tc.setup != nil {
				tc.setup(t, e.c)
			}
			te := newTofuEnv(t, e, providerDir, tc.example)
			te.run(0, "fmt", "-check", "-diff")
			te.run(0, "validate")
			te.run(0, "apply", "-auto-approve", "-input=false")
			ms, err := e.c.ListMappings(context.Background(), client.ListMappingsOptions{})
			if err != nil || len(ms) != tc.mappings {
				t.Fatalf("after apply: %d mappings, %v; want %d", len(ms), err, tc.mappings)
			}
			if out := te.run(0, "plan", "-detailed-exitcode", "-input=false"); !strings.Contains(out, "No changes") {
				t.Errorf("second plan:\n%s", out)
			}
			te.run(0, "destroy", "-auto-approve", "-input=false")
			ms, err = e.c.ListMappings(context.Background(), client.ListMappingsOptions{})
			if err != nil || len(ms) != 0 {
				t.Errorf("after destroy: %d mappings, %v", len(ms), err)
			}
		})
	}
}
