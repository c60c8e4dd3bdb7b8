-- An answer is the hottest write: a worker stores every answered question (the conversation, created with its
-- first exchange, then the question and the answer) before it publishes it. As a transaction of single statements
-- that took five round trips (BEGIN, three statements, COMMIT); as one function call it takes one, and the
-- statement is its own transaction. The steps and checks are those of the store's generic `save_exchange`.
--
-- Returns how many of the two messages were added (0: a redelivered job whose exchange is stored already).
-- Fails, leaving nothing written, with
-- - 23503 (foreign_key_violation) when the user does not exist;
-- - P0002 (no_data_found) when the conversation is not the user's (or was deleted meanwhile);
-- - 23505 (unique_violation) when a message id belongs to another conversation.
CREATE FUNCTION save_exchange(
    p_conversation UUID, p_user UUID, p_title TEXT, p_model TEXT, p_connection UUID, p_now TIMESTAMPTZ,
    p_question_id UUID, p_question_role TEXT, p_question TEXT, p_question_metadata JSONB, p_question_at TIMESTAMPTZ,
    p_answer_id UUID, p_answer_role TEXT, p_answer TEXT, p_answer_metadata JSONB, p_answer_at TIMESTAMPTZ
) RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    added BIGINT;
    conversation_owner UUID;
    present BIGINT;
BEGIN
    INSERT INTO conversations (id, user_id, title, model, connection_id, is_favorite, created_at, updated_at)
    VALUES (p_conversation, p_user, p_title, p_model,
            (SELECT id FROM connections WHERE id = p_connection AND user_id = p_user), FALSE, p_now, p_now)
    ON CONFLICT (id) DO NOTHING;
    INSERT INTO messages (id, conversation_id, role, content, metadata, created_at)
    VALUES (p_question_id, p_conversation, p_question_role, p_question, p_question_metadata, p_question_at),
           (p_answer_id, p_conversation, p_answer_role, p_answer, p_answer_metadata, p_answer_at)
    ON CONFLICT (id) DO NOTHING;
    GET DIAGNOSTICS added = ROW_COUNT;
    UPDATE conversations
    SET updated_at = CASE WHEN added > 0 THEN p_now ELSE updated_at END, message_count = message_count + added
    WHERE id = p_conversation
    RETURNING user_id, (SELECT COUNT(*) FROM messages WHERE conversation_id = p_conversation
                                                    AND id IN (p_question_id, p_answer_id))
    INTO conversation_owner, present;
    IF conversation_owner IS DISTINCT FROM p_user THEN
        RAISE EXCEPTION 'conversation % not found', p_conversation USING ERRCODE = 'no_data_found';
    END IF;
    IF present <> 2 THEN
        RAISE EXCEPTION 'message ids % and % are not both free for conversation %',
            p_question_id, p_answer_id, p_conversation USING ERRCODE = 'unique_violation';
    END IF;
    RETURN added;
END
$$;
