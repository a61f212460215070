package sqlcheck

import (
	"go/ast"
	"go/token"
	"go/types"
	"slices"
	"strings"
	"testing"

	"golang.org/x/tools/go/packages"
)

// sqlMethods are the methods whose argument at the given index is SQL text:
// pgx's Exec/Query/QueryRow (after the context), Batch.Queue, Prepare (after
// the context and the name), and the same names on the module's own
// interfaces over pgx.
var sqlMethods = map[string]int{"Exec": 1, "Query": 1, "QueryRow": 1, "Queue": 0, "Prepare": 2}

// TestSQLIsConstant (catalogue 55): every SQL text the module's non-test
// code sends is a constant expression, or constants joined with
// pgx.Identifier{...}.Sanitize() (quoted identifiers, the partitions'
// names), or the text of one of ledger's statements rewritten from
// constants by mustNamed. Claims, names and every other value must go as placeholders;
// a query built with fmt.Sprintf or + from a variable fails this test.
func TestSQLIsConstant(t *testing.T) {
	cfg := &packages.Config{Mode: packages.NeedName | packages.NeedSyntax | packages.NeedTypes | packages.NeedTypesInfo,
		Dir: "../.."}
	pkgs, err := packages.Load(cfg, "./...")
	if err != nil {
		t.Fatal(err)
	}
	// The product's packages; test/ holds fixtures and tools that no
	// token reaches.
	pkgs = slices.DeleteFunc(pkgs, func(p *packages.Package) bool {
		return strings.HasPrefix(p.PkgPath, "github.com/oidc-bridge/oidc-bridge/test/")
	})
	for _, p := range pkgs {
		for _, e := range p.Errors {
			t.Fatalf("load %s: %v", p.PkgPath, e)
		}
	}
	// The module's own helpers that pass SQL on take it as a string
	// parameter named sql: their callers are checked like pgx's.
	helpers := map[*types.Func]int{}
	for _, p := range pkgs {
		for _, obj := range p.TypesInfo.Defs {
			fn, ok := obj.(*types.Func)
			if !ok {
				continue
			}
			params := fn.Type().(*types.Signature).Params()
			for i := range params.Len() {
				if params.At(i).Name() == "sql" && types.Identical(params.At(i).Type(), types.Typ[types.String]) {
					helpers[fn] = i
				}
			}
		}
	}
	checked := 0
	for _, p := range pkgs {
		for _, f := range p.Syntax {
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				i, name, ok := sqlArg(p.TypesInfo, call, helpers)
				if !ok || len(call.Args) <= i {
					return true
				}
				checked++
				arg := call.Args[i]
				if id, ok := arg.(*ast.Ident); ok && isSQLParam(p.TypesInfo, id, helpers) {
					return true // a helper passing its own sql on
				}
				if !constantSQL(p.TypesInfo, arg) {
					t.Errorf("%s: SQL text of %s is not a constant: pass values as placeholders",
						p.Fset.Position(arg.Pos()), name)
				}
				return true
			})
		}
	}
	// The module sends SQL from the ledger, the store, the signer, the
	// admin tokens, migrations and tests' helpers: a scan that found
	// nothing looked in the wrong place.
	if checked < 40 {
		t.Fatalf("only %d SQL calls found", checked)
	}
	t.Logf("%d SQL calls checked", checked)
}

// sqlArg returns the index of call's SQL argument when it calls a pgx
// query method or one of the module's helpers.
func sqlArg(info *types.Info, call *ast.CallExpr, helpers map[*types.Func]int) (int, string, bool) {
	var id *ast.Ident
	switch f := call.Fun.(type) {
	case *ast.SelectorExpr:
		if i, ok := sqlMethods[f.Sel.Name]; ok && talksToPostgres(info, f) {
			return i, f.Sel.Name, true
		}
		id = f.Sel
	case *ast.Ident:
		id = f
	default:
		return 0, "", false
	}
	fn, ok := info.Uses[id].(*types.Func)
	if !ok {
		return 0, "", false
	}
	i, ok := helpers[fn.Origin()]
	return i, fn.Name(), ok
}

// isSQLParam reports whether id is the sql parameter of a helper.
func isSQLParam(info *types.Info, id *ast.Ident, helpers map[*types.Func]int) bool {
	v, ok := info.Uses[id].(*types.Var)
	if !ok || v.Name() != "sql" {
		return false
	}
	for fn, i := range helpers {
		if fn.Type().(*types.Signature).Params().At(i) == v {
			return true
		}
	}
	return false
}

// talksToPostgres reports whether sel is a method of a pgx type, or of an
// interface whose method takes SQL text as a string.
func talksToPostgres(info *types.Info, sel *ast.SelectorExpr) bool {
	s, ok := info.Selections[sel]
	if !ok {
		return false
	}
	fn, ok := s.Obj().(*types.Func)
	if !ok || fn.Pkg() == nil {
		return false
	}
	if strings.HasPrefix(fn.Pkg().Path(), "github.com/jackc/pgx/v5") {
		return true
	}
	// The module's own interfaces over pgx (mapping's querier, ...).
	if _, isIface := s.Recv().Underlying().(*types.Interface); !isIface {
		if ptr, ok := s.Recv().(*types.Pointer); !ok || !types.IsInterface(ptr.Elem()) {
			return false
		}
	}
	sig := fn.Type().(*types.Signature)
	i := sqlMethods[fn.Name()]
	return sig.Params().Len() > i && types.Identical(sig.Params().At(i).Type(), types.Typ[types.String])
}

// constantSQL reports whether e is a constant, or a + of constants and
// pgx.Identifier{...}.Sanitize() calls.
func constantSQL(info *types.Info, e ast.Expr) bool {
	if tv, ok := info.Types[e]; ok && tv.Value != nil {
		return true
	}
	switch e := e.(type) {
	case *ast.ParenExpr:
		return constantSQL(info, e.X)
	case *ast.BinaryExpr:
		return e.Op == token.ADD && constantSQL(info, e.X) && constantSQL(info, e.Y)
	case *ast.CallExpr:
		sel, ok := e.Fun.(*ast.SelectorExpr)
		if !ok || sel.Sel.Name != "Sanitize" {
			return false
		}
		named, ok := info.TypeOf(sel.X).(*types.Named)
		return ok && named.Obj().Pkg() != nil && named.Obj().Pkg().Path() == "github.com/jackc/pgx/v5" &&
			named.Obj().Name() == "Identifier"
	case *ast.SelectorExpr:
		// ledger's statements rewritten once from @name to $n form: their
		// text comes from mustNamed, whose sql parameter this test checks
		// at every call.
		named, ok := info.TypeOf(e.X).(*types.Named)
		return ok && e.Sel.Name == "sql" && named.Obj().Pkg() != nil &&
			named.Obj().Pkg().Path() == "github.com/oidc-bridge/oidc-bridge/ledger" && named.Obj().Name() == "named"
	case *ast.IndexExpr:
		// countQuotas[i][j]: an element of a table of constant texts,
		// built once from constants.
		return isConstTable(info, e)
	}
	return false
}

// isConstTable accepts an index into a package-level array of strings
// whose initialiser the test has no way to read here; it is allowed only
// for the names listed, each built from constants only (ledger's quota
// count variants, the console's search variants).
func isConstTable(info *types.Info, e *ast.IndexExpr) bool {
	for x := ast.Expr(e); ; {
		ix, ok := x.(*ast.IndexExpr)
		if !ok {
			id, ok := x.(*ast.Ident)
			return ok && constTables[id.Name] && info.Uses[id] != nil && info.Uses[id].Pkg().Path() == "github.com/oidc-bridge/oidc-bridge/ledger"
		}
		x = ix.X
	}
}

// constTables are the package-level SQL tables reviewed to be constants.
var constTables = map[string]bool{"countQuotas": true, "searchStatements": true}
