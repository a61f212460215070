package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/internal/config"
	"github.com/oidc-bridge/oidc-bridge/signing"
)

// TestHelpListsEveryVariable: the top-level help names every environment
// variable that config.Load reads (from Config's env tags) and the
// clients' pair.
func TestHelpListsEveryVariable(t *testing.T) {
	t.Parallel()
	out, _, err := runCLIWith(t, nil, nil, "", "--help")
	if err != nil {
		t.Fatal(err)
	}
	vars := config.Variables()
	if len(vars) < 20 {
		t.Fatalf("config.Variables() = %d variables", len(vars))
	}
	for _, v := range vars {
		if !strings.Contains(out, "  "+v.Name+"\n") && !strings.Contains(out, "  "+v.Name+" (default "+v.Default+")\n") {
			t.Errorf("help does not list %s (default %q)", v.Name, v.Default)
		}
	}
	for _, v := range []string{envBridgeURL, envAdminToken} {
		if !strings.Contains(out, v) {
			t.Errorf("help does not list %s", v)
		}
	}
}

// TestVersionFlag: --version prints the version set at build time.
func TestVersionFlag(t *testing.T) {
	// Not parallel: it sets the package's version.
	old := version
	version = "v1.2.3-test"
	t.Cleanup(func() { version = old })
	out, _, err := runCLIWith(t, nil, nil, "", "--version")
	if err != nil || out != "oidc-bridge v1.2.3-test\n" {
		t.Errorf("--version: %q, %v", out, err)
	}
}

// TestMessagesWithoutPackagePrefixes: keys rotate --alg with an unknown
// algorithm is a usage error naming the supported ones, before any database
// is opened; and the top level strips the internal package prefixes.
func TestMessagesWithoutPackagePrefixes(t *testing.T) {
	t.Parallel()
	// An unusable database URL: the command must not get that far.
	_, _, err := runCLIWith(t, nil, []string{"BRIDGE_DATABASE_URL=postgres://nobody@127.0.0.1:1/none"}, "", "keys", "rotate", "--alg", "PS256")
	var ue usageError
	if !errors.As(err, &ue) || userMessage(err) != `--alg "PS256" is not supported: use RS256 or ES256` {
		t.Errorf("keys rotate --alg PS256: %v", err)
	}

	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("%w %q: use RS256 or ES256", signing.ErrUnsupportedAlg, "PS256"), `unsupported algorithm "PS256": use RS256 or ES256`},
		{fmt.Errorf("signing: rotate: %w", signing.ErrUnsupportedAlg), "rotate: signing: unsupported algorithm"},
		{errors.New("config: BRIDGE_LOG_LEVEL: \"x\" is not one of debug, info, warn, error\nBRIDGE_RATE_BURST: must be 1 or more"),
			"BRIDGE_LOG_LEVEL: \"x\" is not one of debug, info, warn, error\nBRIDGE_RATE_BURST: must be 1 or more"},
		{errors.New("admintoken: pgcluster: the cluster is gone"), "the cluster is gone"},
		{errors.New("exchange: 403 no_matching_mapping: no"), "exchange: 403 no_matching_mapping: no"},
	} {
		if got := userMessage(tc.err); got != tc.want {
			t.Errorf("userMessage(%q) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
