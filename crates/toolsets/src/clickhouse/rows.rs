//! Results read from ClickHouse's `TabSeparatedWithNamesAndTypes` output, one line at a time.
//!
//! ClickHouse 18.16 has no `JSONCompactEachRowWithNamesAndTypes`; the tab-separated format is
//! the streaming format every version speaks that carries column names and types. Each cell
//! is unescaped and turned into typed JSON by its column type (integers and floats as numbers,
//! `\N` of a Nullable as null, everything else as its text), no value is kept longer than
//! [`MAX_CELL_BYTES`], and collection stops at the row limit or the output limit.

use std::fmt::Write as _;

use serde_json::Value;

pub(crate) use crate::rowset::{Column, Cut, MAX_CELL_BYTES, RowSet};

/// What a line of output was.
#[derive(Debug, PartialEq)]
pub(crate) enum Line {
    /// A header line or a kept row: read on.
    More,
    /// A bound was reached: stop reading.
    Full,
    /// ClickHouse reported an error after it had started sending rows.
    Error(String),
}

/// Builds a [`RowSet`] from the lines of a `TabSeparatedWithNamesAndTypes` body.
pub(crate) struct Collector {
    names: Option<Vec<String>>,
    kinds: Vec<Kind>,
    set: RowSet,
    max_rows: usize,
    max_bytes: usize,
    bytes: usize,
}

impl Collector {
    pub(crate) fn new(max_rows: usize, max_bytes: usize) -> Self {
        Self {
            names: None,
            kinds: Vec::new(),
            set: RowSet {
                columns: Vec::new(),
                rows: Vec::new(),
                row_count: 0,
                truncated: false,
                truncated_by: None,
                cut_values: 0,
                rows_affected: None,
            },
            max_rows: max_rows.max(1),
            max_bytes,
            bytes: 0,
        }
    }

    /// Takes one line (without its `\n`).
    pub(crate) fn line(&mut self, line: &str) -> Line {
        if self.set.truncated {
            return Line::Full;
        }
        let Some(names) = &self.names else {
            self.names = Some(line.split('\t').map(unescape).collect());
            return Line::More;
        };
        let cells: Vec<&str> = line.split('\t').collect();
        if self.kinds.is_empty() && self.set.columns.is_empty() {
            if cells.len() != names.len() {
                return Line::Error(server_error(line));
            }
            self.kinds = cells.iter().map(|t| Kind::of(t)).collect();
            self.set.columns = names
                .iter()
                .zip(cells)
                .map(|(name, type_name)| Column {
                    name: name.clone(),
                    type_name: unescape(type_name),
                })
                .collect();
            return Line::More;
        }
        if cells.len() != self.set.columns.len()
            || (line.starts_with("Code: ") && line.contains("DB::Exception"))
        {
            return Line::Error(server_error(line));
        }
        if self.set.rows.len() >= self.max_rows {
            self.cut(Cut::MaxRows);
            return Line::Full;
        }
        let mut row = Vec::with_capacity(cells.len());
        for (cell, kind) in cells.into_iter().zip(&self.kinds) {
            let (value, cut) = kind.value(cell);
            if cut {
                self.set.cut_values += 1;
            }
            row.push(value);
        }
        let size = Value::Array(row.clone()).to_string().len() + 1;
        if self.bytes + size > self.max_bytes && !self.set.rows.is_empty() {
            self.cut(Cut::OutputBytes);
            return Line::Full;
        }
        self.bytes += size;
        self.set.rows.push(row);
        self.set.row_count = self.set.rows.len();
        Line::More
    }

    /// Stops the result at the output limit (a line too long to read).
    pub(crate) fn cut_output(&mut self) {
        self.cut(Cut::OutputBytes);
    }

    fn cut(&mut self, by: Cut) {
        self.set.truncated = true;
        self.set.truncated_by = Some(by);
    }

    pub(crate) fn finish(self) -> RowSet {
        self.set
    }
}

/// The message of an error ClickHouse wrote into a body it had started as rows.
fn server_error(line: &str) -> String {
    match line.find("Code: ") {
        Some(at) => line[at..].to_owned(),
        None => format!("ClickHouse sent a row it could not have meant as one: {line}"),
    }
}

/// How a column's cells become JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Int,
    Float,
    Text,
}

/// A column type, with `Nullable(...)` and `LowCardinality(...)` removed, and whether it was
/// nullable.
fn base_type(type_name: &str) -> (&str, bool) {
    let mut t = type_name;
    let mut nullable = false;
    loop {
        if let Some(inner) = t
            .strip_prefix("Nullable(")
            .and_then(|r| r.strip_suffix(')'))
        {
            nullable = true;
            t = inner;
        } else if let Some(inner) = t
            .strip_prefix("LowCardinality(")
            .and_then(|r| r.strip_suffix(')'))
        {
            t = inner;
        } else {
            return (t, nullable);
        }
    }
}

impl Kind {
    pub(crate) fn of(type_name: &str) -> Kind {
        let (base, _) = base_type(type_name);
        match base {
            "Int8" | "Int16" | "Int32" | "Int64" | "UInt8" | "UInt16" | "UInt32" | "UInt64" => {
                Kind::Int
            }
            "Float32" | "Float64" => Kind::Float,
            _ => Kind::Text,
        }
    }

    /// The JSON of one escaped cell, and whether its text was cut.
    pub(crate) fn value(self, cell: &str) -> (Value, bool) {
        if cell == "\\N" {
            return (Value::Null, false);
        }
        let text = unescape(cell);
        match self {
            Kind::Int => {
                if let Ok(n) = text.parse::<i64>() {
                    return (Value::from(n), false);
                }
                if let Ok(n) = text.parse::<u64>() {
                    return (Value::from(n), false);
                }
            }
            Kind::Float => {
                if let Some(n) = text
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                {
                    return (Value::Number(n), false);
                }
            }
            Kind::Text => {}
        }
        let (text, cut) = cut_cell(text);
        (Value::String(text), cut)
    }
}

/// A value cut to [`MAX_CELL_BYTES`] with a marker, and whether it was cut.
fn cut_cell(mut text: String) -> (String, bool) {
    if text.len() <= MAX_CELL_BYTES {
        return (text, false);
    }
    let total = text.len();
    let mut end = MAX_CELL_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    let _ = write!(text, "…[truncated: {end} of {total} bytes]");
    (text, true)
}

/// Undoes the escaping of the tab-separated format (`\t`, `\n`, `\\`, `\'`, ...).
pub(crate) fn unescape(cell: &str) -> String {
    if !cell.contains('\\') {
        return cell.to_owned();
    }
    let mut out = String::with_capacity(cell.len());
    let mut chars = cell.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('0') => out.push('\0'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// A short text rendering: a summary line, then a tab-separated header and rows.
pub(crate) fn render(set: &RowSet, max_rows: usize) -> String {
    let mut text = format!(
        "{} row{}",
        set.row_count,
        if set.row_count == 1 { "" } else { "s" }
    );
    match set.truncated_by {
        Some(Cut::MaxRows) => {
            let _ = write!(
                text,
                " (truncated at the limit of {max_rows} rows; more exist: narrow the query \
                 with WHERE, LIMIT or an aggregate)"
            );
        }
        Some(Cut::OutputBytes) => text
            .push_str(" (truncated: the output limit was reached; select fewer columns or rows)"),
        None => {}
    }
    if set.cut_values > 0 {
        let _ = write!(
            text,
            "; {} value(s) longer than {MAX_CELL_BYTES} bytes were cut",
            set.cut_values
        );
    }
    if set.columns.is_empty() {
        return text;
    }
    text.push('\n');
    let header: Vec<String> = set
        .columns
        .iter()
        .map(|c| format!("{} ({})", c.name, c.type_name))
        .collect();
    text.push_str(&header.join("\t"));
    for row in &set.rows {
        text.push('\n');
        let cells: Vec<String> = row.iter().map(cell_text).collect();
        text.push_str(&cells.join("\t"));
    }
    text
}

/// One value as text in a tab-separated line.
pub(crate) fn cell_text(value: &Value) -> String {
    match value {
        Value::Null => "NULL".to_owned(),
        Value::String(s) => s.replace(['\t', '\n'], " "),
        other => other.to_string(),
    }
}
