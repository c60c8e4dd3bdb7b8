//! Small closed sets of values that appear in requests, in the store and in job messages.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Kind of target database a connection points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    Mysql,
    Postgresql,
    Sqlite,
    Redis,
}

impl Driver {
    pub const ALL: [Driver; 4] = [Driver::Mysql, Driver::Postgresql, Driver::Sqlite, Driver::Redis];

    pub fn as_str(self) -> &'static str {
        match self {
            Driver::Mysql => "mysql",
            Driver::Postgresql => "postgresql",
            Driver::Sqlite => "sqlite",
            Driver::Redis => "redis",
        }
    }

    /// Port used when a connection does not name one.
    pub fn default_port(self) -> Option<u16> {
        match self {
            Driver::Mysql => Some(3306),
            Driver::Postgresql => Some(5432),
            Driver::Redis => Some(6379),
            Driver::Sqlite => None,
        }
    }
}

impl FromStr for Driver {
    type Err = String;

    /// Accepts the spellings clients use in practice (`postgres`, `pg`, `mariadb`...).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "mysql" | "mariadb" => Ok(Driver::Mysql),
            "postgresql" | "postgres" | "pg" => Ok(Driver::Postgresql),
            "sqlite" | "sqlite3" => Ok(Driver::Sqlite),
            "redis" => Ok(Driver::Redis),
            other => Err(format!("unknown driver `{other}` (expected mysql, postgresql, sqlite or redis)")),
        }
    }
}

impl fmt::Display for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Protocol family of an LLM endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, Ollama, LiteLLM, DeepSeek...).
    Openai,
    /// Anthropic messages API.
    Anthropic,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Openai => "openai",
            Provider::Anthropic => "anthropic",
        }
    }

    /// Base URL used when a model does not name one.
    pub fn default_base_url(self) -> &'static str {
        match self {
            Provider::Openai => "https://api.openai.com/v1",
            Provider::Anthropic => "https://api.anthropic.com",
        }
    }
}

impl FromStr for Provider {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "openai" | "openai-compatible" | "openai_compatible" => Ok(Provider::Openai),
            "anthropic" => Ok(Provider::Anthropic),
            other => Err(format!("unknown provider `{other}` (expected openai or anthropic)")),
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Language of the progress messages and of the LLM's explanation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    #[default]
    Zh,
    En,
}

impl FromStr for Language {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "zh" | "zh-cn" | "cn" => Ok(Language::Zh),
            "en" | "en-us" => Ok(Language::En),
            other => Err(format!("unknown language `{other}` (expected zh or en)")),
        }
    }
}

impl Language {
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Zh => "zh",
            Language::En => "en",
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Colour scheme of the user's client (`GET/PUT /config`). `system` follows the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Theme {
    #[default]
    Light,
    Dark,
    System,
}

impl Theme {
    pub fn as_str(self) -> &'static str {
        match self {
            Theme::Light => "light",
            Theme::Dark => "dark",
            Theme::System => "system",
        }
    }
}

impl FromStr for Theme {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "light" => Ok(Theme::Light),
            "dark" => Ok(Theme::Dark),
            "system" | "auto" => Ok(Theme::System),
            other => Err(format!("unknown theme `{other}` (expected light, dark or system)")),
        }
    }
}

/// How much of a question's inner workings a client shows (`GET/PUT /config`): `developer` adds tokens, attempts
/// and the time per stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ViewMode {
    #[default]
    User,
    Developer,
}

impl ViewMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ViewMode::User => "user",
            ViewMode::Developer => "developer",
        }
    }
}

impl FromStr for ViewMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "user" => Ok(ViewMode::User),
            "developer" | "dev" => Ok(ViewMode::Developer),
            other => Err(format!("unknown view mode `{other}` (expected user or developer)")),
        }
    }
}
