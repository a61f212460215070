package history

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"

	"github.com/jackc/pgx/v5/pgconn"
)

// Sources of a change, as admin_changes records them. SourceSQL is the
// triggers' alone.
const (
	SourceAPI     = "api"     // the admin API
	SourceCLI     = "cli"     // an oidc-bridge command on a host with the database URL
	SourceService = "service" // the bridge itself: the signing-key schedule
)

// Actions and kinds.
const (
	ActionCreate   = "create"
	ActionUpdate   = "update"
	ActionDelete   = "delete"
	ActionRevoke   = "revoke"
	ActionActivate = "activate"
	ActionRetire   = "retire"

	KindIssuer     = "issuer"
	KindMapping    = "mapping"
	KindAdminToken = "admin_token"
	KindSigningKey = "signing_key"
)

// ErrNoActor: a change was attempted without naming who makes it.
var ErrNoActor = errors.New("history: a change needs an actor and a source")

// Actor is who makes a change.
type Actor struct {
	// Name: the admin token's name (bootstrap or bootstrap:LABEL for the
	// bootstrap token) through the API; cli:LABEL for a command;
	// automatic for the key schedule. Required.
	Name string
	// Source is one of the Source constants. Required.
	Source string
	// RequestID is the HTTP request's id, if any.
	RequestID string
}

// Check returns ErrNoActor unless a names who and from where.
func (a Actor) Check() error {
	if a.Name == "" || (a.Source != SourceAPI && a.Source != SourceCLI && a.Source != SourceService) {
		return ErrNoActor
	}
	return nil
}

// Change is one row. Before is nil for a create, After for a delete; Name
// is the object's name (a key's kid) before the change, after it for a
// create. Before and After are marshalled to JSON: never put a secret or a
// token's digest in them.
type Change struct {
	Actor         Actor
	Action, Kind  string
	Name          string
	Reason        string // optional
	Before, After any
}

// Execer is a pgx.Tx (or a connection inside a transaction).
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Record inserts c through tx, which must be the transaction making the
// change.
func Record(ctx context.Context, tx Execer, c Change) error {
	if err := c.Actor.Check(); err != nil {
		return err
	}
	enc := func(v any) ([]byte, error) {
		if v == nil {
			return nil, nil
		}
		return json.Marshal(v)
	}
	b, err := enc(c.Before)
	if err != nil {
		return fmt.Errorf("history: %w", err)
	}
	a, err := enc(c.After)
	if err != nil {
		return fmt.Errorf("history: %w", err)
	}
	_, err = tx.Exec(ctx, `
		INSERT INTO admin_changes (actor, action, kind, name, before, after, request_id, source, reason)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		c.Actor.Name, c.Action, c.Kind, c.Name, b, a, nullable(c.Actor.RequestID), c.Actor.Source, nullable(c.Reason))
	if err != nil {
		return fmt.Errorf("history: record %s %s %q: %w", c.Action, c.Kind, c.Name, err)
	}
	return nil
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// labelRE is what a label naming a person or team may be: it lands in the
// history and logs, so no spaces, quotes or control characters.
var labelRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// ValidLabel reports whether s may name the holder of the bootstrap token
// or the person running a command: 1 to 64 of A-Z, a-z, 0-9, '.', '_', '@'
// and '-', starting with a letter or digit.
func ValidLabel(s string) bool { return labelRE.MatchString(s) }

// LabelRule says what ValidLabel accepts, for error messages.
const LabelRule = "1-64 characters of A-Z, a-z, 0-9, '.', '_', '@' and '-', starting with a letter or digit"
