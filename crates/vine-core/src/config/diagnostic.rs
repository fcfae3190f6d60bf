//! Validation findings with source locations.

use std::fmt;
use std::ops::Range;

use serde::Serialize;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The config cannot be used.
    Error,
    /// The config works, but probably not as the operator intends.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Error => "error",
            Self::Warning => "warning",
        })
    }
}

/// A 1-based line and column (in characters) in the config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Location {
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
}

/// One problem found in a config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Stable machine-readable kind, e.g. `unknown-key` (listed in docs/config-reference.md).
    pub code: &'static str,
    /// Where in the file, when the problem has a place.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Diagnostic {
    /// An error.
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            code,
            location: None,
            message: message.into(),
            hint: None,
        }
    }

    /// A warning.
    pub fn warning(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(code, message)
        }
    }

    /// Adds a fix hint.
    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Sets the location.
    #[must_use]
    pub fn at(mut self, location: Option<Location>) -> Self {
        self.location = location;
        self
    }

    /// Whether this is an error.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Renders as `PATH:LINE:COL: severity[code]: message` plus an indented
    /// `help:` line.
    pub fn render(&self, path: &str) -> String {
        let place = match self.location {
            Some(Location { line, column }) => format!("{path}:{line}:{column}"),
            None => path.to_owned(),
        };
        let mut out = format!(
            "{place}: {}[{}]: {}",
            self.severity, self.code, self.message
        );
        if let Some(hint) = &self.hint {
            out.push_str("\n    help: ");
            out.push_str(hint);
        }
        out
    }
}

/// Maps byte offsets in a source text to line/column locations.
#[derive(Debug, Clone)]
pub struct LineIndex {
    starts: Vec<usize>,
    text_len: usize,
}

impl LineIndex {
    /// Indexes `text`.
    pub fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self {
            starts,
            text_len: text.len(),
        }
    }

    /// The location of byte `offset` in `text` (which must be the text this
    /// index was built from). Offsets past the end clamp to the end.
    pub fn locate(&self, text: &str, offset: usize) -> Location {
        let offset = offset.min(self.text_len);
        let line = self
            .starts
            .partition_point(|&s| s <= offset)
            .saturating_sub(1);
        let start = self.starts.get(line).copied().unwrap_or(0);
        let column = text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count())
            + 1;
        Location {
            line: line + 1,
            column,
        }
    }

    /// The location of the start of `span`.
    pub fn locate_span(&self, text: &str, span: &Range<usize>) -> Location {
        self.locate(text, span.start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_lines_and_columns() {
        let text = "a = 1\n[tun]\n  mtu = \"x\"\né = 2\n";
        let index = LineIndex::new(text);
        assert_eq!(index.locate(text, 0), Location { line: 1, column: 1 });
        assert_eq!(index.locate(text, 6), Location { line: 2, column: 1 });
        assert_eq!(index.locate(text, 14), Location { line: 3, column: 3 });
        let e = text.find("= 2").expect("present");
        assert_eq!(index.locate(text, e), Location { line: 4, column: 3 });
        assert_eq!(index.locate(text, 10_000).line, 5);
    }

    #[test]
    fn renders_like_a_compiler() {
        let d = Diagnostic::error("unknown-key", "unknown key `adress` in [tun]")
            .hint("did you mean `address`?")
            .at(Some(Location { line: 9, column: 1 }));
        assert_eq!(
            d.render("/etc/libvine/vine.toml"),
            "/etc/libvine/vine.toml:9:1: error[unknown-key]: unknown key `adress` in [tun]\n    help: did you mean `address`?"
        );
    }
}
