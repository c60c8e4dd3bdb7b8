//! generating_sql and executing, with self-correction: a statement the validator refuses or the database rejects
//! goes back to the model with its error, up to `worker.max_attempts` tries in all.
//!
//! - A validator refusal goes back once: a model that wrote `DELETE` may correct itself to a `SELECT`, but one that
//!   keeps writing what the validator refuses will not be talked out of it.
//! - A statement the model repeats word for word after its error stops the loop at once: asking again would only
//!   spend attempts.
//! - Only the statement's own faults go back (the database rejected it, or refused to change data). An
//!   unreachable database, a timeout or a failing LLM end the question: the model cannot fix them.
//!
//! Every attempt announces itself with `progress` events carrying its number (see `JobEvent` for how the numbers
//! fit), and a final failure lists what was tried in `details.attempts`.

use crate::events::EventSink;
use crate::failure::Failure;
use crate::measure;
use crate::prompt::{self, PromptInput};
use querygpt_common::messages::{MAX_ATTEMPTS, Stage};
use querygpt_common::{Driver, ErrorCode, Language};
use querygpt_llm::extract::{extract_command, extract_sql};
use querygpt_llm::{LlmClient, LlmEndpoint, Prompt, Usage};
use querygpt_sqlsafe::{Dialect, Policy, Rule};
use querygpt_targets::{QueryOutput, TargetError, TargetSpec, Targets};
use serde::Serialize;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// What the loop needs besides the prompt.
pub(crate) struct AttemptContext<'a> {
    pub llm: &'a LlmClient,
    pub endpoint: &'a LlmEndpoint,
    pub targets: &'a Targets,
    pub connection_key: String,
    pub spec: &'a TargetSpec,
    pub input: &'a PromptInput<'a>,
    pub max_attempts: u32,
    pub row_cap: usize,
}

/// A statement that ran, and how it was reached.
pub(crate) struct Answered {
    /// As the model wrote it.
    pub sql: String,
    /// As it ran (validated, row cap applied).
    pub executed_sql: String,
    pub explanation: Option<String>,
    pub output: QueryOutput,
    pub attempts: u32,
    pub usage: Option<Usage>,
    /// Time in the LLM and the validator, and on the database, over all attempts.
    pub generating: Duration,
    pub executing: Duration,
}

/// One failed attempt, as `details.attempts` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct FailedAttempt {
    pub attempt: u32,
    /// `validation` (the validator refused it) or `execution` (the database rejected it).
    pub stage: &'static str,
    pub sql: String,
    pub error: String,
}

/// Runs attempts until one statement is answered by the database, or the question fails.
pub(crate) async fn answer(
    ctx: &AttemptContext<'_>,
    mut prompt: Prompt,
    sink: &EventSink,
) -> Result<Answered, Failure> {
    let max_attempts = ctx.max_attempts.clamp(1, MAX_ATTEMPTS);
    let mut failed: Vec<FailedAttempt> = Vec::new();
    let mut usage: Option<Usage> = None;
    let (mut generating, mut executing) = (Duration::ZERO, Duration::ZERO);
    let mut refusals_sent_back = 0;
    for attempt in 1..=max_attempts {
        sink.progress(Stage::GeneratingSql, attempt).await?;
        let started = Instant::now();
        let completion = measure::timed("llm", ctx.llm.complete(ctx.endpoint, &prompt, &|| {}))
            .await
            .map_err(|e| with_attempts(e.into(), &failed))?;
        measure::tokens(&ctx.endpoint.model, completion.usage);
        usage = add_usage(usage, completion.usage);
        // Redis commands are not SQL: the reply's command lines are taken as they are (one per line).
        let extracted = match ctx.input.driver {
            Driver::Redis => extract_command(&completion.text),
            _ => extract_sql(&completion.text),
        };
        let Some(sql) = extracted.sql else {
            let details = json!({"reply": crate::job::truncate(&completion.text, 500)});
            return Err(with_attempts(
                Failure::User {
                    code: ErrorCode::LlmError,
                    message: no_sql_message(ctx.input.language).into(),
                    details: Some(details),
                },
                &failed,
            ));
        };
        let repeated = failed.last().is_some_and(|f| f.sql.trim() == sql.trim());
        let validating = Instant::now();
        let checked = validate(ctx.input.driver, &sql, ctx.row_cap);
        measure::stage("validation", validating.elapsed());
        generating += started.elapsed();
        let executed_sql = match checked {
            Ok(executed) => executed,
            Err(refused) => {
                failed.push(FailedAttempt::refused(attempt, &sql, &refused));
                if attempt == max_attempts || repeated || refusals_sent_back >= 1 {
                    return Err(with_attempts(refused.into(), &failed));
                }
                refusals_sent_back += 1;
                send_back(&mut prompt, ctx.input, &failed);
                continue;
            }
        };
        sink.progress(Stage::Executing, attempt).await?;
        let started = Instant::now();
        let ran = ctx.targets.execute(&ctx.connection_key, ctx.spec, &executed_sql).await;
        executing += started.elapsed();
        measure::stage("execution", started.elapsed());
        match ran {
            Ok(output) => {
                return Ok(Answered {
                    sql,
                    executed_sql,
                    explanation: extracted.explanation,
                    output,
                    attempts: attempt,
                    usage,
                    generating,
                    executing,
                });
            }
            Err(error) => {
                failed.push(FailedAttempt { attempt, stage: "execution", sql: sql.clone(), error: error.to_string() });
                if !is_the_statements_fault(&error) || attempt == max_attempts || repeated {
                    let details = json!({"sql": sql, "error": error.to_string()});
                    let failure = Failure::User {
                        code: ErrorCode::DatabaseError,
                        message: error.to_string(),
                        details: Some(details),
                    };
                    return Err(with_attempts(failure, &failed));
                }
                send_back(&mut prompt, ctx.input, &failed);
            }
        }
    }
    unreachable!("every attempt returns or continues, and the last one returns")
}

impl FailedAttempt {
    /// An attempt the validator refused.
    pub(crate) fn refused(attempt: u32, sql: &str, refused: &Refused) -> Self {
        FailedAttempt { attempt, stage: "validation", sql: sql.to_owned(), error: refused.message.clone() }
    }
}

/// Errors the model can fix by writing another statement.
fn is_the_statements_fault(error: &TargetError) -> bool {
    matches!(error, TargetError::QueryFailed(_) | TargetError::ReadOnlyViolation(_))
}

/// Appends the failed statement (as the model's turn) and the correction request to the conversation with the
/// model.
pub(crate) fn send_back(prompt: &mut Prompt, input: &PromptInput<'_>, failed: &[FailedAttempt]) {
    let last = failed.last().expect("a failed attempt to send back");
    prompt.messages.extend(prompt::correction(input, &last.sql, &last.error));
}

/// Adds the attempts made to a failure's details, when there was more than the one that failed now.
pub(crate) fn with_attempts(failure: Failure, failed: &[FailedAttempt]) -> Failure {
    match failure {
        Failure::User { code, message, details } if !failed.is_empty() => {
            let mut details = match details {
                Some(Value::Object(map)) => map,
                _ => serde_json::Map::new(),
            };
            details.insert("attempts".into(), serde_json::to_value(failed).unwrap_or(Value::Null));
            Failure::User { code, message, details: Some(Value::Object(details)) }
        }
        other => other,
    }
}

pub(crate) fn add_usage(total: Option<Usage>, more: Option<Usage>) -> Option<Usage> {
    match (total, more) {
        (Some(a), Some(b)) => Some(Usage {
            input_tokens: a.input_tokens + b.input_tokens,
            output_tokens: a.output_tokens + b.output_tokens,
        }),
        (a, b) => a.or(b),
    }
}

/// A statement the validator refused.
pub(crate) struct Refused {
    pub rule: Option<Rule>,
    pub message: String,
    pub sql: String,
}

impl From<Refused> for Failure {
    fn from(refused: Refused) -> Self {
        Failure::User {
            code: ErrorCode::SqlValidationFailed,
            message: refused.message,
            details: Some(json!({"rule": refused.rule, "sql": refused.sql})),
        }
    }
}

/// Checks the SQL with the validator of the target's dialect; the text returned is the exact text to run.
pub(crate) fn validate(driver: Driver, sql: &str, row_cap: usize) -> Result<String, Refused> {
    let policy = Policy { allowed_tables: None, row_limit: Some(row_cap as u64 + 1) };
    validate_with(driver, sql, &policy)
}

/// Checks a statement with the validator of `driver` under `policy`: SQL is returned as it will run (the row cap
/// applied), Redis commands one per line as validated (`KEYS` already a bounded `SCAN`).
pub(crate) fn validate_with(driver: Driver, sql: &str, policy: &Policy) -> Result<String, Refused> {
    let dialect = match driver {
        Driver::Postgresql => Dialect::Postgresql,
        Driver::Mysql => Dialect::Mysql,
        Driver::Sqlite => Dialect::Sqlite,
        Driver::Redis => {
            return querygpt_sqlsafe::validate_redis(sql)
                .map(|commands| commands.iter().map(|c| c.to_line()).collect::<Vec<_>>().join("\n"))
                .map_err(|rejection| Refused {
                    rule: Some(rejection.rule),
                    message: rejection.message,
                    sql: sql.to_owned(),
                });
        }
    };
    querygpt_sqlsafe::validate(sql, dialect, policy).map(|v| v.sql).map_err(|rejection| Refused {
        rule: Some(rejection.rule),
        message: rejection.message,
        sql: sql.to_owned(),
    })
}

pub(crate) fn no_sql_message(language: Language) -> &'static str {
    match language {
        Language::Zh => "模型没有返回 SQL 语句",
        Language::En => "the model did not return a SQL statement",
    }
}
