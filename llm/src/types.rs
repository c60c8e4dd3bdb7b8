//! What goes into and comes out of an LLM call.

use querygpt_common::Provider;
use querygpt_common::config::SecretString;
use querygpt_common::netguard::NetworkPolicy;
use std::time::Duration;

/// Where and how to call a model.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmEndpoint {
    pub provider: Provider,
    /// OpenAI convention: includes the version (`https://api.openai.com/v1`, `http://localhost:11434/v1`);
    /// the client appends `/chat/completions`. Anthropic: the host root (`https://api.anthropic.com`, a
    /// trailing `/v1` is tolerated); the client appends `/v1/messages`.
    pub base_url: String,
    /// Sent as `Authorization: Bearer` (OpenAI) or `x-api-key` (Anthropic); `None` for keyless local servers.
    pub api_key: Option<SecretString>,
    pub model: String,
    /// The model's context window in tokens (prompt and reply together), when known: a prompt whose estimate
    /// plus `max_tokens` exceeds it is refused before any request ([`crate::Overflow::Estimated`]). `None`
    /// leaves the check to the server.
    pub context_window: Option<u32>,
}

/// Author of a conversation turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

impl Role {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One turn of the conversation sent to the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptMessage {
    pub role: Role,
    pub content: String,
}

impl PromptMessage {
    pub fn user(content: impl Into<String>) -> Self {
        PromptMessage { role: Role::User, content: content.into() }
    }

    pub fn assistant(content: impl Into<String>) -> Self {
        PromptMessage { role: Role::Assistant, content: content.into() }
    }
}

/// A complete request: system prompt, conversation and sampling limits.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    /// System instructions; omitted from the request when empty.
    pub system: String,
    /// The conversation, oldest first, ending with the user's question.
    pub messages: Vec<PromptMessage>,
    /// Upper bound of generated tokens (required by Anthropic).
    pub max_tokens: u32,
    /// Sampling temperature; `None` leaves the provider's default (some reasoning models reject any other).
    pub temperature: Option<f32>,
}

impl Prompt {
    /// A rough count of the prompt's tokens: its bytes (system prompt and every message) divided by four,
    /// rounded up. Four bytes per token is the usual rule for English with BPE tokenizers; SQL schemas and
    /// non-Latin scripts take more tokens per byte, so the estimate errs low: a check against it only refuses
    /// prompts that surely do not fit, and the server still refuses the others (reported as
    /// [`crate::LlmError::ContextOverflow`] too).
    pub fn estimated_tokens(&self) -> u64 {
        let bytes = self.system.len() + self.messages.iter().map(|m| m.content.len()).sum::<usize>();
        (bytes as u64).div_ceil(4)
    }
}

impl Default for Prompt {
    fn default() -> Self {
        Prompt { system: String::new(), messages: Vec::new(), max_tokens: 2048, temperature: None }
    }
}

/// Token counts reported by the provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// The model's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// The reply text assembled from every streamed chunk (reasoning deltas are not part of it).
    pub text: String,
    /// The model that answered, as the provider named it.
    pub model: Option<String>,
    /// Token usage, when the provider reported it.
    pub usage: Option<Usage>,
    /// Why generation stopped, as the provider said it (`stop`, `end_turn`, `stop_sequence`...). A reply that
    /// does not say is never returned ([`crate::LlmError::Incomplete`]), nor one that stopped at the token limit
    /// ([`crate::LlmError::Truncated`]).
    pub finish_reason: String,
}

impl Completion {
    /// Whether the reply was cut off by the token limit (the statement in it may be incomplete).
    pub(crate) fn truncated(&self) -> bool {
        matches!(self.finish_reason.as_str(), "length" | "max_tokens")
    }
}

/// Timeouts and retries of an [`crate::LlmClient`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmSettings {
    /// Longest time one attempt may take, from sending the request to the end of the stream.
    pub request_timeout: Duration,
    /// Longest time to establish a TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Retries after the first attempt on the failures [`crate::LlmError::is_retryable`] names (429, 408, 5xx,
    /// transport failures, replies cut short).
    pub max_retries: usize,
    /// Which addresses an endpoint may resolve to (the SSRF guard); checked on every new connection.
    pub network: NetworkPolicy,
}

impl Default for LlmSettings {
    fn default() -> Self {
        LlmSettings {
            request_timeout: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(10),
            max_retries: 3,
            network: NetworkPolicy::default(),
        }
    }
}
