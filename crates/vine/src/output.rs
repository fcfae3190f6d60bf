//! Printing results as aligned text or JSON.

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
