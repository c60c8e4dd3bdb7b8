//! The prompts a worker sends to the LLM: a user's own texts where set (`PUT /prompts`), the built-in defaults in
//! the question's language otherwise.
//!
//! A template is plain text with placeholders in braces, `{schema}`; `{{` and `}}` stand for literal braces. Each
//! [`PromptKind`] accepts its own placeholders (see [`PromptKind::placeholders`]); a template with an unknown
//! placeholder, an unbalanced brace or without the placeholders its kind requires is refused by
//! [`PromptKind::check`], so what is stored always renders.

use crate::Language;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest template accepted, in characters.
pub const MAX_TEMPLATE_CHARS: usize = 16_000;

/// The parts of the prompt a user can replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptKind {
    /// The system message: the model's role and rules.
    System,
    /// The message that asks for the SQL of a question.
    SqlGeneration,
    /// The message that sends a failed statement and its error back to the model (self-correction).
    Correction,
    /// How the model is asked to explain its SQL; appended to the system message.
    Explanation,
}

/// What a target is queried with, which decides the default rules of the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryLanguage {
    /// One read-only SELECT (PostgreSQL, MySQL, SQLite).
    Sql,
    /// Read-only Redis commands, one per line.
    Redis,
}

/// One placeholder of a template and what it stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Placeholder {
    pub name: &'static str,
    pub description: &'static str,
}

const DIALECT: Placeholder = Placeholder { name: "dialect", description: "the target's SQL dialect, e.g. PostgreSQL" };
const LANGUAGE: Placeholder =
    Placeholder { name: "language", description: "the language of the answer: Chinese or English" };
const SCHEMA: Placeholder = Placeholder { name: "schema", description: "the tables and columns of the database" };
const QUESTION: Placeholder = Placeholder { name: "question", description: "the user's question" };
const SQL: Placeholder = Placeholder { name: "sql", description: "the statement that failed" };
const ERROR: Placeholder = Placeholder { name: "error", description: "why it failed (validator or database)" };

impl PromptKind {
    pub const ALL: [PromptKind; 4] =
        [PromptKind::System, PromptKind::SqlGeneration, PromptKind::Correction, PromptKind::Explanation];

    /// The field name in `GET/PUT /prompts`.
    pub fn as_str(self) -> &'static str {
        match self {
            PromptKind::System => "system_prompt",
            PromptKind::SqlGeneration => "sql_generation",
            PromptKind::Correction => "correction",
            PromptKind::Explanation => "explanation",
        }
    }

    /// Placeholders this kind of template may use.
    pub fn placeholders(self) -> &'static [Placeholder] {
        match self {
            PromptKind::System => &[DIALECT, LANGUAGE],
            PromptKind::SqlGeneration => &[DIALECT, LANGUAGE, SCHEMA, QUESTION],
            PromptKind::Correction => &[DIALECT, LANGUAGE, SCHEMA, QUESTION, SQL, ERROR],
            PromptKind::Explanation => &[DIALECT, LANGUAGE],
        }
    }

    /// Placeholders a template of this kind must contain: without them the model would not see the question (or
    /// the error it is asked to correct).
    pub fn required(self) -> &'static [&'static str] {
        match self {
            PromptKind::SqlGeneration => &["question"],
            PromptKind::Correction => &["sql", "error"],
            PromptKind::System | PromptKind::Explanation => &[],
        }
    }

    /// The built-in template in `language`.
    pub fn default_text(self, language: Language) -> &'static str {
        match (self, language) {
            (PromptKind::System, Language::En) => DEFAULT_SYSTEM_EN,
            (PromptKind::System, Language::Zh) => DEFAULT_SYSTEM_ZH,
            (PromptKind::SqlGeneration, Language::En) => DEFAULT_SQL_GENERATION_EN,
            (PromptKind::SqlGeneration, Language::Zh) => DEFAULT_SQL_GENERATION_ZH,
            (PromptKind::Correction, Language::En) => DEFAULT_CORRECTION_EN,
            (PromptKind::Correction, Language::Zh) => DEFAULT_CORRECTION_ZH,
            (PromptKind::Explanation, Language::En) => DEFAULT_EXPLANATION_EN,
            (PromptKind::Explanation, Language::Zh) => DEFAULT_EXPLANATION_ZH,
        }
    }

    /// The built-in template in `language` for a Redis target. The explanation and generation templates are the
    /// same as for SQL; the rules and the correction speak of commands.
    pub fn redis_default_text(self, language: Language) -> &'static str {
        match (self, language) {
            (PromptKind::System, Language::En) => DEFAULT_SYSTEM_REDIS_EN,
            (PromptKind::System, Language::Zh) => DEFAULT_SYSTEM_REDIS_ZH,
            (PromptKind::Correction, Language::En) => DEFAULT_CORRECTION_REDIS_EN,
            (PromptKind::Correction, Language::Zh) => DEFAULT_CORRECTION_REDIS_ZH,
            (kind, language) => kind.default_text(language),
        }
    }

    /// Checks that `template` renders: balanced braces, known placeholders, the required ones present.
    pub fn check(self, template: &str) -> Result<(), TemplateError> {
        if template.trim().is_empty() {
            return Err(TemplateError::Empty);
        }
        if template.chars().count() > MAX_TEMPLATE_CHARS {
            return Err(TemplateError::TooLong { max_chars: MAX_TEMPLATE_CHARS });
        }
        let allowed = self.placeholders();
        let mut seen = Vec::new();
        for piece in parse(template)? {
            if let Piece::Placeholder(name) = piece {
                if !allowed.iter().any(|p| p.name == name) {
                    return Err(TemplateError::UnknownPlaceholder {
                        name: name.to_owned(),
                        allowed: allowed.iter().map(|p| p.name).collect(),
                    });
                }
                seen.push(name);
            }
        }
        match self.required().iter().find(|name| !seen.contains(name)) {
            Some(missing) => Err(TemplateError::MissingPlaceholder { name: missing }),
            None => Ok(()),
        }
    }
}

impl fmt::Display for PromptKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a template was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("the template is empty")]
    Empty,
    #[error("the template is longer than {max_chars} characters")]
    TooLong { max_chars: usize },
    #[error("unknown placeholder `{{{name}}}` (allowed: {})", braced(allowed))]
    UnknownPlaceholder { name: String, allowed: Vec<&'static str> },
    #[error("the template must contain `{{{name}}}`")]
    MissingPlaceholder { name: &'static str },
    #[error("unbalanced `{brace}` at character {at}: write `{brace}{brace}` for a literal brace")]
    UnbalancedBrace { brace: char, at: usize },
}

impl TemplateError {
    /// A stable machine-readable word for API error details.
    pub fn reason(&self) -> &'static str {
        match self {
            TemplateError::Empty => "required",
            TemplateError::TooLong { .. } => "too_long",
            TemplateError::UnknownPlaceholder { .. } => "unknown_placeholder",
            TemplateError::MissingPlaceholder { .. } => "missing_placeholder",
            TemplateError::UnbalancedBrace { .. } => "invalid_format",
        }
    }
}

fn braced(names: &[&str]) -> String {
    names.iter().map(|n| format!("{{{n}}}")).collect::<Vec<_>>().join(", ")
}

/// A user's own templates; `None` means the built-in default in the question's language.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptSet {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql_generation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correction: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
}

impl PromptSet {
    /// The user's template of `kind`, if set.
    pub fn custom(&self, kind: PromptKind) -> Option<&str> {
        match kind {
            PromptKind::System => self.system.as_deref(),
            PromptKind::SqlGeneration => self.sql_generation.as_deref(),
            PromptKind::Correction => self.correction.as_deref(),
            PromptKind::Explanation => self.explanation.as_deref(),
        }
    }

    /// Where the template of `kind` is kept.
    pub fn slot(&mut self, kind: PromptKind) -> &mut Option<String> {
        match kind {
            PromptKind::System => &mut self.system,
            PromptKind::SqlGeneration => &mut self.sql_generation,
            PromptKind::Correction => &mut self.correction,
            PromptKind::Explanation => &mut self.explanation,
        }
    }

    /// The template the worker uses: the user's, else the default in `language`.
    pub fn effective(&self, kind: PromptKind, language: Language) -> &str {
        self.custom(kind).unwrap_or_else(|| kind.default_text(language))
    }

    /// [`PromptSet::effective`] for a question about `target`: where the user set no template, a Redis target
    /// gets defaults that ask for read-only Redis commands instead of a SELECT.
    pub fn effective_for(&self, kind: PromptKind, language: Language, target: QueryLanguage) -> &str {
        match (self.custom(kind), target) {
            (Some(custom), _) => custom,
            (None, QueryLanguage::Sql) => kind.default_text(language),
            (None, QueryLanguage::Redis) => kind.redis_default_text(language),
        }
    }

    /// No template is customised.
    pub fn is_empty(&self) -> bool {
        PromptKind::ALL.iter().all(|kind| self.custom(*kind).is_none())
    }
}

/// Values for the placeholders of one rendering; a placeholder without a value renders as empty text.
#[derive(Debug, Clone, Copy, Default)]
pub struct PromptValues<'a> {
    pub dialect: &'a str,
    pub language: &'a str,
    pub schema: &'a str,
    pub question: &'a str,
    pub sql: &'a str,
    pub error: &'a str,
}

impl PromptValues<'_> {
    fn get(&self, name: &str) -> &str {
        match name {
            "dialect" => self.dialect,
            "language" => self.language,
            "schema" => self.schema,
            "question" => self.question,
            "sql" => self.sql,
            "error" => self.error,
            _ => "",
        }
    }
}

/// Renders `template` with `values`. Templates are checked before they are stored; one that does not parse anyway
/// (a default edited by hand, say) is sent as it is rather than failing the question.
pub fn render(template: &str, values: &PromptValues<'_>) -> String {
    let Ok(pieces) = parse(template) else {
        return template.to_owned();
    };
    let mut out = String::with_capacity(template.len() + values.schema.len());
    for piece in pieces {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Brace(brace) => out.push(brace),
            Piece::Placeholder(name) => out.push_str(values.get(name)),
        }
    }
    out
}

/// The English name of `language`, as the templates' `{language}` says it.
pub fn language_name(language: Language) -> &'static str {
    match language {
        Language::Zh => "Chinese",
        Language::En => "English",
    }
}

enum Piece<'a> {
    Text(&'a str),
    Brace(char),
    Placeholder(&'a str),
}

fn parse(template: &str) -> Result<Vec<Piece<'_>>, TemplateError> {
    let mut pieces = Vec::new();
    let mut rest = template;
    let position = |rest: &str| template[..template.len() - rest.len()].chars().count();
    while let Some(at) = rest.find(['{', '}']) {
        if at > 0 {
            pieces.push(Piece::Text(&rest[..at]));
        }
        let brace = rest.as_bytes()[at] as char;
        let after = &rest[at + 1..];
        if after.starts_with(brace) {
            pieces.push(Piece::Brace(brace));
            rest = &after[1..];
            continue;
        }
        let unbalanced = TemplateError::UnbalancedBrace { brace, at: position(&rest[at..]) };
        if brace == '}' {
            return Err(unbalanced);
        }
        let Some(end) = after.find('}') else { return Err(unbalanced) };
        let name = &after[..end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(unbalanced);
        }
        pieces.push(Piece::Placeholder(name));
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest));
    }
    Ok(pieces)
}

const DEFAULT_SYSTEM_EN: &str = "You translate questions about a {dialect} database into ONE read-only {dialect} \
SELECT statement.\nRules: only SELECT (WITH ... SELECT allowed); never modify data or schema; use only the tables \
and columns of the schema you are given; qualify ambiguous columns; prefer explicit JOINs; add ORDER BY when the \
question implies an order.";
const DEFAULT_SYSTEM_ZH: &str = "你负责把关于 {dialect} 数据库的问题翻译成一条只读的 {dialect} SELECT 语句。\n规则：\
只能使用 SELECT（允许 WITH ... SELECT）；绝不修改数据或表结构；只使用给出的表结构中的表和列；有歧义的列要加表名限定；\
优先使用显式 JOIN；问题隐含顺序时加上 ORDER BY。";
const DEFAULT_EXPLANATION_EN: &str = "Answer with a JSON object and nothing else: {{\"sql\": \"...\", \
\"explanation\": \"...\"}}, the explanation being one short sentence in {language} that says what the query \
returns.";
const DEFAULT_EXPLANATION_ZH: &str = "只回答一个 JSON 对象，不要其他内容：{{\"sql\": \"...\", \"explanation\": \
\"...\"}}，其中 explanation 用一句简短的{language}说明这条查询返回什么。";
const DEFAULT_SQL_GENERATION_EN: &str = "Schema:\n{schema}\nQuestion: {question}";
const DEFAULT_SQL_GENERATION_ZH: &str = "表结构：\n{schema}\n问题：{question}";
const DEFAULT_CORRECTION_EN: &str = "This statement failed:\n```sql\n{sql}\n```\nError: {error}\nWrite a corrected \
{dialect} statement that answers the question: {question}";
const DEFAULT_CORRECTION_ZH: &str = "这条语句执行失败：\n```sql\n{sql}\n```\n错误：{error}\n请写出一条修正后的 {dialect} \
语句来回答这个问题：{question}";

const DEFAULT_SYSTEM_REDIS_EN: &str = "You answer questions about the data in a Redis database with read-only Redis \
commands, one per line (at most 10).\nRules: only read commands (GET, MGET, HGET, HGETALL, HMGET, LRANGE, SMEMBERS, \
SCARD, ZRANGE, ZSCORE, XRANGE, TYPE, TTL, EXISTS, STRLEN, SCAN with MATCH and COUNT); never write, delete, expire, \
run scripts or administrative commands; use only the key patterns of the schema you are given, which lists \
sampled keys with their type and, for hashes, their fields; prefer SCAN over KEYS.";
const DEFAULT_SYSTEM_REDIS_ZH: &str = "你用只读的 Redis 命令回答关于 Redis 数据库中数据的问题，每行一条命令（最多 10 \
条）。\n规则：只能使用读命令（GET、MGET、HGET、HGETALL、HMGET、LRANGE、SMEMBERS、SCARD、ZRANGE、ZSCORE、XRANGE、TYPE、TTL、\
EXISTS、STRLEN、带 MATCH 和 COUNT 的 SCAN）；绝不写入、删除、设置过期、运行脚本或管理命令；只使用给出的结构中的键模式\
（其中列出了抽样的键、类型以及哈希的字段）；优先用 SCAN 而不是 KEYS。";
const DEFAULT_CORRECTION_REDIS_EN: &str = "These commands failed:\n```redis\n{sql}\n```\nError: {error}\nWrite \
corrected read-only Redis commands that answer the question: {question}";
const DEFAULT_CORRECTION_REDIS_ZH: &str = "这些命令执行失败：\n```redis\n{sql}\n```\n错误：{error}\n请写出修正后的只读 \
Redis 命令来回答这个问题：{question}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_passes_its_own_check_in_both_languages() {
        for kind in PromptKind::ALL {
            for language in [Language::En, Language::Zh] {
                kind.check(kind.default_text(language)).unwrap_or_else(|e| panic!("{kind} {language:?}: {e}"));
            }
        }
    }

    #[test]
    fn render_fills_placeholders_and_unescapes_braces() {
        let values = PromptValues { dialect: "SQLite", question: "how many?", ..PromptValues::default() };
        assert_eq!(render("{{\"q\": \"{question}\"}} on {dialect}", &values), "{\"q\": \"how many?\"} on SQLite");
        let rendered = render(PromptKind::Explanation.default_text(Language::En), &values);
        assert!(rendered.contains("{\"sql\": \"...\""), "{rendered}");
    }

    #[test]
    fn check_refuses_what_would_not_render() {
        let kind = PromptKind::SqlGeneration;
        assert_eq!(kind.check("Q: {question} {schema}"), Ok(()));
        assert!(
            matches!(kind.check("Q: {question} {tables}"), Err(TemplateError::UnknownPlaceholder { ref name, .. }) if name == "tables")
        );
        assert_eq!(kind.check("no question here"), Err(TemplateError::MissingPlaceholder { name: "question" }));
        assert!(matches!(kind.check("{question} {"), Err(TemplateError::UnbalancedBrace { brace: '{', .. })));
        assert!(matches!(kind.check("{question} }"), Err(TemplateError::UnbalancedBrace { brace: '}', .. })));
        assert!(matches!(kind.check("{question} {a b}"), Err(TemplateError::UnbalancedBrace { .. })));
        assert_eq!(kind.check("  "), Err(TemplateError::Empty));
        assert_eq!(PromptKind::System.check("{sql}").unwrap_err().reason(), "unknown_placeholder");
        assert_eq!(PromptKind::Correction.check("{sql}"), Err(TemplateError::MissingPlaceholder { name: "error" }));
    }

    #[test]
    fn unknown_placeholder_message_lists_the_allowed_ones() {
        let err = PromptKind::System.check("{x}").unwrap_err();
        assert_eq!(err.to_string(), "unknown placeholder `{x}` (allowed: {dialect}, {language})");
    }

    #[test]
    fn redis_targets_get_rules_for_commands_unless_the_user_set_their_own() {
        for language in [Language::En, Language::Zh] {
            for kind in PromptKind::ALL {
                kind.check(kind.redis_default_text(language)).unwrap_or_else(|e| panic!("{kind} {language:?}: {e}"));
            }
            let defaults = PromptSet::default();
            let rules = defaults.effective_for(PromptKind::System, language, QueryLanguage::Redis);
            assert!(rules.contains("HGETALL") && !rules.contains("SELECT"), "{rules}");
            assert_eq!(
                defaults.effective_for(PromptKind::System, language, QueryLanguage::Sql),
                PromptKind::System.default_text(language)
            );
        }
        let set = PromptSet { system: Some("mine".into()), ..PromptSet::default() };
        assert_eq!(set.effective_for(PromptKind::System, Language::En, QueryLanguage::Redis), "mine");
    }

    #[test]
    fn effective_prefers_the_users_template() {
        let set = PromptSet { system: Some("mine {dialect}".into()), ..PromptSet::default() };
        assert_eq!(set.effective(PromptKind::System, Language::Zh), "mine {dialect}");
        assert_eq!(set.effective(PromptKind::Correction, Language::En), DEFAULT_CORRECTION_EN);
        assert!(!set.is_empty());
        assert!(PromptSet::default().is_empty());
    }
}
