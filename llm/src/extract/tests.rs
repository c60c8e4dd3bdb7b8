use super::*;

fn sql(reply: &str) -> Option<String> {
    extract_sql(reply).sql
}

fn command(reply: &str) -> Option<String> {
    extract_command(reply).sql
}

// --- fenced blocks -----------------------------------------------------------------------------------------

#[test]
fn sql_fence_with_prose_around() {
    let reply = "Here is the SQL query:\n\n```sql\nSELECT name, age\nFROM users\nWHERE age > 30;\n```\n\nThis query selects users older than 30.";
    let found = extract_sql(reply);
    assert_eq!(found.sql.as_deref(), Some("SELECT name, age\nFROM users\nWHERE age > 30"));
    assert_eq!(found.explanation.as_deref(), Some("This query selects users older than 30."));
}

#[test]
fn fence_language_tags_are_case_insensitive_and_dialect_named() {
    for tag in ["SQL", "sql", "postgresql", "PostgreSQL", "mysql", "sqlite", "pgsql", "mariadb"] {
        let reply = format!("```{tag}\nSELECT 1\n```");
        assert_eq!(sql(&reply).as_deref(), Some("SELECT 1"), "tag {tag}");
    }
}

#[test]
fn plain_fence_that_looks_like_sql() {
    let reply = "```\nSELECT COUNT(*) FROM orders WHERE status = 'paid'\n```";
    assert_eq!(sql(reply).as_deref(), Some("SELECT COUNT(*) FROM orders WHERE status = 'paid'"));
}

#[test]
fn plain_fence_with_prose_is_not_sql() {
    let reply = "```\nSelect the table you want to query first.\n```";
    assert_eq!(sql(reply), None);
}

#[test]
fn first_sql_fence_wins() {
    let reply = "Option A:\n```sql\nSELECT * FROM a\n```\nOption B:\n```sql\nSELECT * FROM b\n```";
    assert_eq!(sql(reply).as_deref(), Some("SELECT * FROM a"));
}

#[test]
fn sql_fence_after_a_non_sql_fence() {
    let reply = "Schema recap:\n```python\nusers = load()\n```\nQuery:\n```sql\nSELECT id FROM users\n```";
    assert_eq!(sql(reply).as_deref(), Some("SELECT id FROM users"));
}

#[test]
fn tagged_fence_beats_an_earlier_plain_fence() {
    let reply = "```\nSELECT 1\n```\n```sql\nSELECT 2\n```";
    assert_eq!(sql(reply).as_deref(), Some("SELECT 2"));
}

#[test]
fn windows_newlines() {
    let reply = "Sure!\r\n```sql\r\nSELECT id,\r\n       name\r\nFROM users;\r\n```\r\nDone.";
    let found = extract_sql(reply);
    assert_eq!(found.sql.as_deref(), Some("SELECT id,\n       name\nFROM users"));
    assert_eq!(found.explanation.as_deref(), Some("Sure!\n\nDone."));
}

#[test]
fn unclosed_fence_of_a_truncated_reply() {
    let reply = "```sql\nSELECT id, name\nFROM users\nWHERE";
    assert_eq!(sql(reply).as_deref(), Some("SELECT id, name\nFROM users\nWHERE"));
}

#[test]
fn one_line_fence() {
    assert_eq!(sql("```SELECT * FROM t```").as_deref(), Some("SELECT * FROM t"));
}

#[test]
fn only_one_trailing_semicolon_is_removed() {
    assert_eq!(sql("```sql\nSELECT 1;;  \n```").as_deref(), Some("SELECT 1;"));
    assert_eq!(sql("```sql\nSELECT 1; SELECT 2;\n```").as_deref(), Some("SELECT 1; SELECT 2"));
}

#[test]
fn comments_in_the_fence_are_kept() {
    let reply = "```sql\n-- count users per city\nSELECT city, COUNT(*) FROM users GROUP BY city;\n```";
    assert_eq!(sql(reply).as_deref(), Some("-- count users per city\nSELECT city, COUNT(*) FROM users GROUP BY city"));
}

#[test]
fn sql_fence_with_only_a_refusal_comment_is_none() {
    assert_eq!(sql("```sql\n-- The schema has no orders table.\n```"), None);
}

#[test]
fn cte_in_fence() {
    let reply = "```postgresql\nWITH recent AS (\n  SELECT * FROM orders WHERE created_at > now() - interval '7 days'\n)\nSELECT count(*) FROM recent;\n```";
    assert!(sql(reply).unwrap().starts_with("WITH recent AS ("));
}

#[test]
fn tilde_fence_and_indented_fence() {
    assert_eq!(sql("~~~sql\nSELECT 1\n~~~").as_deref(), Some("SELECT 1"));
    assert_eq!(sql("1. Run this:\n   ```sql\n   SELECT 2\n   ```").as_deref(), Some("SELECT 2"));
}

#[test]
fn markdown_explanation_label_is_stripped() {
    let reply = "```sql\nSELECT * FROM users WHERE age > 30\n```\n\n**Explanation:** filters users older than 30.";
    assert_eq!(extract_sql(reply).explanation.as_deref(), Some("filters users older than 30."));
    let zh = "```sql\nSELECT * FROM users WHERE age > 30\n```\n解释：筛选年龄大于30的用户";
    assert_eq!(extract_sql(zh).explanation.as_deref(), Some("筛选年龄大于30的用户"));
}

// --- bare SQL --------------------------------------------------------------------------------------------

#[test]
fn bare_sql_alone() {
    assert_eq!(sql("SELECT * FROM users WHERE age > 30;").as_deref(), Some("SELECT * FROM users WHERE age > 30"));
    assert_eq!(sql("  select id from users  ").as_deref(), Some("select id from users"));
}

#[test]
fn bare_multiline_sql_with_prose_before_and_after() {
    let reply = "The query you need is:\n\nSELECT u.name, COUNT(o.id) AS orders\nFROM users u\nJOIN orders o ON o.user_id = u.id\nGROUP BY u.name;\n\nThis counts orders per user.";
    let found = extract_sql(reply);
    assert_eq!(
        found.sql.as_deref(),
        Some("SELECT u.name, COUNT(o.id) AS orders\nFROM users u\nJOIN orders o ON o.user_id = u.id\nGROUP BY u.name")
    );
    assert_eq!(found.explanation.as_deref(), Some("This counts orders per user."));
}

#[test]
fn bare_sql_followed_directly_by_a_prose_line() {
    let reply = "SELECT * FROM users\nWHERE active = 1\nThis returns the active users.";
    let found = extract_sql(reply);
    assert_eq!(found.sql.as_deref(), Some("SELECT * FROM users\nWHERE active = 1"));
    assert_eq!(found.explanation.as_deref(), Some("This returns the active users."));
}

#[test]
fn bare_sql_with_prose_after_semicolon_on_the_same_line() {
    let found = extract_sql("SELECT count(*) FROM users; This counts all users.");
    assert_eq!(found.sql.as_deref(), Some("SELECT count(*) FROM users"));
    assert_eq!(found.explanation.as_deref(), Some("This counts all users."));
}

#[test]
fn bare_sql_after_a_label() {
    assert_eq!(sql("SQL: SELECT name FROM users").as_deref(), Some("SELECT name FROM users"));
    assert_eq!(
        sql("SQL查询：SELECT name FROM users WHERE age > 30").as_deref(),
        Some("SELECT name FROM users WHERE age > 30")
    );
}

#[test]
fn bare_sql_with_blank_line_inside() {
    let reply = "SELECT name\nFROM users\n\nWHERE age > 30\nORDER BY name";
    assert_eq!(sql(reply).as_deref(), Some("SELECT name\nFROM users\n\nWHERE age > 30\nORDER BY name"));
}

#[test]
fn bare_sql_keeps_quoted_prose() {
    let reply = "SELECT * FROM posts WHERE title = 'The best of the year.'";
    assert_eq!(sql(reply).as_deref(), Some(reply));
}

#[test]
fn bare_sql_with_multibyte_literals_and_semicolon() {
    let reply = "SELECT * FROM users WHERE city = '北京'; 这个查询返回北京的用户";
    assert_eq!(sql(reply).as_deref(), Some("SELECT * FROM users WHERE city = '北京'"));
}

#[test]
fn two_bare_statements_are_kept_together_for_the_validator() {
    let reply = "SELECT 1;\nDROP TABLE users;";
    assert_eq!(sql(reply).as_deref(), Some("SELECT 1;\nDROP TABLE users"));
}

#[test]
fn write_statements_are_extracted_for_the_validator() {
    assert_eq!(sql("DELETE FROM users WHERE id = 3").as_deref(), Some("DELETE FROM users WHERE id = 3"));
    assert_eq!(sql("```sql\nDROP TABLE users;\n```").as_deref(), Some("DROP TABLE users"));
    assert_eq!(sql("UPDATE users SET name = 'x'").as_deref(), Some("UPDATE users SET name = 'x'"));
}

#[test]
fn inline_code_span() {
    let found = extract_sql("You can run `SELECT COUNT(*) FROM orders` to get the total.");
    assert_eq!(found.sql.as_deref(), Some("SELECT COUNT(*) FROM orders"));
    assert!(found.explanation.unwrap().contains("to get the total"));
}

#[test]
fn quoted_line_and_bullet() {
    assert_eq!(sql("> SELECT 1 FROM dual").as_deref(), Some("SELECT 1 FROM dual"));
    assert_eq!(sql("- SELECT id FROM t").as_deref(), Some("SELECT id FROM t"));
}

#[test]
fn parenthesised_union() {
    let reply = "(SELECT id FROM a) UNION (SELECT id FROM b)";
    assert_eq!(sql(reply).as_deref(), Some(reply));
}

// --- prose is never SQL -------------------------------------------------------------------------------------

#[test]
fn refusals_and_prose_give_no_sql() {
    let replies = [
        "I cannot answer that.",
        "Sorry, the schema has no table about orders.",
        "Select the table you want to query.",
        "Select all users from the users table.",
        "Delete requests are not allowed.",
        "With the given schema it is impossible to answer.",
        "Show me more details about the columns.",
        "Update: I need more information about the schema.",
        "Describe the columns you need, please.",
        "Create a view first, then query it.",
        "无法根据给定的表结构生成 SQL。",
        "抱歉，我无法回答这个问题。",
        "Set the language to English and try again.",
        "",
        "   \n  ",
    ];
    for reply in replies {
        let found = extract_sql(reply);
        assert_eq!(found.sql, None, "reply {reply:?}");
        assert_eq!(found.explanation.as_deref(), non_empty(reply).as_deref(), "reply {reply:?}");
    }
}

#[test]
fn select_mid_sentence_is_not_extracted() {
    assert_eq!(sql("To answer this, select the count from orders grouped by day."), None);
}

#[test]
fn prose_with_trailing_period_after_sql_keyword() {
    assert_eq!(sql("Select from the list below."), None);
}

// --- reasoning blocks ------------------------------------------------------------------------------------

#[test]
fn think_block_is_ignored() {
    let reply = "<think>\nThe user wants users. Maybe SELECT * FROM people? No, the table is users.\n</think>\n\n```sql\nSELECT * FROM users\n```";
    let found = extract_sql(reply);
    assert_eq!(found.sql.as_deref(), Some("SELECT * FROM users"));
    assert_eq!(found.explanation, None);
}

#[test]
fn think_block_with_bare_sql_inside_is_not_used() {
    let reply = "<think>SELECT * FROM wrong_table</think>\nI cannot answer this.";
    assert_eq!(extract_sql(reply), Extracted { sql: None, explanation: Some("I cannot answer this.".into()) });
}

#[test]
fn closing_think_tag_without_opening_tag() {
    let reply = "Let me think. SELECT * FROM nope\n</think>\nSELECT id FROM users";
    assert_eq!(sql(reply).as_deref(), Some("SELECT id FROM users"));
}

#[test]
fn unclosed_think_block_has_no_answer() {
    assert_eq!(sql("<think>\nI should write SELECT 1 FROM t\n"), None);
}

#[test]
fn thinking_tags_and_uppercase_think() {
    assert_eq!(sql("<THINK>x</THINK>SELECT 1").as_deref(), Some("SELECT 1"));
    assert_eq!(sql("<thinking>SELECT 0</thinking>\n```sql\nSELECT 1\n```").as_deref(), Some("SELECT 1"));
}

// --- JSON replies ----------------------------------------------------------------------------------------

#[test]
fn json_object() {
    let reply = r#"{"sql": "SELECT * FROM users WHERE age > 30;", "explanation": "筛选年龄大于30的用户"}"#;
    let found = extract_sql(reply);
    assert_eq!(found.sql.as_deref(), Some("SELECT * FROM users WHERE age > 30"));
    assert_eq!(found.explanation.as_deref(), Some("筛选年龄大于30的用户"));
}

#[test]
fn json_in_fence_with_prose() {
    let reply =
        "Here you go:\n```json\n{\n  \"sql\": \"SELECT id FROM t\",\n  \"explanation\": \"ids\"\n}\n```\nLet me know!";
    assert_eq!(extract_sql(reply), Extracted { sql: Some("SELECT id FROM t".into()), explanation: Some("ids".into()) });
}

#[test]
fn json_with_raw_newlines_in_strings() {
    let reply = "{\"sql\": \"SELECT id\nFROM t\", \"explanation\": \"two\nlines\"}";
    let found = extract_sql(reply);
    assert_eq!(found.sql.as_deref(), Some("SELECT id\nFROM t"));
    assert_eq!(found.explanation.as_deref(), Some("two\nlines"));
}

#[test]
fn json_with_fenced_sql_value() {
    let reply = r#"{"sql": "```sql\nSELECT 1\n```", "explanation": "one"}"#;
    assert_eq!(sql(reply).as_deref(), Some("SELECT 1"));
}

#[test]
fn json_declining_gives_no_sql_but_the_explanation() {
    let reply = r#"{"sql": null, "explanation": "The schema has no price column."}"#;
    assert_eq!(
        extract_sql(reply),
        Extracted { sql: None, explanation: Some("The schema has no price column.".into()) }
    );
    let reply = r#"{"sql": "", "explanation": "No."}"#;
    assert_eq!(sql(reply), None);
    let reply = r#"{"sql": "N/A", "explanation": "No."}"#;
    assert_eq!(sql(reply), None);
}

#[test]
fn json_keys_are_case_insensitive() {
    assert_eq!(sql(r#"{"SQL": "SELECT 1", "Explanation": "x"}"#).as_deref(), Some("SELECT 1"));
}

#[test]
fn json_inside_sql_is_data_not_a_reply() {
    let reply = "```sql\nSELECT * FROM events WHERE payload @> '{\"query\": \"x\"}'::jsonb\n```";
    assert_eq!(sql(reply).as_deref(), Some("SELECT * FROM events WHERE payload @> '{\"query\": \"x\"}'::jsonb"));
}

#[test]
fn json_without_sql_field_falls_back_to_fences() {
    let reply = "{\"note\": 1}\n```sql\nSELECT 2\n```";
    assert_eq!(sql(reply).as_deref(), Some("SELECT 2"));
}

#[test]
fn json_after_think_block() {
    let reply = "<think>{\"sql\": \"SELECT wrong\"}</think>{\"sql\": \"SELECT right FROM t\", \"explanation\": \"e\"}";
    assert_eq!(sql(reply).as_deref(), Some("SELECT right FROM t"));
}

// --- other statements -----------------------------------------------------------------------------------

#[test]
fn show_explain_and_pragma() {
    assert_eq!(sql("SHOW TABLES;").as_deref(), Some("SHOW TABLES"));
    assert_eq!(sql("EXPLAIN SELECT * FROM t").as_deref(), Some("EXPLAIN SELECT * FROM t"));
    assert_eq!(sql("PRAGMA table_info(users);").as_deref(), Some("PRAGMA table_info(users)"));
    assert_eq!(sql("DESCRIBE users").as_deref(), Some("DESCRIBE users"));
}

// --- Redis ----------------------------------------------------------------------------------------------

#[test]
fn redis_fence() {
    let reply = "```redis\nHGET user:1001 name\n```\nGets the name field of the hash user:1001.";
    let found = extract_command(reply);
    assert_eq!(found.sql.as_deref(), Some("HGET user:1001 name"));
    assert_eq!(found.explanation.as_deref(), Some("Gets the name field of the hash user:1001."));
}

#[test]
fn redis_fence_with_several_commands_comments_and_output() {
    let reply = "```redis\n# all keys of users\nSCAN 0 MATCH user:* COUNT 100\n127.0.0.1:6379> HGETALL user:1\n1) \"name\"\n2) \"Ann\"\n```";
    assert_eq!(command(reply).as_deref(), Some("SCAN 0 MATCH user:* COUNT 100\nHGETALL user:1"));
}

#[test]
fn redis_cli_in_a_shell_fence() {
    let reply = "```bash\nredis-cli -h localhost -p 6379 GET session:42\n```";
    assert_eq!(command(reply).as_deref(), Some("GET session:42"));
    assert_eq!(command("```bash\nexport A=1\nredis-cli GET k\n```"), None);
}

#[test]
fn bare_redis_lines() {
    let reply = "You can use:\nHGET user:1001 name\nHGET user:1001 age\nThese read the two fields.";
    let found = extract_command(reply);
    assert_eq!(found.sql.as_deref(), Some("HGET user:1001 name\nHGET user:1001 age"));
    assert_eq!(found.explanation.as_deref(), Some("These read the two fields."));
}

#[test]
fn bare_lowercase_redis_command_with_key_syntax() {
    assert_eq!(command("get user:1:name").as_deref(), Some("get user:1:name"));
    assert_eq!(command("DBSIZE").as_deref(), Some("DBSIZE"));
}

#[test]
fn redis_json_reply() {
    let reply = r#"{"command": "ZREVRANGE leaderboard 0 9 WITHSCORES", "explanation": "top ten"}"#;
    assert_eq!(command(reply).as_deref(), Some("ZREVRANGE leaderboard 0 9 WITHSCORES"));
    let reply = r#"{"commands": ["GET a", "GET b"]}"#;
    assert_eq!(command(reply).as_deref(), Some("GET a\nGET b"));
    let reply = r#"{"sql": "HGET user:1001 name", "explanation": "x"}"#;
    assert_eq!(command(reply).as_deref(), Some("HGET user:1001 name"));
}

#[test]
fn redis_prose_is_not_a_command() {
    for reply in [
        "Get the name of the user first.",
        "Type your question again, please.",
        "Keys are not described in the schema.",
        "Info about the keys is missing.",
        "Set up a schema first.",
        "抱歉，无法生成 Redis 命令。",
    ] {
        assert_eq!(command(reply), None, "reply {reply:?}");
    }
}

#[test]
fn redis_write_commands_are_extracted_for_the_validator() {
    assert_eq!(command("```redis\nFLUSHALL\n```").as_deref(), Some("FLUSHALL"));
    assert_eq!(command("DEL user:1").as_deref(), Some("DEL user:1"));
}

#[test]
fn redis_think_block_is_ignored() {
    assert_eq!(command("<think>GET wrong:key</think>\n```redis\nGET right:key\n```").as_deref(), Some("GET right:key"));
}

#[test]
fn redis_inline_code() {
    assert_eq!(command("Run `HLEN user:1` to count the fields.").as_deref(), Some("HLEN user:1"));
}

#[test]
fn multibyte_text_in_an_ignored_block_keeps_offsets_right() {
    let reply = "```python\nprint('数据库查询')\n```\n说明如下\nSELECT id FROM users\n```text\n无关内容\n```";
    let found = extract_sql(reply);
    assert_eq!(found.sql.as_deref(), Some("SELECT id FROM users"));
}
