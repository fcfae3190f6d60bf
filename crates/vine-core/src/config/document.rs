//! The span-preserving reading context the config walker ([`super::parse`])
//! works in: the section and key names, the diagnostics being collected
//! ([`Ctx`]) and one section's keys ([`Section`]), with typo suggestions.

use std::collections::BTreeMap;
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::diagnostic::{Diagnostic, LineIndex, Location};

pub(super) const SECTIONS: &[&str] = &["node", "tun", "bootstrap_peers", "allowed_peers", "policy"];
pub(super) const NODE_KEYS: &[&str] = &[
    "name",
    "network_id",
    "identity_path",
    "listen_address",
    "listen_port",
    "runtime_dir",
    "underlay_mtu",
    "act_as_relay",
];
pub(super) const TUN_KEYS: &[&str] = &["name", "address", "prefix_len", "mtu"];
pub(super) const BOOTSTRAP_KEYS: &[&str] = &["peer_id", "address"];
pub(super) const ALLOWED_KEYS: &[&str] =
    &["peer_id", "prefix", "relay_capable", "name", "fingerprint"];
pub(super) const POLICY_KEYS: &[&str] = &[
    "strict_allowlist",
    "allow_relay",
    "allow_signaling_upgrade",
    "relay_rate_limit_kbps",
    "relay_source_rate_limit_kbps",
];

pub(super) struct Ctx<'s> {
    pub(super) source: &'s str,
    pub(super) index: LineIndex,
    pub(super) diags: Vec<Diagnostic>,
    pub(super) spans: BTreeMap<String, Range<usize>>,
    pub(super) identity_path: Option<String>,
}

impl Ctx<'_> {
    pub(super) fn loc(&self, span: &Range<usize>) -> Option<Location> {
        Some(self.index.locate_span(self.source, span))
    }

    pub(super) fn error(
        &mut self,
        span: &Range<usize>,
        code: &'static str,
        msg: String,
        hint: String,
    ) {
        let d = Diagnostic::error(code, msg).hint(hint).at(self.loc(span));
        self.diags.push(d);
    }

    pub(super) fn warn(
        &mut self,
        span: &Range<usize>,
        code: &'static str,
        msg: String,
        hint: String,
    ) {
        let d = Diagnostic::warning(code, msg).hint(hint).at(self.loc(span));
        self.diags.push(d);
    }

    pub(super) fn line_of(&self, span: &Range<usize>) -> usize {
        self.index.locate_span(self.source, span).line
    }
}

pub(super) type Value<'i> = Spanned<DeValue<'i>>;

pub(super) fn kind(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

pub(super) fn integer_value(value: &DeValue<'_>) -> Option<i64> {
    match value {
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok(),
        _ => None,
    }
}

pub(super) fn suggest<'k>(word: &str, candidates: &[&'k str]) -> Option<&'k str> {
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// One TOML table being read as a vine section.
pub(super) struct Section<'a, 'i> {
    pub(super) table: &'a DeTable<'i>,
    /// How users see it: `[tun]`, `[[allowed_peers]] entry #2`.
    pub(super) title: String,
    /// Key-path prefix: `tun`, `allowed_peers[1]`.
    pub(super) path: String,
    pub(super) header: Range<usize>,
    pub(super) known: &'static [&'static str],
}

impl<'a, 'i> Section<'a, 'i> {
    pub(super) fn get(&self, key: &str) -> Option<&'a Value<'i>> {
        self.table.get(key)
    }

    pub(super) fn record(&self, ctx: &mut Ctx<'_>, key: &str, span: &Range<usize>) {
        ctx.spans
            .insert(format!("{}.{key}", self.path), span.clone());
    }

    pub(super) fn missing(&self, ctx: &mut Ctx<'_>, key: &str, example: &str) {
        ctx.error(
            &self.header,
            "missing-key",
            format!("{} is missing the required key `{key}`", self.title),
            format!("add a line such as `{key} = {example}` to {}", self.title),
        );
    }

    pub(super) fn wrong_type(
        &self,
        ctx: &mut Ctx<'_>,
        key: &str,
        v: &Value<'_>,
        want: &str,
        example: &str,
    ) {
        let mut hint = format!("write it as `{key} = {example}`");
        if let DeValue::String(s) = v.get_ref() {
            let unquotable = (want == "an integer" && s.trim().parse::<i64>().is_ok())
                || (want == "a boolean" && matches!(s.trim(), "true" | "false"));
            if unquotable {
                hint = format!("remove the quotes: `{key} = {}`", s.trim());
            }
        }
        if want == "a string" && !matches!(v.get_ref(), DeValue::String(_)) {
            hint = format!("put the value in double quotes: `{key} = {example}`");
        }
        ctx.error(
            &v.span(),
            "wrong-type",
            format!(
                "`{key}` in {} must be {want}, found {}",
                self.title,
                kind(v.get_ref())
            ),
            hint,
        );
    }

    /// A string value, or `None` after reporting why not.
    pub(super) fn string(
        &self,
        ctx: &mut Ctx<'_>,
        key: &str,
        required: bool,
        example: &str,
    ) -> Option<(&'a str, Range<usize>)> {
        let Some(v) = self.get(key) else {
            if required {
                self.missing(ctx, key, example);
            }
            return None;
        };
        self.record(ctx, key, &v.span());
        match v.get_ref() {
            DeValue::String(s) => Some((s.as_ref(), v.span())),
            _ => {
                self.wrong_type(ctx, key, v, "a string", example);
                None
            }
        }
    }

    pub(super) fn integer(
        &self,
        ctx: &mut Ctx<'_>,
        key: &str,
        required: bool,
        example: &str,
    ) -> Option<(i64, Range<usize>)> {
        let Some(v) = self.get(key) else {
            if required {
                self.missing(ctx, key, example);
            }
            return None;
        };
        self.record(ctx, key, &v.span());
        match integer_value(v.get_ref()) {
            Some(n) => Some((n, v.span())),
            None if matches!(v.get_ref(), DeValue::Integer(_)) => {
                let negative =
                    matches!(v.get_ref(), DeValue::Integer(i) if i.as_str().starts_with('-'));
                let size = if negative { "small" } else { "large" };
                ctx.error(
                    &v.span(),
                    "out-of-range",
                    format!("`{key}` in {} is too {size}", self.title),
                    format!("use a value such as `{key} = {example}`"),
                );
                None
            }
            None => {
                self.wrong_type(ctx, key, v, "an integer", example);
                None
            }
        }
    }

    pub(super) fn ranged(
        &self,
        ctx: &mut Ctx<'_>,
        key: &str,
        required: bool,
        example: &str,
        range: (i64, i64),
        why: &str,
    ) -> Option<(i64, Range<usize>)> {
        let (n, span) = self.integer(ctx, key, required, example)?;
        if n < range.0 || n > range.1 {
            ctx.error(
                &span,
                "out-of-range",
                format!("`{key} = {n}` in {} is out of range", self.title),
                format!("use a value from {} to {}{why}", range.0, range.1),
            );
            return None;
        }
        Some((n, span))
    }

    pub(super) fn boolean(&self, ctx: &mut Ctx<'_>, key: &str, default: bool) -> Option<bool> {
        let Some(v) = self.get(key) else {
            return Some(default);
        };
        self.record(ctx, key, &v.span());
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.wrong_type(
                    ctx,
                    key,
                    v,
                    "a boolean",
                    if default { "true" } else { "false" },
                );
                None
            }
        }
    }

    /// Reports keys that are not part of this section.
    pub(super) fn unknown_keys(&self, ctx: &mut Ctx<'_>) {
        for (key, value) in self.table.iter() {
            let name = key.get_ref().as_ref();
            if self.known.contains(&name) {
                continue;
            }
            let hint = if let Some(s) = suggest(name, self.known) {
                format!("did you mean `{s}`?")
            } else if let Some(home) = section_owning(name, self.known) {
                format!("`{name}` belongs in {home}, not {}", self.title)
            } else {
                format!(
                    "remove it; {} accepts: {}",
                    self.title,
                    self.known.join(", ")
                )
            };
            let span = if key.span().is_empty() {
                value.span()
            } else {
                key.span()
            };
            ctx.error(
                &span,
                "unknown-key",
                format!(
                    "unknown key `{}` in {}",
                    name.chars().take(64).collect::<String>(),
                    self.title
                ),
                hint,
            );
        }
    }
}

pub(super) fn section_owning(key: &str, except: &[&str]) -> Option<&'static str> {
    let all: [(&str, &[&str]); 5] = [
        ("[node]", NODE_KEYS),
        ("[tun]", TUN_KEYS),
        ("[[bootstrap_peers]]", BOOTSTRAP_KEYS),
        ("[[allowed_peers]]", ALLOWED_KEYS),
        ("[policy]", POLICY_KEYS),
    ];
    all.iter()
        .find(|(_, keys)| !std::ptr::eq(*keys, except) && keys.contains(&key))
        .map(|(title, _)| *title)
}
