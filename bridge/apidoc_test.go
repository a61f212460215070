package bridge_test

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/labstack/echo/v4"

	"github.com/oidc-bridge/oidc-bridge/bridge"
)

// apiDoc is the API reference the tests below keep true.
const apiDoc = "../docs/api.md"

// docSection returns the lines of the "## title" section of a markdown
// document, up to the next "## " heading.
func docSection(t *testing.T, doc, title string) []string {
	t.Helper()
	var (
		out []string
		in  bool
	)
	for line := range strings.Lines(doc) {
		line = strings.TrimRight(line, "\n")
		if strings.HasPrefix(line, "## ") {
			in = strings.TrimSpace(strings.TrimPrefix(line, "## ")) == title
			continue
		}
		if in {
			out = append(out, line)
		}
	}
	if out == nil {
		t.Fatalf("%s has no section %q", apiDoc, "## "+title)
	}
	return out
}

var (
	// routeCell is a route as the docs write it: `POST /v1/exchange`.
	routeCell = regexp.MustCompile("`(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) (/[^` ]*)`")
	// pathParam is a documented path parameter, {name}; echo writes :name.
	pathParam = regexp.MustCompile(`\{([a-z_]+)\}`)
	// codeRow is a row of the error code table: | `code` | status | when |.
	codeRow = regexp.MustCompile("^\\| `([a-z_]+)` \\| ([0-9]{3}) \\|")
)

// documentedRoutes parses docs/api.md: the rows of its Routes table (each
// beginning with `METHOD /path`) and the routes named in its headings,
// both as "METHOD /path" with echo's :param syntax.
func documentedRoutes(t *testing.T, doc string) (table, headings []string) {
	t.Helper()
	for _, line := range docSection(t, doc, "Routes") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		m := routeCell.FindStringSubmatch(strings.SplitN(line, "|", 3)[1])
		if m == nil {
			t.Fatalf("Routes table row does not start with `METHOD /path`: %s", line)
		}
		table = append(table, m[1]+" "+pathParam.ReplaceAllString(m[2], ":$1"))
	}
	for line := range strings.Lines(doc) {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		for _, m := range routeCell.FindAllStringSubmatch(line, -1) {
			headings = append(headings, m[1]+" "+pathParam.ReplaceAllString(m[2], ":$1"))
		}
	}
	return table, headings
}

// keySource serves an empty key set: with it the server also registers the
// bridge's issuer routes.
type keySource struct{}

func (keySource) JWKS(context.Context) (jose.JSONWebKeySet, error) { return jose.JSONWebKeySet{}, nil }

// servedRoutes are the routes of a server with every optional route on.
func servedRoutes(t *testing.T) []string {
	t.Helper()
	srv := bridge.New(bridge.Options{Keys: keySource{}, PublicURL: "https://bridge.example.com"})
	e, ok := srv.Handler().(*echo.Echo)
	if !ok {
		t.Fatalf("Handler() is %T, not *echo.Echo", srv.Handler())
	}
	var out []string
	for _, r := range e.Routes() {
		if r.Method == echo.RouteNotFound {
			continue // the admin group's catch-all, which answers 401/404
		}
		out = append(out, r.Method+" "+r.Path)
	}
	if len(out) == 0 {
		t.Fatal("the server registers no routes")
	}
	return out
}

// TestAPIDocRoutes: docs/api.md's Routes table lists exactly the routes the
// service serves (with every optional route on), each once, and each has a
// section whose heading names it, and no heading names a route the table
// lacks.
func TestAPIDocRoutes(t *testing.T) {
	b, err := os.ReadFile(apiDoc)
	if err != nil {
		t.Fatal(err)
	}
	table, headings := documentedRoutes(t, string(b))
	served := servedRoutes(t)
	if len(table) < len(served)/2 {
		t.Fatalf("the Routes table parsed to %d routes: %v", len(table), table)
	}
	seen := map[string]bool{}
	for _, r := range table {
		if seen[r] {
			t.Errorf("%s: route %s is in the Routes table twice", apiDoc, r)
		}
		seen[r] = true
		if !slices.Contains(served, r) {
			t.Errorf("%s documents %s, which the service does not serve", apiDoc, r)
		}
		if !slices.Contains(headings, r) {
			t.Errorf("%s: route %s has no section (a heading naming `%s`)", apiDoc, r, r)
		}
	}
	for _, r := range served {
		if !seen[r] {
			t.Errorf("the service serves %s, which %s's Routes table does not document", r, apiDoc)
		}
	}
	for _, r := range headings {
		if !seen[r] {
			t.Errorf("%s has a section for %s, which its Routes table lacks", apiDoc, r)
		}
	}
}

// apiCodes are the error code constants of package bridge/api (Code* =
// "..."), read from its source so that a new constant needs no change here.
func apiCodes(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob("api/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("bridge/api sources: %v %v", files, err)
	}
	codes := map[string]string{}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if !strings.HasPrefix(name.Name, "Code") || i >= len(vs.Values) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						t.Fatalf("%s: %s is not a string literal", f, name.Name)
					}
					v, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatal(err)
					}
					codes[v] = name.Name
				}
			}
		}
	}
	return codes
}

// TestAPIDocErrorCodes: docs/api.md's Error codes table lists exactly the
// error codes of bridge/api, each once with an HTTP status.
func TestAPIDocErrorCodes(t *testing.T) {
	b, err := os.ReadFile(apiDoc)
	if err != nil {
		t.Fatal(err)
	}
	codes := apiCodes(t)
	if len(codes) < 10 {
		t.Fatalf("bridge/api parsed to %d codes: %v", len(codes), codes)
	}
	documented := map[string]bool{}
	for _, line := range docSection(t, string(b), "Error codes") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		m := codeRow.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("%s: Error codes row is not | `code` | status | when |: %s", apiDoc, line)
			continue
		}
		code, status := m[1], m[2]
		if documented[code] {
			t.Errorf("%s: %s is in the Error codes table twice", apiDoc, code)
		}
		documented[code] = true
		if _, ok := codes[code]; !ok {
			t.Errorf("%s documents error code %s, which bridge/api does not define", apiDoc, code)
		}
		if st, _ := strconv.Atoi(status); st < 400 || st > 599 {
			t.Errorf("%s: %s has status %s, not an error status", apiDoc, code, status)
		}
	}
	for code, name := range codes {
		if !documented[code] {
			t.Errorf("bridge/api.%s (%q) is not in %s's Error codes table", name, code, apiDoc)
		}
	}
}

// mdLink is a markdown link's target: [text](target).
var mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// TestDocsStayInRepository: the README and the docs a user reads link only
// to files of this repository that exist, and name no path of the machine
// they were written on: a clone must be complete.
func TestDocsStayInRepository(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	var docs []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".") && d.Name() != ".github" && p != root) {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".md") {
			docs = append(docs, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(docs, filepath.Join(root, "README.md")) || !slices.Contains(docs, filepath.Join(root, "docs", "api.md")) {
		t.Fatalf("the walk missed README.md or docs/api.md: %v", docs)
	}
	for _, doc := range docs {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, doc)
		text := string(b)
		for _, bad := range []string{"/work/", "../shared/", "shared/design/", "shared/security/"} {
			if strings.Contains(text, bad) {
				t.Errorf("%s names %q, a path outside the repository", rel, bad)
			}
		}
		for _, m := range mdLink.FindAllStringSubmatch(text, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "#") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			target, _, _ = strings.Cut(target, "#")
			p := filepath.Clean(filepath.Join(filepath.Dir(doc), target))
			if r, err := filepath.Rel(root, p); err != nil || r == ".." || strings.HasPrefix(r, "../") {
				t.Errorf("%s links to %s, outside the repository", rel, m[1])
				continue
			}
			if _, err := os.Stat(p); err != nil {
				t.Errorf("%s links to %s, which does not exist", rel, m[1])
			}
		}
	}
}
