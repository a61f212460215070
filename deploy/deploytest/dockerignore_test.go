package deploytest

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

const repoRoot = "../.."

// dockerContext is the .dockerignore read as Docker's builder reads it
// (moby/patternmatcher, the library BuildKit and the Docker CLI use).
func dockerContext(t *testing.T) *patternmatcher.PatternMatcher {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	return pm
}

// excluded reports whether the builder leaves path (slash-separated,
// relative to the context) out of the build context.
func excluded(t *testing.T, pm *patternmatcher.PatternMatcher, path string) bool {
	t.Helper()
	// The builder walks the tree and matches each entry against the
	// patterns with its parents' results; MatchesOrParentMatches is that
	// walk's answer for one path.
	ex, err := pm.MatchesOrParentMatches(filepath.FromSlash(path))
	if err != nil {
		t.Fatal(err)
	}
	return ex
}

// TestDockerContext: the Dockerfile's `COPY . .` copies the build context,
// so the context must hold every file the build compiles and none of the
// state, secrets or history kept beside the code (a .oidc-bridge folder at
// any depth holds a key-encryption key and a whole database).
func TestDockerContext(t *testing.T) {
	pm := dockerContext(t)

	t.Run("build inputs are in", func(t *testing.T) {
		// Every file of the module that `go build ./cmd/oidc-bridge` reads.
		cmd := exec.Command("go", "list", "-deps", "-json=Dir,Module,GoFiles,CgoFiles,EmbedFiles", "./cmd/oidc-bridge")
		cmd.Dir = repoRoot
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list: %v", err)
		}
		root, err := filepath.Abs(repoRoot)
		if err != nil {
			t.Fatal(err)
		}
		need := []string{"go.mod", "go.sum"}
		dec := json.NewDecoder(strings.NewReader(string(out)))
		for {
			var p struct {
				Dir                           string
				Module                        *struct{ Path string }
				GoFiles, CgoFiles, EmbedFiles []string
			}
			if err := dec.Decode(&p); err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			if p.Module == nil || p.Module.Path != "github.com/oidc-bridge/oidc-bridge" {
				continue
			}
			rel, err := filepath.Rel(root, p.Dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, files := range [][]string{p.GoFiles, p.CgoFiles, p.EmbedFiles} {
				for _, f := range files {
					need = append(need, filepath.ToSlash(filepath.Join(rel, f)))
				}
			}
		}
		if len(need) < 20 {
			t.Fatalf("go list found only %d files to build: %v", len(need), need)
		}
		for _, f := range need {
			if excluded(t, pm, f) {
				t.Errorf("%s is needed by the build but .dockerignore leaves it out of the context", f)
			}
		}
	})

	t.Run("state and secrets are out", func(t *testing.T) {
		for _, path := range []string{
			".oidc-bridge/key-encryption-key",
			".oidc-bridge/postgres/pgdata/PG_VERSION",
			"test/e2e/.oidc-bridge/key-encryption-key",
			"internal/pgcluster/.oidc-bridge/key-encryption-key",
			"cmd/oidc-bridge/.oidc-bridge/postgres/pgdata/global/pg_control",
			".git/config",
			"bin/oidc-bridge",
			"actions/credentials/node_modules/undici/index.js",
			".env",
			"kek.b64",
			"terraform/terraform.tfstate",
			"bridge/exchange_test.go",
			"identity/testdata/github.jwt",
		} {
			if !excluded(t, pm, path) {
				t.Errorf("%s would be copied into the build stage", path)
			}
		}
	})
}
