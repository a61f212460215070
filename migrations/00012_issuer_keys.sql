-- +goose Up

-- Issuers without reachable discovery (private Kubernetes API servers,
-- air-gapped instances) carry their keys here: a static JWK Set (jwks) or a
-- URL the keys are fetched from in place of the discovery document's
-- jwks_uri (jwks_url); at most one. Both are public material. jwks is text,
-- not jsonb, so that the set reads back byte for byte as the admin API
-- stored it (compacted, members in the admin's order): a Terraform plan of
-- an unchanged set stays empty. The bridge checks the set when it is
-- written (public signature keys only, identity.ParseStaticJWKS); the
-- checks here bound what a write around the admin API can store.
--
-- The runtime role's table-level grants on issuers (00007) cover the new
-- columns; the history trigger (00008) records them with the rest of the
-- row, and LISTEN/NOTIFY (00005) invalidates every replica's cache on a
-- change, which is how a rotation by admin update reaches every verifier.
ALTER TABLE issuers
    ADD COLUMN jwks text
        CHECK (octet_length(jwks) <= 65536 AND jwks::jsonb ? 'keys'),
    ADD COLUMN jwks_url text
        CHECK (jwks_url ~ '^https?://' AND octet_length(jwks_url) <= 1024),
    ADD CONSTRAINT issuers_one_key_source CHECK (jwks IS NULL OR jwks_url IS NULL);

-- +goose Down
-- Issuers that had their own keys go back to discovery, which an older
-- bridge uses for every issuer: an issuer whose discovery is unreachable
-- is disabled rather than left to fail every token at verification.
-- The history trigger (00008) records that update; it is deferred, and a
-- table with pending trigger events cannot be altered: it fires now.
SET CONSTRAINTS admin_changes_sql IMMEDIATE;
UPDATE issuers SET enabled = false WHERE jwks IS NOT NULL OR jwks_url IS NOT NULL;
ALTER TABLE issuers
    DROP CONSTRAINT issuers_one_key_source,
    DROP COLUMN jwks_url,
    DROP COLUMN jwks;
