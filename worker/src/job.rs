//! The stages of one job, from question to stored answer.
//!
//! Redelivery: a job can run twice (its worker died, or its ack was lost). The answer is stored *before* it is
//! published, keyed by the message ids the API node assigned, so a second run finds it and re-sends the same
//! answer: it re-executes the stored SQL (never asks the LLM again) and re-sends the stored chart. Events before the
//! answer are progress events with fixed sequence numbers, which the API node drops when it has seen them. The client
//! therefore sees one complete, ordered answer, and the conversation holds exactly one copy of it.

use crate::attempts::{self, AttemptContext};
use crate::events::EventSink;
pub use crate::failure::Failure;
use crate::measure;
use crate::records::Records;
use crate::schemas::Schemas;
use crate::specs::{endpoint, target_key, target_spec};
use crate::{chart, prompt};
use anyhow::anyhow;
use querygpt_common::config::WorkerSettings;
use querygpt_common::messages::{ChatEvent, DeveloperInfo, PriorTurn, QueryJob, Stage, StageTimes};
use querygpt_common::{ErrorCode, Language, ViewMode};
use querygpt_llm::LlmClient;
use querygpt_store::{AnswerMetadata, Connection, Exchange, Message, Role, Store, StoreError};
use querygpt_targets::{QueryOutput, TargetSpec, Targets};
use std::sync::Arc;
use std::time::Instant;

/// Everything a job's stages use; shared by all jobs of a worker.
pub struct JobContext {
    store: Arc<dyn Store>,
    records: Records,
    llm: LlmClient,
    targets: Arc<Targets>,
    schemas: Schemas,
    settings: WorkerSettings,
}

impl JobContext {
    pub fn new(
        store: Arc<dyn Store>,
        llm: LlmClient,
        targets: Arc<Targets>,
        schemas: Schemas,
        settings: WorkerSettings,
    ) -> Self {
        JobContext { records: Records::new(Arc::clone(&store)), store, llm, targets, schemas, settings }
    }

    /// Answers `job`, publishing every stage to `sink`, and stores the answer before publishing it.
    /// `delivery` > 1 means the job may have been answered by an earlier run.
    pub async fn answer(&self, job: &QueryJob, delivery: u64, sink: &EventSink) -> Result<(), Failure> {
        let started = Instant::now();
        sink.progress(Stage::Analyzing, 1).await?;
        // Both at once: kept from an earlier job of the same revisions, else two reads in the time of one.
        let (connection, model) =
            tokio::join!(self.connection_of(job), self.records.model(job.user_id, job.model_id, job.revisions.model));
        let connection = connection?;
        let spec = target_spec(&connection);
        if delivery > 1
            && let Some(stored) = self.store.message(job.user_id, job.assistant_message_id).await?
        {
            return self.replay(job, &connection, &spec, stored, sink).await;
        }

        let model = model?.ok_or_else(|| Failure::user(ErrorCode::NotFound, "the model no longer exists"))?;
        let prepared = self.schemas.prepared(&connection).await?;
        let history = self.history(job).await?;
        let input = prompt::PromptInput {
            driver: connection.driver,
            schema: &prepared.schema,
            question: &job.question,
            language: job.language,
            templates: &job.prompts,
            schema_budget: self.settings.schema_budget,
            index: Some(&prepared.index),
        };
        let built = prompt::build(&input, &history);
        let analyzing = started.elapsed();

        let endpoint = endpoint(&model);
        let context = AttemptContext {
            llm: &self.llm,
            endpoint: &endpoint,
            targets: &self.targets,
            connection_key: target_key(&connection),
            spec: &spec,
            input: &input,
            max_attempts: self.settings.max_attempts,
            row_cap: self.settings.row_cap,
        };
        let answered = attempts::answer(&context, built.prompt, sink).await?;
        let chart = chart::suggest(&answered.output.columns, &answered.output.rows);
        let answer = Answer {
            metadata: AnswerMetadata {
                sql: answered.sql,
                executed_sql: Some(answered.executed_sql),
                execution_time: answered.output.elapsed.as_secs_f64(),
                rows_count: answered.output.rows.len(),
                truncated: answered.output.truncated,
                columns: answered.output.columns.clone(),
                visualization: chart,
                explanation: answered.explanation,
                connection_id: Some(connection.id),
                tables: built.tables,
                attempts: Some(answered.attempts),
                extra: serde_json::Map::new(),
            },
            output: answered.output,
            developer: DeveloperInfo {
                prompt_tokens: answered.usage.map(|u| u.input_tokens),
                completion_tokens: answered.usage.map(|u| u.output_tokens),
                attempts: answered.attempts,
                stage_ms: StageTimes {
                    analyzing: millis(analyzing),
                    generating_sql: millis(answered.generating),
                    executing: millis(answered.executing),
                },
                executed_sql: String::new(),
            },
        };
        self.store_answer(job, &connection, &model.model_id, &answer).await?;
        self.publish(job, answer, sink).await
    }

    /// Re-sends the answer an earlier run of `job` stored, if there is one: `Ok(false)` when there is none.
    pub async fn resend_stored(&self, job: &QueryJob, sink: &EventSink) -> Result<bool, Failure> {
        let Some(stored) = self.store.message(job.user_id, job.assistant_message_id).await? else {
            return Ok(false);
        };
        let connection = self.connection_of(job).await?;
        let spec = target_spec(&connection);
        self.replay(job, &connection, &spec, stored, sink).await.map(|()| true)
    }

    /// The connection `job` runs on: kept from an earlier job of its revision, else read (deleted since the question
    /// was asked and not kept: a `NOT_FOUND` for the user).
    async fn connection_of(&self, job: &QueryJob) -> Result<Arc<Connection>, Failure> {
        self.records
            .connection(job.user_id, job.connection_id, job.revisions.connection)
            .await?
            .ok_or_else(|| Failure::user(ErrorCode::NotFound, "the connection no longer exists"))
    }

    /// The conversation's last `context_rounds` questions with their answers (the user's setting, else the
    /// worker's).
    async fn history(&self, job: &QueryJob) -> Result<Vec<PriorTurn>, Failure> {
        let rounds = job.context_rounds.map_or(self.settings.context_rounds, |rounds| rounds as usize);
        if job.new_conversation || rounds == 0 {
            return Ok(Vec::new());
        }
        let messages = self.store.recent_messages(job.user_id, job.conversation_id, rounds * 2).await?;
        Ok(prompt::turns_of(&messages))
    }

    /// Re-sends an answer stored by an earlier run of this job, with fresh rows from its stored SQL (validated
    /// again: only validated text ever runs).
    async fn replay(
        &self,
        job: &QueryJob,
        connection: &Connection,
        spec: &TargetSpec,
        stored: Message,
        sink: &EventSink,
    ) -> Result<(), Failure> {
        let metadata = stored.metadata.ok_or_else(|| Failure::Transient(anyhow!("stored answer has no SQL")))?;
        let executed = attempts::validate(connection.driver, &metadata.sql, self.settings.row_cap)?;
        let attempt = metadata.attempts.unwrap_or(1);
        sink.progress(Stage::GeneratingSql, attempt).await?;
        sink.progress(Stage::Executing, attempt).await?;
        let started = Instant::now();
        let output = self.targets.execute(&target_key(connection), spec, &executed).await?;
        let developer = DeveloperInfo {
            attempts: attempt,
            stage_ms: StageTimes { executing: millis(started.elapsed()), ..StageTimes::default() },
            ..DeveloperInfo::default()
        };
        let metadata = AnswerMetadata { executed_sql: Some(executed), ..metadata };
        self.publish(job, Answer { metadata, output, developer }, sink).await
    }

    async fn store_answer(
        &self,
        job: &QueryJob,
        connection: &Connection,
        model: &str,
        answer: &Answer,
    ) -> Result<(), Failure> {
        let content = content(job.language, &answer.metadata);
        let exchange = Exchange {
            user_id: job.user_id,
            conversation_id: job.conversation_id,
            title: title_of(&job.question),
            model: model.to_owned(),
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
                content,
                metadata: Some(answer.metadata.clone()),
                created_at: chrono::Utc::now(),
            },
        };
        match measure::timed("store", self.store.save_exchange(exchange)).await {
            Ok(_) => Ok(()),
            Err(StoreError::NotFound(what)) => Err(Failure::user(ErrorCode::NotFound, what)),
            Err(e) => Err(e.into()),
        }
    }

    /// result, visualization, done.
    async fn publish(&self, job: &QueryJob, answer: Answer, sink: &EventSink) -> Result<(), Failure> {
        let Answer { metadata, output, mut developer } = answer;
        let developer = (job.view_mode == ViewMode::Developer).then(|| {
            developer.executed_sql = metadata.executed_sql.clone().unwrap_or_else(|| metadata.sql.clone());
            developer
        });
        let result = ChatEvent::Result {
            sql: metadata.sql,
            rows_count: output.rows.len(),
            data: output.rows,
            columns: output.columns,
            truncated: output.truncated,
            execution_time: output.elapsed.as_secs_f64(),
            explanation: metadata.explanation,
            tables: metadata.tables,
            developer,
        };
        sink.answer(result, metadata.visualization, job.assistant_message_id).await?;
        Ok(())
    }
}

/// An answer on its way to the store and the client.
struct Answer {
    metadata: AnswerMetadata,
    output: QueryOutput,
    developer: DeveloperInfo,
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The assistant message: the model's explanation of its SQL, then what the result holds.
fn content(language: Language, metadata: &AnswerMetadata) -> String {
    let summary = summary(language, metadata.rows_count, metadata.truncated);
    match metadata.explanation.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
        Some(explanation) => format!("{explanation} {summary}"),
        None => summary,
    }
}

fn summary(language: Language, rows: usize, truncated: bool) -> String {
    match (language, truncated) {
        (Language::Zh, false) => format!("查询返回 {rows} 行。"),
        (Language::Zh, true) => format!("查询返回了前 {rows} 行（还有更多行未显示）。"),
        (Language::En, false) => format!("The query returned {rows} rows."),
        (Language::En, true) => format!("The query returned the first {rows} rows (more rows exist)."),
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
