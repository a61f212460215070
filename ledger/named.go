package ledger

import (
	"context"
	"fmt"
	"regexp"

	"github.com/jackc/pgx/v5"
)

// named is a statement written with pgx's @name arguments, rewritten once
// to PostgreSQL's $n form: passed a pgx.NamedArgs, pgx would parse and
// rewrite the text again on every call, which the exchange's hot path
// cannot afford.
type named struct {
	sql   string
	names []string // the argument of $1, $2, ...
}

// argName finds the @name arguments of the ledger's statements (none of
// which has an @ inside a string literal or a comment); pgx's own parser
// checks the result.
var argName = regexp.MustCompile(`@([A-Za-z_][A-Za-z0-9_]*)`)

// mustNamed rewrites sql; it panics (at package initialisation) if the
// text's arguments are not what argName found.
func mustNamed(sql string) named {
	probe := pgx.StrictNamedArgs{}
	for _, m := range argName.FindAllStringSubmatch(sql, -1) {
		probe[m[1]] = m[1]
	}
	out, args, err := probe.RewriteQuery(context.Background(), nil, sql, nil)
	if err != nil {
		panic(fmt.Sprintf("ledger: rewrite statement: %v", err))
	}
	n := named{sql: out, names: make([]string, len(args))}
	for i, a := range args {
		n.names[i] = a.(string)
	}
	return n
}

// args returns the positional arguments of n from m; a name m lacks is
// NULL, as with pgx.NamedArgs.
func (n named) args(m pgx.NamedArgs) []any {
	out := make([]any, len(n.names))
	for i, k := range n.names {
		out[i] = m[k]
	}
	return out
}
