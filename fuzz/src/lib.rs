//! Helpers shared by the fuzz targets and the seed generator.

use std::fmt::Write as _;
use std::sync::LazyLock;

use vine_core::Identity;

/// The config text for a `config_parse` input: fields mode when the first
/// byte is NUL, the (lossily decoded) bytes themselves otherwise. See
/// `fuzz_targets/config_parse.rs`.
pub fn config_text(data: &[u8]) -> String {
    match data.split_first() {
        Some((0, rest)) => fields_document(&String::from_utf8_lossy(rest)),
        _ => String::from_utf8_lossy(data).into_owned(),
    }
}

/// How a field's line is written into the document.
#[derive(Clone, Copy)]
pub enum Kind {
    /// As a TOML basic string, escaped.
    Str,
    /// Verbatim (integers, booleans): mutations may make it any TOML value
    /// or a syntax error.
    Raw,
}

/// Section header, key, kind and valid default of every field of the
/// fields-mode document, in document order. `{relay}`, `{beta}` and
/// `{relay_fp}` are replaced by real PeerIds / fingerprints.
pub const FIELDS: &[(&str, &str, Kind, &str)] = &[
    ("[node]", "name", Kind::Str, "alpha"),
    ("[node]", "network_id", Kind::Str, "home-net"),
    (
        "[node]",
        "identity_path",
        Kind::Str,
        "/var/lib/libvine/identity",
    ),
    ("[node]", "listen_address", Kind::Str, "0.0.0.0"),
    ("[node]", "listen_port", Kind::Raw, "4100"),
    ("[node]", "runtime_dir", Kind::Str, "/run/libvine"),
    ("[tun]", "name", Kind::Str, "vine0"),
    ("[tun]", "address", Kind::Str, "10.42.0.1"),
    ("[tun]", "prefix_len", Kind::Raw, "24"),
    ("[tun]", "mtu", Kind::Raw, "1400"),
    ("[[bootstrap_peers]]", "peer_id", Kind::Str, "{relay}"),
    (
        "[[bootstrap_peers]]",
        "address",
        Kind::Str,
        "udp://198.51.100.10:4100",
    ),
    ("[[bootstrap_peers]]", "peer_id", Kind::Str, "{beta}"),
    (
        "[[bootstrap_peers]]",
        "address",
        Kind::Str,
        "udp://beta.example.net:4101",
    ),
    ("[[allowed_peers]]", "peer_id", Kind::Str, "{relay}"),
    ("[[allowed_peers]]", "prefix", Kind::Str, "10.42.9.0/24"),
    ("[[allowed_peers]]", "relay_capable", Kind::Raw, "true"),
    ("[[allowed_peers]]", "name", Kind::Str, "relay"),
    ("[[allowed_peers]]", "fingerprint", Kind::Str, "{relay_fp}"),
    ("[[allowed_peers]]", "peer_id", Kind::Str, "{beta}"),
    ("[[allowed_peers]]", "prefix", Kind::Str, "10.42.1.0/24"),
    ("[[allowed_peers]]", "relay_capable", Kind::Raw, "false"),
    ("[[allowed_peers]]", "name", Kind::Str, "beta"),
    ("[[allowed_peers]]", "fingerprint", Kind::Str, ""),
    ("[policy]", "strict_allowlist", Kind::Raw, "true"),
    ("[policy]", "allow_relay", Kind::Raw, "true"),
    ("[policy]", "allow_signaling_upgrade", Kind::Raw, "true"),
];

/// The peers of the fields-mode document (the same seeds as
/// `examples/gen_seeds.rs` uses for the other config seeds).
static PLACEHOLDERS: LazyLock<[(&str, String); 3]> = LazyLock::new(|| {
    let relay = Identity::from_seed([9; 32]);
    let beta = Identity::from_seed([8; 32]);
    [
        ("{relay}", relay.peer_id().to_string()),
        ("{relay_fp}", relay.fingerprint().to_string()),
        ("{beta}", beta.peer_id().to_string()),
    ]
});

/// Builds the fields-mode document from `lines` (see the module docs).
pub fn fields_document(lines: &str) -> String {
    // No input at all means no lines (not one empty line): every default.
    let mut lines = (!lines.is_empty())
        .then(|| lines.split('\n'))
        .into_iter()
        .flatten();
    let mut out = String::new();
    let mut header = "";
    for &(section, key, kind, default) in FIELDS {
        // Array-of-tables headers repeat at each entry's first key, `peer_id`.
        let new_entry = section.starts_with("[[") && key == "peer_id";
        if section != header || new_entry {
            let _ = writeln!(out, "{section}");
            header = section;
        }
        let value = match lines.next() {
            Some("") => continue,
            Some(line) => line.to_owned(),
            None if default.is_empty() => continue,
            None => substitute(default),
        };
        match kind {
            Kind::Str => {
                let _ = writeln!(out, "{key} = {}", toml_string(&value));
            }
            Kind::Raw => {
                let _ = writeln!(out, "{key} = {value}");
            }
        }
    }
    out
}

/// The fields-mode input (without the leading NUL) that spells out every
/// default, so the fuzzer has each value to mutate.
pub fn fields_defaults() -> String {
    FIELDS
        .iter()
        .map(|f| substitute(f.3))
        .collect::<Vec<_>>()
        .join("\n")
}

fn substitute(default: &str) -> String {
    PLACEHOLDERS
        .iter()
        .fold(default.to_owned(), |v, (from, to)| v.replace(from, to))
}

/// `s` as a TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
