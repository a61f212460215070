-- +goose Up

-- GitHub Apps the github provider mints installation tokens with (package
-- githubapp). An App has at most two private keys: the signing key (signs
-- every App JWT) and, during a rotation, the previous key (tried when GitHub
-- answers 401 to the signing key's JWT) until an admin retires it. Each key
-- is stored as PKCS#1 DER encrypted with the key-encryption key, as the
-- bridge's own signing keys are (signing.KEK.Seal: AES-256-GCM, bound to
-- the App's name and the key's fingerprint), beside GitHub's fingerprint of
-- its public key ("SHA256:<base64>", as the App's settings page shows it).
-- The column holding a key is named private_key so that the history
-- triggers of 00008 leave it out of every row they record.
CREATE TABLE github_apps (
    id         bigserial   PRIMARY KEY,
    name       text        NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
    app_id     bigint      NOT NULL CHECK (app_id > 0),
    -- '' for github.com, else a GitHub Enterprise Server's https://HOST/api/v3/.
    base_url   text        NOT NULL DEFAULT ''
        CHECK (base_url = '' OR (base_url ~ '^https://[^/]+/api/v3/$' AND octet_length(base_url) <= 512)),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE github_app_keys (
    app         bigint      NOT NULL REFERENCES github_apps (id) ON DELETE CASCADE,
    fingerprint text        NOT NULL CHECK (fingerprint ~ '^SHA256:[A-Za-z0-9+/]{43}=$'),
    private_key bytea       NOT NULL CHECK (octet_length(private_key) > 29),
    signing     boolean     NOT NULL,
    added_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app, fingerprint)
);
-- One signing key and at most one previous key per App: two at most.
CREATE UNIQUE INDEX github_app_keys_roles ON github_app_keys (app, signing);

-- The admin-change history knows Apps (their rows without keys).
ALTER TABLE admin_changes DROP CONSTRAINT admin_changes_kind_check;
ALTER TABLE admin_changes ADD CONSTRAINT admin_changes_kind_check
    CHECK (kind IN ('issuer', 'mapping', 'admin_token', 'signing_key', 'github_app'));
-- Direct SQL writes to github_apps are recorded as for issuers (00008).
CREATE CONSTRAINT TRIGGER admin_changes_sql AFTER INSERT OR UPDATE OR DELETE ON github_apps
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION admin_changes_record_sql('github_app', 'name');
CREATE TRIGGER admin_changes_truncate BEFORE TRUNCATE ON github_apps
    FOR EACH STATEMENT EXECUTE FUNCTION admin_changes_record_truncate('github_app', 'name');
ALTER TABLE github_apps ENABLE ALWAYS TRIGGER admin_changes_sql;
ALTER TABLE github_apps ENABLE ALWAYS TRIGGER admin_changes_truncate;

-- Mappings of provider github. The check becomes a name rule, as issuer
-- kinds did (00011): the application's registry says which providers exist.
ALTER TABLE mappings DROP CONSTRAINT mappings_provider_check;
ALTER TABLE mappings ADD CONSTRAINT mappings_provider_check CHECK (provider ~ '^[a-z][a-z0-9_]{0,31}$');

-- +goose StatementBegin
DO $$
DECLARE
    rt name := public.oidc_bridge_runtime_role();
BEGIN
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON public.github_apps, public.github_app_keys TO %I', rt);
    EXECUTE format('GRANT USAGE ON SEQUENCE public.github_apps_id_seq TO %I', rt);
END
$$;
-- +goose StatementEnd

-- +goose Down
-- github mappings go with the provider; the history trigger (00008)
-- records their deletion, and fires now so that the table can be altered.
SET CONSTRAINTS admin_changes_sql IMMEDIATE;
DELETE FROM mappings WHERE provider NOT IN ('aws', 'gcp', 'azure', 'jwt');
ALTER TABLE mappings DROP CONSTRAINT mappings_provider_check;
ALTER TABLE mappings ADD CONSTRAINT mappings_provider_check CHECK (provider IN ('aws', 'gcp', 'azure', 'jwt'));
DROP TABLE github_app_keys;
DROP TABLE github_apps;
DELETE FROM admin_changes WHERE kind = 'github_app';
ALTER TABLE admin_changes DROP CONSTRAINT admin_changes_kind_check;
ALTER TABLE admin_changes ADD CONSTRAINT admin_changes_kind_check
    CHECK (kind IN ('issuer', 'mapping', 'admin_token', 'signing_key'));
