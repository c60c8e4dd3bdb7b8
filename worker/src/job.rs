//! The stages of one job, from question to stored answer.
//!
//! Redelivery: a job can run twice (its worker died, or its ack was lost). The answer is stored *before* it is
//! published, keyed by the message ids the API node assigned, so a second run finds it and re-sends the same
//! answer: it re-executes the stored SQL (never asks the LLM again) and re-sends the stored chart. Events before the
//! answer are progress events with fixed sequence numbers, which the API node drops when it has seen them. The client
//! therefore sees one complete, ordered answer, and the conversation holds exactly one copy of it.

use crate::events::EventSink;
use crate::schemas::Schemas;
use crate::specs::{endpoint, target_key, target_spec};
use crate::{chart, prompt};
use anyhow::anyhow;
use querygpt_bus::BusError;
use querygpt_common::config::WorkerSettings;
use querygpt_common::messages::{ChatEvent, QueryJob, Stage};
use querygpt_common::{Driver, ErrorCode, Language};
use querygpt_llm::extract::extract_sql;
use querygpt_llm::{LlmClient, LlmError};
use querygpt_sqlsafe::{Dialect, Policy};
use querygpt_store::{AnswerMetadata, Connection, Exchange, Message, Role, Store, StoreError};
use querygpt_targets::{QueryOutput, TargetError, TargetSpec, Targets};
use serde_json::{Value, json};
use std::sync::Arc;

/// Why a job ended without an answer.
#[derive(Debug)]
pub enum Failure {
    /// An error the user is told about (bad SQL from the model, unreachable database...); the job is finished.
    User { code: ErrorCode, message: String, details: Option<Value> },
    /// Trouble in the service's own infrastructure (store, bus): the job is retried, on another worker if need be.
    /// Carries the cause with its own causes (`{:#}` prints them all; `downcast_ref` finds a `BusError`...).
    Transient(anyhow::Error),
}

impl Failure {
    fn user(code: ErrorCode, message: impl Into<String>) -> Self {
        Failure::User { code, message: message.into(), details: None }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Transient(anyhow::Error::new(e).context("store"))
    }
}

impl From<BusError> for Failure {
    fn from(e: BusError) -> Self {
        Failure::Transient(anyhow::Error::new(e).context("bus"))
    }
}

impl From<TargetError> for Failure {
    fn from(e: TargetError) -> Self {
        Failure::User { code: ErrorCode::DatabaseError, message: e.to_string(), details: None }
    }
}

impl From<LlmError> for Failure {
    fn from(e: LlmError) -> Self {
        Failure::User { code: ErrorCode::LlmError, message: e.to_string(), details: None }
    }
}

/// Everything a job's stages use; shared by all jobs of a worker.
pub struct JobContext {
    store: Arc<dyn Store>,
    llm: LlmClient,
    targets: Arc<Targets>,
    schemas: Schemas,
    settings: WorkerSettings,
}

/// The SQL a job runs and what the LLM said about it.
struct Plan {
    sql: String,
    explanation: Option<String>,
    /// The provider's model name, shown on the conversation.
    model: String,
}

impl JobContext {
    pub fn new(
        store: Arc<dyn Store>,
        llm: LlmClient,
        targets: Arc<Targets>,
        schemas: Schemas,
        settings: WorkerSettings,
    ) -> Self {
        JobContext { store, llm, targets, schemas, settings }
    }

    /// Answers `job`, publishing every stage to `sink`, and stores the answer before publishing it.
    /// `attempt` > 1 means the job may have been answered by an earlier run.
    pub async fn answer(&self, job: &QueryJob, attempt: u64, sink: &EventSink) -> Result<(), Failure> {
        sink.progress(Stage::Analyzing).await?;
        let connection = self
            .store
            .connection(job.user_id, job.connection_id)
            .await?
            .ok_or_else(|| Failure::user(ErrorCode::NotFound, "the connection no longer exists"))?;
        let spec = target_spec(&connection);
        if attempt > 1
            && let Some(stored) = self.store.message(job.user_id, job.assistant_message_id).await?
        {
            return self.replay(job, &connection, &spec, stored, sink).await;
        }

        let plan = self.plan(job, &connection, sink).await?;
        sink.progress(Stage::Executing).await?;
        let output = self.targets.execute(&target_key(&connection), &spec, &plan.sql).await?;
        let chart = chart::suggest(&output.columns, &output.rows);
        self.store_answer(job, &connection, &plan, &output, chart.as_ref()).await?;
        sink.answer(result_event(&plan, &output), chart, job.assistant_message_id).await?;
        Ok(())
    }

    /// Re-sends an answer stored by an earlier run of this job, with fresh rows from its stored SQL.
    async fn replay(
        &self,
        job: &QueryJob,
        connection: &Connection,
        spec: &TargetSpec,
        stored: Message,
        sink: &EventSink,
    ) -> Result<(), Failure> {
        let (plan, chart) = replayed_plan(connection.driver, stored, self.settings.row_cap)?;
        sink.progress(Stage::GeneratingSql).await?;
        sink.progress(Stage::Executing).await?;
        let output = self.targets.execute(&target_key(connection), spec, &plan.sql).await?;
        sink.answer(result_event(&plan, &output), chart, job.assistant_message_id).await?;
        Ok(())
    }

    /// analyzing + generating_sql: schema and history, the LLM call, extraction and validation.
    async fn plan(&self, job: &QueryJob, connection: &Connection, sink: &EventSink) -> Result<Plan, Failure> {
        let model = self
            .store
            .model(job.user_id, job.model_id)
            .await?
            .ok_or_else(|| Failure::user(ErrorCode::NotFound, "the model no longer exists"))?;
        let schema = self.schemas.get(connection, false).await?;
        let rounds = job.context_rounds.map_or(self.settings.context_rounds, |rounds| rounds as usize);
        let history = if job.new_conversation || rounds == 0 {
            Vec::new()
        } else {
            self.store.recent_messages(job.user_id, job.conversation_id, rounds * 2).await?
        };
        let input = prompt::PromptInput {
            driver: connection.driver,
            schema: &schema,
            question: &job.question,
            language: job.language,
            templates: &job.prompts,
        };
        let prompt = prompt::build(&input, &history);

        sink.progress(Stage::GeneratingSql).await?;
        let completion = self.llm.complete(&endpoint(&model), &prompt, &|| {}).await?;
        let extracted = extract_sql(&completion.text);
        let Some(sql) = extracted.sql else {
            return Err(Failure::User {
                code: ErrorCode::LlmError,
                message: no_sql_message(job.language).into(),
                details: Some(json!({"reply": truncate(&completion.text, 500)})),
            });
        };
        let sql = validate(connection.driver, &sql, self.settings.row_cap)?;
        Ok(Plan { sql, explanation: extracted.explanation, model: model.model_id })
    }

    async fn store_answer(
        &self,
        job: &QueryJob,
        connection: &Connection,
        plan: &Plan,
        output: &QueryOutput,
        chart: Option<&Value>,
    ) -> Result<(), Failure> {
        let now = chrono::Utc::now();
        let metadata = AnswerMetadata {
            sql: plan.sql.clone(),
            execution_time: output.elapsed.as_secs_f64(),
            rows_count: output.rows.len(),
            truncated: output.truncated,
            columns: output.columns.clone(),
            visualization: chart.cloned(),
            explanation: plan.explanation.clone(),
            connection_id: Some(connection.id),
            extra: serde_json::Map::new(),
        };
        let exchange = Exchange {
            user_id: job.user_id,
            conversation_id: job.conversation_id,
            title: title_of(&job.question),
            model: plan.model.clone(),
            connection_id: connection.id,
            user_message: Message {
                id: job.user_message_id,
                conversation_id: job.conversation_id,
                role: Role::User,
                content: job.question.clone(),
                metadata: None,
                created_at: job.accepted_at,
            },
            assistant_message: Message {
                id: job.assistant_message_id,
                conversation_id: job.conversation_id,
                role: Role::Assistant,
                content: plan.explanation.clone().unwrap_or_else(|| summary(job.language, output.rows.len())),
                metadata: Some(metadata),
                created_at: now,
            },
        };
        match self.store.save_exchange(exchange).await {
            Ok(_) => Ok(()),
            Err(StoreError::NotFound(what)) => Err(Failure::user(ErrorCode::NotFound, what)),
            Err(e) => Err(e.into()),
        }
    }
}

/// The plan and chart of an answer stored by an earlier run of this job. Its SQL is validated again: only
/// validated text ever runs.
fn replayed_plan(driver: Driver, answer: Message, row_cap: usize) -> Result<(Plan, Option<Value>), Failure> {
    let metadata = answer.metadata.ok_or_else(|| Failure::Transient(anyhow!("stored answer has no SQL")))?;
    let sql = validate(driver, &metadata.sql, row_cap)?;
    Ok((Plan { sql, explanation: metadata.explanation, model: String::new() }, metadata.visualization))
}

fn result_event(plan: &Plan, output: &QueryOutput) -> ChatEvent {
    ChatEvent::Result {
        sql: plan.sql.clone(),
        data: output.rows.clone(),
        rows_count: output.rows.len(),
        columns: output.columns.clone(),
        truncated: output.truncated,
        execution_time: output.elapsed.as_secs_f64(),
        explanation: plan.explanation.clone(),
    }
}

/// Checks the SQL with the validator of the target's dialect; the text returned is the exact text to run.
fn validate(driver: Driver, sql: &str, row_cap: usize) -> Result<String, Failure> {
    let dialect = match driver {
        Driver::Postgresql => Dialect::Postgresql,
        Driver::Mysql => Dialect::Mysql,
        Driver::Sqlite => Dialect::Sqlite,
        Driver::Redis => return Err(Failure::user(ErrorCode::DatabaseError, "Redis targets are not supported yet")),
    };
    let policy = Policy { allowed_tables: None, row_limit: Some(row_cap as u64 + 1) };
    querygpt_sqlsafe::validate(sql, dialect, &policy).map(|v| v.sql).map_err(|rejection| Failure::User {
        code: ErrorCode::SqlValidationFailed,
        message: rejection.message.clone(),
        details: Some(json!({"rule": rejection.rule, "sql": sql})),
    })
}

fn no_sql_message(language: Language) -> &'static str {
    match language {
        Language::Zh => "模型没有返回 SQL 语句",
        Language::En => "the model did not return a SQL statement",
    }
}

fn summary(language: Language, rows: usize) -> String {
    match language {
        Language::Zh => format!("查询返回 {rows} 行。"),
        Language::En => format!("The query returned {rows} rows."),
    }
}

/// Conversation title: the first question, cut at 80 characters.
fn title_of(question: &str) -> String {
    truncate(question.trim(), 80)
}

/// `text` cut at `max_chars` characters, an ellipsis marking the cut.
pub(crate) fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}
