package admintoken_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"testing"
)

// TestAuthenticateComparesInConstantTime (catalogue 60): timing cannot be
// asserted reliably on a shared machine, so this test reads Authenticate's
// source instead. The bootstrap token must be compared with
// subtle.ConstantTimeCompare over digests, and nothing derived from the
// presented token or the bootstrap secret may be compared with ==, != or
// an early-exit comparison (bytes.Equal, strings.Compare, ...), whose time
// depends on how long a prefix matches.
func TestAuthenticateComparesInConstantTime(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "admintoken.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var fn *ast.FuncDecl
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Name.Name == "Authenticate" {
			fn = fd
		}
	}
	if fn == nil {
		t.Fatal("no Authenticate in admintoken.go")
	}
	// secret reports whether e mentions the presented token, its digest d
	// or the bootstrap digest.
	secret := func(e ast.Expr) bool {
		found := false
		ast.Inspect(e, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.Ident:
				found = found || n.Name == "token" || n.Name == "d"
			case *ast.SelectorExpr:
				found = found || n.Sel.Name == "bootstrap"
			}
			return !found
		})
		return found
	}
	// harmless reports whether one side of == makes it no comparison of
	// secret bytes: "" (the empty-token check), nil (is a bootstrap token
	// configured) or the result of subtle.ConstantTimeCompare.
	harmless := func(e ast.Expr) bool {
		switch e := e.(type) {
		case *ast.BasicLit:
			return e.Kind == token.STRING && e.Value == `""`
		case *ast.Ident:
			return e.Name == "nil"
		case *ast.CallExpr:
			sel, ok := e.Fun.(*ast.SelectorExpr)
			if !ok {
				return false
			}
			pkg, ok := sel.X.(*ast.Ident)
			return ok && pkg.Name == "subtle" && sel.Sel.Name == "ConstantTimeCompare"
		}
		return false
	}
	leaky := map[string]bool{"bytes.Equal": true, "bytes.Compare": true, "strings.Compare": true,
		"strings.EqualFold": true, "slices.Equal": true, "slices.Compare": true, "reflect.DeepEqual": true}
	constantTime := false
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.BinaryExpr:
			if (n.Op == token.EQL || n.Op == token.NEQ) && (secret(n.X) || secret(n.Y)) &&
				!harmless(n.X) && !harmless(n.Y) {
				t.Errorf("%s: %s compares secret material with %s", fset.Position(n.Pos()), fn.Name.Name, n.Op)
			}
		case *ast.CallExpr:
			sel, ok := n.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			pkg, ok := sel.X.(*ast.Ident)
			if !ok {
				return true
			}
			name := pkg.Name + "." + sel.Sel.Name
			if name == "subtle.ConstantTimeCompare" && len(n.Args) == 2 && secret(n.Args[0]) && secret(n.Args[1]) {
				constantTime = true
			}
			if leaky[name] && len(n.Args) == 2 && (secret(n.Args[0]) || secret(n.Args[1])) {
				t.Errorf("%s: %s compares secret material with %s", fset.Position(n.Pos()), fn.Name.Name, name)
			}
		}
		return true
	})
	if !constantTime {
		t.Error("Authenticate does not compare the bootstrap digest with subtle.ConstantTimeCompare")
	}
}
