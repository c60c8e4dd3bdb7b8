-- The service's own data on SQLite (embedded mode). STRICT tables with the types sqlx maps cleanly: UUIDs as
-- 16-byte BLOBs, booleans as 0/1 INTEGERs, timestamps as RFC 3339 UTC TEXT written by the application (always the
-- same shape, so they sort as text), JSON as TEXT. Secrets (`*_enc`) hold SecretBox ciphertexts, never plaintext.

CREATE TABLE users (
    id            BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 16),
    -- Stored lowercased by the application: the unique index makes e-mails unique case-insensitively.
    email         TEXT    NOT NULL,
    display_name  TEXT    NOT NULL,
    avatar_url    TEXT,
    role          TEXT    NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    password_hash TEXT    NOT NULL,
    created_at    TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL
) STRICT;
CREATE UNIQUE INDEX users_email_key ON users (email);

CREATE TABLE models (
    id          BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 16),
    user_id     BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    provider    TEXT    NOT NULL,
    model_id    TEXT    NOT NULL,
    base_url    TEXT,
    api_key_enc TEXT,
    is_default  INTEGER NOT NULL DEFAULT 0 CHECK (is_default IN (0, 1)),
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL
) STRICT;
CREATE INDEX models_user_created_idx ON models (user_id, created_at);
-- At most one default per user, whatever the application does.
CREATE UNIQUE INDEX models_user_default_key ON models (user_id) WHERE is_default;

CREATE TABLE connections (
    id            BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 16),
    user_id       BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          TEXT    NOT NULL,
    driver        TEXT    NOT NULL,
    host          TEXT,
    port          INTEGER CHECK (port BETWEEN 0 AND 65535),
    username      TEXT,
    password_enc  TEXT,
    database_name TEXT    NOT NULL,
    is_default    INTEGER NOT NULL DEFAULT 0 CHECK (is_default IN (0, 1)),
    created_at    TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL
) STRICT;
CREATE INDEX connections_user_created_idx ON connections (user_id, created_at);
CREATE UNIQUE INDEX connections_user_default_key ON connections (user_id) WHERE is_default;

CREATE TABLE conversations (
    id            BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 16),
    user_id       BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title         TEXT    NOT NULL,
    -- The provider's model name as shown to the user; kept when the model row is deleted.
    model         TEXT,
    -- Deleting a connection keeps its conversations.
    connection_id BLOB    REFERENCES connections (id) ON DELETE SET NULL,
    is_favorite   INTEGER NOT NULL DEFAULT 0 CHECK (is_favorite IN (0, 1)),
    created_at    TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL
) STRICT;
-- The conversation list (newest activity first), and its favourites-only variant.
CREATE INDEX conversations_user_updated_idx ON conversations (user_id, updated_at DESC);
CREATE INDEX conversations_user_favorite_idx ON conversations (user_id, updated_at DESC) WHERE is_favorite;
-- ON DELETE SET NULL from connections would otherwise scan the table.
CREATE INDEX conversations_connection_idx ON conversations (connection_id) WHERE connection_id IS NOT NULL;

CREATE TABLE messages (
    -- Insertion order: breaks ties between messages written with the same timestamp.
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              BLOB    NOT NULL UNIQUE CHECK (length(id) = 16),
    conversation_id BLOB    NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    role            TEXT    NOT NULL CHECK (role IN ('user', 'assistant')),
    content         TEXT    NOT NULL,
    metadata        TEXT    CHECK (metadata IS NULL OR json_valid(metadata)),
    created_at      TEXT    NOT NULL
) STRICT;
CREATE INDEX messages_conversation_created_idx ON messages (conversation_id, created_at, seq);
