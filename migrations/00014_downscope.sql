-- +goose Up

-- What an exchange request asked for below its mapping (issue 21, item 5):
-- a JSON object of the fields the client sent, among duration_seconds,
-- session_policy (an AWS inline session policy) and scopes (a subset of a
-- gcp mapping's scopes); NULL when the request asked for nothing narrower
-- (or was refused before its body was read). Written once, with the row,
-- whatever the outcome: a refused request for more than the mapping allows
-- shows what was asked. The column target of such rows holds the target
-- the mapping resolved for the token (a templated target's values filled
-- in), so no column is needed for that.
--
-- A column of the partitioned parent reaches every partition; the runtime
-- role's table-level INSERT on issuances (00007) covers it, and no UPDATE
-- of it is granted.
ALTER TABLE issuances ADD COLUMN downscope jsonb;

-- New column at the end: CREATE OR REPLACE keeps the view's grants (the
-- per-database auditor role's SELECT, 00007).
CREATE OR REPLACE VIEW audit.issuances AS
SELECT id, requested_at, completed_at, outcome, error_code, issuer, subject,
       repository, repository_id, ref, sha, environment, event_name, workflow_ref,
       actor, run_id, run_attempt, job_id, token_jti, mapping, provider, target,
       credential_id, expires_at, client_ip, user_agent,
       revoked_at, revoked_by, revocation_reason,
       requested_mapping,
       downscope
FROM public.issuances
ORDER BY requested_at, id;

-- +goose Down
-- A view cannot drop a column in place: it is made anew (00010's columns)
-- with the grants it had, then the column goes with its values.
-- +goose StatementBegin
DO $$
DECLARE
    g record;
    grants text[] := '{}';
BEGIN
    FOR g IN SELECT a.privilege_type, r.rolname
             FROM pg_class c, aclexplode(c.relacl) a JOIN pg_roles r ON r.oid = a.grantee
             WHERE c.oid = 'audit.issuances'::regclass AND a.grantee <> c.relowner
    LOOP
        grants := grants || format('GRANT %s ON audit.issuances TO %I', g.privilege_type, g.rolname);
    END LOOP;
    DROP VIEW audit.issuances;
    CREATE VIEW audit.issuances AS
    SELECT id, requested_at, completed_at, outcome, error_code, issuer, subject,
           repository, repository_id, ref, sha, environment, event_name, workflow_ref,
           actor, run_id, run_attempt, job_id, token_jti, mapping, provider, target,
           credential_id, expires_at, client_ip, user_agent,
           revoked_at, revoked_by, revocation_reason,
           requested_mapping
    FROM public.issuances
    ORDER BY requested_at, id;
    FOR i IN 1 .. coalesce(array_length(grants, 1), 0) LOOP
        EXECUTE grants[i];
    END LOOP;
END
$$;
-- +goose StatementEnd
ALTER TABLE issuances DROP COLUMN downscope;
