package ledger

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The quotas (per_hour, per_job) are enforced here: Reserve takes this
// path for an attempt with quotas (see the package documentation's
// "Quotas").

// JobWindow is how far back the per_job quota counts a job's issuances: a
// job's lifetime, bounded. A job key (issuer, run id, run attempt, job id)
// never comes back once its job has ended, and no CI job lives this long
// (GitHub stops a job after 6 hours on hosted runners and 5 days on
// self-hosted ones; a re-run is a new run attempt, hence a new job), so
// per_job in effect counts all rows of the job. The bound keeps the count
// to the latest partitions.
const JobWindow = 7 * 24 * time.Hour

// claimAndLock is checkAndClaim and, when the claim succeeded, takes the
// transaction advisory locks of the quota buckets in ascending order (so
// that two transactions never wait on each other in a cycle; they are
// released at commit or rollback). It returns whether the claim succeeded
// and the recheck's refusal. The buckets' keys are computed by the database
// so that lower() is exactly the one the counts use.
var claimAndLock = mustNamed(`
WITH` + checkAndClaim + `,
k AS (
	SELECT
		hashtextextended(json_build_array('oidc-bridge/ledger/per_hour', @mapping_id::bigint,
			lower(@repository::text))::text, 0) AS hour_key,
		hashtextextended(json_build_array('oidc-bridge/ledger/per_job', @mapping_id::bigint,
			@issuer::text, @run_id::text, @run_attempt::text, @job_id::text)::text, 0) AS job_key
	FROM g1)
SELECT EXISTS (SELECT FROM g1), (SELECT refusal FROM s),
	(SELECT count(pg_advisory_xact_lock(x)) FROM unnest(ARRAY(
		SELECT DISTINCT v.x FROM k, LATERAL (VALUES
			(CASE WHEN @per_hour::int > 0 THEN k.hour_key END),
			(CASE WHEN @per_job::int > 0 THEN k.job_key END)) AS v(x)
		WHERE v.x IS NOT NULL ORDER BY v.x)) AS x)`)

// releaseGuard gives back the guard rows claimed by this transaction.
var releaseGuard = mustNamed(`
DELETE FROM replay_guard WHERE issuance_id = @id::uuid`)

// bucketStart is b, where a per_hour count at t.n starts reading the
// buckets of the mapping whose quota_counting row is q: the later of the
// next minute after t.n - @window and the mapping's counting start.
// countQuotas and HourUsage (the console) both count with it.
const bucketStart = `greatest(q.since, date_trunc('minute', t.n - make_interval(secs => @window::float8)) + interval '1 minute')`

// countQuotas returns the moment of the count (which becomes requested_at)
// and, per quota, the counted issuances and the oldest of them. The
// variants differ in how an absent repository or run id (NULL) is matched,
// so that the indexes serve both.
//
// per_hour costs the same whatever its size: the sliding hour (n - 1h, n]
// is counted as the rows of issuances in (n - 1h, b) (at most one minute
// of them, and no more than the limit) plus the per-minute buckets of
// quota_minutes from b on (at most 60), where b is the later of the next
// minute after n - 1h and the mapping's counting start (quota_counting,
// migration 00016). A mapping without a counting start in the database (no
// per_hour quota there: this replica's catalog is older or newer than the
// database's) is counted from issuances alone, up to the limit, as before:
// on any doubt, the exact rows. The oldest counted row, for Retry-After, is
// the first index entry of the window. per_job counts the job's rows (a
// job has few), up to the limit.
var countQuotas = func() (q [2][2]string) {
	for i, repo := range []string{
		`lower(repository) IS NULL`,
		`lower(repository) = lower(@repository::text)`,
	} {
		for j, run := range []string{`run_id IS NULL`, `run_id = @run_id::text`} {
			hour := `@per_hour::int > 0 AND mapping_id = @mapping_id::bigint AND ` + repo + `
			AND outcome IN ` + countedOutcomes + `
			AND requested_at > t.n - make_interval(secs => @window::float8)`
			q[i][j] = `
WITH t AS (SELECT coalesce(@requested_at::timestamptz, clock_timestamp()) AS n)
SELECT t.n, e.count + c.count, o.oldest, j.count, j.oldest
FROM t
CROSS JOIN LATERAL (
	SELECT coalesce((
		SELECT ` + bucketStart + `
		FROM quota_counting q JOIN mappings m ON m.id = q.mapping_id
		WHERE q.mapping_id = @mapping_id::bigint AND m.quota_per_hour IS NOT NULL), 'infinity') AS b) b
CROSS JOIN LATERAL (
	SELECT count(*) AS count FROM (
		SELECT FROM issuances
		WHERE ` + hour + ` AND requested_at < b.b
		LIMIT @per_hour::int) s) e
CROSS JOIN LATERAL (
	SELECT coalesce(sum(n), 0)::int AS count FROM quota_minutes
	WHERE @per_hour::int > 0 AND b.b < 'infinity' AND mapping_id = @mapping_id::bigint
		AND repo_key = coalesce('r' || lower(@repository::text), 'n') AND minute >= b.b) c
CROSS JOIN LATERAL (
	SELECT min(requested_at) AS oldest FROM (
		SELECT requested_at FROM issuances WHERE ` + hour + `
		ORDER BY requested_at LIMIT 1) s) o
CROSS JOIN LATERAL (
	SELECT count(*) AS count, min(requested_at) AS oldest FROM (
		SELECT requested_at FROM issuances
		WHERE @per_job::int > 0 AND mapping_id = @mapping_id::bigint AND issuer = @issuer::text AND ` + run + `
			AND coalesce(run_attempt, '') = coalesce(@run_attempt::text, '')
			AND coalesce(job_id, '') = coalesce(@job_id::text, '')
			AND outcome IN ` + countedOutcomes + `
			AND requested_at > t.n - make_interval(secs => @job_window::float8)
		ORDER BY requested_at LIMIT @per_job::int) s) j`
		}
	}
	return q
}()

// reserveWithQuotas is Reserve for an attempt with quotas: one READ
// COMMITTED transaction (explicitly, whatever the database's default: the
// count must see what others committed before the locks were granted) in
// two round trips. The first claims the token, takes the buckets' locks
// and counts, each statement on its own snapshot, in that order; the
// second writes the row (pending, or denied for a replay or a spent quota,
// giving the guard back for the latter) and commits.
func reserveWithQuotas(ctx context.Context, pool *pgxpool.Pool, a Attempt, args pgx.NamedArgs) (res Reservation, err error) {
	id := args["id"].(string)
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return Reservation{}, dbError("reserve", err)
	}
	// A connection released inside a transaction is closed by the pool,
	// never reused; a failure rolls back explicitly first.
	defer conn.Release()
	defer func() {
		if err != nil && conn.Conn().PgConn().TxStatus() != 'I' {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			defer cancel()
			_, _ = conn.Exec(rctx, "ROLLBACK")
		}
	}()

	var (
		claimed            bool
		refusal            *string
		locked             int
		now                time.Time
		hourN, jobN        int
		hourOld, jobOldest *time.Time
	)
	c := a.Claims
	b := &pgx.Batch{}
	b.Queue("BEGIN ISOLATION LEVEL READ COMMITTED")
	b.Queue(claimAndLock.sql, claimAndLock.args(args)...).QueryRow(func(r pgx.Row) error { return r.Scan(&claimed, &refusal, &locked) })
	b.Queue(countQuotas[b2i(text(c.Repository, maxClaim) != nil)][b2i(text(c.RunID, maxClaim) != nil)], args).
		QueryRow(func(r pgx.Row) error { return r.Scan(&now, &hourN, &hourOld, &jobN, &jobOldest) })
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return Reservation{}, dbError("reserve: claim, lock and count", err)
	}

	var denial error
	b = &pgx.Batch{}
	switch {
	case refusal != nil:
		args["outcome"], args["error_code"] = "denied", *refusal
		denial = reserveDenial(refusal, id)
	case !claimed:
		args["outcome"], args["error_code"] = "denied", CodeTokenReplayed
		denial = &ReplayError{IssuanceID: id}
	default:
		// requested_at is the moment of the count: within a bucket, the
		// order of requested_at is the order of the locks, so no sliding
		// hour ever holds more than the limit.
		args["requested_at"] = now
		var qe *QuotaError
		if a.PerHour > 0 && hourN >= a.PerHour {
			qe = &QuotaError{Quota: QuotaPerHour, Limit: a.PerHour, RetryAfter: retryAfter(hourOld, Window, now)}
		}
		if a.PerJob > 0 && jobN >= a.PerJob {
			// Both spent: the later freeing is when a retry can pass.
			if r := retryAfter(jobOldest, JobWindow, now); qe == nil || r > qe.RetryAfter {
				qe = &QuotaError{Quota: QuotaPerJob, Limit: a.PerJob, RetryAfter: r}
			}
		}
		if qe != nil {
			qe.IssuanceID = id
			b.Queue(releaseGuard.sql, releaseGuard.args(args)...)
			args["outcome"], args["error_code"] = "denied", CodeQuotaExceeded
			denial = qe
		}
	}
	var expires *time.Time
	res.ID = id
	b.Queue(insertIssuance.sql, insertIssuance.args(args)...).QueryRow(func(r pgx.Row) error { return r.Scan(&res.RequestedAt, &expires) })
	b.Queue("COMMIT")
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return Reservation{}, dbError("reserve: record and commit", err)
	}
	if denial != nil {
		return Reservation{}, denial
	}
	if expires != nil {
		res.ExpiresAt = *expires
	}
	return res, nil
}

// retryAfter is when the oldest counted issuance leaves the window: at
// least a second, at most the window.
func retryAfter(oldest *time.Time, window time.Duration, now time.Time) time.Duration {
	if oldest == nil {
		return window
	}
	return min(max(oldest.Add(window).Sub(now), time.Second), window)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
