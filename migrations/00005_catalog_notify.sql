-- +goose Up

-- Every change to issuers or mappings, by any replica, an admin's SQL or a
-- migration, notifies channel oidc_bridge_catalog when its transaction
-- commits. Each replica keeps the issuers and mappings in memory for the
-- exchange (mapping.Cache), LISTENs on the channel and reloads on a
-- notification, so that a disabled mapping or issuer denies everywhere
-- within milliseconds. The notification carries no data: the replicas
-- re-read the tables. PostgreSQL folds identical notifications of one
-- transaction into one.
-- +goose StatementBegin
CREATE FUNCTION oidc_bridge_catalog_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('oidc_bridge_catalog', 'changed');
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER oidc_bridge_catalog_notify
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON issuers
    FOR EACH STATEMENT EXECUTE FUNCTION oidc_bridge_catalog_changed();
CREATE TRIGGER oidc_bridge_catalog_notify
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON mappings
    FOR EACH STATEMENT EXECUTE FUNCTION oidc_bridge_catalog_changed();
-- ALWAYS: the triggers fire whatever the session's session_replication_role,
-- so that writes applied by logical replication or restored with it set to
-- replica are notified too. The bridge uses its cache only while both
-- triggers are in this state.
ALTER TABLE issuers ENABLE ALWAYS TRIGGER oidc_bridge_catalog_notify;
ALTER TABLE mappings ENABLE ALWAYS TRIGGER oidc_bridge_catalog_notify;

-- +goose Down
DROP TRIGGER oidc_bridge_catalog_notify ON mappings;
DROP TRIGGER oidc_bridge_catalog_notify ON issuers;
DROP FUNCTION oidc_bridge_catalog_changed();
