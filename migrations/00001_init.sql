-- +goose Up

-- Issuers: the OIDC issuers whose tokens the bridge accepts.
CREATE TABLE issuers (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text        NOT NULL UNIQUE,
    url        text        NOT NULL UNIQUE,
    kind       text        NOT NULL CHECK (kind IN ('github', 'gitlab', 'generic')),
    audiences  text[]      NOT NULL CHECK (cardinality(audiences) > 0),
    enabled    boolean     NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Mappings: which tokens of an issuer may obtain which cloud target.
CREATE TABLE mappings (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                 text        NOT NULL UNIQUE,
    issuer_id            bigint      NOT NULL REFERENCES issuers (id) ON DELETE RESTRICT,
    enabled              boolean     NOT NULL DEFAULT true,
    conditions           jsonb       NOT NULL,
    provider             text        NOT NULL CHECK (provider IN ('aws', 'gcp', 'azure', 'jwt')),
    target               jsonb       NOT NULL,
    max_duration_seconds integer     NOT NULL CHECK (max_duration_seconds > 0),
    quota_per_hour       integer     CHECK (quota_per_hour > 0),
    quota_per_job        integer     CHECK (quota_per_job > 0),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mappings_issuer_enabled ON mappings (issuer_id) WHERE enabled;

-- Admin tokens: only a SHA-256 of each token is kept.
CREATE TABLE admin_tokens (
    id           uuid        PRIMARY KEY,
    name         text        NOT NULL UNIQUE,
    token_hash   bytea       NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);

-- The issuance ledger: one row per exchange attempt whose token verified.
-- Partitioned by month on requested_at so that old months can be detached,
-- archived or dropped; ledger_ensure_partitions creates the months ahead.
-- Tokens and secrets are never stored: token_jti and credential_id identify
-- without revealing.
CREATE TABLE issuances (
    id            uuid        NOT NULL,
    requested_at  timestamptz NOT NULL,
    completed_at  timestamptz,
    outcome       text        NOT NULL CHECK (outcome IN ('pending', 'issued', 'denied', 'failed', 'unknown')),
    error_code    text,
    issuer        text        NOT NULL,
    subject       text,
    repository    text,
    repository_id text,
    ref           text,
    sha           text,
    environment   text,
    event_name    text,
    workflow_ref  text,
    actor         text,
    run_id        text,
    run_attempt   text,
    job_id        text,
    token_jti     text,
    mapping_id    bigint,
    mapping       text,
    provider      text,
    target        jsonb,
    credential_id text,
    expires_at    timestamptz,
    client_ip     inet,
    user_agent    text,
    PRIMARY KEY (id, requested_at),
    CHECK ((outcome = 'pending') = (completed_at IS NULL))
) PARTITION BY RANGE (requested_at);

CREATE TABLE issuances_default PARTITION OF issuances DEFAULT;

-- Auditors' usual questions: by repository, by time, by mapping, by credential.
CREATE INDEX issuances_requested_at ON issuances USING brin (requested_at);
CREATE INDEX issuances_repository ON issuances (repository, requested_at);
CREATE INDEX issuances_mapping ON issuances (mapping, requested_at);
CREATE INDEX issuances_credential_id ON issuances (credential_id) WHERE credential_id IS NOT NULL;
-- Quotas: issued rows per mapping and repository, and per job.
CREATE INDEX issuances_quota_hour ON issuances (mapping_id, lower(repository), requested_at)
    WHERE outcome IN ('issued', 'pending', 'unknown');
CREATE INDEX issuances_quota_job ON issuances (mapping_id, issuer, run_id, run_attempt, job_id)
    WHERE outcome IN ('issued', 'pending', 'unknown');
CREATE INDEX issuances_pending ON issuances (requested_at) WHERE outcome = 'pending';

-- Creates the monthly partitions of issuances from the current month up to
-- months_ahead months ahead. Idempotent.
-- +goose StatementBegin
CREATE FUNCTION ledger_ensure_partitions(months_ahead integer) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    m     date := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
    i     integer;
    lo    date;
    hi    date;
    part  text;
BEGIN
    FOR i IN 0..months_ahead LOOP
        lo := (m + make_interval(months => i))::date;
        hi := (lo + interval '1 month')::date;
        part := format('issuances_%s', to_char(lo, 'YYYY_MM'));
        IF to_regclass(part) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF issuances FOR VALUES FROM (%L) TO (%L)',
                part, lo::timestamp AT TIME ZONE 'UTC', hi::timestamp AT TIME ZONE 'UTC');
        END IF;
    END LOOP;
END;
$$;
-- +goose StatementEnd
SELECT ledger_ensure_partitions(3);

-- Replay protection: a token (issuer, jti) is exchanged at most once per
-- mapping. Kept apart from the partitioned ledger so that the uniqueness is
-- global; rows may be pruned once the token has expired.
CREATE TABLE replay_guard (
    issuer      text        NOT NULL,
    token_jti   text        NOT NULL,
    mapping_id  bigint      NOT NULL,
    issuance_id uuid        NOT NULL,
    token_exp   timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (issuer, token_jti, mapping_id)
);
CREATE INDEX replay_guard_token_exp ON replay_guard (token_exp);

-- The auditors' view: one row per recorded attempt, newest last.
CREATE SCHEMA audit;
CREATE VIEW audit.issuances AS
SELECT id, requested_at, completed_at, outcome, error_code, issuer, subject,
       repository, repository_id, ref, sha, environment, event_name, workflow_ref,
       actor, run_id, run_attempt, job_id, token_jti, mapping, provider, target,
       credential_id, expires_at, client_ip, user_agent
FROM public.issuances
ORDER BY requested_at, id;

-- oidc_bridge_auditor may read schema audit and nothing else. Roles are
-- global to the cluster: another database's migration may be creating it at
-- this very moment, so an existing role is not an error.
-- +goose StatementBegin
DO $$
BEGIN
    CREATE ROLE oidc_bridge_auditor NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;
-- +goose StatementEnd
GRANT USAGE ON SCHEMA audit TO oidc_bridge_auditor;
GRANT SELECT ON ALL TABLES IN SCHEMA audit TO oidc_bridge_auditor;

-- +goose Down
DROP SCHEMA audit CASCADE;
DROP TABLE replay_guard;
DROP FUNCTION ledger_ensure_partitions(integer);
DROP TABLE issuances;
DROP TABLE admin_tokens;
DROP TABLE mappings;
DROP TABLE issuers;
