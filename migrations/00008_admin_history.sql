-- +goose Up

-- The admin-change history covers every change to the catalog and to the
-- credentials of the bridge itself, by whatever route it is made:
--
--   source 'api'      the admin API (issuers, mappings), as before
--   source 'cli'      oidc-bridge admin-token create|revoke, keys rotate
--   source 'service'  the bridge's own key schedule (creation, the 30-day
--                     rotation, deletion after retention)
--   source 'sql'      anything else: a write made with a database login
--                     directly in SQL, recorded by the triggers below
--
-- Rows are only ever inserted. Every row, whoever inserts it, names the
-- database login of its transaction (db_user = session_user), its
-- transaction (xact_id) and the time (changed_at = now()): a BEFORE INSERT
-- trigger stamps the three, so no insert can forge them.
ALTER TABLE admin_changes
    ADD COLUMN source  text NOT NULL DEFAULT 'api'
        CONSTRAINT admin_changes_source_check CHECK (source IN ('api', 'cli', 'service', 'sql')),
    -- NULL only on rows older than this migration.
    ADD COLUMN db_user text,
    ADD COLUMN xact_id xid8,
    -- Why a signing key changed: initial, repair, scheduled, manual,
    -- forced, revoke, retention; truncate for a TRUNCATE in SQL.
    ADD COLUMN reason  text
        CONSTRAINT admin_changes_reason_check CHECK (reason ~ '^[a-z_]{1,32}$');
-- The rows before this migration were all made through the API; from now on
-- an insert must say where it comes from.
ALTER TABLE admin_changes ALTER COLUMN source DROP DEFAULT;

ALTER TABLE admin_changes DROP CONSTRAINT admin_changes_action_check;
ALTER TABLE admin_changes ADD CONSTRAINT admin_changes_action_check
    CHECK (action IN ('create', 'update', 'delete', 'revoke', 'activate', 'retire'));
ALTER TABLE admin_changes DROP CONSTRAINT admin_changes_kind_check;
ALTER TABLE admin_changes ADD CONSTRAINT admin_changes_kind_check
    CHECK (kind IN ('issuer', 'mapping', 'admin_token', 'signing_key'));

-- The deferred triggers look up the rows of their own transaction.
CREATE INDEX admin_changes_xact ON admin_changes (xact_id);

-- +goose StatementBegin
CREATE FUNCTION admin_changes_stamp() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.db_user := session_user;
    NEW.xact_id := pg_current_xact_id();
    NEW.changed_at := now();
    RETURN NEW;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER admin_changes_stamp BEFORE INSERT ON admin_changes
    FOR EACH ROW EXECUTE FUNCTION admin_changes_stamp();
ALTER TABLE admin_changes ENABLE ALWAYS TRIGGER admin_changes_stamp;

-- Direct SQL writes. A deferred constraint trigger on each table looks, at
-- commit, for a row of the same transaction, kind and object (its name, or
-- kid) made by the bridge (source api, cli or service), which describes the
-- change better; finding none, it records a source 'sql' row with the
-- table's row before and after (private_key and token_hash left out) and
-- actor 'sql:' || session_user. A login cannot escape this by inserting a
-- history row of its own first: that row names its db_user too.
--
-- An UPDATE that changes nothing but last_used_at is the bridge's own
-- bookkeeping (an admin token's or a signing key's use) and is not
-- recorded, unless it sets last_used_at more than an hour ahead of the
-- database's clock, which no use does.
--
-- SECURITY DEFINER, owned by the migrating role that owns admin_changes: a
-- login allowed to write issuers or mappings but given no privilege on
-- admin_changes (the runtime role has INSERT only, no SELECT) is recorded
-- all the same, and cannot make its write fail by lacking a grant. The
-- search_path is fixed and every name qualified, so a caller's objects
-- cannot stand in for ours; session_user, unlike current_user, is still the
-- caller's login inside it.
-- +goose StatementBegin
CREATE FUNCTION admin_changes_record_sql() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k      text := TG_ARGV[0];
    col    text := TG_ARGV[1];
    hidden text[] := ARRAY['private_key', 'token_hash'];
    b      jsonb;
    a      jsonb;
    act    text;
    obj    text;
BEGIN
    IF TG_OP <> 'INSERT' THEN b := to_jsonb(OLD) - hidden; END IF;
    IF TG_OP <> 'DELETE' THEN a := to_jsonb(NEW) - hidden; END IF;
    IF TG_OP = 'UPDATE' THEN
        IF b - 'last_used_at' = a - 'last_used_at'
           AND (a->>'last_used_at' IS NULL
                OR (a->>'last_used_at')::timestamptz <= now() + interval '1 hour') THEN
            RETURN NULL;
        END IF;
    END IF;
    act := CASE TG_OP WHEN 'INSERT' THEN 'create' WHEN 'UPDATE' THEN 'update' ELSE 'delete' END;
    obj := coalesce(b->>col, a->>col);
    IF EXISTS (SELECT 1 FROM public.admin_changes c
               WHERE c.xact_id = pg_current_xact_id() AND c.kind = k AND c.source <> 'sql'
                 AND c.name IN (b->>col, a->>col)) THEN
        RETURN NULL;
    END IF;
    INSERT INTO public.admin_changes (actor, action, kind, name, before, after, source)
    VALUES ('sql:' || session_user, act, k, obj, b, a, 'sql');
    RETURN NULL;
END
$$;
-- +goose StatementEnd
REVOKE ALL ON FUNCTION admin_changes_record_sql() FROM PUBLIC;

-- TRUNCATE fires no row trigger: this one records a delete of every row
-- first (reason truncate).
-- +goose StatementBegin
CREATE FUNCTION admin_changes_record_truncate() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    EXECUTE format(
        'INSERT INTO public.admin_changes (actor, action, kind, name, before, source, reason)
         SELECT %L, ''delete'', %L, r.%I::text, to_jsonb(r) - ARRAY[''private_key'', ''token_hash''], ''sql'', ''truncate''
         FROM %I.%I r',
        'sql:' || session_user, TG_ARGV[0], TG_ARGV[1], TG_TABLE_SCHEMA, TG_TABLE_NAME);
    RETURN NULL;
END
$$;
-- +goose StatementEnd
REVOKE ALL ON FUNCTION admin_changes_record_truncate() FROM PUBLIC;

CREATE CONSTRAINT TRIGGER admin_changes_sql AFTER INSERT OR UPDATE OR DELETE ON issuers
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION admin_changes_record_sql('issuer', 'name');
CREATE CONSTRAINT TRIGGER admin_changes_sql AFTER INSERT OR UPDATE OR DELETE ON mappings
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION admin_changes_record_sql('mapping', 'name');
CREATE CONSTRAINT TRIGGER admin_changes_sql AFTER INSERT OR UPDATE OR DELETE ON admin_tokens
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION admin_changes_record_sql('admin_token', 'name');
CREATE CONSTRAINT TRIGGER admin_changes_sql AFTER INSERT OR UPDATE OR DELETE ON signing_keys
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION admin_changes_record_sql('signing_key', 'kid');
CREATE TRIGGER admin_changes_truncate BEFORE TRUNCATE ON issuers
    FOR EACH STATEMENT EXECUTE FUNCTION admin_changes_record_truncate('issuer', 'name');
CREATE TRIGGER admin_changes_truncate BEFORE TRUNCATE ON mappings
    FOR EACH STATEMENT EXECUTE FUNCTION admin_changes_record_truncate('mapping', 'name');
CREATE TRIGGER admin_changes_truncate BEFORE TRUNCATE ON admin_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION admin_changes_record_truncate('admin_token', 'name');
CREATE TRIGGER admin_changes_truncate BEFORE TRUNCATE ON signing_keys
    FOR EACH STATEMENT EXECUTE FUNCTION admin_changes_record_truncate('signing_key', 'kid');
-- ALWAYS, as for the catalog notifications (00005): writes applied with
-- session_replication_role = replica are recorded too.
ALTER TABLE issuers ENABLE ALWAYS TRIGGER admin_changes_sql;
ALTER TABLE mappings ENABLE ALWAYS TRIGGER admin_changes_sql;
ALTER TABLE admin_tokens ENABLE ALWAYS TRIGGER admin_changes_sql;
ALTER TABLE signing_keys ENABLE ALWAYS TRIGGER admin_changes_sql;
ALTER TABLE issuers ENABLE ALWAYS TRIGGER admin_changes_truncate;
ALTER TABLE mappings ENABLE ALWAYS TRIGGER admin_changes_truncate;
ALTER TABLE admin_tokens ENABLE ALWAYS TRIGGER admin_changes_truncate;
ALTER TABLE signing_keys ENABLE ALWAYS TRIGGER admin_changes_truncate;

-- New columns at the end: the view keeps its grants.
CREATE OR REPLACE VIEW audit.admin_changes AS
SELECT id, changed_at, actor, action, kind, name, before, after, request_id,
       source, db_user, xact_id, reason
FROM public.admin_changes
ORDER BY changed_at, id;

-- +goose Down
-- The older view cannot show the new columns, and the older checks cannot
-- hold the new kinds and actions: their rows go with the feature. The
-- view is made anew with the grants it had.
-- +goose StatementBegin
DO $$
DECLARE
    g record;
    grants text[] := '{}';
BEGIN
    FOR g IN SELECT a.privilege_type, r.rolname
             FROM pg_class c, aclexplode(c.relacl) a JOIN pg_roles r ON r.oid = a.grantee
             WHERE c.oid = 'audit.admin_changes'::regclass AND a.grantee <> c.relowner
    LOOP
        grants := grants || format('GRANT %s ON audit.admin_changes TO %I', g.privilege_type, g.rolname);
    END LOOP;
    DROP VIEW audit.admin_changes;
    CREATE VIEW audit.admin_changes AS
    SELECT id, changed_at, actor, action, kind, name, before, after, request_id
    FROM public.admin_changes
    ORDER BY changed_at, id;
    FOR i IN 1 .. coalesce(array_length(grants, 1), 0) LOOP
        EXECUTE grants[i];
    END LOOP;
END
$$;
-- +goose StatementEnd
DROP TRIGGER admin_changes_truncate ON signing_keys;
DROP TRIGGER admin_changes_truncate ON admin_tokens;
DROP TRIGGER admin_changes_truncate ON mappings;
DROP TRIGGER admin_changes_truncate ON issuers;
DROP TRIGGER admin_changes_sql ON signing_keys;
DROP TRIGGER admin_changes_sql ON admin_tokens;
DROP TRIGGER admin_changes_sql ON mappings;
DROP TRIGGER admin_changes_sql ON issuers;
DROP FUNCTION admin_changes_record_truncate();
DROP FUNCTION admin_changes_record_sql();
DROP TRIGGER admin_changes_stamp ON admin_changes;
DROP FUNCTION admin_changes_stamp();
DELETE FROM admin_changes
WHERE kind NOT IN ('issuer', 'mapping') OR action NOT IN ('create', 'update', 'delete');
ALTER TABLE admin_changes DROP CONSTRAINT admin_changes_kind_check;
ALTER TABLE admin_changes ADD CONSTRAINT admin_changes_kind_check CHECK (kind IN ('issuer', 'mapping'));
ALTER TABLE admin_changes DROP CONSTRAINT admin_changes_action_check;
ALTER TABLE admin_changes ADD CONSTRAINT admin_changes_action_check CHECK (action IN ('create', 'update', 'delete'));
DROP INDEX admin_changes_xact;
ALTER TABLE admin_changes DROP COLUMN reason, DROP COLUMN xact_id, DROP COLUMN db_user, DROP COLUMN source;
