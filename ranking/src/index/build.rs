//! Building a [`SchemaIndex`]: every table's text read once, without a sort or an allocation per term.
//!
//! Schemas repeat their column names and comments in every table (`created_at`, `创建时间`, `客户ID`): each
//! distinct text is tokenized once, and later occurrences reuse its term ids. Occurrences are counted in place,
//! each term remembering its latest posting and the latest column it was in.

use std::collections::HashMap;

use querygpt_common::schema::DbSchema;

use super::{FIELDS, Field, Postings, SchemaIndex, Terms};
use crate::hash::FxBuildHasher;
use crate::render;
use crate::synonyms::SYNONYMS;
use crate::tokenize::{Kind, Source, for_each_term};

/// No posting or column yet.
const NONE: u32 = u32::MAX;

impl SchemaIndex {
    /// Reads every table of `schema` (a 500-table schema takes a few milliseconds).
    pub fn new(schema: &DbSchema) -> Self {
        let tables = &schema.tables;
        let columns = tables.iter().map(|t| t.columns.len()).sum::<usize>();
        // About two distinct texts and two new terms a column (names and comments repeat).
        let mut builder = Builder {
            terms: Terms::with_capacity_and_hasher(2 * columns, FxBuildHasher::default()),
            texts: HashMap::with_capacity_and_hasher(2 * columns, FxBuildHasher::default()),
            ..Builder::default()
        };
        let mut field_len = Vec::with_capacity(tables.len());
        let mut column_start = Vec::with_capacity(tables.len() + 1);
        column_start.push(0);
        let mut column_term_start = vec![0];
        let mut line = String::new();
        let mut line_len = Vec::with_capacity(tables.len());
        for (t, table) in tables.iter().enumerate() {
            builder.start_table(to_u32(t));
            builder.add(Some(&table.name), Field::Name);
            builder.add(table.comment.as_deref(), Field::Comment);
            for column in &table.columns {
                builder.column = to_u32(column_term_start.len() - 1);
                builder.add(Some(&column.name), Field::ColumnName);
                builder.add(column.comment.as_deref(), Field::ColumnComment);
                column_term_start.push(to_u32(builder.column_terms.len()));
            }
            column_start.push(to_u32(column_term_start.len() - 1));
            field_len.push(builder.lens);

            line.clear();
            render::table(&mut line, table, None);
            line_len.push(line.len());
        }
        let synonyms = builder.synonyms();
        let postings = builder.postings();

        let count = tables.len().max(1) as f32;
        let avg_field_len =
            std::array::from_fn(|f| field_len.iter().map(|lens: &[u32; FIELDS]| lens[f] as f32).sum::<f32>() / count);
        let (neighbour_start, neighbours) = neighbours(schema);
        let full_len = line_len.iter().sum();
        SchemaIndex {
            terms: builder.terms,
            postings,
            field_len,
            avg_field_len,
            column_start,
            column_term_start,
            column_terms: builder.column_terms,
            neighbour_start,
            neighbours,
            names: names(schema),
            synonyms,
            line_len,
            full_len,
        }
    }
}

/// The index being built, table after table.
#[derive(Default)]
struct Builder<'a> {
    terms: Terms,
    /// Every distinct text read, and its terms: `text_terms[start..end]`.
    texts: HashMap<&'a str, (u32, u32), FxBuildHasher>,
    text_terms: Vec<u32>,
    buf: String,
    /// (term, table, occurrences per field), in table order.
    entries: Vec<(u32, u32, [u16; FIELDS])>,
    /// Per term: its latest entry, and the latest column it was in ([`NONE`]: none yet).
    last_entry: Vec<u32>,
    last_column: Vec<u32>,
    /// The distinct terms of each column, one column after the other.
    column_terms: Vec<u32>,
    /// The table being read, its terms per field so far, and the column being read ([`NONE`]: none).
    table: u32,
    lens: [u32; FIELDS],
    column: u32,
}

impl<'a> Builder<'a> {
    fn start_table(&mut self, table: u32) {
        self.table = table;
        self.lens = [0; FIELDS];
        self.column = NONE;
    }

    /// Adds the terms of `text` to `field` of the current table (and to the current column's terms).
    fn add(&mut self, text: Option<&'a str>, field: Field) {
        let Some(text) = text.filter(|text| !text.is_empty()) else { return };
        let (start, end) = match self.texts.get(text) {
            Some(&range) => range,
            None => {
                let start = to_u32(self.text_terms.len());
                let Builder { terms, text_terms, buf, .. } = self;
                for_each_term(text, Source::Schema, buf, |term, _| text_terms.push(intern(terms, term)));
                self.last_entry.resize(self.terms.len(), NONE);
                self.last_column.resize(self.terms.len(), NONE);
                let range = (start, to_u32(self.text_terms.len()));
                self.texts.insert(text, range);
                range
            }
        };
        self.lens[field as usize] += end - start;
        for i in start as usize..end as usize {
            let term = self.text_terms[i] as usize;
            let last = self.last_entry[term];
            if last != NONE && self.entries[last as usize].1 == self.table {
                let tf = &mut self.entries[last as usize].2[field as usize];
                *tf = tf.saturating_add(1);
            } else {
                self.last_entry[term] = to_u32(self.entries.len());
                let mut tf = [0; FIELDS];
                tf[field as usize] = 1;
                self.entries.push((term as u32, self.table, tf));
            }
            if self.column != NONE && self.last_column[term] != self.column {
                self.last_column[term] = self.column;
                self.column_terms.push(term as u32);
            }
        }
    }

    /// The term pairs of [`SYNONYMS`], both ways, sorted. Their terms enter the dictionary even when the schema does
    /// not have them: a question's `client` must find its way to the schema's `customer`.
    fn synonyms(&mut self) -> Vec<(u32, u32)> {
        let mut pairs = Vec::with_capacity(2 * SYNONYMS.len());
        for &(a, b) in SYNONYMS {
            let (a, b) = (self.one_term(a), self.one_term(b));
            pairs.extend([(a, b), (b, a)]);
        }
        pairs.sort_unstable();
        pairs.dedup();
        pairs
    }

    /// The term of a one-word synonym (the character pair of a Chinese word, not its characters).
    fn one_term(&mut self, word: &str) -> u32 {
        let Builder { terms, buf, .. } = self;
        let mut id = None;
        for_each_term(word, Source::Question, buf, |term, kind| {
            if kind != Kind::Char {
                id = Some(intern(terms, term));
            }
        });
        id.expect("a synonym is one word (tested)")
    }

    /// The entries grouped by term (a counting sort: tables stay in order within a term).
    fn postings(&self) -> Postings {
        let mut start = vec![0u32; self.terms.len() + 1];
        for &(term, ..) in &self.entries {
            start[term as usize + 1] += 1;
        }
        for i in 1..start.len() {
            start[i] += start[i - 1];
        }
        let mut next = start.clone();
        let mut table = vec![0; self.entries.len()];
        let mut tf = vec![[0; FIELDS]; self.entries.len()];
        for &(term, t, counts) in &self.entries {
            let at = &mut next[term as usize];
            table[*at as usize] = t;
            tf[*at as usize] = counts;
            *at += 1;
        }
        Postings { start, table, tf }
    }
}

fn intern(terms: &mut Terms, term: &str) -> u32 {
    if let Some(&id) = terms.get(term) {
        return id;
    }
    let id = to_u32(terms.len());
    terms.insert(term.into(), id);
    id
}

/// Foreign-key links between tables, both ways and without duplicates or self-references, as (start, targets).
fn neighbours(schema: &DbSchema) -> (Vec<u32>, Vec<u32>) {
    let by_name: HashMap<&str, u32, FxBuildHasher> =
        schema.tables.iter().enumerate().map(|(i, t)| (t.name.as_str(), to_u32(i))).collect();
    let mut links = Vec::new();
    for (i, table) in schema.tables.iter().enumerate() {
        let i = to_u32(i);
        for fk in &table.foreign_keys {
            if let Some(&j) = by_name.get(fk.referenced_table.as_str())
                && j != i
            {
                links.extend([(i, j), (j, i)]);
            }
        }
    }
    links.sort_unstable();
    links.dedup();
    let mut start = vec![0u32; schema.tables.len() + 1];
    for &(from, _) in &links {
        start[from as usize + 1] += 1;
    }
    for i in 1..start.len() {
        start[i] += start[i - 1];
    }
    (start, links.into_iter().map(|(_, to)| to).collect())
}

/// Lowercase names for exact mentions: `sales.orders` is also `orders`.
fn names(schema: &DbSchema) -> Vec<(Box<str>, u32)> {
    let mut names = Vec::with_capacity(schema.tables.len());
    for (i, table) in schema.tables.iter().enumerate() {
        let name = table.name.to_ascii_lowercase();
        if let Some((_, unqualified)) = name.rsplit_once('.') {
            names.push((unqualified.into(), to_u32(i)));
        }
        names.push((name.into(), to_u32(i)));
    }
    names.sort_unstable();
    names
}

/// Positions fit in `u32`: a schema has far fewer than four billion tables, columns or terms.
fn to_u32(n: usize) -> u32 {
    u32::try_from(n).expect("schema too large to index")
}
