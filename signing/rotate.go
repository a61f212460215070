package signing

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/oidc-bridge/oidc-bridge/internal/history"
)

// advisoryLockID is the transaction-level advisory lock under which every
// change to signing_keys is made ("oidckeys" in ASCII; goose uses another).
const advisoryLockID int64 = 0x6f69_6463_6b65_7973

// ErrTooEarly is what a TooEarlyError is: see Rotate.
var ErrTooEarly = errors.New("signing: too early to rotate")

// TooEarlyError means Rotate without Force found a next key that has not
// been published for PublishLead yet: verifiers may not know it.
type TooEarlyError struct {
	Alg string
	// KID names the next key, published since PublishedAt.
	KID         string
	PublishedAt time.Time
	// ReadyAt is when Rotate may promote it.
	ReadyAt time.Time
}

func (e *TooEarlyError) Error() string {
	return fmt.Sprintf("signing: too early to rotate %s: the next key %s was published at %s and may sign from %s, "+
		"once verifiers caching the JWKS have fetched it; rotate then, or force an emergency rotation",
		e.Alg, e.KID, e.PublishedAt.Format(time.RFC3339), e.ReadyAt.Format(time.RFC3339))
}

// Is makes errors.Is(err, ErrTooEarly) true.
func (e *TooEarlyError) Is(target error) bool { return target == ErrTooEarly }

// RotateOptions tune Rotate.
type RotateOptions struct {
	// Alg rotates one alg's keys; "" rotates every alg.
	Alg string
	// Force promotes the next key even when it has been published for less
	// than PublishLead. Usually the next key has been published since the
	// previous rotation, long ago, and every verifier knows it; but when it
	// is younger (a rotation a moment ago, or a second forced rotation),
	// verifiers that cached the JWKS before its creation reject tokens it
	// signs until they refetch the JWKS (go-oidc refetches on an unknown
	// kid; clouds cache for minutes to an hour). For a compromised key.
	// When the next key may be compromised too (the database and the KEK
	// leaked), force twice: the second rotation promotes a brand-new key.
	Force bool
	// Revoke, for a compromised key, also removes the old active key from
	// the JWKS at once (implies Force): tokens it signed stop verifying,
	// including those other replicas sign with it during the KeyCacheTTL
	// before they notice the rotation. Without it the old key stays
	// published for RetiredRetention after its last use, like any other.
	Revoke bool
	// Actor is who rotates, for the admin-change history (e.g. cli:alice
	// from the CLI). Required.
	Actor history.Actor
}

// Automatic is the actor of the changes Maintain makes: the schedule.
var Automatic = history.Actor{Name: "automatic", Source: history.SourceService}

// Reasons a key changes, as the admin-change history records them.
const (
	reasonInitial   = "initial"   // the first keys of an empty database
	reasonRepair    = "repair"    // a missing next or active key replaced
	reasonScheduled = "scheduled" // the RotationPeriod rotation
	reasonManual    = "manual"    // keys rotate
	reasonForced    = "forced"    // keys rotate --force
	reasonRevoke    = "revoke"    // keys rotate --revoke
	reasonRetention = "retention" // a retired key past its retention
	reasonInvalid   = "invalid"   // keys rotate --revoke: a key that does not verify
)

// keyState is a key as the admin-change history shows it: never its
// private part.
type keyState struct {
	KID         string     `json:"kid"`
	Alg         string     `json:"alg"`
	State       string     `json:"state"`
	CreatedAt   time.Time  `json:"created_at"`
	ActivatedAt *time.Time `json:"activated_at,omitempty"`
	RetiredAt   *time.Time `json:"retired_at,omitempty"`
	RevokedAt   *time.Time `json:"revoked_at,omitempty"`
}

func stateOf(r keyRow) keyState {
	at := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		return &t
	}
	return keyState{KID: r.kid, Alg: r.alg, State: r.state, CreatedAt: r.created,
		ActivatedAt: at(r.activated), RetiredAt: at(r.retired), RevokedAt: at(r.revoked)}
}

// record writes the history row of a key's change in the change's
// transaction.
func (c *change) record(ctx context.Context, action, reason string, before, after *keyRow) error {
	ch := history.Change{Actor: c.by, Action: action, Kind: history.KindSigningKey, Reason: reason}
	if before != nil {
		ch.Name, ch.Before = before.kid, stateOf(*before)
	}
	if after != nil {
		ch.After = stateOf(*after)
		if before == nil {
			ch.Name = after.kid
		}
	}
	return history.Record(ctx, c.tx, ch)
}

// keyRow is a row of signing_keys; zero times stand for NULL.
type keyRow struct {
	kid, alg, state                      string
	created, activated, retired, revoked time.Time
	lastUsed                             time.Time
	// Only when loaded with private parts:
	public, sealed []byte
	invalid        error // set by checkRows: an *InvalidKeyError
}

// lastUse is the later of the retirement and the last use, but not after
// now: the start of a retired key's retention. A time in the future
// (written by someone else, or another replica's fast clock) counts as now
// and is clamped in the database by Maintain, so that no key stays
// published for ever.
func (r keyRow) lastUse(now time.Time) time.Time {
	t := r.retired
	if r.lastUsed.After(t) {
		t = r.lastUsed
	}
	if t.After(now) {
		return now
	}
	return t
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// loadKeys reads every key, by alg then newest first; withPrivate also
// reads their public and encrypted private parts, for checkRows.
func loadKeys(ctx context.Context, q querier, withPrivate bool) ([]keyRow, error) {
	rows, err := q.Query(ctx, `
		SELECT kid, alg, state, created_at, activated_at, retired_at, revoked_at, last_used_at,
		       CASE WHEN $1 THEN public_jwk END, CASE WHEN $1 THEN private_key END
		FROM signing_keys ORDER BY alg, created_at DESC, kid`, withPrivate)
	if err != nil {
		return nil, fmt.Errorf("signing: read keys: %w", err)
	}
	var out []keyRow
	var r keyRow
	var activated, retired, revoked, lastUsed *time.Time
	_, err = pgx.ForEachRow(rows, []any{&r.kid, &r.alg, &r.state, &r.created, &activated, &retired, &revoked, &lastUsed, &r.public, &r.sealed}, func() error {
		row := r
		row.created = r.created.UTC()
		row.activated, row.retired, row.revoked, row.lastUsed = deref(activated), deref(retired), deref(revoked), deref(lastUsed)
		out = append(out, row)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("signing: read keys: %w", err)
	}
	return out, nil
}

func deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// checkKEK verifies every stored key (see judge): ErrWrongKEK when kek
// is not theirs, the *InvalidKeyErrors of those that do not verify.
func (m *Manager) checkKEK(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	rows, err := loadKeys(ctx, m.pool, true)
	if err != nil {
		return err
	}
	return judge(rows, m.checkRows(rows, true))
}

// algKeys are the keys of one alg.
type algKeys struct {
	alg          string
	active, next *keyRow
}

func byAlg(rows []keyRow) map[string]*algKeys {
	out := make(map[string]*algKeys, len(algs))
	for _, alg := range algs {
		out[alg] = &algKeys{alg: alg}
	}
	for i := range rows {
		a, ok := out[rows[i].alg]
		if !ok {
			continue
		}
		switch rows[i].state {
		case StateActive:
			a.active = &rows[i]
		case StateNext:
			a.next = &rows[i]
		}
	}
	return out
}

// change is one state-changing transaction under the advisory lock.
type change struct {
	m   *Manager
	tx  pgx.Tx
	now time.Time
	by  history.Actor
	// rows as read under the lock, private parts included, verified.
	rows []keyRow
	// invalid is judge's verdict on rows: nil when every key verifies.
	// Nothing is built on keys while one does not (needKEK).
	invalid error
	changed bool
	// rotated are the algs whose next key fn promoted, for OnRotate once
	// committed.
	rotated []string
}

// locked runs fn in a transaction holding the advisory lock, with the
// keys as they are once it is held, and drops this Manager's caches when
// fn changed anything.
func (m *Manager) locked(ctx context.Context, what string, by history.Actor, fn func(ctx context.Context, c *change) error) error {
	if err := by.Check(); err != nil {
		return fmt.Errorf("signing: %s: %w", what, err)
	}
	ctx, cancel := context.WithTimeout(ctx, lockedTimeout)
	defer cancel()
	c := &change{m: m, by: by}
	var fnErr error
	err := pgx.BeginFunc(ctx, m.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", advisoryLockID); err != nil {
			return fmt.Errorf("signing: %s: lock: %w", what, err)
		}
		rows, err := loadKeys(ctx, tx, true)
		if err != nil {
			return err
		}
		c.tx, c.now, c.rows = tx, m.now(), rows
		c.invalid = judge(rows, m.checkRows(rows, true))
		if err := c.clampFuture(ctx); err != nil {
			return err
		}
		fnErr = fn(ctx, c)
		return fnErr
	})
	if c.changed {
		m.invalidate() // also after a failed commit: harmless
	}
	if err == nil && m.opts.OnRotate != nil {
		for _, alg := range c.rotated {
			m.opts.OnRotate(alg)
		}
	}
	if err != nil && err != fnErr { //nolint:errorlint // identity: fn's own errors are already described
		return fmt.Errorf("signing: %s: %w", what, err)
	}
	return err
}

// needKEK checks that every stored key verifies before a change builds on
// them: a replica with a wrong KEK must not add or promote keys the others
// cannot read, and no schedule runs beside a key someone planted (fail
// closed: Rotate with Revoke removes it first).
func (c *change) needKEK() error { return c.invalid }

// clampFuture sets last uses and retirements in the future to now: the
// bridge never writes one (bar another replica's clock running a little
// ahead), and one would keep a retired key published for ever.
func (c *change) clampFuture(ctx context.Context) error {
	tag, err := c.tx.Exec(ctx, `UPDATE signing_keys SET last_used_at = least(last_used_at, $1), retired_at = least(retired_at, $1)
		WHERE last_used_at > $1 OR retired_at > $1`, c.now)
	if err != nil {
		return fmt.Errorf("signing: clamp future times: %w", err)
	}
	if tag.RowsAffected() > 0 {
		c.changed = true
		for i := range c.rows {
			r := &c.rows[i]
			if r.lastUsed.After(c.now) || r.retired.After(c.now) {
				c.m.log.WarnContext(ctx, "signing: a key's last use or retirement was in the future; set to now",
					"kid", r.kid, "last_used_at", r.lastUsed, "retired_at", r.retired)
				r.lastUsed, r.retired = minTime(r.lastUsed, c.now), minTime(r.retired, c.now)
			}
		}
	}
	return nil
}

func minTime(a, b time.Time) time.Time {
	if a.After(b) {
		return b
	}
	return a
}

// removeInvalid deletes the keys that do not verify (Rotate with Revoke),
// unless none verifies: then the KEK is wrong, not the keys.
func (c *change) removeInvalid(ctx context.Context) error {
	if c.invalid == nil {
		return nil
	}
	if errors.Is(c.invalid, errNoKeyVerifies) {
		return c.invalid
	}
	var kids []string
	valid := c.rows[:0:0]
	for _, r := range c.rows {
		if r.invalid == nil {
			valid = append(valid, r)
			continue
		}
		kids = append(kids, r.kid)
		c.m.log.WarnContext(ctx, "signing: deleting a key that does not verify", "kid", r.kid, "alg", r.alg, "state", r.state, "error", r.invalid)
		if err := c.record(ctx, history.ActionDelete, reasonInvalid, &r, nil); err != nil {
			return fmt.Errorf("signing: record the deletion of %s: %w", r.kid, err)
		}
	}
	tag, err := c.tx.Exec(ctx, "DELETE FROM signing_keys WHERE kid = ANY($1)", kids)
	if err != nil {
		return fmt.Errorf("signing: delete keys that do not verify: %w", err)
	}
	if int(tag.RowsAffected()) != len(kids) {
		return fmt.Errorf("signing: delete keys that do not verify: %d rows deleted, want %d", tag.RowsAffected(), len(kids))
	}
	c.changed = true
	c.rows, c.invalid = valid, nil
	left := make(map[string]error, len(valid))
	for _, r := range valid {
		left[r.kid] = nil
	}
	c.m.noteVerified(left, true) // (a failed commit: the next check finds them again)
	return nil
}

func (c *change) exec(ctx context.Context, sql string, args ...any) error {
	tag, err := c.tx.Exec(ctx, sql, args...)
	if err != nil {
		return err
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("%d rows changed, want 1", tag.RowsAffected())
	}
	c.changed = true
	return nil
}

// create inserts a new key of alg as state (next or active).
func (c *change) create(ctx context.Context, alg, state, reason string) (string, error) {
	if err := c.needKEK(); err != nil {
		return "", err
	}
	k, err := generateKey(c.m.kek, alg)
	if err != nil {
		return "", err
	}
	var activated *time.Time
	if state == StateActive {
		activated = &c.now
	}
	err = c.exec(ctx, `INSERT INTO signing_keys (kid, alg, state, public_jwk, private_key, created_at, activated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, k.kid, alg, state, string(k.publicJWK), k.sealed, c.now, activated)
	if err != nil {
		return "", fmt.Errorf("signing: store %s key: %w", alg, err)
	}
	row := keyRow{kid: k.kid, alg: alg, state: state, created: c.now}
	if activated != nil {
		row.activated = c.now
	}
	if err := c.record(ctx, history.ActionCreate, reason, nil, &row); err != nil {
		return "", err
	}
	c.m.log.InfoContext(ctx, "signing: created key", "alg", alg, "kid", k.kid, "state", state)
	return k.kid, nil
}

// promote makes the next key of a active (retiring the active one, if
// any) and creates a new next key; reason is the history's.
func (c *change) promote(ctx context.Context, a *algKeys, force, revoke bool, reason string) error {
	if err := c.needKEK(); err != nil {
		return err
	}
	old := ""
	if a.active != nil {
		old = a.active.kid
		var revokedAt *time.Time
		if revoke {
			revokedAt = &c.now
		}
		if err := c.exec(ctx, "UPDATE signing_keys SET state = 'retired', retired_at = $2, revoked_at = $3 WHERE kid = $1 AND state = 'active'",
			old, c.now, revokedAt); err != nil {
			return fmt.Errorf("signing: retire %s: %w", old, err)
		}
		after, action := *a.active, history.ActionRetire
		after.state, after.retired = StateRetired, c.now
		if revoke {
			after.revoked, action = c.now, history.ActionRevoke
		}
		if err := c.record(ctx, action, reason, a.active, &after); err != nil {
			return err
		}
	}
	if err := c.exec(ctx, "UPDATE signing_keys SET state = 'active', activated_at = $2 WHERE kid = $1 AND state = 'next'",
		a.next.kid, c.now); err != nil {
		return fmt.Errorf("signing: activate %s: %w", a.next.kid, err)
	}
	after := *a.next
	after.state, after.activated = StateActive, c.now
	if err := c.record(ctx, history.ActionActivate, reason, a.next, &after); err != nil {
		return err
	}
	c.rotated = append(c.rotated, a.alg)
	lvl := "signing: rotated key"
	if force {
		lvl = "signing: rotated key (forced)"
	}
	c.m.log.InfoContext(ctx, lvl, "alg", a.alg, "kid", a.next.kid, "retired", old, "revoked", revoke,
		"published_for", c.now.Sub(a.next.created).String())
	_, err := c.create(ctx, a.alg, StateNext, reason)
	return err
}

// ensure gives a an active and a next key: on an empty database both at
// once (nothing can have cached anything), and a next key where one is
// missing. It reports whether it changed anything.
func (c *change) ensure(ctx context.Context, a *algKeys) (bool, error) {
	switch {
	case a.active == nil && a.next == nil:
		if _, err := c.create(ctx, a.alg, StateActive, reasonInitial); err != nil {
			return false, err
		}
		_, err := c.create(ctx, a.alg, StateNext, reasonInitial)
		return true, err
	case a.active == nil:
		// Someone removed the active key: nothing signs, so the next key is
		// promoted whatever its age.
		c.m.log.WarnContext(ctx, "signing: no active key; promoting the next one", "alg", a.alg, "kid", a.next.kid)
		return true, c.promote(ctx, a, true, false, reasonRepair)
	case a.next == nil:
		_, err := c.create(ctx, a.alg, StateNext, reasonRepair)
		return true, err
	}
	return false, nil
}

// deleteExpired deletes the retired keys past their retention (times in
// the future were clamped to now by clampFuture).
func (c *change) deleteExpired(ctx context.Context) error {
	rows, err := c.tx.Query(ctx, `DELETE FROM signing_keys
		WHERE state = 'retired' AND greatest(retired_at, last_used_at) <= $1 RETURNING kid, alg`,
		c.m.retentionCutoff(c.now))
	if err != nil {
		return fmt.Errorf("signing: delete expired keys: %w", err)
	}
	var kid, alg string
	var deleted []string
	_, err = pgx.ForEachRow(rows, []any{&kid, &alg}, func() error {
		c.changed = true
		deleted = append(deleted, kid)
		c.m.log.InfoContext(ctx, "signing: deleted retired key", "alg", alg, "kid", kid)
		return nil
	})
	if err != nil {
		return fmt.Errorf("signing: delete expired keys: %w", err)
	}
	for _, kid := range deleted {
		for i := range c.rows {
			if c.rows[i].kid == kid {
				if err := c.record(ctx, history.ActionDelete, reasonRetention, &c.rows[i], nil); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Maintain does what the schedule requires: it records last uses, creates
// missing keys (all of them on an empty database), promotes the next key
// of an alg when the active one has been active for RotationPeriod and
// the next one published for PublishLead, and deletes retired keys past
// their retention. Call it every minute on every replica: replicas
// serialise on an advisory lock, and all but one find nothing to do.
func (m *Manager) Maintain(ctx context.Context) (err error) {
	defer markUnavailable(&err)
	flushErr := m.flushUsage(ctx, false)
	err = m.locked(ctx, "maintain", Automatic, func(ctx context.Context, c *change) error {
		if err := c.needKEK(); err != nil {
			return err // nothing changes beside a key that does not verify
		}
		for _, a := range byAlg(c.rows) {
			changed, err := c.ensure(ctx, a)
			if err != nil {
				return err
			}
			if changed {
				continue
			}
			if !c.now.Before(a.active.activated.Add(m.opts.RotationPeriod)) &&
				!c.now.Before(a.next.created.Add(m.opts.PublishLead)) {
				if err := c.promote(ctx, a, false, false, reasonScheduled); err != nil {
					return err
				}
			}
		}
		return c.deleteExpired(ctx)
	})
	return errors.Join(err, flushErr)
}

// Rotate promotes the next key now (`oidc-bridge keys rotate`): of every
// alg, or of opts.Alg. Without Force it does so only when every next key
// concerned has been published for PublishLead, and otherwise changes
// nothing and returns a *TooEarlyError (errors.Is ErrTooEarly) saying when
// it may. See RotateOptions for emergency rotations.
func (m *Manager) Rotate(ctx context.Context, opts RotateOptions) (err error) {
	defer markUnavailable(&err)
	todo := algs[:]
	if opts.Alg != "" {
		if _, ok := m.slots[opts.Alg]; !ok {
			return fmt.Errorf("%w %q: use %s", ErrUnsupportedAlg, opts.Alg, strings.Join(Algorithms(), " or "))
		}
		todo = []string{opts.Alg}
	}
	force := opts.Force || opts.Revoke
	reason := reasonManual
	switch {
	case opts.Revoke:
		reason = reasonRevoke
	case opts.Force:
		reason = reasonForced
	}
	var early *TooEarlyError
	err = m.locked(ctx, "rotate", opts.Actor, func(ctx context.Context, c *change) error {
		if opts.Revoke {
			if err := c.removeInvalid(ctx); err != nil {
				return err
			}
		} else if c.invalid != nil {
			return c.invalid
		}
		keys := byAlg(c.rows)
		var rotate []*algKeys
		for _, alg := range todo {
			a := keys[alg]
			if a.active == nil {
				// An empty database: the new keys are the rotation.
				if _, err := c.ensure(ctx, a); err != nil {
					return err
				}
				continue
			}
			if a.next == nil && !force {
				if _, err := c.ensure(ctx, a); err != nil {
					return err
				}
				early = &TooEarlyError{Alg: alg, KID: "(new)", PublishedAt: c.now, ReadyAt: c.now.Add(m.opts.PublishLead)}
				continue
			}
			if a.next == nil {
				// Forced without a next key: make one to promote at once.
				kid, err := c.create(ctx, alg, StateNext, reason)
				if err != nil {
					return err
				}
				a.next = &keyRow{kid: kid, alg: alg, state: StateNext, created: c.now}
			}
			if ready := a.next.created.Add(m.opts.PublishLead); !force && c.now.Before(ready) {
				if early == nil || ready.After(early.ReadyAt) {
					early = &TooEarlyError{Alg: alg, KID: a.next.kid, PublishedAt: a.next.created, ReadyAt: ready}
				}
				continue
			}
			rotate = append(rotate, a)
		}
		if early != nil {
			return nil // rotate nothing; commit the keys ensure made
		}
		for _, a := range rotate {
			if err := c.promote(ctx, a, force, opts.Revoke, reason); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if early != nil {
		return early
	}
	return nil
}
