-- QueryGPT v2: test results of models and connections, per-user settings, message counts and an indexed search of
-- conversations (titles and message text).

-- NULL: never tested, or changed since the last test.
ALTER TABLE models ADD COLUMN is_available INTEGER CHECK (is_available IN (0, 1));
-- The model's context window in tokens, when known: prompts are kept within it.
ALTER TABLE models ADD COLUMN context_window INTEGER CHECK (context_window > 0);
ALTER TABLE connections ADD COLUMN is_connected INTEGER CHECK (is_connected IN (0, 1));

-- Kept by the application as it stores messages, so that a page of the conversation list counts nothing.
ALTER TABLE conversations ADD COLUMN message_count INTEGER NOT NULL DEFAULT 0 CHECK (message_count >= 0);
UPDATE conversations SET message_count = (SELECT COUNT(*) FROM messages WHERE conversation_id = conversations.id);

-- The list is ordered by (updated_at, id), the id breaking ties so that pages neither overlap nor skip.
DROP INDEX conversations_user_updated_idx;
DROP INDEX conversations_user_favorite_idx;
CREATE INDEX conversations_user_updated_idx ON conversations (user_id, updated_at DESC, id DESC);
CREATE INDEX conversations_user_favorite_idx ON conversations (user_id, updated_at DESC, id DESC) WHERE is_favorite;

-- One row per user who saved settings; NULL (and an absent prompt) means the service default.
CREATE TABLE user_settings (
    user_id        BLOB    NOT NULL PRIMARY KEY CHECK (length(user_id) = 16) REFERENCES users (id) ON DELETE CASCADE,
    language       TEXT,
    theme          TEXT,
    view_mode      TEXT,
    context_rounds INTEGER CHECK (context_rounds BETWEEN 0 AND 4294967295),
    -- The user's prompt templates: {"system": ..., "sql_generation": ..., "correction": ..., "explanation": ...}.
    prompts        TEXT    NOT NULL CHECK (json_valid(prompts)),
    updated_at     TEXT    NOT NULL
) STRICT;

-- Case-insensitive substring search: a trigram index serves a phrase query of 3 or more characters, in any script.
-- Contentless (the text stays in its own tables only) with rowid deletes: a message's entry has the message's seq
-- as rowid, a title's entry the negated rowid of its conversation. That rowid is stable: conversations has
-- indexes (its primary key among them), and VACUUM keeps the rowids of such tables since their indexes refer to
-- them (a behaviour test checks it).
CREATE VIRTUAL TABLE conversation_search USING fts5 (
    body,
    content = '',
    contentless_delete = 1,
    tokenize = 'trigram case_sensitive 0'
);

CREATE TRIGGER messages_search_insert AFTER INSERT ON messages BEGIN
    INSERT INTO conversation_search (rowid, body) VALUES (new.seq, new.content);
END;
-- Also fires for the messages that ON DELETE CASCADE removes with their conversation.
CREATE TRIGGER messages_search_delete AFTER DELETE ON messages BEGIN
    DELETE FROM conversation_search WHERE rowid = old.seq;
END;
CREATE TRIGGER messages_search_update AFTER UPDATE OF content ON messages BEGIN
    DELETE FROM conversation_search WHERE rowid = old.seq;
    INSERT INTO conversation_search (rowid, body) VALUES (new.seq, new.content);
END;

CREATE TRIGGER conversations_search_insert AFTER INSERT ON conversations BEGIN
    INSERT INTO conversation_search (rowid, body) VALUES (-new.rowid, new.title);
END;
CREATE TRIGGER conversations_search_delete AFTER DELETE ON conversations BEGIN
    DELETE FROM conversation_search WHERE rowid = -old.rowid;
END;
CREATE TRIGGER conversations_search_update AFTER UPDATE OF title ON conversations BEGIN
    DELETE FROM conversation_search WHERE rowid = -old.rowid;
    INSERT INTO conversation_search (rowid, body) VALUES (-new.rowid, new.title);
END;

INSERT INTO conversation_search (rowid, body) SELECT seq, content FROM messages;
INSERT INTO conversation_search (rowid, body) SELECT -rowid, title FROM conversations;
