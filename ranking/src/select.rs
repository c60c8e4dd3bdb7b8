//! Filling the budget: tables in ranked order, wide ones pruned to a fair share, each skipped when it no longer
//! fits (a smaller table further down may still).

use querygpt_common::schema::{DbSchema, TableInfo};

use crate::index::{Ranking, SchemaIndex};
use crate::{Fitted, render};

/// A table costs at most this fraction of the budget: a wide table gives up its least relevant columns rather than
/// the places of the next seven tables.
const FAIR_SHARE: usize = 8;

/// The ranked tables that fit in `budget` bytes.
pub(crate) fn within_budget(schema: &DbSchema, index: &SchemaIndex, ranking: &Ranking, budget: usize) -> Fitted {
    let share = budget / FAIR_SHARE;
    let mut text = String::with_capacity(budget.min(64 * 1024));
    let mut tables = Vec::new();
    let mut line = String::new();
    for &t in &ranking.order {
        let table = &schema.tables[t];
        let room = budget.saturating_sub(text.len());
        line.clear();
        if index.line_len(t) <= share {
            if index.line_len(t) > room {
                continue;
            }
            render::table(&mut line, table, None);
        } else {
            prune(&mut line, table, &index.column_scores(t, ranking), share);
        }
        if line.len() > room {
            if tables.is_empty() {
                // Even its key columns exceed the budget; it is still what the question needs most.
                text.push_str(&line);
                tables.push(table.name.clone());
                break;
            }
            continue;
        }
        text.push_str(&line);
        tables.push(table.name.clone());
    }
    Fitted { text, tables, ranked: true }
}

/// Renders `table` with its key columns (primary and foreign: the joins need them) and as many of its best
/// `scores` columns as keep the line within `share` bytes.
fn prune(line: &mut String, table: &TableInfo, scores: &[f32], share: usize) {
    let mut keep: Vec<bool> = table
        .columns
        .iter()
        .map(|c| c.primary || table.foreign_keys.iter().any(|fk| fk.columns.contains(&c.name)))
        .collect();
    render::table(line, table, Some(&keep));
    let mut len = line.len();
    let mut candidates: Vec<usize> = (0..keep.len()).filter(|&c| !keep[c]).collect();
    // Best first; among equals (often: none matched) the declared order, which puts the main columns first.
    candidates.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let mut column = String::new();
    for c in candidates {
        column.clear();
        render::column(&mut column, &table.columns[c]);
        // A kept column costs itself and a ", "; the count of the columns left out only gets shorter.
        let cost = column.len() + 2;
        if len + cost <= share {
            keep[c] = true;
            len += cost;
        }
    }
    line.clear();
    render::table(line, table, Some(&keep));
    debug_assert!(line.len() <= len, "the estimate is an upper bound");
}
