-- +goose Up

-- Admin tokens carry scopes (read: GET and HEAD of the admin API; write:
-- everything else) and may expire. Existing tokens keep both scopes and
-- never expire, as before.
ALTER TABLE admin_tokens
    ADD COLUMN scopes text[] NOT NULL DEFAULT '{read,write}'
        CONSTRAINT admin_tokens_scopes_check
        CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['read', 'write']::text[]),
    ADD COLUMN expires_at timestamptz;

-- A mapping in audit mode never issues: it records what it would have
-- decided (issuances' would_issue and would_deny outcomes).
ALTER TABLE mappings
    ADD COLUMN mode text NOT NULL DEFAULT 'enforce'
        CONSTRAINT mappings_mode_check CHECK (mode IN ('enforce', 'audit'));

-- Postgres named 00001's unnamed outcome check issuances_outcome_check.
-- On the partitioned table the change reaches every partition.
ALTER TABLE issuances DROP CONSTRAINT issuances_outcome_check;
ALTER TABLE issuances ADD CONSTRAINT issuances_outcome_check
    CHECK (outcome IN ('pending', 'issued', 'denied', 'failed', 'unknown', 'would_issue', 'would_deny'));

-- The admin-change history: one row per create, update or delete of an
-- issuer or mapping, written in the same transaction as the change itself,
-- so that a refused or failed write records nothing. before and after are
-- the admin API's JSON objects (before is NULL for a create, after for a
-- delete). name is the object's name before the change (after it, for a
-- create): a rename is recorded under the old name, its after holds the new.
CREATE TABLE admin_changes (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    changed_at timestamptz NOT NULL DEFAULT now(),
    actor      text        NOT NULL CHECK (actor <> ''),
    action     text        NOT NULL CHECK (action IN ('create', 'update', 'delete')),
    kind       text        NOT NULL CHECK (kind IN ('issuer', 'mapping')),
    name       text        NOT NULL,
    before     jsonb,
    after      jsonb,
    request_id text,
    CHECK ((before IS NULL) = (action = 'create')),
    CHECK ((after IS NULL) = (action = 'delete'))
);
-- "What changed on mapping X" (by its old name, or by its new name after a
-- rename or create) and "what did actor Y do, by time".
CREATE INDEX admin_changes_object ON admin_changes (kind, name, changed_at);
CREATE INDEX admin_changes_new_name ON admin_changes (kind, (after->>'name'), changed_at);
CREATE INDEX admin_changes_actor ON admin_changes (actor, changed_at);

CREATE VIEW audit.admin_changes AS
SELECT id, changed_at, actor, action, kind, name, before, after, request_id
FROM public.admin_changes
ORDER BY changed_at, id;

GRANT SELECT ON audit.admin_changes TO oidc_bridge_auditor;

-- +goose Down
DROP VIEW audit.admin_changes;
DROP TABLE admin_changes;
-- The narrower check cannot hold audit-mode rows; they recorded decisions
-- that were never enforced, so they go with the feature.
DELETE FROM issuances WHERE outcome IN ('would_issue', 'would_deny');
ALTER TABLE issuances DROP CONSTRAINT issuances_outcome_check;
ALTER TABLE issuances ADD CONSTRAINT issuances_outcome_check
    CHECK (outcome IN ('pending', 'issued', 'denied', 'failed', 'unknown'));
ALTER TABLE mappings DROP COLUMN mode;
ALTER TABLE admin_tokens DROP COLUMN expires_at, DROP COLUMN scopes;
