//! `POST /sql/generate` on the worker: the key owner's default model writes a statement for the schema the client
//! describes, and the validator of the client's dialect proves it read-only. Nothing is executed and nothing is
//! stored here: the API node keeps the conversation.
//!
//! The attempts follow the chat's rule for refusals: a statement the validator refuses goes back to the model once
//! with the reason (a model that wrote `DELETE` may correct itself), and a statement repeated word for word ends
//! the request at once.

use crate::attempts::{self, FailedAttempt, with_attempts};
use crate::failure::Failure;
use crate::prompt::{self, PromptInput};
use crate::specs::endpoint;
use querygpt_common::messages::{GenerateRequest, GeneratedSql, MAX_ATTEMPTS};
use querygpt_common::{Driver, ErrorCode, Language};
use querygpt_llm::LlmClient;
use querygpt_llm::extract::{extract_command, extract_sql};
use querygpt_sqlsafe::Policy;
use querygpt_store::Store;
use serde_json::json;
use uuid::Uuid;

/// What writing a statement needs besides the request.
pub(crate) struct Generator<'a> {
    pub store: &'a dyn Store,
    pub llm: &'a LlmClient,
    pub schema_budget: usize,
    pub max_attempts: u32,
}

impl Generator<'_> {
    /// A validated statement for `request`, or the failure to tell the client (its code is one of the Text2SQL
    /// document's: `LLM_ERROR`, `SQL_VALIDATION_FAILED`; store trouble is `INTERNAL_ERROR`).
    pub(crate) async fn generate(&self, user_id: Uuid, request: &GenerateRequest) -> Result<GeneratedSql, Failure> {
        let (model, settings) = tokio::join!(self.store.default_model(user_id), self.store.user_settings(user_id));
        let settings = settings?;
        let language = settings.language.unwrap_or_default();
        let model = model?.ok_or_else(|| Failure::user(ErrorCode::LlmError, no_model_message(language)))?;
        let input = PromptInput {
            driver: request.driver,
            schema: &request.schema,
            question: &request.query,
            language,
            templates: &settings.prompts,
            schema_budget: self.schema_budget,
        };
        let built = prompt::build(&input, &request.history);
        let mut prompt = built.prompt;
        let endpoint = endpoint(&model);
        // The statement may only name the tables the client described: anything else is a guess of the model.
        let policy = Policy {
            allowed_tables: Some(request.schema.tables.iter().map(|t| t.name.clone()).collect()),
            row_limit: None,
        };
        let mut failed: Vec<FailedAttempt> = Vec::new();
        let max_attempts = self.max_attempts.clamp(1, MAX_ATTEMPTS);
        for attempt in 1..=max_attempts {
            let completion =
                self.llm.complete(&endpoint, &prompt, &|| {}).await.map_err(|e| with_attempts(e.into(), &failed))?;
            let extracted = match request.driver {
                Driver::Redis => extract_command(&completion.text),
                _ => extract_sql(&completion.text),
            };
            let Some(sql) = extracted.sql else {
                let details = json!({"reply": crate::job::truncate(&completion.text, 500)});
                let message = attempts::no_sql_message(language).to_owned();
                let failure = Failure::User { code: ErrorCode::LlmError, message, details: Some(details) };
                return Err(with_attempts(failure, &failed));
            };
            let repeated = failed.last().is_some_and(|f| f.sql.trim() == sql.trim());
            match attempts::validate_with(request.driver, &sql, &policy) {
                Ok(validated) => {
                    // SQL goes back as the model wrote it (the client runs it, with limits of its own); Redis
                    // commands as validated, so that a `KEYS` reaches the client as the bounded `SCAN` it became.
                    let sql = if request.driver == Driver::Redis { validated } else { sql.trim().to_owned() };
                    let explanation =
                        extracted.explanation.unwrap_or_else(|| default_explanation(language, request.driver));
                    return Ok(GeneratedSql { sql, explanation, tables: built.tables, attempts: attempt });
                }
                Err(refused) => {
                    failed.push(FailedAttempt::refused(attempt, &sql, &refused));
                    // A refusal goes back once: see the module's comment.
                    if attempt == max_attempts || repeated || failed.len() > 1 {
                        return Err(with_attempts(refused.into(), &failed));
                    }
                    attempts::send_back(&mut prompt, &input, &failed);
                }
            }
        }
        unreachable!("every attempt returns or continues, and the last one returns")
    }
}

fn no_model_message(language: Language) -> &'static str {
    match language {
        Language::Zh => "API Key 的所有者没有默认模型：请先通过 POST /api/v1/models 添加一个模型",
        Language::En => "the API key's owner has no default model: add one with POST /api/v1/models first",
    }
}

/// Said when the model gave the statement without a word about it.
fn default_explanation(language: Language, driver: Driver) -> String {
    match (language, driver) {
        (Language::Zh, Driver::Redis) => "按问题生成的 Redis 只读命令".to_owned(),
        (Language::Zh, _) => "按问题生成的查询语句".to_owned(),
        (Language::En, Driver::Redis) => "Read-only Redis commands for the question".to_owned(),
        (Language::En, _) => "A query for the question".to_owned(),
    }
}
