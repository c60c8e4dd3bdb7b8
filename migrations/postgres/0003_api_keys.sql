-- API keys of the Text2SQL API. The key itself is never stored: `secret_hash` is its HMAC-SHA-256 under a
-- server-side key, `prefix` (unique, shown in listings) finds the row, `last4` helps a person recognise a key.
-- A revoked key is deleted: nothing can match it any more.
CREATE TABLE api_keys (
    id           UUID        PRIMARY KEY,
    user_id      UUID        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT        NOT NULL,
    prefix       TEXT        NOT NULL,
    last4        TEXT        NOT NULL,
    secret_hash  BYTEA       NOT NULL CHECK (length(secret_hash) = 32),
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ
);
CREATE UNIQUE INDEX api_keys_prefix_key ON api_keys (prefix);
CREATE INDEX api_keys_user_created_idx ON api_keys (user_id, created_at);
