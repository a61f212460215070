-- +goose Up

-- The bridge's own signing keys (package signing). Per alg there is exactly
-- one active key (it signs), at most one next key (published in the JWKS
-- from its creation, promoted once verifiers have had time to fetch it) and
-- any number of retired keys (published until their tokens have expired,
-- then deleted). Timestamps come from the application's clock.
CREATE TABLE signing_keys (
    kid          text        PRIMARY KEY CHECK (kid ~ '^[A-Za-z0-9_-]{16,128}$'),
    alg          text        NOT NULL CHECK (alg IN ('RS256', 'ES256')),
    state        text        NOT NULL CHECK (state IN ('next', 'active', 'retired')),
    -- The public JWK as published. Never a private member.
    public_jwk   jsonb       NOT NULL CHECK (
                                 jsonb_typeof(public_jwk) = 'object'
                                 AND NOT public_jwk ?| ARRAY['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']
                                 AND public_jwk->>'kid' = kid
                                 AND public_jwk->>'alg' = alg),
    -- PKCS#8 DER encrypted with the key-encryption key (AES-256-GCM):
    -- version byte, 96-bit nonce, ciphertext and tag; bound to kid and alg.
    private_key  bytea       NOT NULL CHECK (octet_length(private_key) > 29),
    created_at   timestamptz NOT NULL,
    activated_at timestamptz,
    retired_at   timestamptz,
    -- Set by an emergency rotation: the key left the JWKS at once.
    revoked_at   timestamptz,
    -- Recorded at most once a minute per replica, not per signature.
    last_used_at timestamptz,
    CHECK (state <> 'next' OR (activated_at IS NULL AND retired_at IS NULL)),
    CHECK (state <> 'active' OR (activated_at IS NOT NULL AND retired_at IS NULL)),
    CHECK (state <> 'retired' OR retired_at IS NOT NULL),
    CHECK (revoked_at IS NULL OR state = 'retired')
);

-- Exactly one active and at most one next key per alg.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (alg) WHERE state = 'active';
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys (alg) WHERE state = 'next';

-- +goose Down
DROP TABLE signing_keys;
