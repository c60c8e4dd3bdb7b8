//! The language of error events. Failures are made with the service's own English texts; an error event of a
//! `zh` question gets a Chinese message here, in one place. What another system said (the database's message,
//! the provider's reply) cannot be translated: it stays verbatim inside the Chinese frame, and the English text
//! of a validator refusal moves to `details.reason`.

use querygpt_common::{ErrorCode, Language};
use querygpt_sqlsafe::Rule;
use serde_json::Value;

/// The message and details of an error event in `language`.
pub(crate) fn error(
    language: Language,
    code: ErrorCode,
    message: String,
    details: Option<Value>,
) -> (String, Option<Value>) {
    if language == Language::En || has_cjk(&message) {
        return (message, details);
    }
    match code {
        ErrorCode::SqlValidationFailed => {
            let rule =
                details.as_ref().and_then(|d| d.get("rule")).and_then(|r| serde_json::from_value(r.clone()).ok());
            let mut details = match details {
                Some(Value::Object(map)) => map,
                _ => serde_json::Map::new(),
            };
            details.insert("reason".into(), Value::String(message));
            (
                format!("生成的 SQL 未通过只读校验：{}", rule.map_or("语句不是单条只读查询", rule_zh)),
                Some(Value::Object(details)),
            )
        }
        ErrorCode::DatabaseError => (format!("数据库执行失败：{message}"), details),
        ErrorCode::LlmError => (format!("调用模型失败：{message}"), details),
        ErrorCode::NotFound => (format!("问题所用的模型或数据库连接已被删除（{message}）"), details),
        ErrorCode::InternalError => ("服务暂时无法回答，请稍后重试".to_owned(), details),
        _ => (message, details),
    }
}

/// What each rule of the validator refuses, in Chinese.
fn rule_zh(rule: Rule) -> &'static str {
    match rule {
        Rule::ParseError => "无法解析该语句",
        Rule::Empty => "没有可执行的语句",
        Rule::TooLong => "语句过长",
        Rule::TooDeep => "语句嵌套过深",
        Rule::MultipleStatements => "只允许一条语句",
        Rule::NotAQuery => "只允许查询（SELECT），不允许修改数据或结构",
        Rule::DataModifyingCte => "查询中不允许嵌套修改数据的语句",
        Rule::SelectInto => "不允许 SELECT ... INTO",
        Rule::IntoOutfile => "不允许写入服务器文件（INTO OUTFILE / DUMPFILE）",
        Rule::LockingClause => "不允许加锁（FOR UPDATE / FOR SHARE）",
        Rule::DeniedFunction => "使用了被禁止的函数",
        Rule::FunctionNotAllowed => "使用了不在允许列表中的函数",
        Rule::TableNotAllowed => "使用了不允许访问的表",
        Rule::SystemCatalog => "不允许访问系统凭据表",
        Rule::OptimizerHint => "不允许优化器提示",
        Rule::ExecutableComment => "不允许可执行注释",
        Rule::Variable => "不允许使用会话或系统变量",
        Rule::UnsupportedSyntax => "使用了不支持的语法",
        Rule::LimitRewrite => "无法为该语句加上行数限制",
        Rule::WriteCommand => "Redis 命令会写入数据",
        Rule::ScriptingCommand => "不允许 Redis 脚本命令",
        Rule::AdminCommand => "不允许 Redis 管理、连接或事务命令",
        Rule::BlockingCommand => "不允许会阻塞的 Redis 命令",
        Rule::CommandNotAllowed => "Redis 命令不在只读允许列表中",
        Rule::WrongArguments => "Redis 命令的参数不正确",
    }
}

/// Whether a message was already written in Chinese (the worker's own localised texts).
fn has_cjk(text: &str) -> bool {
    text.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn chinese_questions_get_chinese_messages_with_the_original_kept() {
        let details = Some(json!({"rule": "not_a_query", "sql": "DELETE FROM t"}));
        let (message, details) =
            error(Language::Zh, ErrorCode::SqlValidationFailed, "DELETE is not a query".into(), details);
        assert_eq!(message, "生成的 SQL 未通过只读校验：只允许查询（SELECT），不允许修改数据或结构");
        let details = details.unwrap();
        assert_eq!(
            (details["reason"].as_str(), details["sql"].as_str()),
            (Some("DELETE is not a query"), Some("DELETE FROM t"))
        );

        let (message, _) = error(Language::Zh, ErrorCode::DatabaseError, "no such column: regoin".into(), None);
        assert_eq!(message, "数据库执行失败：no such column: regoin", "the database's own words stay");
        let (message, _) = error(Language::Zh, ErrorCode::LlmError, "模型没有返回 SQL 语句".into(), None);
        assert_eq!(message, "模型没有返回 SQL 语句", "already Chinese");
    }

    #[test]
    fn english_questions_are_unchanged() {
        let (message, details) = error(Language::En, ErrorCode::DatabaseError, "no such column: x".into(), None);
        assert_eq!((message.as_str(), details), ("no such column: x", None));
    }
}
