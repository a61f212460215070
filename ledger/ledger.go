package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Outcomes of the ledger's rows (the audit view's outcome column).
const (
	OutcomePending    = "pending"
	OutcomeIssued     = "issued"
	OutcomeDenied     = "denied"
	OutcomeFailed     = "failed"
	OutcomeUnknown    = "unknown"
	OutcomeWouldIssue = "would_issue" // an audit-mode mapping would have issued
	OutcomeWouldDeny  = "would_deny"  // an audit-mode mapping would have refused
)

// Window is the sliding window of the per_hour quota.
const Window = time.Hour

// countedOutcomes are the outcomes a quota counts: every credential that was
// or may have been issued. Reserve's quotas and Usage count the same rows:
// per_hour by (mapping_id, lower(repository)) within Window, per_job by
// (mapping_id, issuer, run_id, run_attempt, job_id) within JobWindow, both
// on the database's clock.
const countedOutcomes = `('issued', 'pending', 'unknown')`

// Ledger is the issuance ledger over Postgres.
type Ledger struct {
	pool    *pgxpool.Pool
	timeout time.Duration
}

// New returns a Ledger on pool.
func New(pool *pgxpool.Pool) *Ledger {
	return &Ledger{pool: pool, timeout: 5 * time.Second}
}

// EnsurePartitions creates the ledger's monthly partitions from this month
// to monthsAhead months ahead. serve calls it at start and daily.
func (l *Ledger) EnsurePartitions(ctx context.Context, monthsAhead int) error {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	if _, err := l.pool.Exec(ctx, `SELECT ledger_ensure_partitions($1)`, monthsAhead); err != nil {
		return fmt.Errorf("ledger: ensure partitions: %w", err)
	}
	return nil
}

// RepositoryUsage counts one repository's issuances in the window.
type RepositoryUsage struct {
	Repository string `json:"repository"`
	Issued     int    `json:"issued"`
	// Remaining is what per_hour leaves; absent without a per_hour quota.
	Remaining *int `json:"remaining,omitempty"`
}

// JobUsage counts one job's issuances in JobWindow, as per_job does.
type JobUsage struct {
	Issuer     string `json:"issuer"`
	RunID      string `json:"run_id"`
	RunAttempt string `json:"run_attempt,omitempty"`
	JobID      string `json:"job_id,omitempty"`
	Issued     int    `json:"issued"`
	Remaining  *int   `json:"remaining,omitempty"`
}

// Usage is what a mapping's quotas have counted: per repository in the last
// hour (per_hour), per job in JobWindow (per_job).
type Usage struct {
	Mapping       string `json:"mapping"`
	WindowSeconds int    `json:"window_seconds"`
	// JobWindowSeconds is the window of the Jobs counts: JobWindow.
	JobWindowSeconds int               `json:"job_window_seconds"`
	PerHour          int               `json:"per_hour,omitempty"`
	PerJob           int               `json:"per_job,omitempty"`
	Issued           int               `json:"issued"`
	Repositories     []RepositoryUsage `json:"repositories"`
	Jobs             []JobUsage        `json:"jobs"`
}

// maxJobs bounds the jobs listed in a Usage: the most active first.
const maxJobs = 100

// Usage reports the counts of the mapping (its id and name) for the quotas
// perHour and perJob (0: no limit).
func (l *Ledger) Usage(ctx context.Context, mappingID int64, name string, perHour, perJob int) (Usage, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	u := Usage{Mapping: name, WindowSeconds: int(Window / time.Second), JobWindowSeconds: int(JobWindow / time.Second),
		PerHour: perHour, PerJob: perJob, Repositories: []RepositoryUsage{}, Jobs: []JobUsage{}}
	rows, err := l.pool.Query(ctx, `
		SELECT lower(coalesce(repository, '')), count(*)
		FROM issuances
		WHERE mapping_id = $1 AND requested_at > clock_timestamp() - make_interval(secs => $2::float8)
			AND outcome IN `+countedOutcomes+`
		GROUP BY 1 ORDER BY 2 DESC, 1`, mappingID, Window.Seconds())
	if err != nil {
		return Usage{}, dbError(fmt.Sprintf("usage of %q", name), err)
	}
	u.Repositories, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (RepositoryUsage, error) {
		var ru RepositoryUsage
		err := r.Scan(&ru.Repository, &ru.Issued)
		ru.Remaining = remaining(perHour, ru.Issued)
		return ru, err
	})
	if err != nil {
		return Usage{}, dbError(fmt.Sprintf("usage of %q", name), err)
	}
	for _, r := range u.Repositories {
		u.Issued += r.Issued
	}
	rows, err = l.pool.Query(ctx, `
		SELECT issuer, coalesce(run_id, ''), coalesce(run_attempt, ''), coalesce(job_id, ''), count(*)
		FROM issuances
		WHERE mapping_id = $1 AND requested_at > clock_timestamp() - make_interval(secs => $2::float8)
			AND outcome IN `+countedOutcomes+`
		GROUP BY 1, 2, 3, 4 ORDER BY 5 DESC, 1, 2, 3, 4 LIMIT $3`, mappingID, JobWindow.Seconds(), maxJobs)
	if err != nil {
		return Usage{}, dbError(fmt.Sprintf("usage of %q", name), err)
	}
	u.Jobs, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (JobUsage, error) {
		var j JobUsage
		err := r.Scan(&j.Issuer, &j.RunID, &j.RunAttempt, &j.JobID, &j.Issued)
		j.Remaining = remaining(perJob, j.Issued)
		return j, err
	})
	if err != nil {
		return Usage{}, dbError(fmt.Sprintf("usage of %q", name), err)
	}
	return u, nil
}

func remaining(limit, used int) *int {
	if limit <= 0 {
		return nil
	}
	r := max(limit-used, 0)
	return &r
}
