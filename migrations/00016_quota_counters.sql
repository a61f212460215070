-- +goose Up

-- The per_hour quota at a cost independent of its size. It counted, per
-- exchange, up to per_hour rows of issuances (a quota of 10,000 read
-- 10,000 index entries). Now the counted rows (outcome issued, pending or
-- unknown) of every mapping that has a per_hour quota are also counted in
-- per-minute buckets, by the database itself in the transaction that
-- writes the row, so that whatever writes the ledger (the bridge, an older
-- replica during an upgrade, SQL) keeps them exact:
--
--   quota_minutes   (mapping_id, repository key, minute) -> rows. The
--                   repository key is 'r' || lower(repository), or 'n' for
--                   a row without repository (the quota's buckets).
--   quota_counting  per mapping, the moment from which its rows are all in
--                   quota_minutes (aligned on a minute). Rows before it are
--                   counted from issuances, as before.
--
-- The count of a sliding hour (t - 1h, t] is then the rows of issuances in
-- (t - 1h, b) plus the buckets from b on, where b is the later of the next
-- minute after t - 1h and the mapping's counting start: at most 60 buckets
-- and one minute's rows at the edge (ledger/quota.go).
--
-- Which rows are counted is decided from the mappings table, not from a
-- replica's cache: a row is counted when, at its insert, its mapping has a
-- per_hour quota. A mapping created with a quota counts from the start
-- (-infinity: no row can name an id that did not exist). A mapping that
-- gains a quota counts from the minute after an hour later, because a
-- reservation that read the mapping before the change committed may still
-- be writing rows: until then its hour is counted from issuances. Losing
-- the quota drops the mapping's start; regaining it starts anew.
CREATE TABLE quota_minutes (
    mapping_id bigint      NOT NULL,
    repo_key   text        NOT NULL,
    minute     timestamptz NOT NULL CHECK (minute = date_trunc('minute', minute)),
    n          integer     NOT NULL,
    PRIMARY KEY (mapping_id, repo_key, minute)
);

CREATE TABLE quota_counting (
    mapping_id bigint      PRIMARY KEY,
    since      timestamptz NOT NULL
);

-- Counts a row of issuances in, or out of, its bucket. Fired for inserts
-- of counted rows and for updates that move a row into or out of the
-- counted outcomes (Fail: pending to failed). It runs with the rights of
-- the writer (the runtime role may write the buckets): a function with its
-- own search_path or owner costs a configuration change per row, which
-- doubled the cost of an insert. Every name in it is qualified.
-- +goose StatementBegin
CREATE FUNCTION ledger_quota_count() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    r     record;
    delta integer;
    start timestamptz;
BEGIN
    IF TG_OP = 'INSERT' OR NEW.outcome IN ('issued', 'pending', 'unknown') THEN
        r := NEW; delta := 1;
    ELSE
        r := OLD; delta := -1;
    END IF;
    IF r.mapping_id IS NULL THEN
        RETURN NULL;
    END IF;
    -- quota_counting holds a row exactly while the mapping has a quota.
    SELECT q.since INTO start FROM public.quota_counting q WHERE q.mapping_id = r.mapping_id;
    -- Buckets before the start are never read.
    IF start IS NULL OR r.requested_at < start THEN
        RETURN NULL;
    END IF;
    INSERT INTO public.quota_minutes AS q (mapping_id, repo_key, minute, n)
    VALUES (r.mapping_id, coalesce('r' || lower(r.repository), 'n'), date_trunc('minute', r.requested_at), delta)
    ON CONFLICT (mapping_id, repo_key, minute) DO UPDATE SET n = q.n + excluded.n;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
REVOKE EXECUTE ON FUNCTION ledger_quota_count() FROM PUBLIC;

-- A mapping's counting start follows its per_hour quota.
-- +goose StatementBegin
CREATE FUNCTION ledger_quota_start() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.quota_per_hour IS NULL THEN
        DELETE FROM public.quota_counting WHERE mapping_id = NEW.id;
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO public.quota_counting (mapping_id, since) VALUES (NEW.id, '-infinity')
        ON CONFLICT (mapping_id) DO UPDATE SET since = greatest(public.quota_counting.since,
            date_trunc('minute', clock_timestamp()) + interval '61 minutes');
    ELSIF OLD.quota_per_hour IS NULL OR NEW.id <> OLD.id THEN
        INSERT INTO public.quota_counting (mapping_id, since)
        VALUES (NEW.id, date_trunc('minute', clock_timestamp()) + interval '61 minutes')
        ON CONFLICT (mapping_id) DO UPDATE SET since = excluded.since;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
REVOKE EXECUTE ON FUNCTION ledger_quota_start() FROM PUBLIC;

-- No insert may slip between the backfill and the triggers: the lock
-- waits for the writes in flight and holds the new ones until commit.
LOCK TABLE issuances IN SHARE ROW EXCLUSIVE MODE;
LOCK TABLE mappings IN SHARE ROW EXCLUSIVE MODE;

CREATE TRIGGER ledger_quota_start AFTER INSERT OR UPDATE OF quota_per_hour ON mappings
    FOR EACH ROW EXECUTE FUNCTION ledger_quota_start();
CREATE TRIGGER ledger_quota_count_insert AFTER INSERT ON issuances
    FOR EACH ROW WHEN (NEW.mapping_id IS NOT NULL AND NEW.outcome IN ('issued', 'pending', 'unknown'))
    EXECUTE FUNCTION ledger_quota_count();
CREATE TRIGGER ledger_quota_count_update AFTER UPDATE OF outcome ON issuances
    FOR EACH ROW WHEN ((OLD.outcome IN ('issued', 'pending', 'unknown')) IS DISTINCT FROM
        (NEW.outcome IN ('issued', 'pending', 'unknown')))
    EXECUTE FUNCTION ledger_quota_count();

-- The mappings that have a quota count from now on, with the last hour's
-- rows in their buckets (nothing can be written meanwhile: the locks).
-- now(), the transaction's start, not clock_timestamp(): a volatile bound
-- can use neither partition pruning nor an index, and the insert would
-- read the whole ledger while exchanges wait on the locks.
INSERT INTO quota_counting (mapping_id, since)
SELECT id, '-infinity' FROM mappings WHERE quota_per_hour IS NOT NULL;
INSERT INTO quota_minutes (mapping_id, repo_key, minute, n)
SELECT i.mapping_id, coalesce('r' || lower(i.repository), 'n'), date_trunc('minute', i.requested_at), count(*)
FROM issuances i JOIN quota_counting q ON q.mapping_id = i.mapping_id
WHERE i.outcome IN ('issued', 'pending', 'unknown')
    AND i.requested_at > now() - interval '2 hours'
GROUP BY 1, 2, 3;

-- The runtime role counts, fills (the trigger, as the writer) and prunes
-- (Sweep) the buckets; the mappings' counting start is the owner's.
-- +goose StatementBegin
DO $$
BEGIN
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON public.quota_minutes TO %I', public.oidc_bridge_runtime_role());
    EXECUTE format('GRANT SELECT ON public.quota_counting TO %I', public.oidc_bridge_runtime_role());
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER ledger_quota_count_update ON issuances;
DROP TRIGGER ledger_quota_count_insert ON issuances;
DROP TRIGGER ledger_quota_start ON mappings;
DROP FUNCTION ledger_quota_start();
DROP FUNCTION ledger_quota_count();
DROP TABLE quota_counting;
DROP TABLE quota_minutes;
