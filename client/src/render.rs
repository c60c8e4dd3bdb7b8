//! What a person sees: one spinner line per stage of a question (on stderr, only on a terminal), the answer
//! (SQL, a table that fits the terminal, the explanation) and the lists, as tables.

use crate::api::{Connection, Conversation, ConversationPage, Model};
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table, presets};
use console::Term;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};
use serde_json::Value;
use std::io::{self, IsTerminal};
use std::time::{Duration, Instant};

/// Longest text shown in one cell; the rest is cut with `…`.
const MAX_CELL_CHARS: usize = 200;

/// The spinner of the stage a question is in; the finished stages stay as `✓` lines.
#[derive(Default)]
pub struct Progress {
    current: Option<Stage>,
}

struct Stage {
    bar: ProgressBar,
    started: Instant,
    label: String,
    /// Cleared rather than kept as a `✓` line when it ends (waiting for the first event).
    transient: bool,
}

impl Progress {
    /// No stage yet.
    pub fn new() -> Progress {
        Progress::default()
    }

    /// A new stage: the previous one is marked done, and a spinner runs for this one.
    pub fn stage(&mut self, label: String) {
        self.start(label, false);
    }

    /// A spinner for a wait that is not a stage of its own (it leaves no `✓` line).
    pub fn waiting(&mut self, label: String) {
        self.start(label, true);
    }

    fn start(&mut self, label: String, transient: bool) {
        self.finish_current(true);
        let bar = spinner();
        let style = ProgressStyle::with_template("{spinner:.cyan} {msg} {elapsed:.dim}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner())
            .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏✓");
        bar.set_style(style);
        bar.set_message(label.clone());
        bar.enable_steady_tick(Duration::from_millis(100));
        self.current = Some(Stage { bar, started: Instant::now(), label, transient });
    }

    /// Shows `note` next to the current stage (e.g. "stopping...").
    pub fn note(&self, note: &str) {
        if let Some(stage) = &self.current {
            stage.bar.set_message(format!("{} — {note}", stage.label));
        }
    }

    /// Ends the current stage: marked done when `ok` (and not transient), else just cleared.
    pub fn finish_current(&mut self, ok: bool) {
        let Some(stage) = self.current.take() else { return };
        let drawn = !stage.bar.is_hidden();
        stage.bar.finish_and_clear();
        // The `✓` line is ours, not the bar's: a bar ends its line short of the right edge (see `Narrower`).
        if ok && !stage.transient && drawn {
            eprintln!("✓ {} ({:.1} s)", stage.label, stage.started.elapsed().as_secs_f64());
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish_current(false);
    }
}

/// A spinner on stderr when it is a terminal, else one that draws nothing.
fn spinner() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    ProgressBar::with_draw_target(None, ProgressDrawTarget::term_like(Box::new(Narrower(Term::stderr()))))
}

/// The terminal, said to be a few columns narrower than it is. indicatif fills each line to the right edge, so the
/// `^C` that the terminal echoes on Ctrl-C would wrap to a new line, and clearing the spinner would then leave a
/// stale copy of it above; with room to spare at the end of the line, the echo stays on the spinner's line.
#[derive(Debug)]
struct Narrower(Term);

impl TermLike for Narrower {
    fn width(&self) -> u16 {
        self.0.size().1.saturating_sub(3).max(1)
    }
    fn height(&self) -> u16 {
        self.0.size().0
    }
    fn move_cursor_up(&self, n: usize) -> io::Result<()> {
        self.0.move_cursor_up(n)
    }
    fn move_cursor_down(&self, n: usize) -> io::Result<()> {
        self.0.move_cursor_down(n)
    }
    fn move_cursor_right(&self, n: usize) -> io::Result<()> {
        self.0.move_cursor_right(n)
    }
    fn move_cursor_left(&self, n: usize) -> io::Result<()> {
        self.0.move_cursor_left(n)
    }
    fn write_line(&self, s: &str) -> io::Result<()> {
        self.0.write_line(s)
    }
    fn write_str(&self, s: &str) -> io::Result<()> {
        self.0.write_str(s)
    }
    fn clear_line(&self) -> io::Result<()> {
        self.0.clear_line()
    }
    fn flush(&self) -> io::Result<()> {
        self.0.flush()
    }
}

/// The line of a `progress` event: its stage, and which attempt after a correction.
pub fn stage_label(stage: &str, attempt: Option<u64>, message: &str) -> String {
    let attempt = attempt.unwrap_or(1);
    match (stage, attempt) {
        ("analyzing", _) => "analyzing the question".to_owned(),
        ("generating_sql", 1) => "generating SQL".to_owned(),
        ("generating_sql", n) => format!("correcting the SQL (attempt {n})"),
        ("executing", 1) => "executing the query".to_owned(),
        ("executing", n) => format!("executing the corrected query (attempt {n})"),
        (other, _) if message.is_empty() => other.replace('_', " "),
        (_, _) => message.to_owned(),
    }
}

/// A table as wide as the terminal (when there is one), wrapping cells to fit.
fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_style(presets::UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Dynamic);
    table.set_header(header.iter().map(Cell::new));
    table
}

/// The text of one JSON value in a cell: `NULL`, numbers and booleans as they are, strings without quotes.
pub fn cell_text(value: &Value) -> String {
    let text = match value {
        Value::Null => "NULL".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.chars().count() > MAX_CELL_CHARS {
        let cut: String = text.chars().take(MAX_CELL_CHARS - 1).collect();
        format!("{cut}…")
    } else {
        text
    }
}

/// The answer of a question: the SQL, the rows as a table, and the explanation.
pub fn answer(result: &Value) -> String {
    let mut out = String::new();
    let sql = result["sql"].as_str().unwrap_or_default();
    out.push_str("SQL:\n");
    for line in sql.lines() {
        out.push_str("  ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');

    let rows = result["data"].as_array().cloned().unwrap_or_default();
    let mut columns: Vec<String> = result["columns"]
        .as_array()
        .map(|c| c.iter().filter_map(|c| c.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    if columns.is_empty()
        && let Some(Value::Object(first)) = rows.first()
    {
        columns = first.keys().cloned().collect();
    }
    let count = result["rows_count"].as_u64().unwrap_or(rows.len() as u64);
    if !columns.is_empty() {
        let header: Vec<&str> = columns.iter().map(String::as_str).collect();
        let mut table = table(&header);
        // Numbers read best right-aligned: a column whose values are all numbers (or NULL) is.
        let numeric: Vec<bool> = columns
            .iter()
            .map(|c| rows.iter().all(|row| matches!(row.get(c), None | Some(Value::Null | Value::Number(_)))))
            .collect();
        for row in &rows {
            table.add_row(columns.iter().zip(&numeric).map(|(c, &numeric)| {
                let cell = Cell::new(cell_text(row.get(c).unwrap_or(&Value::Null)));
                if numeric { cell.set_alignment(CellAlignment::Right) } else { cell }
            }));
        }
        out.push_str(&table.to_string());
        out.push('\n');
    }
    let plural = if count == 1 { "row" } else { "rows" };
    let mut summary = format!("{count} {plural}");
    match result["execution_time"].as_f64() {
        Some(seconds) if seconds < 1.0 => summary.push_str(&format!(" in {:.1} ms", seconds * 1000.0)),
        Some(seconds) => summary.push_str(&format!(" in {seconds:.2} s")),
        None => {}
    }
    if result["truncated"].as_bool() == Some(true) {
        summary.push_str(" (truncated: the query had more rows than the server returns)");
    }
    out.push_str(&summary);
    out.push('\n');

    if let Some(explanation) = result["explanation"].as_str().map(str::trim).filter(|e| !e.is_empty()) {
        out.push('\n');
        out.push_str(explanation);
        out.push('\n');
    }
    out
}

fn yes_no(value: Option<bool>) -> &'static str {
    match value {
        Some(true) => "yes",
        Some(false) => "no",
        None => "untested",
    }
}

fn mark(value: bool) -> &'static str {
    if value { "✓" } else { "" }
}

/// The models as a table.
pub fn models(models: &[Model]) -> String {
    if models.is_empty() {
        return "No models yet: add one with POST /api/v1/models (or in the web UI).".to_owned();
    }
    let mut table = table(&["name", "model", "provider", "default", "available", "id"]);
    for m in models {
        table.add_row(vec![
            m.name.as_str(),
            &m.model_id,
            &m.provider,
            mark(m.is_default),
            yes_no(m.is_available),
            &m.id,
        ]);
    }
    table.to_string()
}

/// The connections as a table.
pub fn connections(connections: &[Connection]) -> String {
    if connections.is_empty() {
        return "No connections yet: add one with POST /api/v1/connections (or in the web UI).".to_owned();
    }
    let mut table = table(&["name", "driver", "database", "host", "default", "connected", "id"]);
    for c in connections {
        let host = match (&c.host, c.port) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.clone(),
            _ => String::new(),
        };
        table.add_row(vec![
            c.name.clone(),
            c.driver.clone(),
            cell_text(&Value::String(c.database.clone())),
            host,
            mark(c.is_default).to_owned(),
            yes_no(c.is_connected).to_owned(),
            c.id.clone(),
        ]);
    }
    table.to_string()
}

/// A page of conversations as a table, with how many there are in all.
pub fn conversations(page: &ConversationPage) -> String {
    if page.conversations.is_empty() {
        return "No conversations yet: ask a question with querygpt ask \"...\".".to_owned();
    }
    let mut table = table(&["title", "model", "messages", "favorite", "updated", "id"]);
    for Conversation { id, title, model, is_favorite, message_count, updated_at } in &page.conversations {
        table.add_row(vec![
            cell_text(&Value::String(title.clone())),
            model.clone().unwrap_or_default(),
            message_count.to_string(),
            mark(*is_favorite).to_owned(),
            updated_at.clone(),
            id.clone(),
        ]);
    }
    let mut out = table.to_string();
    if page.has_more {
        out.push_str(&format!("\n{} of {} shown (--limit shows more)", page.conversations.len(), page.total));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_answer_has_sql_rows_and_explanation() {
        let result = json!({"type": "result", "sql": "SELECT region, SUM(amount) AS total FROM sales GROUP BY region",
            "data": [{"region": "north", "total": 230.5}, {"region": "south", "total": null}], "rows_count": 2,
            "columns": ["region", "total"], "truncated": true, "execution_time": 0.0123, "explanation": "Per region"});
        let text = answer(&result);
        assert!(text.contains("SELECT region, SUM(amount)"), "{text}");
        assert!(text.contains("north") && text.contains("230.5") && text.contains("NULL"), "{text}");
        assert!(text.contains("2 rows in 12.3 ms (truncated"), "{text}");
        assert!(text.trim_end().ends_with("Per region"), "{text}");
        assert!(text.find("region").unwrap() < text.find("north").unwrap(), "header first: {text}");
    }

    #[test]
    fn stages_name_their_attempt() {
        assert_eq!(stage_label("generating_sql", Some(2), ""), "correcting the SQL (attempt 2)");
        assert_eq!(stage_label("executing", None, ""), "executing the query");
        assert_eq!(stage_label("new_stage", None, ""), "new stage");
    }
}
