-- +goose Up

-- One token, one credential. The replay guard was keyed (issuer, token_jti,
-- mapping_id): one token admitted by several mappings was exchanged once per
-- mapping. It is now keyed (issuer, replay_key, mapping_id):
--
--   replay_key  'jti:' || the token's jti, or 'sha256:' || the hex SHA-256 of
--               the token when it has no jti (identity.Claims.ReplayKey).
--   mapping_id  0 for the token's row (spent for all mappings), the
--               mapping's id for its per-mapping row.
--
-- Every successful claim holds both rows of its token: the row its issuer's
-- replay_scope claims (token: mapping 0; token_mapping: the mapping) and the
-- other one, inserted when free. So one primary key serves both scopes and a
-- change of replay_scope never re-opens a spent token: under token a token
-- spent for any mapping (row 0) is refused, under token_mapping a token spent
-- for this mapping (its row) is refused.
ALTER TABLE replay_guard DROP CONSTRAINT replay_guard_pkey;
ALTER TABLE replay_guard RENAME COLUMN token_jti TO replay_key;
UPDATE replay_guard SET replay_key = 'jti:' || replay_key;
-- Rows written under the old contract keep their per-mapping key, and each
-- token already exchanged gets its token row: refused for every mapping.
INSERT INTO replay_guard (issuer, replay_key, mapping_id, issuance_id, token_exp, created_at)
SELECT DISTINCT ON (issuer, replay_key) issuer, replay_key, 0, issuance_id,
    max(token_exp) OVER (PARTITION BY issuer, replay_key), created_at
FROM replay_guard
ORDER BY issuer, replay_key, created_at, issuance_id;
ALTER TABLE replay_guard ADD PRIMARY KEY (issuer, replay_key, mapping_id);
ALTER TABLE replay_guard ADD CONSTRAINT replay_guard_key_form
    CHECK (replay_key LIKE 'jti:%' OR replay_key ~ '^sha256:[0-9a-f]{64}$');
ALTER TABLE replay_guard ADD CONSTRAINT replay_guard_mapping_id CHECK (mapping_id >= 0);
-- Fail and a spent quota give back the rows of one issuance.
CREATE INDEX replay_guard_issuance_id ON replay_guard (issuance_id);

-- Per-issuer replay scope and token time limits (NULL: the kind's default).
ALTER TABLE issuers
    ADD COLUMN replay_scope text NOT NULL DEFAULT 'token'
        CHECK (replay_scope IN ('token', 'token_mapping')),
    ADD COLUMN max_token_age_seconds integer
        CHECK (max_token_age_seconds BETWEEN 60 AND 21600),
    ADD COLUMN max_token_lifetime_seconds integer
        CHECK (max_token_lifetime_seconds BETWEEN 60 AND 21600);

-- +goose Down
ALTER TABLE issuers
    DROP COLUMN max_token_lifetime_seconds,
    DROP COLUMN max_token_age_seconds,
    DROP COLUMN replay_scope;
DROP INDEX replay_guard_issuance_id;
ALTER TABLE replay_guard DROP CONSTRAINT replay_guard_mapping_id;
ALTER TABLE replay_guard DROP CONSTRAINT replay_guard_key_form;
ALTER TABLE replay_guard DROP CONSTRAINT replay_guard_pkey;
-- The old contract knows neither token rows nor tokens without a jti; every
-- claim also holds its per-mapping row, which the old key keeps.
DELETE FROM replay_guard WHERE mapping_id = 0 OR replay_key NOT LIKE 'jti:%';
UPDATE replay_guard SET replay_key = substr(replay_key, 5);
ALTER TABLE replay_guard RENAME COLUMN replay_key TO token_jti;
ALTER TABLE replay_guard ADD PRIMARY KEY (issuer, token_jti, mapping_id);
