//! The prompt: the target's dialect and schema, the earlier turns of the conversation, and the question.

use querygpt_common::{Driver, Language};
use querygpt_llm::{Prompt, PromptMessage};
use querygpt_store::{Message, Role};
use querygpt_targets::DbSchema;
use std::fmt::Write;

/// Schema text beyond this many bytes is cut (the largest schemas need retrieval, a later feature).
const MAX_SCHEMA_BYTES: usize = 48 * 1024;

/// Builds the prompt for one question.
pub fn build(driver: Driver, schema: &DbSchema, history: &[Message], question: &str, language: Language) -> Prompt {
    let mut messages: Vec<PromptMessage> = history
        .iter()
        .filter_map(|m| match m.role {
            Role::User => Some(PromptMessage::user(m.content.clone())),
            // Earlier answers are given as the SQL they ran: that is what a follow-up question refines.
            Role::Assistant => {
                m.metadata.as_ref().map(|meta| PromptMessage::assistant(format!("```sql\n{}\n```", meta.sql)))
            }
        })
        .collect();
    messages.push(PromptMessage::user(question));
    Prompt { system: system_text(driver, schema, language), messages, max_tokens: 1024, temperature: Some(0.0) }
}

fn dialect_name(driver: Driver) -> &'static str {
    match driver {
        Driver::Mysql => "MySQL",
        Driver::Postgresql => "PostgreSQL",
        Driver::Sqlite => "SQLite",
        Driver::Redis => "Redis",
    }
}

fn system_text(driver: Driver, schema: &DbSchema, language: Language) -> String {
    let dialect = dialect_name(driver);
    let explanation_language = match language {
        Language::Zh => "Chinese",
        Language::En => "English",
    };
    let mut text = format!(
        "You translate questions about a {dialect} database into ONE read-only {dialect} SELECT statement.\n\
         Rules: only SELECT (WITH ... SELECT allowed); never modify data or schema; use only the tables and columns \
         below; qualify ambiguous columns; prefer explicit JOINs; add ORDER BY when the question implies an order.\n\
         Answer with a JSON object and nothing else: {{\"sql\": \"...\", \"explanation\": \"...\"}}, the explanation \
         being one short sentence in {explanation_language}.\n\nSchema:\n"
    );
    let start = text.len();
    for table in &schema.tables {
        let mut line = format!("TABLE {} (", table.name);
        for (i, column) in table.columns.iter().enumerate() {
            if i > 0 {
                line.push_str(", ");
            }
            let _ = write!(line, "{} {}", column.name, column.data_type);
            if column.primary {
                line.push_str(" PRIMARY KEY");
            }
            if let Some(comment) = column.comment.as_deref().filter(|c| !c.is_empty()) {
                let _ = write!(line, " -- {}", comment.replace('\n', " "));
            }
        }
        line.push_str(")\n");
        if text.len() - start + line.len() > MAX_SCHEMA_BYTES {
            text.push_str("(more tables omitted)\n");
            break;
        }
        text.push_str(&line);
    }
    text
}
