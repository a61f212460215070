-- +goose Up

-- The mapping a request named, as it named it. A request may name a
-- mapping ({"mapping": "web"}, or RFC 8693's audience/resource); when it is
-- refused, the column mapping holds the mapping only if the token's issuer
-- has an enabled one of that name, so a refusal of a name that does not
-- exist (mistyped, deleted, disabled, another issuer's) kept no trace of
-- what was asked. requested_mapping keeps the name on every row whose
-- request named one, whatever the outcome; NULL when the request named none
-- (or was refused before its body was read). It is client input, never a
-- reference: stored cleaned (NUL and invalid UTF-8 become U+FFFD) and cut
-- at 128 bytes (ledger.MaxRequestedMapping) by the ledger.
--
-- A column of the partitioned parent reaches every partition; the runtime
-- role's table-level INSERT on issuances (00007) covers it, and no UPDATE
-- of it is granted: it is written once, with the row.
ALTER TABLE issuances ADD COLUMN requested_mapping text;

-- New column at the end: CREATE OR REPLACE keeps the view's grants (the
-- per-database auditor role's SELECT, 00007).
CREATE OR REPLACE VIEW audit.issuances AS
SELECT id, requested_at, completed_at, outcome, error_code, issuer, subject,
       repository, repository_id, ref, sha, environment, event_name, workflow_ref,
       actor, run_id, run_attempt, job_id, token_jti, mapping, provider, target,
       credential_id, expires_at, client_ip, user_agent,
       revoked_at, revoked_by, revocation_reason,
       requested_mapping
FROM public.issuances
ORDER BY requested_at, id;

-- +goose Down
-- A view cannot drop a column in place: it is made anew (00004's columns)
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
           revoked_at, revoked_by, revocation_reason
    FROM public.issuances
    ORDER BY requested_at, id;
    FOR i IN 1 .. coalesce(array_length(grants, 1), 0) LOOP
        EXECUTE grants[i];
    END LOOP;
END
$$;
-- +goose StatementEnd
ALTER TABLE issuances DROP COLUMN requested_mapping;
