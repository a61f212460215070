-- +goose Up

-- Issuer kinds are the registered CI kinds (identity.Platforms), which grow
-- one file at a time (buildkite, circleci, bitbucket, terraform_cloud, ...).
-- The admin API validates the kind against that registry, and a row with a
-- kind the binary does not know gets the strictest rules and reads no
-- token (identity.PlatformOf); the table keeps only the name's shape, so a
-- new kind needs no migration.
ALTER TABLE issuers DROP CONSTRAINT issuers_kind_check;
ALTER TABLE issuers ADD CONSTRAINT issuers_kind_check CHECK (kind ~ '^[a-z][a-z0-9_]{0,31}$');

-- +goose Down

-- Fails while issuers of the newer kinds exist: delete them (and their
-- mappings) through the admin API first; a rollback never drops them.
ALTER TABLE issuers DROP CONSTRAINT issuers_kind_check;
ALTER TABLE issuers ADD CONSTRAINT issuers_kind_check CHECK (kind IN ('github', 'gitlab', 'generic'));
