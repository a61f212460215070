-- +goose Up

-- Revocation: POST /v1/admin/issuances/revoke marks credentials that were,
-- or may have been, issued and have not expired yet as revoked. The ledger
-- keeps who did it (the admin token's name) and why; the row is otherwise
-- unchanged (its outcome stays what it was). The three columns are set
-- together, once.
ALTER TABLE issuances
    ADD COLUMN revoked_at        timestamptz,
    ADD COLUMN revoked_by        text,
    ADD COLUMN revocation_reason text,
    ADD CONSTRAINT issuances_revocation_check
        CHECK ((revoked_at IS NULL) = (revoked_by IS NULL)
               AND (revoked_at IS NULL) = (revocation_reason IS NULL));

-- The auditors' view gains the three columns after the contract's, which
-- keep their names and order (CREATE OR REPLACE VIEW may only append); the
-- grant on the view survives the replacement.
CREATE OR REPLACE VIEW audit.issuances AS
SELECT id, requested_at, completed_at, outcome, error_code, issuer, subject,
       repository, repository_id, ref, sha, environment, event_name, workflow_ref,
       actor, run_id, run_attempt, job_id, token_jti, mapping, provider, target,
       credential_id, expires_at, client_ip, user_agent,
       revoked_at, revoked_by, revocation_reason
FROM public.issuances
ORDER BY requested_at, id;

GRANT SELECT ON audit.issuances TO oidc_bridge_auditor;

-- +goose Down
-- A view cannot drop columns in place: recreate 00001's.
DROP VIEW audit.issuances;
CREATE VIEW audit.issuances AS
SELECT id, requested_at, completed_at, outcome, error_code, issuer, subject,
       repository, repository_id, ref, sha, environment, event_name, workflow_ref,
       actor, run_id, run_attempt, job_id, token_jti, mapping, provider, target,
       credential_id, expires_at, client_ip, user_agent
FROM public.issuances
ORDER BY requested_at, id;
GRANT SELECT ON audit.issuances TO oidc_bridge_auditor;
ALTER TABLE issuances DROP CONSTRAINT issuances_revocation_check,
    DROP COLUMN revoked_at, DROP COLUMN revoked_by, DROP COLUMN revocation_reason;
