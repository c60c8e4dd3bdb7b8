//! The SQL pipeline: size limits, token checks, parse, tree walk, limit rewrite, render, re-validate.

use sqlparser::ast::{Expr, LimitClause, Query, Statement, Value};
use sqlparser::dialect::{Dialect as ParserDialect, MySqlDialect, PostgreSqlDialect, SQLiteDialect};
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError, ParserOptions};
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer, Whitespace, Word};

use crate::walk;
use crate::{Dialect, Policy, Rejection, Rule, ValidatedSql};

/// Longest accepted input, in bytes.
pub const MAX_INPUT_BYTES: usize = 64 * 1024;

/// Most operator and keyword tokens in one statement. Left-associative chains (`a OR b OR ...`, `x::t::t`) are
/// built by a loop in the parser, so their depth is bounded only by the token count: this cap keeps the tree
/// shallow enough to drop and walk without exhausting the stack.
pub const MAX_OPERATOR_TOKENS: usize = 2_000;

/// Deepest accepted syntax tree (expressions, queries and table factors nested in each other, chains included).
/// The tree is only rendered back to text after this check, so `Display` never meets a deeper tree.
pub const MAX_DEPTH: usize = 200;

/// sqlparser's own recursion limit (parentheses, subqueries, unary operators), chosen so that parsing fits a
/// 2 MiB thread stack even in debug builds.
///
/// The token scan also rejects (as [`Rule::TooDeep`]) brackets and `CASE ... END` blocks nested more than this
/// many levels, before the parser runs: each such level costs the parser at least one level of recursion, so
/// nothing the parser accepts is lost, and the rule is reported even where sqlparser backtracks over its
/// recursion error (a `CASE` that fails to parse is retried as an identifier, which hides the error).
pub const PARSER_RECURSION_LIMIT: usize = 50;

static POSTGRESQL: PostgreSqlDialect = PostgreSqlDialect {};
static MYSQL: MySqlDialect = MySqlDialect {};
static SQLITE: SQLiteDialect = SQLiteDialect {};

fn parser_dialect(dialect: Dialect) -> &'static dyn ParserDialect {
    match dialect {
        Dialect::Postgresql => &POSTGRESQL,
        Dialect::Mysql => &MYSQL,
        Dialect::Sqlite => &SQLITE,
    }
}

/// Validates one SQL statement for `dialect` under `policy`.
///
/// On success the returned [`ValidatedSql::sql`] is the text to run: the checked tree rendered back to SQL
/// (which drops comments and applies the row limit), then parsed and checked again, so what runs is exactly
/// what was validated.
pub fn validate(sql: &str, dialect: Dialect, policy: &Policy) -> Result<ValidatedSql, Rejection> {
    let mut query = check_text(sql, dialect, policy)?.query;
    if let Some(cap) = policy.row_limit {
        enforce_limit(&mut query, cap);
    }
    let rendered = query.to_string();
    drop(query);

    let checked = check_text(&rendered, dialect, policy)?;
    if let Some(cap) = policy.row_limit
        && !limit_within(&checked.query, cap)
    {
        return Err(Rejection::new(Rule::LimitRewrite, format!("the rewritten statement does not carry LIMIT {cap}")));
    }
    // What runs must mean what was checked: text whose rendering changes again on a second round (the parser's
    // Display is lossy for a few constructs, such as type modifiers) is refused rather than trusted.
    if checked.query.to_string() != rendered {
        return Err(Rejection::new(
            Rule::UnsupportedSyntax,
            "the statement uses syntax that cannot be reproduced faithfully; rewrite it more plainly",
        ));
    }
    Ok(ValidatedSql { sql: rendered, tables: checked.tables })
}

struct Checked {
    query: Box<Query>,
    tables: Vec<String>,
}

/// Every check on one piece of text; returns the parsed query and the tables it reads.
fn check_text(sql: &str, dialect: Dialect, policy: &Policy) -> Result<Checked, Rejection> {
    if sql.len() > MAX_INPUT_BYTES {
        return Err(Rejection::new(
            Rule::TooLong,
            format!("input is {} bytes; the limit is {MAX_INPUT_BYTES}", sql.len()),
        ));
    }
    let parser_dialect = parser_dialect(dialect);
    let tokens = Tokenizer::new(parser_dialect, sql)
        .with_unescape(false)
        .tokenize_with_location()
        .map_err(|e| Rejection::new(Rule::ParseError, e.to_string()))?;
    check_tokens(&tokens, dialect)?;

    let options =
        ParserOptions::new().with_trailing_commas(parser_dialect.supports_trailing_commas()).with_unescape(false);
    let mut statements = Parser::new(parser_dialect)
        .with_recursion_limit(PARSER_RECURSION_LIMIT)
        .with_options(options)
        .with_tokens_with_locations(tokens)
        .parse_statements()
        .map_err(|e| match e {
            ParserError::RecursionLimitExceeded => {
                Rejection::new(Rule::TooDeep, "nesting exceeds the parser's recursion limit")
            }
            other => diagnose_parse_error(sql, parser_dialect, other.to_string()),
        })?;

    let statement = match statements.len() {
        0 => return Err(Rejection::new(Rule::Empty, "no statement found")),
        1 => statements.remove(0),
        n => {
            return Err(Rejection::new(
                Rule::MultipleStatements,
                format!("found {n} statements; exactly one query may run"),
            ));
        }
    };
    let Statement::Query(query) = statement else {
        return Err(not_a_query("a statement that is not a query"));
    };
    let tables = walk::check_query(&query, dialect, policy)?;
    Ok(Checked { query, tables })
}

fn not_a_query(found: &str) -> Rejection {
    Rejection::new(
        Rule::NotAQuery,
        format!("only a query (SELECT, WITH ... SELECT, VALUES, set operations) may run, found {found}"),
    )
}

/// Checks made on the token stream, before the parser sees it.
fn check_tokens(tokens: &[TokenWithSpan], dialect: Dialect) -> Result<(), Rejection> {
    let mut operators = 0usize;
    let mut nesting = 0usize;
    let mut seen_semicolon = false;
    let mut previous: Option<&Token> = None;
    let mut not_query = None;
    for token in tokens.iter().map(|t| &t.token) {
        if let Token::Whitespace(ws) = token {
            if dialect == Dialect::Mysql
                && let Whitespace::MultiLineComment(body) = ws
                && body.starts_with("M!")
            {
                return Err(Rejection::new(
                    Rule::ExecutableComment,
                    "MariaDB executes `/*M! ... */` comments; they are not allowed",
                ));
            }
            continue;
        }
        match (previous, token) {
            (_, Token::SemiColon) => seen_semicolon = true,
            _ if seen_semicolon => {
                return Err(Rejection::new(
                    Rule::MultipleStatements,
                    "text follows a `;`: exactly one statement may run",
                ));
            }
            // A query starts with SELECT, WITH, VALUES or a parenthesis; anything else is some other statement.
            (None, Token::LParen) => {}
            (None, Token::Word(w)) if matches!(w.keyword, Keyword::SELECT | Keyword::WITH | Keyword::VALUES) => {}
            // Reported after the whole scan, so that a stacked `COMMIT; ...` is named as such.
            (None, Token::Word(w)) => not_query = Some(not_a_query(&w.value.to_ascii_uppercase())),
            (None, other) => not_query = Some(not_a_query(&format!("`{other}`"))),
            (Some(Token::Word(into)), Token::Word(target))
                if is_into(into) && is_word(target, &["OUTFILE", "DUMPFILE"]) =>
            {
                return Err(Rejection::new(
                    Rule::IntoOutfile,
                    format!("INTO {} writes a file on the server", target.value.to_ascii_uppercase()),
                ));
            }
            _ => {}
        }
        match nesting_change(token) {
            Nesting::Open => {
                nesting += 1;
                if nesting > PARSER_RECURSION_LIMIT {
                    return Err(Rejection::new(
                        Rule::TooDeep,
                        format!("brackets or CASE expressions nest more than {PARSER_RECURSION_LIMIT} levels deep"),
                    ));
                }
            }
            Nesting::Close => nesting = nesting.saturating_sub(1),
            Nesting::Same => {}
        }
        if may_deepen_tree(token) {
            operators += 1;
            if operators > MAX_OPERATOR_TOKENS {
                return Err(Rejection::new(
                    Rule::TooLong,
                    format!("statement has more than {MAX_OPERATOR_TOKENS} operator and keyword tokens"),
                ));
            }
        }
        previous = Some(token);
    }
    not_query.map_or(Ok(()), Err)
}

fn is_into(word: &Word) -> bool {
    word.keyword == Keyword::INTO && word.quote_style.is_none()
}

/// An unquoted word equal (ignoring ASCII case) to one of `candidates`.
fn is_word(word: &Word, candidates: &[&str]) -> bool {
    word.quote_style.is_none() && candidates.iter().any(|c| word.value.eq_ignore_ascii_case(c))
}

/// The parser failed: name a more precise rule when a known-dangerous construct that sqlparser does not parse
/// is present (`SELECT ... INTO @var` at the end, `FOR NO KEY UPDATE`, `LOCK IN SHARE MODE`).
fn diagnose_parse_error(sql: &str, dialect: &dyn ParserDialect, message: String) -> Rejection {
    let Ok(tokens) = Tokenizer::new(dialect, sql).with_unescape(false).tokenize() else {
        return Rejection::new(Rule::ParseError, message);
    };
    let words: Vec<&Word> = tokens
        .iter()
        .filter_map(|t| match t {
            Token::Word(w) => Some(w),
            _ => None,
        })
        .collect();
    for (i, word) in words.iter().enumerate() {
        let next = |n: usize, candidates: &[&str]| words.get(i + n).is_some_and(|w| is_word(w, candidates));
        if is_into(word) {
            return Rejection::new(Rule::SelectInto, "SELECT ... INTO creates a table or assigns variables");
        }
        let locks = (is_word(word, &["FOR"])
            && (next(1, &["NO"]) && next(2, &["KEY"]) || next(1, &["KEY"]) && next(2, &["SHARE"])))
            || (is_word(word, &["LOCK"]) && next(1, &["IN"]) && next(2, &["SHARE"]));
        if locks {
            return Rejection::new(Rule::LockingClause, "row-locking clauses are not allowed in a read-only query");
        }
    }
    Rejection::new(Rule::ParseError, message)
}

enum Nesting {
    Open,
    Close,
    Same,
}

/// How a token changes the nesting level seen by the token scan: brackets of every kind and `CASE ... END`.
fn nesting_change(token: &Token) -> Nesting {
    match token {
        Token::LParen | Token::LBracket | Token::LBrace => Nesting::Open,
        Token::RParen | Token::RBracket | Token::RBrace => Nesting::Close,
        Token::Word(w) if w.quote_style.is_none() && w.keyword == Keyword::CASE => Nesting::Open,
        Token::Word(w) if w.quote_style.is_none() && w.keyword == Keyword::END => Nesting::Close,
        _ => Nesting::Same,
    }
}

/// Whether a token can add a level to the syntax tree without going through the parser's recursion counter.
/// Literals, plain identifiers and separators cannot; parentheses are counted by the parser itself.
fn may_deepen_tree(token: &Token) -> bool {
    match token {
        Token::Word(w) => w.keyword != Keyword::NoKeyword && w.quote_style.is_none(),
        Token::Whitespace(_)
        | Token::EOF
        | Token::Comma
        | Token::Period
        | Token::SemiColon
        | Token::LParen
        | Token::RParen
        | Token::Number(..)
        | Token::SingleQuotedString(_)
        | Token::DoubleQuotedString(_)
        | Token::TripleSingleQuotedString(_)
        | Token::TripleDoubleQuotedString(_)
        | Token::DollarQuotedString(_)
        | Token::SingleQuotedByteStringLiteral(_)
        | Token::DoubleQuotedByteStringLiteral(_)
        | Token::TripleSingleQuotedByteStringLiteral(_)
        | Token::TripleDoubleQuotedByteStringLiteral(_)
        | Token::SingleQuotedRawStringLiteral(_)
        | Token::DoubleQuotedRawStringLiteral(_)
        | Token::TripleSingleQuotedRawStringLiteral(_)
        | Token::TripleDoubleQuotedRawStringLiteral(_)
        | Token::NationalStringLiteral(_)
        | Token::QuoteDelimitedStringLiteral(_)
        | Token::NationalQuoteDelimitedStringLiteral(_)
        | Token::EscapedStringLiteral(_)
        | Token::UnicodeStringLiteral(_)
        | Token::HexStringLiteral(_) => false,
        _ => true,
    }
}

/// A non-negative integer literal.
fn literal_u64(expr: &Expr) -> Option<u64> {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n.parse().ok(),
            _ => None,
        },
        _ => None,
    }
}

fn number(n: u64) -> Expr {
    Expr::value(Value::Number(n.to_string(), false))
}

/// The row bound of the outermost query, if every bound it carries is an integer literal.
fn current_limit(query: &Query) -> Option<u64> {
    let from_limit = match &query.limit_clause {
        None | Some(LimitClause::LimitOffset { limit: None, .. }) => None,
        Some(LimitClause::LimitOffset { limit: Some(limit), .. })
        | Some(LimitClause::OffsetCommaLimit { limit, .. }) => Some(literal_u64(limit)?),
    };
    let from_fetch = match &query.fetch {
        None => None,
        Some(fetch) if fetch.percent || fetch.with_ties => return None,
        Some(fetch) => Some(literal_u64(fetch.quantity.as_ref()?)?),
    };
    match (from_limit, from_fetch) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Gives the outermost query a literal `LIMIT` no larger than `cap` (a `FETCH FIRST` becomes a `LIMIT`).
fn enforce_limit(query: &mut Query, cap: u64) {
    let bound = current_limit(query).map_or(cap, |n| n.min(cap));
    query.fetch = None;
    match &mut query.limit_clause {
        None => {
            query.limit_clause =
                Some(LimitClause::LimitOffset { limit: Some(number(bound)), offset: None, limit_by: Vec::new() });
        }
        Some(LimitClause::LimitOffset { limit, .. }) => *limit = Some(number(bound)),
        Some(LimitClause::OffsetCommaLimit { limit, .. }) => *limit = number(bound),
    }
}

fn limit_within(query: &Query, cap: u64) -> bool {
    query.limit_clause.is_some() && query.fetch.is_none() && current_limit(query).is_some_and(|n| n <= cap)
}
