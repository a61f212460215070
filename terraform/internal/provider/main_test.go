package provider_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"

	"github.com/oidc-bridge/oidc-bridge/bridge/client"
	"github.com/oidc-bridge/oidc-bridge/bridge/client/clienttest"
	"github.com/oidc-bridge/oidc-bridge/terraform/internal/provider"
	"github.com/oidc-bridge/oidc-bridge/test/pgtest"
)

// tofuVersion is the OpenTofu CLI that scripts/ensure-tofu.sh builds.
const tofuVersion = "v1.10.10"

// tofuErr is why the acceptance tests cannot run; they fail with it.
var tofuErr error

// TestMain makes the acceptance tests self-sufficient and hermetic: it
// finds the OpenTofu CLI that `make test` builds (scripts/ensure-tofu.sh)
// in its cache unless TF_ACC_TERRAFORM_PATH names one, turns TF_ACC on, sets
// the provider address that OpenTofu expects of an in-process provider, and
// gives tofu an empty CLI configuration of its own. Without a tofu binary
// the acceptance tests fail (never skip) and say to run `make test`.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "oidcbridge-tf-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tofuErr = setupTofu(dir)
	code := pgtest.Main(m)
	// The CLI configuration's folder goes with the process: tests leave
	// nothing in the system's temporary folder.
	if err := os.RemoveAll(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

// setupTofu prepares the environment of the acceptance tests; dir holds
// tofu's CLI configuration for the length of the process.
func setupTofu(dir string) error {
	cfg := filepath.Join(dir, "tofurc")
	if err := os.WriteFile(cfg, nil, 0o600); err != nil {
		return err
	}
	// A preset TF_CLI_CONFIG_FILE may name a missing file (tofu then
	// fails) or carry provider_installation settings: use our own.
	set := map[string]string{"TF_CLI_CONFIG_FILE": cfg, "TF_ACC": "1", "CHECKPOINT_DISABLE": "1"}
	defaults := map[string]string{
		// Without them the in-process provider's address has namespace
		// "-" and every test fails with `legacy provider namespace "-"`.
		"TF_ACC_PROVIDER_NAMESPACE": "hashicorp",
		"TF_ACC_PROVIDER_HOST":      "registry.opentofu.org",
	}
	tofu := os.Getenv("TF_ACC_TERRAFORM_PATH")
	if tofu == "" {
		tofu = cachedTofu()
	}
	if st, err := os.Stat(tofu); err != nil || st.IsDir() {
		return fmt.Errorf("the OpenTofu CLI was not found at %s: run `make test`, which builds it once "+
			"with scripts/ensure-tofu.sh (about 4 minutes) and caches it, or set TF_ACC_TERRAFORM_PATH", tofu)
	}
	set["TF_ACC_TERRAFORM_PATH"] = tofu
	for k, v := range defaults {
		if os.Getenv(k) == "" {
			set[k] = v
		}
	}
	for k, v := range set {
		os.Setenv(k, v)
	}
	return nil
}

// cachedTofu is where scripts/ensure-tofu.sh keeps the binary: the build
// cache (scripts/build-cache.sh), else the old shared folder that the
// script moves it out of.
func cachedTofu() string {
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, _ := os.UserHomeDir()
		base = filepath.Join(home, ".cache")
	}
	dir := os.Getenv("OIDC_BRIDGE_BUILD_CACHE")
	if dir == "" {
		dir = filepath.Join(base, "oidc-bridge-build")
	}
	bin := filepath.Join(dir, "tofu-"+tofuVersion, "tofu")
	if _, err := os.Stat(bin); err != nil {
		if old := filepath.Join(base, "oidc-bridge", "tofu-"+tofuVersion, "tofu"); fileExists(old) {
			return old
		}
	}
	return bin
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// preCheck fails the test when tofu is missing.
func preCheck(t *testing.T) {
	t.Helper()
	if tofuErr != nil {
		t.Fatal(tofuErr)
	}
}

func factories() map[string]func() (tfprotov6.ProviderServer, error) {
	return map[string]func() (tfprotov6.ProviderServer, error){
		"oidcbridge": providerserver.NewProtocol6WithError(provider.New("test")()),
	}
}

// env is a bridge for one test, with a client on it and the provider
// block that reaches it.
type env struct {
	*clienttest.Bridge
	c *client.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	preCheck(t)
	b := clienttest.New(t)
	return &env{Bridge: b, c: client.New(b.URL, b.Token)}
}

// config prepends the provider block to hcl.
func (e *env) config(hcl string) string {
	return fmt.Sprintf("provider \"oidcbridge\" {\n  endpoint = %q\n  token    = %q\n}\n\n%s", e.URL, e.Token, hcl)
}
