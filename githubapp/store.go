package githubapp

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/oidc-bridge/oidc-bridge/internal/dbfail"
	"github.com/oidc-bridge/oidc-bridge/internal/history"
	"github.com/oidc-bridge/oidc-bridge/mapping"
	"github.com/oidc-bridge/oidc-bridge/providers/github"
	"github.com/oidc-bridge/oidc-bridge/signing"
)

// KindGitHubApp is the kind of admin_changes rows about Apps.
const KindGitHubApp = "github_app"

// defaultTimeout bounds each operation.
const defaultTimeout = 5 * time.Second

// Store keeps Apps in Postgres. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
	kek  signing.KEK
}

// New returns a store on pool that encrypts keys with kek. Without a valid
// kek (a bridge that signs nothing) every write of a key and every read of
// Credentials fails with ErrNoKEK.
func New(pool *pgxpool.Pool, kek signing.KEK) *Store { return &Store{pool: pool, kek: kek} }

// ErrNoKEK: the bridge has no key-encryption key, so it can neither store
// nor read an App's private key.
var ErrNoKEK = errors.New("githubapp: the bridge has no key-encryption key (BRIDGE_KEY_ENCRYPTION_KEY) to encrypt GitHub App keys with")

func markUnavailable(err *error) { *err = dbfail.Mark(*err, ErrUnavailable) }

func label(name, fingerprint string) string {
	return "github_app\x00" + name + "\x00" + fingerprint
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

const appColumns = `a.id, a.name, a.app_id, a.base_url, a.created_at, a.updated_at,
	coalesce((SELECT jsonb_agg(jsonb_build_object('fingerprint', k.fingerprint, 'added_at', k.added_at, 'signing', k.signing)
	          ORDER BY k.signing DESC) FROM github_app_keys k WHERE k.app = a.id), '[]')`

func scanApp(row pgx.Row) (App, error) {
	var (
		a    App
		keys []byte
	)
	if err := row.Scan(&a.ID, &a.Name, &a.AppID, &a.BaseURL, &a.CreatedAt, &a.UpdatedAt, &keys); err != nil {
		return App{}, err
	}
	if err := json.Unmarshal(keys, &a.Keys); err != nil {
		return App{}, fmt.Errorf("githubapp: keys of %q: %w", a.Name, err)
	}
	for i := range a.Keys {
		a.Keys[i].AddedAt = a.Keys[i].AddedAt.UTC()
	}
	a.CreatedAt, a.UpdatedAt = a.CreatedAt.UTC(), a.UpdatedAt.UTC()
	return a, nil
}

func getApp(ctx context.Context, q querier, name string, lock bool) (App, error) {
	const (
		get     = `SELECT ` + appColumns + ` FROM github_apps a WHERE a.name = $1`
		getLock = get + ` FOR UPDATE`
	)
	var row pgx.Row
	if lock {
		row = q.QueryRow(ctx, getLock, name)
	} else {
		row = q.QueryRow(ctx, get, name)
	}
	a, err := scanApp(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return App{}, fmt.Errorf("%w: github app %q", mapping.ErrNotFound, name)
	}
	return a, err
}

// List returns every App, by name.
func (s *Store) List(ctx context.Context) (_ []App, err error) {
	defer markUnavailable(&err)
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT `+appColumns+` FROM github_apps a ORDER BY a.name`)
	if err != nil {
		return nil, fmt.Errorf("githubapp: list: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (App, error) { return scanApp(r) })
	if err != nil {
		return nil, fmt.Errorf("githubapp: list: %w", err)
	}
	return out, nil
}

// Get returns the App called name (mapping.ErrNotFound if none).
func (s *Store) Get(ctx context.Context, name string) (_ App, err error) {
	defer markUnavailable(&err)
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	return getApp(ctx, s.pool, name, false)
}

func record(ctx context.Context, tx pgx.Tx, by mapping.Actor, action, name string, before, after *App) error {
	var b, a any
	if before != nil {
		b = before.change()
	}
	if after != nil {
		a = after.change()
	}
	if by.Name == "" {
		return history.ErrNoActor
	}
	return history.Record(ctx, tx, history.Change{
		Actor:  history.Actor{Name: by.Name, Source: history.SourceAPI, RequestID: by.RequestID},
		Action: action, Kind: KindGitHubApp, Name: name, Before: b, After: a,
	})
}

// addKey seals key and stores it as the App's signing key, the current
// signing key becoming the previous one (and the previous one dropped).
func (s *Store) addKey(ctx context.Context, tx pgx.Tx, app int64, name string, key *rsa.PrivateKey) error {
	if !s.kek.Valid() {
		return ErrNoKEK
	}
	fp := Fingerprint(&key.PublicKey)
	der := x509.MarshalPKCS1PrivateKey(key)
	sealed, err := s.kek.Seal(label(name, fp), der)
	clear(der)
	if err != nil {
		return err
	}
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM github_app_keys WHERE app = $1 AND fingerprint = $2)`, app, fp).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return &mapping.ValidationError{Field: "private_key", Message: "private_key: the App already has this key (" + fp + "); give a new one to rotate"}
	}
	if _, err := tx.Exec(ctx, `DELETE FROM github_app_keys WHERE app = $1 AND NOT signing`, app); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE github_app_keys SET signing = false WHERE app = $1`, app); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO github_app_keys (app, fingerprint, private_key, signing) VALUES ($1, $2, $3, true)`, app, fp, sealed)
	return err
}

// Create stores a new App. in must have passed Validate(true); key is the
// parsed in.PrivateKey.
func (s *Store) Create(ctx context.Context, by mapping.Actor, in Input, key *rsa.PrivateKey) (_ App, err error) {
	defer markUnavailable(&err)
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	var out App
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var id int64
		if err := tx.QueryRow(ctx, `INSERT INTO github_apps (name, app_id, base_url) VALUES ($1, $2, $3) RETURNING id`,
			in.Name, in.AppID, in.BaseURL).Scan(&id); err != nil {
			return err
		}
		if err := s.addKey(ctx, tx, id, in.Name, key); err != nil {
			return err
		}
		var err error
		if out, err = getApp(ctx, tx, in.Name, false); err != nil {
			return err
		}
		return record(ctx, tx, by, history.ActionCreate, in.Name, nil, &out)
	})
	return out, writeErr(err, "create", in.Name)
}

// Update changes the App called name: its app_id and base_url as in says;
// a key in key becomes the signing key (the signing key the previous one);
// in.RetirePreviousKey drops the previous key (after adding key, if any: a
// rotation and a retirement in one call leaves the new key alone).
func (s *Store) Update(ctx context.Context, by mapping.Actor, name string, in Input, key *rsa.PrivateKey) (_ App, err error) {
	defer markUnavailable(&err)
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	var out App
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		before, err := getApp(ctx, tx, name, true)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE github_apps SET app_id = $2, base_url = $3, updated_at = now() WHERE id = $1`,
			before.ID, in.AppID, in.BaseURL); err != nil {
			return err
		}
		if key != nil {
			if err := s.addKey(ctx, tx, before.ID, name, key); err != nil {
				return err
			}
		}
		if in.RetirePreviousKey {
			if _, err := tx.Exec(ctx, `DELETE FROM github_app_keys WHERE app = $1 AND NOT signing`, before.ID); err != nil {
				return err
			}
		}
		if out, err = getApp(ctx, tx, name, false); err != nil {
			return err
		}
		return record(ctx, tx, by, history.ActionUpdate, name, &before, &out)
	})
	return out, writeErr(err, "update", name)
}

// Delete removes the App called name, unless a mapping of provider
// provider names it (usedBy reports whether a target does): then
// mapping.ErrConflict naming the mapping. A mapping written in the same
// instant as the delete is not seen; its mints then fail closed (the App
// is unknown).
func (s *Store) Delete(ctx context.Context, by mapping.Actor, name, provider string, usedBy func(target json.RawMessage) bool) (err error) {
	defer markUnavailable(&err)
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		before, err := getApp(ctx, tx, name, true)
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT name, target FROM mappings WHERE provider = $1 ORDER BY name FOR SHARE`, provider)
		if err != nil {
			return err
		}
		type m struct {
			name   string
			target []byte
		}
		ms, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (m, error) {
			var x m
			return x, r.Scan(&x.name, &x.target)
		})
		if err != nil {
			return err
		}
		for _, x := range ms {
			if usedBy(x.target) {
				return fmt.Errorf("%w: github app %q is used by mapping %q; delete the mapping or point it at another App first",
					mapping.ErrConflict, name, x.name)
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM github_apps WHERE id = $1`, before.ID); err != nil {
			return err
		}
		return record(ctx, tx, by, history.ActionDelete, name, &before, nil)
	})
	return writeErr(err, "delete", name)
}

func writeErr(err error, op, name string) error {
	if err == nil {
		return nil
	}
	var ve *mapping.ValidationError
	if errors.Is(err, mapping.ErrNotFound) || errors.Is(err, mapping.ErrConflict) || errors.As(err, &ve) ||
		errors.Is(err, ErrNoKEK) || errors.Is(err, history.ErrNoActor) {
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return fmt.Errorf("%w: a github app named %q already exists", mapping.ErrConflict, name)
	}
	return fmt.Errorf("githubapp: %s %q: %w", op, name, err)
}

// Credentials returns the App called name with its decrypted keys, the
// signing key first, for the github provider.
func (s *Store) Credentials(ctx context.Context, name string) (_ github.App, err error) {
	defer markUnavailable(&err)
	if !s.kek.Valid() {
		return github.App{}, ErrNoKEK
	}
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	var c github.App
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT name, app_id, base_url FROM github_apps WHERE name = $1`, name).
			Scan(&c.Name, &c.AppID, &c.BaseURL); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT k.fingerprint, k.private_key FROM github_app_keys k JOIN github_apps a ON a.id = k.app
			WHERE a.name = $1 ORDER BY k.signing DESC`, name)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				fp     string
				sealed []byte
			)
			if err := rows.Scan(&fp, &sealed); err != nil {
				return err
			}
			der, err := s.kek.Open(label(name, fp), sealed)
			if err != nil {
				return fmt.Errorf("githubapp: key %s of %q: %w", fp, name, err)
			}
			key, err := x509.ParsePKCS1PrivateKey(der)
			clear(der)
			if err != nil || Fingerprint(&key.PublicKey) != fp {
				return fmt.Errorf("githubapp: key %s of %q does not match its fingerprint", fp, name)
			}
			c.Keys, c.Fingerprints = append(c.Keys, key), append(c.Fingerprints, fp)
		}
		return rows.Err()
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return github.App{}, fmt.Errorf("%w: %q", github.ErrAppNotFound, name)
	}
	if err != nil {
		return github.App{}, fmt.Errorf("githubapp: credentials of %q: %w", name, err)
	}
	if len(c.Keys) == 0 {
		return github.App{}, fmt.Errorf("githubapp: %q has no key", name)
	}
	return c, nil
}
