package ledger

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Record is one recorded attempt as the audit view shows it (AuditView's
// columns but the target), for the console's searches. It holds
// identifiers only: the ledger never had the token.
type Record struct {
	ID               string
	RequestedAt      time.Time
	CompletedAt      *time.Time
	Outcome          string
	ErrorCode        string
	Issuer           string // the token's iss, as recorded
	Subject          string
	Repository       string
	RepositoryID     string
	Ref              string
	SHA              string
	Environment      string
	EventName        string
	WorkflowRef      string
	Actor            string
	RunID            string
	RunAttempt       string
	JobID            string
	TokenJTI         string
	Mapping          string
	Provider         string
	CredentialID     string
	ExpiresAt        *time.Time
	ClientIP         string
	UserAgent        string
	RevokedAt        *time.Time
	RevokedBy        string
	RevocationReason string
	RequestedMapping string
}

// Search is a bounded query of the ledger, newest first. Every field but
// From and To is optional; an empty filter matches every row. A search
// always has a time window (From, To] of at most MaxSearchWindow and a
// Limit of at most MaxSearchLimit, so that its cost does not grow with the
// ledger: the window prunes partitions, and the repository, mapping and
// denial indexes serve the usual filters.
type Search struct {
	// Outcomes keeps rows of these outcomes; empty keeps every outcome.
	Outcomes []string
	// Exact matches of the columns of the same names. Issuer is the
	// token's iss (the issuer's URL), as the ledger records it.
	Repository, Issuer, Mapping, Provider, RunID, ErrorCode string
	// From and To bound requested_at: From <= requested_at < To.
	From, To time.Time
	// After continues a previous page: rows strictly older than it
	// (keyset pagination on (requested_at, id), never OFFSET).
	After *Cursor
	// Limit is the page's size: 1 to MaxSearchLimit.
	Limit int
}

// Cursor is the keyset position of a row in a Search's order.
type Cursor struct {
	At time.Time
	ID string
}

// String encodes the cursor for a URL: unix nanoseconds "_" the row's id.
func (c Cursor) String() string {
	return strconv.FormatInt(c.At.UnixNano(), 10) + "_" + c.ID
}

// ParseCursor reads a Cursor's String.
func ParseCursor(s string) (Cursor, error) {
	at, id, ok := strings.Cut(s, "_")
	n, err := strconv.ParseInt(at, 10, 64)
	if !ok || err != nil {
		return Cursor{}, fmt.Errorf("%w: cursor %q", ErrInvalid, s)
	}
	if _, err := uuid.Parse(id); err != nil {
		return Cursor{}, fmt.Errorf("%w: cursor %q", ErrInvalid, s)
	}
	return Cursor{At: time.Unix(0, n), ID: id}, nil
}

// Bounds of a Search.
const (
	MaxSearchWindow = 31 * 24 * time.Hour
	MaxSearchLimit  = 10_000
)

// Outcomes lists every outcome of the ledger's rows.
func Outcomes() []string {
	return []string{OutcomeIssued, OutcomeDenied, OutcomeFailed, OutcomePending, OutcomeUnknown, OutcomeWouldIssue, OutcomeWouldDeny}
}

// recordColumns are the columns a Record scans, in its field order.
const recordColumns = `id::text, requested_at, completed_at, outcome, coalesce(error_code, ''), issuer,
	coalesce(subject, ''), coalesce(repository, ''), coalesce(repository_id, ''), coalesce(ref, ''),
	coalesce(sha, ''), coalesce(environment, ''), coalesce(event_name, ''), coalesce(workflow_ref, ''),
	coalesce(actor, ''), coalesce(run_id, ''), coalesce(run_attempt, ''), coalesce(job_id, ''),
	coalesce(token_jti, ''), coalesce(mapping, ''), coalesce(provider, ''), coalesce(credential_id, ''),
	expires_at, coalesce(host(client_ip), ''), coalesce(user_agent, ''), revoked_at,
	coalesce(revoked_by, ''), coalesce(revocation_reason, ''), coalesce(requested_mapping, '')`

func scanRecord(row pgx.CollectableRow) (Record, error) {
	var r Record
	err := row.Scan(&r.ID, &r.RequestedAt, &r.CompletedAt, &r.Outcome, &r.ErrorCode, &r.Issuer,
		&r.Subject, &r.Repository, &r.RepositoryID, &r.Ref, &r.SHA, &r.Environment, &r.EventName,
		&r.WorkflowRef, &r.Actor, &r.RunID, &r.RunAttempt, &r.JobID, &r.TokenJTI, &r.Mapping,
		&r.Provider, &r.CredentialID, &r.ExpiresAt, &r.ClientIP, &r.UserAgent, &r.RevokedAt,
		&r.RevokedBy, &r.RevocationReason, &r.RequestedMapping)
	return r, err
}

// Outcome modes of a search statement: any outcome, the denials (written
// as literals, so that the partial index issuances_denied matches the
// predicate), or one outcome given as a parameter.
const (
	searchAnyOutcome = iota
	searchDenials
	searchOneOutcome
	searchModes
)

// searchFilters are the optional exact filters, in argument order; the
// bit after them is the keyset cursor.
var searchFilters = [...]string{"repository", "issuer", "mapping", "provider", "run_id", "error_code"}

const searchAfter = len(searchFilters)

// searchStatements[mode][mask] is the statement of a search in an outcome
// mode with the filters of mask (bit i: searchFilters[i]; bit searchAfter:
// the cursor): only the filters a search sets appear, so that the planner
// sees which index serves it (a generic "$1 IS NULL OR" plan would not).
// Built once from constants (internal/sqlcheck allows this table by name).
var searchStatements = func() (t [searchModes][1 << (searchAfter + 1)]string) {
	for mode := range searchModes {
		for mask := range 1 << (searchAfter + 1) {
			var b strings.Builder
			b.WriteString(`SELECT ` + recordColumns + ` FROM issuances WHERE requested_at >= $1 AND requested_at < $2`)
			n := 2
			switch mode {
			case searchDenials:
				b.WriteString(` AND outcome IN ('denied', 'failed')`)
			case searchOneOutcome:
				n++
				fmt.Fprintf(&b, " AND outcome = $%d", n)
			}
			for i, col := range searchFilters {
				if mask&(1<<i) != 0 {
					n++
					fmt.Fprintf(&b, " AND %s = $%d", col, n)
				}
			}
			if mask&(1<<searchAfter) != 0 {
				fmt.Fprintf(&b, " AND (requested_at, id) < ($%d, $%d::uuid)", n+1, n+2)
				n += 2
			}
			fmt.Fprintf(&b, " ORDER BY requested_at DESC, id DESC LIMIT $%d", n+1)
			t[mode][mask] = b.String()
		}
	}
	return t
}()

// searchArgs checks s and returns its statement's outcome mode, filter
// mask and arguments.
func searchArgs(s Search) (mode, mask int, args []any, err error) {
	if s.From.IsZero() || s.To.IsZero() || !s.From.Before(s.To) {
		return 0, 0, nil, fmt.Errorf("%w: a search needs a time window", ErrInvalid)
	}
	if s.To.Sub(s.From) > MaxSearchWindow {
		return 0, 0, nil, fmt.Errorf("%w: a search's window is at most %s", ErrInvalid, MaxSearchWindow)
	}
	if s.Limit < 1 || s.Limit > MaxSearchLimit {
		return 0, 0, nil, fmt.Errorf("%w: a search's limit is 1 to %d", ErrInvalid, MaxSearchLimit)
	}
	args = []any{s.From, s.To}
	os := slices.Clone(s.Outcomes)
	slices.Sort(os)
	os = slices.Compact(os)
	for _, o := range os {
		if !slices.Contains(Outcomes(), o) {
			return 0, 0, nil, fmt.Errorf("%w: no outcome %q", ErrInvalid, o)
		}
	}
	switch {
	case len(os) == 0:
	case slices.Equal(os, []string{OutcomeDenied, OutcomeFailed}):
		mode = searchDenials
	case len(os) == 1:
		mode = searchOneOutcome
		args = append(args, os[0])
	default:
		return 0, 0, nil, fmt.Errorf("%w: a search keeps every outcome, one, or denied and failed", ErrInvalid)
	}
	for i, v := range []string{s.Repository, s.Issuer, s.Mapping, s.Provider, s.RunID, s.ErrorCode} {
		if v != "" {
			mask |= 1 << i
			args = append(args, v)
		}
	}
	if s.After != nil {
		mask |= 1 << searchAfter
		args = append(args, s.After.At, s.After.ID)
	}
	return mode, mask, append(args, s.Limit), nil
}

// Search returns the rows s matches, newest first, at most s.Limit.
func (l *Ledger) Search(ctx context.Context, s Search) ([]Record, error) {
	mode, mask, args, err := searchArgs(s)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	rows, err := l.pool.Query(ctx, searchStatements[mode][mask], args...)
	if err != nil {
		return nil, dbError("search", err)
	}
	out, err := pgx.CollectRows(rows, scanRecord)
	if err != nil {
		return nil, dbError("search", err)
	}
	return out, nil
}

// EachRecord calls fn with each row s matches, newest first, as the
// database sends them (a CSV export streams them without holding the
// page); fn's error stops the walk and is returned.
func (l *Ledger) EachRecord(ctx context.Context, s Search, fn func(Record) error) error {
	mode, mask, args, err := searchArgs(s)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 4*l.timeout)
	defer cancel()
	rows, err := l.pool.Query(ctx, searchStatements[mode][mask], args...)
	if err != nil {
		return dbError("export", err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return dbError("export", err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return dbError("export", err)
	}
	return nil
}

// ErrNoRecord is Record's error for an id the ledger does not hold.
var ErrNoRecord = errors.New("ledger: no such issuance")

// Record returns the row of issuance id. The primary key (id,
// requested_at) serves it in every partition.
func (l *Ledger) Record(ctx context.Context, id string) (Record, error) {
	if _, err := uuid.Parse(id); err != nil {
		return Record{}, fmt.Errorf("%w: %q", ErrNoRecord, id)
	}
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	rows, err := l.pool.Query(ctx, `SELECT `+recordColumns+` FROM issuances WHERE id = $1::uuid LIMIT 1`, id)
	if err != nil {
		return Record{}, dbError("record", err)
	}
	r, err := pgx.CollectExactlyOneRow(rows, scanRecord)
	if errors.Is(err, pgx.ErrNoRows) {
		return Record{}, fmt.Errorf("%w: %q", ErrNoRecord, id)
	}
	if err != nil {
		return Record{}, dbError("record", err)
	}
	return r, nil
}

// HourlyOutcomes counts one mapping's rows per hour and outcome over the
// last Hours hours: Counts[h][outcome], h = 0 the oldest hour, Hours-1 the
// current one. The mappings page draws it.
type HourlyOutcomes struct {
	MappingID int64
	Counts    []map[string]int
}

// OutcomeHours is the span of Outcomes24h.
const OutcomeHours = 24

// Outcomes24h counts every mapping's rows of the last OutcomeHours hours
// (the current hour and the OutcomeHours-1 before it, on now's clock, in
// UTC), per hour and settled outcome (never pending: a row is pending for
// the mint's milliseconds), keyed by mapping id. It reads the hourly
// counters the database keeps as it writes the ledger (mapping_hours,
// migration 00019): at most mappings x hours x outcomes x 8 rows, whatever
// a day's exchanges.
func (l *Ledger) Outcomes24h(ctx context.Context, now time.Time) (map[int64]*HourlyOutcomes, error) {
	hour := now.UTC().Truncate(time.Hour)
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	rows, err := l.pool.Query(ctx, `
		SELECT mapping_id, (extract(epoch FROM ($1::timestamptz - hour)) / 3600)::int AS age, outcome, sum(n)::bigint
		FROM mapping_hours
		WHERE hour >= $2 AND hour <= $1
		GROUP BY mapping_id, hour, outcome
		HAVING sum(n) <> 0`, hour, hour.Add(-(OutcomeHours-1)*time.Hour))
	if err != nil {
		return nil, dbError("outcomes", err)
	}
	out := map[int64]*HourlyOutcomes{}
	var (
		id      int64
		age     int
		n       int64
		outcome string
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &age, &outcome, &n}, func() error {
		if age < 0 || age >= OutcomeHours {
			return nil
		}
		h := out[id]
		if h == nil {
			h = &HourlyOutcomes{MappingID: id, Counts: make([]map[string]int, OutcomeHours)}
			out[id] = h
		}
		i := OutcomeHours - 1 - age
		if h.Counts[i] == nil {
			h.Counts[i] = map[string]int{}
		}
		h.Counts[i][outcome] += int(n)
		return nil
	})
	if err != nil {
		return nil, dbError("outcomes", err)
	}
	return out, nil
}

// HourUse is a mapping's per_hour quota use now: the credentials counted in
// the last Window, and its busiest repository's count (per_hour counts per
// mapping and repository).
type HourUse struct {
	Issued            int
	BusiestRepository string
	BusiestIssued     int
}

// HourUsage returns the HourUse at now of every mapping that has a per_hour
// quota, in one query, counted as the quota counts (countQuotas): the
// per-minute buckets of quota_minutes from b on and the rows of issuances
// in (now - Window, b), where b is the later of the next minute after
// now - Window and the mapping's counting start: at most one minute of
// rows, whatever the hour's exchanges.
func (l *Ledger) HourUsage(ctx context.Context, now time.Time) (map[int64]HourUse, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	rows, err := l.pool.Query(ctx, `
		WITH t AS (SELECT @now::timestamptz AS n),
		b AS (
			SELECT q.mapping_id, `+bucketStart+` AS b
			FROM t, quota_counting q JOIN mappings m ON m.id = q.mapping_id AND m.quota_per_hour IS NOT NULL)
		SELECT mapping_id, repo, sum(n)::bigint FROM (
			SELECT q.mapping_id, CASE WHEN q.repo_key = 'n' THEN '' ELSE substr(q.repo_key, 2) END AS repo, q.n::bigint AS n
			FROM quota_minutes q JOIN b ON b.mapping_id = q.mapping_id AND q.minute >= b.b
			UNION ALL
			SELECT i.mapping_id, lower(coalesce(i.repository, '')), 1
			FROM issuances i JOIN b ON b.mapping_id = i.mapping_id AND i.requested_at < b.b
			WHERE i.requested_at > @now::timestamptz - make_interval(secs => @window::float8)
				AND i.requested_at < (SELECT max(b.b) FROM b) AND i.outcome IN `+countedOutcomes+`) s
		GROUP BY 1, 2
		HAVING sum(n) <> 0`, pgx.NamedArgs{"now": now, "window": Window.Seconds()})
	if err != nil {
		return nil, dbError("hour usage", err)
	}
	out := map[int64]HourUse{}
	var (
		id   int64
		repo string
		n64  int64
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &repo, &n64}, func() error {
		n := int(n64)
		u := out[id]
		u.Issued += n
		if n > u.BusiestIssued || (n == u.BusiestIssued && repo < u.BusiestRepository) {
			u.BusiestRepository, u.BusiestIssued = repo, n
		}
		out[id] = u
		return nil
	})
	if err != nil {
		return nil, dbError("hour usage", err)
	}
	return out, nil
}
