// Command targetlint fails when code outside providers/<cloud> names a
// field of a cloud's target: each provider owns its target type, its
// decoding and its rules (ARCHITECTURE.md), and the rest of the bridge keeps
// the target as raw JSON. `make lint` runs it from the module's root.
//
// The vocabulary is read from the providers themselves: every key and Go
// field of a []providers.Field table in a providers/<cloud> package (the
// tables each target is decoded with). Outside those packages, it reports
//
//   - a struct field, selector or composite-literal key named like a
//     target's Go field, or a struct tag `json:"key"` naming a target's key,
//     for the names no other type of the contract uses (Generic lists
//     those);
//   - a struct type whose json-tagged fields are all fields of one target,
//     two or more, generic names included: a copy of that target's type.
//
// Strings are not read: tests and clients write targets as JSON text. A
// struct field whose comment says "targetlint:allow <why>" is exempt, with
// its name in its package.
// Exempt are providers/<cloud> and what speaks the wire form as a client:
// test/ (the cloud fakes and the end-to-end tests) and terraform/ (its
// schema is the targets' fields by design).
package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Generic are target keys (and their Go fields) that other types of the API
// contract use with a meaning of their own: the credential bodies (region,
// tenant_id, client_id, scope, service_account, audience), a mapping's mode,
// a condition's claims, and github's app, owner, repositories and permissions. They are reported only in a copy of a target type.
var Generic = []string{
	"mode", "claims", "region", "scope", "scopes", "audience", "tenant_id", "client_id", "service_account",
	"Mode", "Claims", "Region", "Scope", "Scopes", "Audience", "TenantID", "ClientID", "ServiceAccount",
	// github's: the credentials' repositories and permissions, GitHub Apps
	// (app), and owners everywhere.
	"app", "owner", "repositories", "permissions", "App", "Owner", "Repositories", "Permissions",
}

// allow, in a struct field's comment, exempts the field, and its name in
// the field's package (and, for a package's api subpackage, in the package
// that converts it: bridge/api's in bridge), where an API type has a field of its own that a
// target has too (a revocation's role_arn): "targetlint:allow <why>".
const allow = "targetlint:allow"

// exempt are the folders (relative, slash-separated) whose code may name
// target fields besides providers/<cloud>.
var exempt = []string{"test/", "terraform/"}

// field is one field of a target: its JSON key and Go name.
type field struct{ key, goName string }

func main() {
	findings, err := check(".")
	if err != nil {
		fmt.Fprintln(os.Stderr, "targetlint:", err)
		os.Exit(2)
	}
	for _, f := range findings {
		fmt.Println(f)
	}
	if len(findings) > 0 {
		fmt.Fprintf(os.Stderr, "targetlint: %d place(s) outside providers/<cloud> name a cloud target's field: "+
			"keep the target raw JSON there and ask the provider (providers.Spec)\n", len(findings))
		os.Exit(1)
	}
}

// check returns the findings under root, sorted.
func check(root string) ([]string, error) {
	targets, err := vocabulary(root)
	if err != nil {
		return nil, err
	}
	names := map[string]string{} // distinctive key or Go name -> cloud
	for cloud, fields := range targets {
		for _, f := range fields {
			for _, n := range []string{f.key, f.goName} {
				if !slices.Contains(Generic, n) {
					names[n] = cloud
				}
			}
		}
	}
	var out []string
	fset := token.NewFileSet()
	byDir := map[string][]*ast.File{}
	var dirs []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules" || skipped(rel+"/")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution|parser.ParseComments)
		if err != nil {
			return err
		}
		dir := filepath.Dir(rel)
		if byDir[dir] == nil {
			dirs = append(dirs, dir)
		}
		byDir[dir] = append(byDir[dir], f)
		return nil
	})
	if err != nil {
		return nil, err
	}
	report := func(pos token.Pos, format string, args ...any) {
		p := fset.Position(pos)
		rel, _ := filepath.Rel(root, p.Filename)
		out = append(out, fmt.Sprintf("%s:%d: %s", filepath.ToSlash(rel), p.Line, fmt.Sprintf(format, args...)))
	}
	for _, dir := range dirs {
		// A package converts its api subpackage's wire types (bridge and
		// bridge/api): the contract's allowances hold in both.
		allowed := allowedNames(append(slices.Clone(byDir[dir]), byDir[dir+"/api"]...))
		distinct := func(name string) (string, bool) {
			cloud, ok := names[name]
			return cloud, ok && !allowed[name]
		}
		for _, f := range byDir[dir] {
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.StructType:
					checkStruct(n, distinct, targets, report)
				case *ast.SelectorExpr:
					if cloud, ok := distinct(n.Sel.Name); ok {
						report(n.Sel.Pos(), "%s names the %s target's field %s", exprString(n), cloud, n.Sel.Name)
					}
				case *ast.KeyValueExpr:
					if id, ok := n.Key.(*ast.Ident); ok {
						if cloud, ok := distinct(id.Name); ok {
							report(id.Pos(), "the key %s names the %s target's field", id.Name, cloud)
						}
					}
				}
				return true
			})
		}
	}
	sort.Strings(out)
	return out, err
}

// skipped reports whether a folder (relative, with a trailing slash) is
// exempt: a providers/<cloud> package or an exempt folder.
func skipped(dir string) bool {
	if rest, ok := strings.CutPrefix(dir, "providers/"); ok && strings.Count(rest, "/") >= 1 {
		return true
	}
	for _, e := range exempt {
		if strings.HasPrefix(dir, e) {
			return true
		}
	}
	return false
}

// allowedNames are the names of the struct fields of files whose comment
// says allow, and their json keys.
func allowedNames(files []*ast.File) map[string]bool {
	out := map[string]bool{}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			if fl, ok := n.(*ast.Field); ok && allowed(fl) {
				for _, id := range fl.Names {
					out[id.Name] = true
				}
				out[jsonKey(fl)] = true
			}
			return true
		})
	}
	return out
}

func allowed(f *ast.Field) bool {
	for _, cg := range []*ast.CommentGroup{f.Doc, f.Comment} {
		if cg != nil && strings.Contains(cg.Text(), allow) {
			return true
		}
	}
	return false
}

func jsonKey(f *ast.Field) string {
	if f.Tag == nil {
		return ""
	}
	tag, err := strconv.Unquote(f.Tag.Value)
	if err != nil {
		return ""
	}
	key, _, _ := strings.Cut(reflect.StructTag(tag).Get("json"), ",")
	return key
}

func checkStruct(st *ast.StructType, names func(string) (string, bool), targets map[string][]field, report func(token.Pos, string, ...any)) {
	type tagged struct{ key, goName string }
	var fields []tagged
	for _, f := range st.Fields.List {
		key := jsonKey(f)
		for _, id := range f.Names {
			if cloud, ok := names(id.Name); ok {
				report(id.Pos(), "the struct field %s names the %s target's field", id.Name, cloud)
			}
			if key != "" && key != "-" {
				fields = append(fields, tagged{key, id.Name})
			}
		}
		if cloud, ok := names(key); ok {
			report(f.Tag.Pos(), "the tag json:%q names the %s target's key", key, cloud)
		}
	}
	if len(fields) < 2 {
		return
	}
	for _, cloud := range sortedKeys(targets) {
		copied := true
		for _, f := range fields {
			copied = copied && slices.ContainsFunc(targets[cloud], func(t field) bool { return t.key == f.key })
		}
		if copied {
			report(st.Pos(), "a struct of %d keys of the %s target: a copy of its type", len(fields), cloud)
		}
	}
}

// vocabulary reads every providers/<cloud> package's []providers.Field
// tables.
func vocabulary(root string) (map[string][]field, error) {
	dirs, err := os.ReadDir(filepath.Join(root, "providers"))
	if err != nil {
		return nil, err
	}
	out := map[string][]field{}
	fset := token.NewFileSet()
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		files, _ := filepath.Glob(filepath.Join(root, "providers", d.Name(), "*.go"))
		for _, path := range files {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				return nil, err
			}
			ast.Inspect(f, func(n ast.Node) bool {
				lit, ok := n.(*ast.CompositeLit)
				if !ok || !isFieldTable(lit.Type) {
					return true
				}
				for _, e := range lit.Elts {
					if fl, ok := fieldOf(e); ok {
						out[d.Name()] = append(out[d.Name()], fl)
					}
				}
				return true
			})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no []providers.Field table found under %s: nothing to check against", filepath.Join(root, "providers"))
	}
	return out, nil
}

// isFieldTable reports whether t is []providers.Field.
func isFieldTable(t ast.Expr) bool {
	arr, ok := t.(*ast.ArrayType)
	if !ok {
		return false
	}
	sel, ok := arr.Elt.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	x, ok := sel.X.(*ast.Ident)
	return ok && x.Name == "providers" && sel.Sel.Name == "Field"
}

// fieldOf reads {Key: "k", Dst: &t.GoName}.
func fieldOf(e ast.Expr) (field, bool) {
	lit, ok := e.(*ast.CompositeLit)
	if !ok {
		return field{}, false
	}
	var f field
	for _, el := range lit.Elts {
		kv, ok := el.(*ast.KeyValueExpr)
		if !ok {
			continue
		}
		switch k, _ := kv.Key.(*ast.Ident); {
		case k == nil:
		case k.Name == "Key":
			if bl, ok := kv.Value.(*ast.BasicLit); ok && bl.Kind == token.STRING {
				f.key, _ = strconv.Unquote(bl.Value)
			}
		case k.Name == "Dst":
			if u, ok := kv.Value.(*ast.UnaryExpr); ok {
				if sel, ok := u.X.(*ast.SelectorExpr); ok {
					f.goName = sel.Sel.Name
				}
			}
		}
	}
	return f, f.key != "" && f.goName != ""
}

func sortedKeys(m map[string][]field) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func exprString(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return exprString(e.X) + "." + e.Sel.Name
	}
	return "…"
}
