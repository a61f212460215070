-- +goose Up

-- Two database roles per database, named after it (roles are global to the
-- cluster; the names must not let one database's grant reach another):
--
--   oidc_bridge_runtime_<db>  NOLOGIN group of the service's login
--                             (BRIDGE_DATABASE_URL): exactly what the
--                             exchange, the admin API, the sweeper, the key
--                             manager and the retention need, and no more.
--                             History (issuances, admin_changes) is
--                             append-only for it: INSERT, and UPDATE of the
--                             columns that complete or revoke a ledger row.
--   oidc_bridge_auditor_<db>  NOLOGIN group of auditors: read schema audit.
--
-- <db> is current_database() when it is made of [a-z0-9_] and at most 43
-- bytes long, else its first 34 such characters (others replaced by _),
-- an underscore and the first 8 hex digits of its MD5: at most 63 bytes.
-- The names are chosen once, here, and kept in the functions
-- oidc_bridge_runtime_role() and oidc_bridge_auditor_role(), which later
-- migrations use to grant on new objects:
--
--   EXECUTE format('GRANT SELECT, INSERT ON %I TO %I', 'new_table', oidc_bridge_runtime_role());
--
-- (a database renamed or copied from this one keeps them).
--
-- The migrator (the owner of every object, BRIDGE_MIGRATION_DATABASE_URL)
-- needs CREATEROLE for this migration unless an administrator created both
-- roles beforehand (NOLOGIN, without any attribute). An existing role with
-- SUPERUSER, CREATEROLE, CREATEDB, REPLICATION or BYPASSRLS is refused.
--
-- The cluster-wide role oidc_bridge_auditor of 00001 read the audit views
-- of every database it was granted in one: it loses its grants here (the
-- role itself stays, other databases may still use it until they migrate).
-- +goose StatementBegin
DO $$
DECLARE
    db    text := current_database();
    s     text := regexp_replace(lower(current_database()), '[^a-z0-9_]', '_', 'g');
    r     text;
    bad   boolean;
BEGIN
    IF s <> db OR octet_length(s) > 43 THEN
        s := left(s, 34) || '_' || left(md5(db), 8);
    END IF;
    FOREACH r IN ARRAY ARRAY['oidc_bridge_runtime_' || s, 'oidc_bridge_auditor_' || s] LOOP
        SELECT rolsuper OR rolcreaterole OR rolcreatedb OR rolreplication OR rolbypassrls INTO bad
        FROM pg_catalog.pg_roles WHERE rolname = r;
        IF bad THEN
            RAISE EXCEPTION 'role % exists with SUPERUSER, CREATEROLE, CREATEDB, REPLICATION or BYPASSRLS', r
                USING HINT = 'oidc-bridge grants its privileges to this group role; give it none of these attributes';
        ELSIF bad IS NULL THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            EXCEPTION
                WHEN duplicate_object OR unique_violation THEN
                    NULL; -- created meanwhile by a copy of this database
                WHEN insufficient_privilege THEN
                    RAISE EXCEPTION 'cannot create role %: the migrator lacks CREATEROLE', r
                        USING HINT = format('an administrator runs: CREATE ROLE %I NOLOGIN; then migrate again', r);
            END;
        END IF;
    END LOOP;
    EXECUTE format('CREATE FUNCTION public.oidc_bridge_runtime_role() RETURNS name LANGUAGE sql IMMUTABLE PARALLEL SAFE AS %L',
        format('SELECT %L::name', 'oidc_bridge_runtime_' || s));
    EXECUTE format('CREATE FUNCTION public.oidc_bridge_auditor_role() RETURNS name LANGUAGE sql IMMUTABLE PARALLEL SAFE AS %L',
        format('SELECT %L::name', 'oidc_bridge_auditor_' || s));
END
$$;
-- +goose StatementEnd

-- Nobody but the owner creates objects in the schema (PostgreSQL 15 makes
-- new databases so; older ones and upgraded clusters are not). A migrator
-- that does not own schema public gets a warning and nothing changes:
-- docs/operations.md says what the schema's owner runs then.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
-- Functions are callable by PUBLIC by default. The trigger function needs no
-- EXECUTE to fire; the SECURITY DEFINER functions below must be reachable
-- by the runtime role only. (Only the bridge's own functions: extensions
-- installed in public keep their grants.)
REVOKE EXECUTE ON FUNCTION ledger_ensure_partitions(integer), oidc_bridge_catalog_changed() FROM PUBLIC;

-- Partitions are created with the owner's rights, on the runtime's behalf
-- (serve at start and daily). The new partitions carry no grant: the
-- runtime reaches their rows only through issuances, with issuances'
-- privileges.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION ledger_ensure_partitions(months_ahead integer) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    m     date := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
    i     integer;
    lo    date;
    hi    date;
    part  text;
BEGIN
    IF months_ahead IS NULL OR months_ahead < 0 OR months_ahead > 24 THEN
        RAISE EXCEPTION 'ledger_ensure_partitions: months_ahead % out of 0..24', months_ahead;
    END IF;
    FOR i IN 0..months_ahead LOOP
        lo := (m + make_interval(months => i))::date;
        hi := (lo + interval '1 month')::date;
        part := format('issuances_%s', to_char(lo, 'YYYY_MM'));
        IF to_regclass(format('public.%I', part)) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE public.%I PARTITION OF public.issuances FOR VALUES FROM (%L) TO (%L)',
                part, lo::timestamp AT TIME ZONE 'UTC', hi::timestamp AT TIME ZONE 'UTC');
        END IF;
    END LOOP;
END;
$$;
-- +goose StatementEnd

-- Retention (ledger.DropPartitionsBefore): detaches and drops the monthly
-- partitions whose whole range ends at or before cutoff, never the default
-- partition nor one without an upper bound, and never a cutoff later than
-- 31 days before now (ledger.MinRetention): that much history the runtime
-- role cannot remove. Returns the dropped partitions (schema.name).
-- +goose StatementBegin
CREATE FUNCTION ledger_drop_partitions_before(cutoff timestamptz) RETURNS SETOF text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p record;
BEGIN
    IF cutoff IS NULL OR cutoff > clock_timestamp() - interval '31 days' THEN
        RAISE EXCEPTION 'ledger_drop_partitions_before: cutoff % is less than 31 days in the past', cutoff
            USING ERRCODE = '22023';
    END IF;
    FOR p IN
        SELECT n.nspname, c.relname
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_partitioned_table pt ON pt.partrelid = i.inhparent
        CROSS JOIN LATERAL (SELECT substring(pg_get_expr(c.relpartbound, c.oid)
            FROM '^FOR VALUES FROM \(.*\) TO \(''([^'']+)''\)$')::timestamptz) AS b(upper_bound)
        WHERE i.inhparent = 'public.issuances'::regclass
            AND c.relkind = 'r'
            AND c.oid <> pt.partdefid
            AND b.upper_bound IS NOT NULL
            AND b.upper_bound <= cutoff
        ORDER BY b.upper_bound, c.relname
    LOOP
        EXECUTE format('ALTER TABLE public.issuances DETACH PARTITION %I.%I', p.nspname, p.relname);
        EXECUTE format('DROP TABLE %I.%I', p.nspname, p.relname);
        RETURN NEXT p.nspname || '.' || p.relname;
    END LOOP;
END;
$$;
-- +goose StatementEnd
REVOKE EXECUTE ON FUNCTION ledger_drop_partitions_before(timestamptz) FROM PUBLIC;

-- The runtime role's privileges, statement by statement of the service
-- (ledger, mapping, signing, internal/admintoken; internal/sqlcheck lists
-- them). Nothing else: no TRUNCATE, no REFERENCES or TRIGGER, no DELETE on
-- history, no privilege on the partitions themselves.
-- +goose StatementBegin
DO $$
DECLARE
    rt name := public.oidc_bridge_runtime_role();
    au name := public.oidc_bridge_auditor_role();
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA public TO %I', rt);
    -- The schema version (readiness, CheckCurrent).
    EXECUTE format('GRANT SELECT ON public.goose_db_version TO %I', rt);
    -- The catalog: the admin API writes it, the exchange reads it.
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON public.issuers, public.mappings TO %I', rt);
    -- Admin tokens: created (admin-token create), revoked, used.
    EXECUTE format('GRANT SELECT, INSERT ON public.admin_tokens TO %I', rt);
    EXECUTE format('GRANT UPDATE (revoked_at, last_used_at) ON public.admin_tokens TO %I', rt);
    -- Signing keys: the key manager creates, promotes, retires, records
    -- last uses and deletes retired keys whose tokens have expired. Not
    -- history: with UPDATE of every column, which rotation needs, DELETE
    -- adds nothing an intruder would lack.
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON public.signing_keys TO %I', rt);
    -- The replay guard: claims and gives back; not history.
    EXECUTE format('GRANT SELECT, INSERT, DELETE ON public.replay_guard TO %I', rt);
    -- The ledger: a row is inserted, then completed (Complete, Fail, the
    -- sweeper, Indeterminate) and perhaps revoked; nothing else of it
    -- changes and no row goes but through retention (above).
    EXECUTE format('GRANT SELECT, INSERT ON public.issuances TO %I', rt);
    EXECUTE format('GRANT UPDATE (outcome, completed_at, error_code, credential_id, expires_at, '
        'revoked_at, revoked_by, revocation_reason) ON public.issuances TO %I', rt);
    -- The admin-change history: appended to in the write's transaction.
    EXECUTE format('GRANT SELECT, INSERT ON public.admin_changes TO %I', rt);
    EXECUTE format('GRANT USAGE ON SEQUENCE public.issuers_id_seq, public.mappings_id_seq, public.admin_changes_id_seq TO %I', rt);
    EXECUTE format('GRANT EXECUTE ON FUNCTION public.ledger_ensure_partitions(integer), '
        'public.ledger_drop_partitions_before(timestamptz) TO %I', rt);

    -- Auditors: this database's audit views, and the old shared role no more.
    EXECUTE format('GRANT USAGE ON SCHEMA audit TO %I', au);
    EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA audit TO %I', au);
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'oidc_bridge_auditor') THEN
        REVOKE ALL ON ALL TABLES IN SCHEMA audit FROM oidc_bridge_auditor;
        REVOKE ALL ON SCHEMA audit FROM oidc_bridge_auditor;
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- The roles keep no privilege here; they are dropped unless another
-- database (a copy of this one) still grants them something. The schema's
-- CREATE stays revoked from PUBLIC (PostgreSQL 15's default).
-- +goose StatementBegin
DO $$
DECLARE
    r name;
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'oidc_bridge_auditor') THEN
        GRANT USAGE ON SCHEMA audit TO oidc_bridge_auditor;
        GRANT SELECT ON ALL TABLES IN SCHEMA audit TO oidc_bridge_auditor;
    END IF;
    FOREACH r IN ARRAY ARRAY[public.oidc_bridge_runtime_role(), public.oidc_bridge_auditor_role()] LOOP
        IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA public FROM %I', r);
            EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM %I', r);
            EXECUTE format('REVOKE ALL ON FUNCTION public.ledger_ensure_partitions(integer), '
                'public.ledger_drop_partitions_before(timestamptz) FROM %I', r);
            EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA audit FROM %I', r);
            EXECUTE format('REVOKE ALL ON SCHEMA public, audit FROM %I', r);
            BEGIN
                EXECUTE format('DROP ROLE %I', r);
            EXCEPTION WHEN dependent_objects_still_exist OR insufficient_privilege THEN
                NULL; -- still granted in another database, or not ours to drop
            END;
        END IF;
    END LOOP;
END
$$;
-- +goose StatementEnd
DROP FUNCTION ledger_drop_partitions_before(timestamptz);
ALTER FUNCTION ledger_ensure_partitions(integer) SECURITY INVOKER;
ALTER FUNCTION ledger_ensure_partitions(integer) RESET search_path;
DROP FUNCTION oidc_bridge_runtime_role();
DROP FUNCTION oidc_bridge_auditor_role();
GRANT EXECUTE ON FUNCTION ledger_ensure_partitions(integer), oidc_bridge_catalog_changed() TO PUBLIC;
