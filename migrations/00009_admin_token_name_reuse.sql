-- +goose Up

-- A revoked admin token's name may be given to a new token: only tokens
-- not revoked need distinct names. Every token keeps its own id, which the
-- admin-change history records beside the name. No new table or column:
-- the runtime role's grants (00007) are unchanged.
ALTER TABLE admin_tokens DROP CONSTRAINT admin_tokens_name_key;
CREATE UNIQUE INDEX admin_tokens_name_active ON admin_tokens (name) WHERE revoked_at IS NULL;

-- +goose Down
-- Names shared since: every token but the newest of a name (revoked ones,
-- necessarily) takes its id as a suffix, so that names are unique again.
-- The admin-change triggers (00008) record these renames as source 'sql',
-- at once: a trigger event still pending would forbid the ALTER TABLE.
SET CONSTRAINTS admin_changes_sql IMMEDIATE;
UPDATE admin_tokens t SET name = t.name || '~' || t.id::text
WHERE EXISTS (SELECT 1 FROM admin_tokens o WHERE o.name = t.name AND o.id <> t.id
              AND (o.revoked_at IS NULL OR (t.revoked_at IS NOT NULL AND (o.created_at, o.id) > (t.created_at, t.id))));
DROP INDEX admin_tokens_name_active;
ALTER TABLE admin_tokens ADD CONSTRAINT admin_tokens_name_key UNIQUE (name);
