package ciclient

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/oidc-bridge/oidc-bridge/"

// serverOnly are the modules that only the server may link: a pipeline's
// client that links them carries the server's code and its attack surface.
var serverOnly = []string{"github.com/jackc/pgx", "github.com/coreos/go-oidc"}

// linkDebt are the client-side packages that still link serverOnly code,
// each with the reason and the change that removes it. The walk below does
// not enter them; the test fails when one no longer needs its place here.
var linkDebt = map[string]string{
	module + "bridge/api": "aliases mapping.Issuer, mapping.Mapping, mapping.Warning and ledger.Usage " +
		"(issue 18 item 3 makes them wire structs)",
	module + "bridge/client": "its admin calls take mapping.Issuer and mapping.Mapping (issue 18 item 3)",
	module + "providers": "holds the credential bodies and TokenID beside identity.Claims " +
		"(issue 18 item 3 moves the bodies to bridge/api)",
}

// TestClientLinksNoServer: this package (the client every CI job runs)
// links neither Postgres nor go-oidc, except through the packages of
// linkDebt, which issue 18 item 3 cleans; then this test asks that they
// leave the list, and the check covers them too.
func TestClientLinksNoServer(t *testing.T) {
	t.Parallel()
	imports := importGraph(t, ".")
	self := module + "ciclient"
	if _, ok := imports[self]; !ok {
		t.Fatalf("go list -deps names no %s", self)
	}
	if path := serverPath(imports, self, linkDebt); path != nil {
		t.Errorf("%s links server-only code: %s", self, strings.Join(path, " → "))
	}
	for pkg, why := range linkDebt {
		if _, ok := imports[pkg]; !ok {
			t.Errorf("%s is in linkDebt but %s does not import it: remove it from the list", pkg, self)
			continue
		}
		if serverPath(imports, pkg, nil) == nil {
			t.Errorf("%s no longer links %v (it %s): remove it from linkDebt", pkg, serverOnly, why)
		}
	}
}

// importGraph is `go list -deps pattern`: each package and its imports.
func importGraph(t *testing.T, pattern string) map[string][]string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list the dependencies: %v", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", pattern).Output() // #nosec G204 -- fixed arguments
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pattern, err)
	}
	imports := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		imports[f[0]] = f[1:]
	}
	return imports
}

// serverPath is an import path from pkg to a serverOnly package that passes
// through none of skip, or nil.
func serverPath(imports map[string][]string, pkg string, skip map[string]string) []string {
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
			if _, debt := skip[q]; debt {
				continue
			}
			from[q] = p
			queue = append(queue, q)
		}
	}
	return nil
}
