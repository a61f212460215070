-- +goose Up

-- The audit cookbook's aggregates at history scale (docs/audit-scale.md).
--
-- 1. audit.issuances is ordered (oldest first, API.md), and a view's ORDER
--    BY keeps it from being merged into the query that reads it: every
--    query on it sorts the rows it reads, aggregates included. At 20
--    million rows that sort was most of the time of "denials by reason per
--    day over 30 days" (100,000 denials read by an index-only scan, then
--    sorted twice). audit.issuances_unsorted is the same rows and columns
--    in no particular order, for aggregates and joins, which need none; the
--    auditor reads it like audit.issuances. A column added to one is added
--    to the other (internal/database checks they match).
CREATE VIEW audit.issuances_unsorted AS
SELECT id, requested_at, completed_at, outcome, error_code, issuer, subject,
       repository, repository_id, ref, sha, environment, event_name, workflow_ref,
       actor, run_id, run_attempt, job_id, token_jti, mapping, provider, target,
       credential_id, expires_at, client_ip, user_agent,
       revoked_at, revoked_by, revocation_reason,
       requested_mapping,
       downscope
FROM public.issuances;

-- +goose StatementBegin
DO $$
BEGIN
    EXECUTE format('GRANT SELECT ON audit.issuances_unsorted TO %I', public.oidc_bridge_auditor_role());
END
$$;
-- +goose StatementEnd

-- 2. Grouping by day: the planner knows how many days and error codes
--    the ledger holds only from statistics on the expression, without
--    which it takes every row for its own group and sorts 100,000 rows to
--    disk where a hash of 155 groups would do.
CREATE STATISTICS issuances_day_reason (ndistinct)
    ON (date_trunc('day', requested_at AT TIME ZONE 'UTC')), error_code FROM issuances;

-- 3. Autovacuum analyzes each partition but never the partitioned table
--    itself, whose statistics (and the ones above) the planner uses for
--    every query over several partitions: they would exist only after a
--    manual ANALYZE. The bridge runs ledger_analyze daily (one replica,
--    with the owner's rights); ledger_jobs records when it last did.
CREATE TABLE ledger_jobs (
    job      text        PRIMARY KEY,
    last_run timestamptz NOT NULL
);

-- Analyzes issuances (the parent and its partitions) unless another
-- replica is at it or it ran less than min_interval ago; reports whether
-- it ran. ANALYZE takes a lock that lets exchanges write.
-- +goose StatementBegin
CREATE FUNCTION ledger_analyze(min_interval interval) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF min_interval IS NULL OR min_interval < interval '1 hour' THEN
        RAISE EXCEPTION 'ledger_analyze: min_interval % under an hour', min_interval;
    END IF;
    IF NOT pg_try_advisory_xact_lock(hashtext('oidc_bridge.ledger_analyze')) THEN
        RETURN false;
    END IF;
    IF EXISTS (SELECT FROM public.ledger_jobs WHERE job = 'analyze' AND last_run > clock_timestamp() - min_interval) THEN
        RETURN false;
    END IF;
    ANALYZE public.issuances;
    INSERT INTO public.ledger_jobs (job, last_run) VALUES ('analyze', clock_timestamp())
    ON CONFLICT (job) DO UPDATE SET last_run = excluded.last_run;
    RETURN true;
END
$$;
-- +goose StatementEnd
REVOKE EXECUTE ON FUNCTION ledger_analyze(interval) FROM PUBLIC;

-- +goose StatementBegin
DO $$
BEGIN
    EXECUTE format('GRANT EXECUTE ON FUNCTION public.ledger_analyze(interval) TO %I', public.oidc_bridge_runtime_role());
    EXECUTE format('GRANT SELECT ON public.ledger_jobs TO %I', public.oidc_bridge_runtime_role());
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION ledger_analyze(interval);
DROP TABLE ledger_jobs;
DROP STATISTICS issuances_day_reason;
DROP VIEW audit.issuances_unsorted;
