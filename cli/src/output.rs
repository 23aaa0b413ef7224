//! How results are printed: aligned columns (or `key: value` lines) for
//! people, the API's own JSON for scripts (`--output json`).

use std::fmt::Display;
use std::io::Write as _;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    #[default]
    Table,
    /// JSON for scripts: listings are one array, single objects one object.
    Json,
}

/// A table under construction.
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new(headers: &[&'static str]) -> Table {
        Table { headers: headers.to_vec(), rows: Vec::new() }
    }

    /// Adds a row (one cell per header).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text: upper-case headers, columns two spaces apart,
    /// trailing spaces trimmed.
    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: &mut dyn Iterator<Item = String>| -> String {
            let mut out = String::new();
            for (cell, w) in cells.zip(&widths) {
                let pad = w.saturating_sub(cell.chars().count());
                out.push_str(&cell);
                out.push_str(&" ".repeat(pad + 2));
            }
            out.trim_end().to_owned()
        };
        let mut out = line(&mut self.headers.iter().map(|h| h.to_uppercase()));
        out.push('\n');
        for row in &self.rows {
            out.push_str(&line(&mut row.iter().cloned()));
            out.push('\n');
        }
        out
    }
}

/// Prints `text` to stdout, ignoring a closed pipe (`olinctl ... | head`).
pub fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Prints `value` as pretty JSON.
pub fn print_json<T: Serialize + ?Sized>(value: &T) {
    print(&format!("{}\n", serde_json::to_string_pretty(value).unwrap_or_default()));
}

/// A listing: the JSON array in JSON mode, else `table` (or `empty` when
/// there are no rows).
pub fn listing<T: Serialize + ?Sized>(format: Format, items: &T, table: Table, empty: &str) {
    match format {
        Format::Json => print_json(items),
        Format::Table if table.rows.is_empty() => print(&format!("{empty}\n")),
        Format::Table => print(&table.render()),
    }
}

/// One object: JSON in JSON mode, else aligned `key: value` lines.
pub fn object<T: Serialize + ?Sized>(format: Format, value: &T, fields: &[(&str, String)]) {
    match format {
        Format::Json => print_json(value),
        Format::Table => {
            let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
            let mut out = String::new();
            for (k, v) in fields {
                out.push_str(&format!("{:<width$}  {v}\n", format!("{k}:")));
            }
            print(&out);
        }
    }
}

/// An optional value for a cell: `-` when absent.
pub fn opt<T: Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// A time for a cell, to the second: `2026-11-30 09:12:03`.
pub fn time(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// An optional time for a cell: `-` when absent.
pub fn time_opt(t: Option<&DateTime<Utc>>) -> String {
    t.map_or_else(|| "-".to_owned(), time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let mut t = Table::new(&["name", "version"]);
        t.row(vec!["hello".into(), "3".into()]);
        t.row(vec!["a-much-longer-name".into(), "-".into()]);
        assert_eq!(t.render(), "NAME                VERSION\nhello               3\na-much-longer-name  -\n");
    }

    #[test]
    fn cells_and_times() {
        assert_eq!(opt(None::<i32>), "-");
        assert_eq!(opt(Some(3)), "3");
        let t: DateTime<Utc> = "2026-11-30T09:12:03.123456Z".parse().unwrap_or_default();
        assert_eq!(time(&t), "2026-11-30 09:12:03");
        assert_eq!(time_opt(None), "-");
    }
}
