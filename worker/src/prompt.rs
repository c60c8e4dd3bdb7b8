//! The prompt: the user's templates (or the defaults of the question's language) filled with the target's dialect,
//! its schema and the question, after the earlier turns of the conversation.
//!
//! | message   | template                                  |
//! |-----------|-------------------------------------------|
//! | system    | `system_prompt`, a blank line, `explanation` |
//! | history   | earlier questions, and the SQL each one ran |
//! | last user | `sql_generation` (`{schema}`, `{question}`)  |

use querygpt_common::messages::PriorTurn;
use querygpt_common::prompts::{PromptKind, PromptSet, PromptValues, QueryLanguage, language_name, render};
use querygpt_common::{Driver, Language};
use querygpt_llm::{Prompt, PromptMessage};
use querygpt_store::{Message, Role};
use querygpt_targets::DbSchema;

/// What a prompt is made of, besides the conversation's history.
pub struct PromptInput<'a> {
    pub driver: Driver,
    pub schema: &'a DbSchema,
    pub question: &'a str,
    pub language: Language,
    pub templates: &'a PromptSet,
    /// Bytes of schema text the prompt may carry (`worker.schema_budget`).
    pub schema_budget: usize,
    /// The schema's ranking index when one is kept (see `Schemas::prepared`); else it is built for this prompt.
    pub index: Option<&'a querygpt_ranking::SchemaIndex>,
}

/// A prompt and the tables whose schema it carries.
pub struct Built {
    pub prompt: Prompt,
    pub tables: Vec<String>,
}

/// Builds the prompt for one question after the conversation's earlier `history`, oldest first.
pub fn build(input: &PromptInput<'_>, history: &[PriorTurn]) -> Built {
    // Earlier questions and their SQL help find the tables of a follow-up ("only 2024").
    let context: Vec<&str> =
        history.iter().flat_map(|turn| turn.question.as_deref().into_iter().chain([turn.sql.as_str()])).collect();
    let fitted = match input.index {
        Some(index) => index.fit(input.schema, input.question, &context, input.schema_budget),
        None => querygpt_ranking::fit(input.schema, input.question, &context, input.schema_budget),
    };
    let (schema, tables) = (fitted.text, fitted.tables);
    let values = values(input, &schema);
    let template = |kind| input.templates.effective_for(kind, input.language, query_language(input.driver));
    let system = format!(
        "{}\n\n{}",
        render(template(PromptKind::System), &values),
        render(template(PromptKind::Explanation), &values)
    );
    let mut messages: Vec<PromptMessage> = history
        .iter()
        .flat_map(|turn| {
            let question = turn.question.clone().unwrap_or_else(|| unknown_question(input.language).to_owned());
            // Earlier answers are given as the SQL they ran: that is what a follow-up question refines.
            [PromptMessage::user(question), PromptMessage::assistant(fenced(input.driver, &turn.sql))]
        })
        .collect();
    messages.push(PromptMessage::user(render(template(PromptKind::SqlGeneration), &values)));
    Built { prompt: Prompt { system, messages, max_tokens: 1024, temperature: Some(0.0) }, tables }
}

/// Stands for the question of a statement given without it (`previous_sql` of the Text2SQL API): providers want
/// a user turn before each answer.
fn unknown_question(language: Language) -> &'static str {
    match language {
        Language::Zh => "（上一轮的查询）",
        Language::En => "(the previous query)",
    }
}

/// The question/SQL pairs of stored messages, oldest first: each answered user message with the SQL of the
/// answer that follows it.
pub fn turns_of(messages: &[Message]) -> Vec<PriorTurn> {
    let mut turns = Vec::new();
    let mut question = None;
    for message in messages {
        match (message.role, &message.metadata) {
            (Role::User, _) => question = Some(message.content.clone()),
            (Role::Assistant, Some(meta)) => turns.push(PriorTurn { question: question.take(), sql: meta.sql.clone() }),
            (Role::Assistant, None) => question = None,
        }
    }
    turns
}

/// The turns that send a failed statement back: the statement as the model's own answer, then the `correction`
/// template with the error.
pub fn correction(input: &PromptInput<'_>, sql: &str, error: &str) -> [PromptMessage; 2] {
    let values = PromptValues { sql, error, ..values(input, "") };
    let template = input.templates.effective_for(PromptKind::Correction, input.language, query_language(input.driver));
    [PromptMessage::assistant(fenced(input.driver, sql)), PromptMessage::user(render(template, &values))]
}

/// An earlier answer as the model would have written it: in a fenced block of its language.
fn fenced(driver: Driver, statement: &str) -> String {
    let tag = match query_language(driver) {
        QueryLanguage::Sql => "sql",
        QueryLanguage::Redis => "redis",
    };
    format!("```{tag}\n{statement}\n```")
}

fn query_language(driver: Driver) -> QueryLanguage {
    match driver {
        Driver::Redis => QueryLanguage::Redis,
        Driver::Mysql | Driver::Postgresql | Driver::Sqlite => QueryLanguage::Sql,
    }
}

/// Placeholder values of a prompt; `schema` is the schema text as sent.
fn values<'a>(input: &'a PromptInput<'a>, schema: &'a str) -> PromptValues<'a> {
    PromptValues {
        dialect: dialect_name(input.driver),
        language: language_name(input.language),
        schema,
        question: input.question,
        ..PromptValues::default()
    }
}

fn dialect_name(driver: Driver) -> &'static str {
    match driver {
        Driver::Mysql => "MySQL",
        Driver::Postgresql => "PostgreSQL",
        Driver::Sqlite => "SQLite",
        Driver::Redis => "Redis",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use querygpt_targets::{ColumnInfo, TableInfo, TableKind};

    fn schema() -> DbSchema {
        DbSchema {
            tables: vec![TableInfo {
                name: "orders".into(),
                kind: TableKind::Table,
                comment: None,
                columns: vec![ColumnInfo {
                    name: "id".into(),
                    data_type: "integer".into(),
                    nullable: false,
                    primary: true,
                    comment: Some("订单号".into()),
                }],
                foreign_keys: Vec::new(),
                row_count: None,
            }],
        }
    }

    #[test]
    fn defaults_follow_the_language_and_carry_schema_and_question() {
        let schema = schema();
        let templates = PromptSet::default();
        for (language, marker) in [(Language::En, "Question: how many?"), (Language::Zh, "问题：how many?")] {
            let input = PromptInput {
                driver: Driver::Sqlite,
                schema: &schema,
                question: "how many?",
                language,
                templates: &templates,
                schema_budget: 24 * 1024,
                index: None,
            };
            let prompt = build(&input, &[]).prompt;
            let last = prompt.messages.last().unwrap();
            assert!(last.content.contains("TABLE orders (id integer PRIMARY KEY -- 订单号)"), "{}", last.content);
            assert!(last.content.contains(marker), "{}", last.content);
            assert!(prompt.system.contains("SQLite"));
            assert!(prompt.system.contains(r#"{"sql": "...""#), "{}", prompt.system);
        }
    }

    #[test]
    fn a_redis_target_is_asked_for_read_only_commands() {
        let schema = schema();
        let templates = PromptSet::default();
        let input = PromptInput {
            driver: Driver::Redis,
            schema: &schema,
            question: "how many sessions?",
            language: Language::En,
            templates: &templates,
            schema_budget: 24 * 1024,
            index: None,
        };
        let history = [PriorTurn { question: Some("first".into()), sql: "HGETALL user:1".into() }];
        let prompt = build(&input, &history).prompt;
        assert!(prompt.system.contains("read-only Redis commands") && !prompt.system.contains("SELECT"));
        assert_eq!(prompt.messages[1].content, "```redis\nHGETALL user:1\n```");
        let [answer, retry] = correction(&input, "DEL user:1", "writes are refused");
        assert_eq!(answer.content, "```redis\nDEL user:1\n```");
        assert!(retry.content.contains("read-only Redis commands"), "{}", retry.content);
    }

    #[test]
    fn the_users_templates_are_what_is_sent() {
        let schema = schema();
        let templates = PromptSet {
            system: Some("You are terse. Dialect {dialect}.".into()),
            sql_generation: Some("Q={question}\nS={schema}".into()),
            explanation: Some("Explain in {language}.".into()),
            correction: None,
        };
        let input = PromptInput {
            driver: Driver::Postgresql,
            schema: &schema,
            question: "q1",
            language: Language::En,
            templates: &templates,
            schema_budget: 24 * 1024,
            index: None,
        };
        let prompt = build(&input, &[]).prompt;
        assert_eq!(prompt.system, "You are terse. Dialect PostgreSQL.\n\nExplain in English.");
        assert!(prompt.messages.last().unwrap().content.starts_with("Q=q1\nS=TABLE orders"));
    }
}
