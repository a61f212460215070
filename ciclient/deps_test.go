package ciclient

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/oidc-bridge/oidc-bridge/"

// serverOnly are the modules that only the server may link: a client that
// links them carries the server's code and its attack surface.
var serverOnly = []string{"github.com/jackc/pgx", "github.com/coreos/go-oidc"}

// clientSide are the packages that users run against the bridge: the
// client every CI job runs (this package), the Terraform provider, and the
// wire contract and typed client they share. They know the bridge through
// its HTTP API only (ARCHITECTURE.md).
var clientSide = []string{module + "ciclient/...", module + "terraform/...", module + "bridge/api/...", module + "bridge/client"}

// TestClientLinksNoServer: no client-side package links Postgres or
// go-oidc. `make lint` runs it too.
func TestClientLinksNoServer(t *testing.T) {
	t.Parallel()
	imports := importGraph(t, clientSide...)
	roots := goList(t, clientSide...)
	for _, want := range []string{module + "ciclient", module + "terraform", module + "bridge/api", module + "bridge/client"} {
		if !slices.Contains(roots, want) {
			t.Fatalf("go list %v names no %s", clientSide, want)
		}
	}
	for _, pkg := range roots {
		if path := serverPath(imports, pkg); path != nil {
			t.Errorf("%s links server-only code: %s", pkg, strings.Join(path, " → "))
		}
	}
}

// goList runs `go list args...` and returns its lines.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list the dependencies: %v", err)
	}
	out, err := exec.Command(goTool, append([]string{"list"}, args...)...).Output() // #nosec G204 -- fixed arguments
	if err != nil {
		t.Fatalf("go list %v: %v", args, err)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// importGraph is `go list -deps patterns...`: each package and its imports.
func importGraph(t *testing.T, patterns ...string) map[string][]string {
	t.Helper()
	lines := goList(t, append([]string{"-deps", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}"}, patterns...)...)
	imports := map[string][]string{}
	for _, line := range lines {
		f := strings.Fields(line)
		imports[f[0]] = f[1:]
	}
	return imports
}

// serverPath is an import path from pkg to a serverOnly package, or nil.
func serverPath(imports map[string][]string, pkg string) []string {
	from := map[string]string{pkg: ""}
	queue := []string{pkg}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if slices.ContainsFunc(serverOnly, func(m string) bool { return p == m || strings.HasPrefix(p, m+"/") }) {
			var path []string
			for ; p != ""; p = from[p] {
				path = append([]string{p}, path...)
			}
			return path
		}
		for _, q := range imports[p] {
			if _, seen := from[q]; seen {
				continue
			}
			from[q] = p
			queue = append(queue, q)
		}
	}
	return nil
}
