-- QueryGPT v2: test results of models and connections, per-user settings, message counts and an indexed search of
-- conversations (titles and message text).

-- NULL: never tested, or changed since the last test.
ALTER TABLE models ADD COLUMN is_available BOOLEAN;
-- The model's context window in tokens, when known: prompts are kept within it.
ALTER TABLE models ADD COLUMN context_window BIGINT CHECK (context_window > 0);
ALTER TABLE connections ADD COLUMN is_connected BOOLEAN;

-- Kept by the application as it stores messages, so that a page of the conversation list counts nothing.
ALTER TABLE conversations ADD COLUMN message_count BIGINT NOT NULL DEFAULT 0 CHECK (message_count >= 0);
UPDATE conversations c SET message_count = counted.n
    FROM (SELECT conversation_id, COUNT(*) AS n FROM messages GROUP BY conversation_id) counted
    WHERE counted.conversation_id = c.id;

-- The list is ordered by (updated_at, id), the id breaking ties so that pages neither overlap nor skip.
DROP INDEX conversations_user_updated_idx;
DROP INDEX conversations_user_favorite_idx;
CREATE INDEX conversations_user_updated_idx ON conversations (user_id, updated_at DESC, id DESC);
CREATE INDEX conversations_user_favorite_idx ON conversations (user_id, updated_at DESC, id DESC) WHERE is_favorite;

-- One row per user who saved settings; NULL (and an absent prompt) means the service default.
CREATE TABLE user_settings (
    user_id        UUID        PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    language       TEXT,
    theme          TEXT,
    view_mode      TEXT,
    context_rounds BIGINT      CHECK (context_rounds BETWEEN 0 AND 4294967295),
    -- The user's prompt templates: {"system": ..., "sql_generation": ..., "correction": ..., "explanation": ...}.
    prompts        JSONB       NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL
);

-- Case-insensitive substring search (ILIKE): trigram indexes serve patterns of 3 or more characters, in any
-- script. pg_trgm is a trusted extension: the database owner may create it. Building the indexes locks writes to
-- these tables for as long as it takes on a large deployment.
-- fastupdate off: an insert updates the index at once (a fraction of a millisecond for a message) instead of
-- queueing in a pending list that every search scans until the next vacuum (up to 4 MB: ~10 ms per search).
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX conversations_title_trgm_idx ON conversations USING gin (title gin_trgm_ops) WITH (fastupdate = off);
CREATE INDEX messages_content_trgm_idx ON messages USING gin (content gin_trgm_ops) WITH (fastupdate = off);
