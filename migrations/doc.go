// Package migrations holds oidc-bridge's numbered SQL migrations, embedded in
// the binary. They are goose migrations: each file has an Up and a Down
// section. Applying them is internal/database's job; this package only
// carries the files.
package migrations

import "embed"

// FS holds the migration files.
//
//go:embed *.sql
var FS embed.FS
