//! Bounded result sets: rows collected one at a time from a stream, never more than the link's
//! row limit, never more JSON than the call's output limit, no single value longer than
//! [`MAX_CELL_BYTES`] — and a result that says which bound cut it and how to narrow the query.

use std::fmt::Write as _;

use serde_json::Value;
use sqlx::postgres::{PgRow, PgValueFormat, PgValueRef};
use sqlx::{Column as _, Row as _, TypeInfo as _, ValueRef as _};

use super::decode::{Decoder, bytea_hex};

pub(crate) use crate::rowset::{Column, Cut, MAX_CELL_BYTES, RowSet};

impl Column {
    /// The column and its decoder, from the statement's or a row's metadata.
    pub(crate) fn describe(column: &sqlx::postgres::PgColumn) -> (Column, Option<Decoder>) {
        let ty = column.type_info();
        let column = Column {
            name: column.name().to_owned(),
            type_name: ty.name().to_lowercase(),
        };
        (column, Decoder::for_type(ty))
    }
}

/// Collects rows into a [`RowSet`] until one of its bounds is reached.
pub(crate) struct Collector {
    decoders: Vec<Option<Decoder>>,
    set: RowSet,
    max_rows: usize,
    max_bytes: usize,
    bytes: usize,
}

impl Collector {
    /// A collector for rows of `columns`, each decoded by its decoder (`None`: shown as text
    /// when the bytes are text, else as hex).
    pub(crate) fn new(
        columns: Vec<Column>,
        decoders: Vec<Option<Decoder>>,
        max_rows: usize,
        max_bytes: usize,
    ) -> Self {
        Self {
            decoders,
            set: RowSet {
                columns,
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

    /// A collector whose columns come from the first row it sees (statements not described
    /// beforehand, such as `INSERT ... RETURNING` with bound parameters).
    pub(crate) fn undescribed(max_rows: usize, max_bytes: usize) -> Self {
        Self::new(Vec::new(), Vec::new(), max_rows, max_bytes)
    }

    /// Whether a bound has been reached: later rows are not kept.
    pub(crate) fn is_full(&self) -> bool {
        self.set.truncated
    }

    /// Adds `row` if the bounds allow it; otherwise marks the set truncated. Returns whether
    /// the row was kept.
    pub(crate) fn push(&mut self, row: &PgRow) -> bool {
        if self.set.truncated {
            return false;
        }
        if self.set.columns.is_empty() && !row.columns().is_empty() {
            let (columns, decoders) = row.columns().iter().map(Column::describe).unzip();
            self.set.columns = columns;
            self.decoders = decoders;
        }
        if self.set.rows.len() >= self.max_rows {
            self.cut(Cut::MaxRows);
            return false;
        }
        let mut values = Vec::with_capacity(self.decoders.len());
        for (i, decoder) in self.decoders.iter().enumerate() {
            let (value, cut) = match row.try_get_raw(i) {
                Ok(raw) => decode_value(decoder.as_ref(), raw),
                Err(err) => (Value::String(format!("<{err}>")), false),
            };
            self.set.cut_values += usize::from(cut);
            values.push(value);
        }
        let size = serde_json::to_string(&values).map_or(0, |s| s.len()) + 1;
        if self.bytes + size > self.max_bytes {
            self.cut(Cut::OutputBytes);
            return false;
        }
        self.bytes += size;
        self.set.rows.push(values);
        true
    }

    fn cut(&mut self, by: Cut) {
        self.set.truncated = true;
        self.set.truncated_by = Some(by);
    }

    /// The collected rows, with `rows_affected` when the statement reported it.
    pub(crate) fn finish(mut self, rows_affected: Option<u64>) -> RowSet {
        self.set.row_count = self.set.rows.len();
        self.set.rows_affected = rows_affected;
        self.set
    }
}

/// Decodes one value and limits its length; returns it and whether it was cut.
pub(crate) fn decode_value(decoder: Option<&Decoder>, raw: PgValueRef<'_>) -> (Value, bool) {
    if raw.is_null() {
        return (Value::Null, false);
    }
    if raw.format() == PgValueFormat::Text {
        let text = raw
            .as_str()
            .map_or(Value::Null, |s| Value::String(s.to_owned()));
        return limit_cell(text);
    }
    let Ok(bytes) = raw.as_bytes() else {
        return (Value::Null, false);
    };
    let value = match decoder {
        // Hex doubles the size: render only what the cell can show.
        Some(Decoder::Bytea) if 2 + 2 * bytes.len() > MAX_CELL_BYTES => {
            let mut hex = bytea_hex(bytes, (MAX_CELL_BYTES - 2) / 2);
            hex.push_str(&cut_marker(2 + 2 * bytes.len()));
            return (Value::String(hex), true);
        }
        Some(decoder) => decoder
            .decode(bytes)
            .unwrap_or_else(|err| Value::String(format!("<{err}>"))),
        None => match std::str::from_utf8(bytes) {
            Ok(text) if !text.chars().any(|c| c.is_control() && !c.is_whitespace()) => {
                Value::String(text.to_owned())
            }
            _ => Value::String(bytea_hex(bytes, usize::MAX)),
        },
    };
    limit_cell(value)
}

fn cut_marker(total: usize) -> String {
    format!("…[cut: {total} bytes in all]")
}

/// Cuts a value whose text exceeds [`MAX_CELL_BYTES`]; JSON objects and arrays that long
/// become their cut JSON text. Returns the value and whether it was cut.
fn limit_cell(value: Value) -> (Value, bool) {
    let text = match &value {
        Value::String(s) if s.len() > MAX_CELL_BYTES => s.clone(),
        Value::Array(_) | Value::Object(_) => match serde_json::to_string(&value) {
            Ok(s) if s.len() > MAX_CELL_BYTES => s,
            _ => return (value, false),
        },
        _ => return (value, false),
    };
    let mut end = MAX_CELL_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut cut = text[..end].to_owned();
    cut.push_str(&cut_marker(text.len()));
    (Value::String(cut), true)
}

/// A short text rendering: a summary line saying what was returned and, when cut, how to
/// narrow the query; then the rows as tab-separated values under a header.
pub(crate) fn render(set: &RowSet, max_rows: usize, max_bytes: usize) -> String {
    let mut out = String::new();
    let n = set.row_count;
    let rows = if n == 1 { "row" } else { "rows" };
    if set.columns.is_empty() {
        match set.rows_affected {
            Some(affected) => {
                let _ = write!(
                    out,
                    "OK: {affected} {}.",
                    plural(affected, "row affected", "rows affected")
                );
            }
            None => out.push_str("OK: the statement returns no rows."),
        }
        return out;
    }
    match set.truncated_by {
        None => {
            let _ = write!(out, "{n} {rows}.");
        }
        Some(Cut::MaxRows) => {
            let _ = write!(
                out,
                "{n} {rows} shown, truncated: more rows exist beyond the limit of {max_rows} rows. \
                 Narrow the query with a WHERE clause or a LIMIT, or aggregate (count, group by)."
            );
        }
        Some(Cut::OutputBytes) => {
            let _ = write!(
                out,
                "{n} {rows} shown, truncated: the rows exceed the output limit of {max_bytes} \
                 bytes. Select fewer columns, or narrow the query with a WHERE clause or a LIMIT."
            );
        }
    }
    if let Some(affected) = set.rows_affected {
        let _ = write!(
            out,
            " {affected} {}.",
            plural(affected, "row affected", "rows affected")
        );
    }
    if set.cut_values > 0 {
        let _ = write!(
            out,
            " {} {} longer than {MAX_CELL_BYTES} bytes cut (values truncated); select a part \
             with substr(column, start, length) to read further.",
            set.cut_values,
            if set.cut_values == 1 {
                "value"
            } else {
                "values"
            }
        );
    }
    out.push('\n');
    let header: Vec<String> = set
        .columns
        .iter()
        .map(|c| cell_text(&Value::String(c.name.clone())))
        .collect();
    out.push_str(&header.join("\t"));
    for row in &set.rows {
        out.push('\n');
        let cells: Vec<String> = row.iter().map(cell_text).collect();
        out.push_str(&cells.join("\t"));
    }
    out
}

fn plural(n: u64, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

/// One value as a TSV cell: strings with tabs, newlines and backslashes escaped, NULL as
/// `NULL`, everything else as compact JSON.
fn cell_text(value: &Value) -> String {
    match value {
        Value::Null => "NULL".into(),
        Value::String(s) => {
            let mut out = String::with_capacity(s.len());
            for c in s.chars() {
                match c {
                    '\t' => out.push_str("\\t"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\\' => out.push_str("\\\\"),
                    c => out.push(c),
                }
            }
            out
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    #[test]
    fn long_values_are_cut_at_a_character_boundary() {
        let long = "é".repeat(MAX_CELL_BYTES);
        let (value, cut) = limit_cell(Value::String(long.clone()));
        assert!(cut);
        let text = value.as_str().unwrap();
        assert!(text.len() < MAX_CELL_BYTES + 40, "{}", text.len());
        assert!(text.ends_with(&format!("…[cut: {} bytes in all]", long.len())));

        let (value, cut) = limit_cell(json!({"k": "x".repeat(MAX_CELL_BYTES)}));
        assert!(cut);
        assert!(value.as_str().unwrap().starts_with("{\"k\":\"xxx"));

        assert_eq!(limit_cell(json!("short")), (json!("short"), false));
        assert_eq!(limit_cell(json!([1, 2])), (json!([1, 2]), false));
    }

    fn set(rows: Vec<Vec<Value>>, truncated_by: Option<Cut>) -> RowSet {
        RowSet {
            columns: vec![
                Column {
                    name: "id".into(),
                    type_name: "int4".into(),
                },
                Column {
                    name: "note".into(),
                    type_name: "text".into(),
                },
            ],
            row_count: rows.len(),
            rows,
            truncated: truncated_by.is_some(),
            truncated_by,
            cut_values: 0,
            rows_affected: None,
        }
    }

    #[test]
    fn rendering_is_a_summary_and_tsv() {
        let s = set(
            vec![vec![json!(1), json!("a\tb")], vec![json!(2), Value::Null]],
            None,
        );
        assert_eq!(
            render(&s, 100, 1000),
            "2 rows.\nid\tnote\n1\ta\\tb\n2\tNULL"
        );
        let s = set(vec![vec![json!(1), json!("x")]], Some(Cut::MaxRows));
        let text = render(&s, 1, 1000);
        assert!(
            text.starts_with("1 row shown, truncated: more rows exist beyond the limit of 1 rows"),
            "{text}"
        );
        assert!(text.contains("WHERE"), "{text}");
    }

    #[test]
    fn statements_without_rows_report_rows_affected() {
        let mut s = set(Vec::new(), None);
        s.columns.clear();
        s.rows_affected = Some(3);
        assert_eq!(render(&s, 100, 1000), "OK: 3 rows affected.");
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(
            json,
            json!({"columns": [], "rows": [], "rowCount": 0, "truncated": false, "rowsAffected": 3})
        );
    }
}
