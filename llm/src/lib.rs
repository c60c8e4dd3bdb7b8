//! LLM access for QueryGPT: one streaming client for OpenAI-compatible (OpenAI, vLLM, Ollama, DeepSeek,
//! LiteLLM...) and Anthropic endpoints, with timeouts and retries, and [`extract`] to find the SQL (or Redis
//! command) in what the model wrote.
//!
//! ```no_run
//! # async fn demo() -> Result<(), querygpt_llm::LlmError> {
//! use querygpt_llm::{LlmClient, LlmEndpoint, LlmSettings, Prompt, PromptMessage, extract::extract_sql};
//!
//! let client = LlmClient::new(LlmSettings::default())?;
//! let endpoint = LlmEndpoint {
//!     provider: querygpt_common::Provider::Openai,
//!     base_url: "http://localhost:11434/v1".into(),
//!     api_key: None,
//!     model: "qwen2.5-coder".into(),
//!     context_window: Some(32_768),
//! };
//! let prompt = Prompt {
//!     system: "Write one SQLite query.".into(),
//!     messages: vec![PromptMessage::user("How many users?")],
//!     ..Prompt::default()
//! };
//! let reply = client.complete(&endpoint, &prompt, &|| {}).await?;
//! let sql = extract_sql(&reply.text).sql;
//! # Ok(()) }
//! ```

mod client;
mod error;
pub mod extract;
mod sse;
mod types;
mod wire;

pub use client::LlmClient;
pub use error::{LlmError, Overflow, TimeoutKind};
pub use extract::{Extracted, extract_command, extract_sql};
pub use types::{Completion, LlmEndpoint, LlmSettings, Prompt, PromptMessage, Role, Usage};
