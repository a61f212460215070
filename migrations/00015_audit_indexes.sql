-- +goose Up

-- Indexes for docs/audit.md's cookbook at history scale (tens of millions
-- of rows; the plans and timings are in docs/audit.md):
--
--   issuances_run        every exchange of one CI run
--   issuances_denied     denials by reason per day, and the console's
--                        denials page (small: denied and failed rows only;
--                        outcome = 'denied' implies the predicate)
--   issuances_principal  who used a cloud role, service account or Azure
--                        application: the target's principal, whatever
--                        the provider (the query repeats the expression)
--
-- Each CREATE INDEX on the partitioned issuances builds the index on every
-- partition in this migration's transaction, holding a SHARE lock on each:
-- exchanges' inserts wait until the migration commits (minutes on a ledger
-- of tens of millions of rows). A large deployment builds them beforehand
-- without blocking, partition by partition, and this migration then only
-- attaches them (PostgreSQL attaches a partition's existing index of the
-- same definition instead of building one); docs/operations.md
-- ("Upgrading a large ledger") gives the statements.
CREATE INDEX IF NOT EXISTS issuances_run ON issuances (run_id, requested_at);
CREATE INDEX IF NOT EXISTS issuances_denied ON issuances (requested_at, error_code) WHERE outcome IN ('denied', 'failed');
CREATE INDEX IF NOT EXISTS issuances_principal ON issuances
    ((coalesce(target->>'role_arn', target->>'service_account', target->>'client_id')), requested_at);

-- +goose Down
DROP INDEX issuances_principal;
DROP INDEX issuances_denied;
DROP INDEX issuances_run;
