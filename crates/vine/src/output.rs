//! Printing results: as JSON, as aligned `key: value` fields or as a table,
//! and the cell formats the commands share.

use serde::Serialize;

use crate::cli::Format;

/// Prints `value` as pretty JSON on stdout.
pub fn json<T: Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(s) => println!("{s}"),
        // Our output types serialize infallibly (no maps with non-string keys).
        Err(e) => eprintln!("error: cannot encode output as JSON: {e}"),
    }
}

/// Prints `rows` as `key: value` lines with the values aligned.
pub fn fields(rows: &[(&str, String)]) {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in rows {
        println!("{k:<width$}  {v}");
    }
}

/// Prints text or JSON depending on `format`.
pub fn emit<T: Serialize>(format: Format, value: &T, text: impl FnOnce()) {
    match format {
        Format::Text => text(),
        Format::Json => json(value),
    }
}

/// The columns of a relay-pair table (`vine counters`, `vine sessions
/// --explain`).
pub const RELAY_PAIR_COLUMNS: [&str; 6] = [
    "SOURCE",
    "DESTINATION",
    "FRAMES",
    "BYTES",
    "RATE_CAPPED",
    "REFUSED",
];

/// Prints rows under headers with aligned columns.
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(headers.iter().map(|h| (*h).to_owned()).collect());
    for row in rows {
        line(row.clone());
    }
}

/// The value, or `-` for none.
pub fn opt(s: &Option<String>) -> String {
    s.clone().unwrap_or_else(|| "-".to_owned())
}

/// `yes` or `no`.
pub fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_owned()
}
