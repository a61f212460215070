package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// binary is the oidc-bridge binary built for this test process, and
// clusterRoot the folder it keeps, as root, the embedded clusters of data
// folders the postgres user cannot reach (instead of /var/lib/oidc-bridge).
var binary, clusterRoot string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "oidc-bridge-demo-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "oidc-bridge")
	clusterRoot = filepath.Join(dir, "clusters")
	code := func() int {
		// The postgres user must reach clusterRoot when the tests run as root.
		if err := os.Chmod(dir, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		build := exec.Command("go", "build", "-o", binary, "-ldflags", "-X main.clusterRoot="+clusterRoot,
			"github.com/oidc-bridge/oidc-bridge/cmd/oidc-bridge")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build oidc-bridge:", err)
			return 1
		}
		return m.Run()
	}()
	if err := os.RemoveAll(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

// TestDemo runs `make demo`'s program against the real binary: it must show
// an issued exchange (a non-secret part of the credentials), a refusal with
// the explainer's reason, and the audit rows of both, and leave nothing
// behind: its temporary folder, the embedded cluster (stopped with the
// service) and, as root from a folder the postgres user cannot reach, the
// cluster's folder outside it.
func TestDemo(t *testing.T) {
	cases := []struct {
		name      string
		reachable bool
	}{
		{"reachable temporary folder", true},
	}
	if os.Geteuid() == 0 {
		// As root, the cluster runs as postgres; a temporary folder under a
		// 0700 folder (a TMPDIR or checkout under /root) is out of its
		// reach, so the binary keeps the cluster in clusterRoot.
		cases = append(cases, struct {
			name      string
			reachable bool
		}{"temporary folder under a 0700 folder, as root", false})
	}
	for _, tc := range cases {
		// One at a time: each checks that clusterRoot is left empty.
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			if tc.reachable {
				for _, d := range []string{filepath.Dir(root), root} {
					if err := os.Chmod(d, 0o755); err != nil {
						t.Fatal(err)
					}
				}
			} else if err := os.Chmod(root, 0o700); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			var out bytes.Buffer
			began := time.Now()
			err := run(ctx, options{bin: binary, out: &out, tempRoot: root})
			took := time.Since(began)
			text := out.String()
			if err != nil {
				t.Fatalf("demo: %v\n%s", err, text)
			}
			t.Logf("the demo took %s", took.Round(100*time.Millisecond))

			for _, want := range []*regexp.Regexp{
				// The issued exchange and its credentials' non-secret parts.
				regexp.MustCompile(`issued: issuance_id [0-9a-f-]{36}, mapping web-prod, provider aws`),
				regexp.MustCompile(`access_key_id (ASIA[A-Z0-9]{16}), region eu-west-1, expires 20\d\d-`),
				// The refusal, with the reason, and the explainer's account.
				regexp.MustCompile(`403 no_matching_mapping: mapping "web-prod" does not admit this token \(repository\)`),
				regexp.MustCompile(`decision: no_matching_mapping`),
				regexp.MustCompile(`FAIL\s+repository\s+wants acme/web\s+token has "acme/other"`),
				// Why the insecure switch is on.
				regexp.MustCompile(`BRIDGE_ALLOW_INSECURE_ISSUERS=true because the demo issuer serves plain http on 127\.0\.0\.1`),
				// The audit rows: the issuance and the refusal.
				regexp.MustCompile(`(?m)^\s+\S+Z\s+issued\s+web-prod\s+acme/web\s+refs/heads/main\s+ASIA[A-Z0-9]{16}\s`),
				regexp.MustCompile(`(?m)^\s+\S+Z\s+denied\s+no_matching_mapping\s+.*acme/other\s+refs/heads/main`),
			} {
				if !want.MatchString(text) {
					t.Errorf("the output lacks %s:\n%s", want, text)
				}
			}
			// The access key id shown is the one recorded.
			if m := regexp.MustCompile(`access_key_id (ASIA[A-Z0-9]{16})`).FindStringSubmatch(text); m != nil &&
				strings.Count(text, m[1]) < 2 {
				t.Errorf("the audit rows do not show the issued key %s:\n%s", m[1], text)
			}
			// Never a secret: no admin token, no secret key or session token.
			for _, secret := range []string{"obat_", "secret_access_key\"", "session_token\"", "eyJ"} {
				if strings.Contains(text, secret) {
					t.Errorf("the output contains %q:\n%s", secret, text)
				}
			}
			if !tc.reachable && !strings.Contains(text, "the postgres user cannot reach the temporary folder") {
				t.Errorf("the output does not say the cluster is kept elsewhere:\n%s", text)
			}

			// Nothing left behind.
			left, err := os.ReadDir(root)
			if err != nil {
				t.Fatal(err)
			}
			if len(left) != 0 {
				t.Errorf("the demo left %d entries in its temporary root (%s)", len(left), left[0].Name())
			}
			if clusters, err := os.ReadDir(clusterRoot); err == nil && len(clusters) != 0 {
				t.Errorf("the demo left a cluster folder in %s: %s", clusterRoot, clusters[0].Name())
			} else if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
		})
	}
}
