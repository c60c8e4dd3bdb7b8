//! The search index of one schema, and the ranking of its tables for a question.
//!
//! Each table is a document of four fields: its name, its comment, its columns' names and its columns' comments.
//! A question is scored against them with BM25F (per-field weights and length normalisation, one saturation per
//! term), then:
//!
//! * a table named exactly in the question or context (`sales_orders`, as an earlier SQL statement names it) gets
//!   a fixed bonus;
//! * foreign keys pass a share of a table's score to its neighbours, the best two of them: the table that links
//!   two strong hits (`orders` between `customers` and `regions`) rises even when the question never names it.

mod build;

use std::collections::HashMap;
use std::iter;
use std::ops::Range;

use querygpt_common::schema::DbSchema;

use crate::hash::FxBuildHasher;
use crate::tokenize::{Kind, Source, for_each_term};
use crate::{Fitted, select};

/// The term dictionary: a term's id is its position in the postings.
type Terms = HashMap<Box<str>, u32, FxBuildHasher>;

/// Where a term was found in a table.
#[derive(Clone, Copy)]
enum Field {
    Name,
    Comment,
    ColumnName,
    ColumnComment,
}
const FIELDS: usize = 4;

/// BM25F weight of each [`Field`]: a table's name says most about it, a column is one word among many.
const FIELD_WEIGHT: [f32; FIELDS] = [3.0, 2.0, 1.0, 1.0];
/// BM25F length normalisation of each [`Field`]: a short name that matches is about that word (`orders` before
/// `order_item_discounts`); a wide table is not punished much for its many columns.
const FIELD_B: [f32; FIELDS] = [0.75, 0.5, 0.3, 0.3];
/// BM25 term saturation: the third `order` in a table adds little.
const K1: f32 = 1.2;

/// Weight of a term of the context (earlier questions and SQL) against a term of the question.
const CONTEXT_WEIGHT: f32 = 0.3;
/// Weight of a term found through [`crate::synonyms::SYNONYMS`] against the term that led to it.
const SYNONYM_WEIGHT: f32 = 0.7;
/// Weight of a single CJK character against a word or a character pair.
const CHAR_WEIGHT: f32 = 0.3;
/// Score of a table named exactly (times the question's or the context's weight): about two strong words.
const MENTION_SCORE: f32 = 10.0;
/// Share of a neighbour's score that a foreign key passes on (from each of the two best neighbours).
const NEIGHBOUR_SHARE: f32 = 0.6;

/// What ranking needs to know of a schema, built once and reusable for every question about it. Owns its data: it
/// can be cached next to the schema it was built from, which [`SchemaIndex::fit`] takes again.
#[derive(Debug, Clone)]
pub struct SchemaIndex {
    terms: Terms,
    postings: Postings,
    /// Terms in each field of each table, and their average over the tables (BM25 length normalisation).
    field_len: Vec<[u32; FIELDS]>,
    avg_field_len: [f32; FIELDS],
    /// Table `t` has the columns `column_start[t]..column_start[t + 1]` of the whole schema; column `c` has the
    /// distinct terms `column_terms[column_term_start[c]..column_term_start[c + 1]]` (for column pruning).
    column_start: Vec<u32>,
    column_term_start: Vec<u32>,
    column_terms: Vec<u32>,
    /// Tables linked to table `t` by a foreign key, either way: `neighbours[neighbour_start[t]..]`.
    neighbour_start: Vec<u32>,
    neighbours: Vec<u32>,
    /// Lowercase table names (and the unqualified part of qualified ones), sorted, for exact mentions.
    names: Vec<(Box<str>, u32)>,
    /// Term pairs of [`crate::synonyms::SYNONYMS`], both ways, sorted.
    synonyms: Vec<(u32, u32)>,
    /// Bytes of each table's full line, and of the whole rendered schema.
    line_len: Vec<usize>,
    full_len: usize,
}

/// Postings grouped by term: term `t` is in the tables `table[start[t]..start[t + 1]]`, `tf` times in each
/// [`Field`] of each.
#[derive(Debug, Clone)]
struct Postings {
    start: Vec<u32>,
    table: Vec<u32>,
    tf: Vec<[u16; FIELDS]>,
}

/// The tables of a schema ranked for one question.
pub(crate) struct Ranking {
    /// Table positions in the schema, most relevant first.
    pub(crate) order: Vec<usize>,
    /// The question's terms with their weight times their idf, sorted by term.
    query: Vec<(u32, f32)>,
}

impl SchemaIndex {
    /// [`crate::fit`] with this index: `schema` must be the schema the index was built from.
    ///
    /// # Panics
    /// When `schema` has another number of tables or columns than the index.
    pub fn fit(&self, schema: &DbSchema, question: &str, context: &[&str], budget_bytes: usize) -> Fitted {
        let columns = schema.tables.iter().map(|t| t.columns.len()).sum::<usize>();
        assert!(
            schema.tables.len() == self.line_len.len() && columns == self.column_term_start.len() - 1,
            "SchemaIndex::fit was given another schema than the one it was built from"
        );
        if self.full_len <= budget_bytes {
            return Fitted {
                text: crate::render(schema),
                tables: schema.tables.iter().map(|t| t.name.clone()).collect(),
                ranked: false,
            };
        }
        select::within_budget(schema, self, &self.rank(question, context), budget_bytes)
    }

    /// Bytes of the full line of table `table`.
    pub(crate) fn line_len(&self, table: usize) -> usize {
        self.line_len[table]
    }

    /// The tables ordered by relevance to `question` and, weighted lower, `context`. Ties (tables that nothing
    /// matched) go to the tables with the most foreign-key links, which most questions join through.
    pub(crate) fn rank(&self, question: &str, context: &[&str]) -> Ranking {
        let tables = self.line_len.len();
        let mut buf = String::new();
        let mut query = Vec::new();
        let mut mentioned = vec![0.0f32; tables];
        let texts = iter::once((question, 1.0)).chain(context.iter().map(|text| (*text, CONTEXT_WEIGHT)));
        for (text, weight) in texts {
            self.add_terms(text, weight, &mut query, &mut buf);
            self.add_mentions(text, weight, &mut mentioned, &mut buf);
        }
        // One weight per term, the strongest: a word said twice is not twice as important.
        query.sort_unstable_by(|a: &(u32, f32), b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)));
        query.dedup_by_key(|(term, _)| *term);
        query.retain_mut(|(term, weight)| {
            let df = self.postings(*term).len();
            *weight *= idf(tables, df);
            df > 0
        });

        let mut lexical = mentioned;
        for &(term, weight) in &query {
            for p in self.postings(term) {
                let table = self.postings.table[p] as usize;
                let tf = &self.postings.tf[p];
                let lens = &self.field_len[table];
                let mut x = 0.0;
                for f in 0..FIELDS {
                    if tf[f] > 0 {
                        let norm = 1.0 - FIELD_B[f] + FIELD_B[f] * lens[f] as f32 / self.avg_field_len[f];
                        x += FIELD_WEIGHT[f] * f32::from(tf[f]) / norm;
                    }
                }
                lexical[table] += weight * x / (K1 + x);
            }
        }

        let score: Vec<f32> = (0..tables)
            .map(|t| {
                let (mut best, mut second) = (0.0f32, 0.0f32);
                for &n in self.neighbours(t) {
                    let s = lexical[n as usize];
                    if s > best {
                        second = best;
                        best = s;
                    } else if s > second {
                        second = s;
                    }
                }
                lexical[t] + NEIGHBOUR_SHARE * (best + second)
            })
            .collect();
        let mut order: Vec<usize> = (0..tables).collect();
        order.sort_unstable_by(|&a, &b| {
            score[b]
                .total_cmp(&score[a])
                .then_with(|| self.neighbours(b).len().cmp(&self.neighbours(a).len()))
                .then(a.cmp(&b))
        });
        Ranking { order, query }
    }

    /// How much each column of table `table` matches the ranked question (for pruning a wide table).
    pub(crate) fn column_scores(&self, table: usize, ranking: &Ranking) -> Vec<f32> {
        let columns = self.column_start[table] as usize..self.column_start[table + 1] as usize;
        columns
            .map(|c| {
                let terms = self.column_term_start[c] as usize..self.column_term_start[c + 1] as usize;
                self.column_terms[terms]
                    .iter()
                    .filter_map(|term| ranking.query.binary_search_by_key(term, |&(t, _)| t).ok())
                    .map(|i| ranking.query[i].1)
                    .sum()
            })
            .collect()
    }

    fn postings(&self, term: u32) -> Range<usize> {
        self.postings.start[term as usize] as usize..self.postings.start[term as usize + 1] as usize
    }

    fn neighbours(&self, table: usize) -> &[u32] {
        &self.neighbours[self.neighbour_start[table] as usize..self.neighbour_start[table + 1] as usize]
    }

    /// Adds the terms of `text` that the schema has (and their synonyms) to `query`.
    fn add_terms(&self, text: &str, weight: f32, query: &mut Vec<(u32, f32)>, buf: &mut String) {
        for_each_term(text, Source::Question, buf, |term, kind| {
            let Some(&id) = self.terms.get(term) else { return };
            let weight = if kind == Kind::Char { weight * CHAR_WEIGHT } else { weight };
            query.push((id, weight));
            let first = self.synonyms.partition_point(|&(from, _)| from < id);
            for &(_, to) in self.synonyms[first..].iter().take_while(|&&(from, _)| from == id) {
                query.push((to, weight * SYNONYM_WEIGHT));
            }
        });
    }

    /// Gives the tables that `text` names exactly their bonus (the strongest if named more than once).
    fn add_mentions(&self, text: &str, weight: f32, mentioned: &mut [f32], buf: &mut String) {
        let identifier = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '$');
        for word in text.split(|c| !identifier(c)).map(|w| w.trim_matches('.')).filter(|w| !w.is_empty()) {
            buf.clear();
            buf.push_str(word);
            buf.make_ascii_lowercase();
            let first = self.names.partition_point(|(name, _)| **name < **buf);
            for (_, table) in self.names[first..].iter().take_while(|(name, _)| **name == **buf) {
                let bonus = &mut mentioned[*table as usize];
                *bonus = bonus.max(MENTION_SCORE * weight);
            }
        }
    }
}

/// BM25's idf: a term in few of the `tables` counts most; one in every table still counts a little.
fn idf(tables: usize, df: usize) -> f32 {
    let (n, df) = (tables as f32, df as f32);
    (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
}
