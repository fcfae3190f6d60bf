//! `config_parse`: `vine_core::config::parse` and the `Parsed` API, with
//! the fields-mode document builder shared with the seed generator.
//!
//! Two input modes, chosen by the first byte:
//!
//! - **raw** (any first byte but NUL): the bytes are decoded as UTF-8
//!   (invalid sequences become U+FFFD, so valid UTF-8 reaches the parser
//!   unchanged) and parsed as the config text. This finds TOML-level problems,
//!   but most mutated inputs stop at a syntax error.
//! - **fields** (first byte NUL): the rest is split into lines, and line *i*
//!   becomes the value of the *i*-th key of a fixed, valid config (see
//!   [`FIELDS`]): an empty line drops the key, a missing line keeps the valid
//!   default. String keys get the line as an escaped TOML string, integer and
//!   boolean keys get it verbatim. The document stays well-formed TOML
//!   (except where a verbatim value is not), so the fuzzer spends its time in
//!   vine's validator instead of the TOML lexer.
//!
//! Besides "never panics", the target checks a few documented invariants:
//!
//! - `config` is present only when no diagnostic is an error;
//! - `counts()` adds up and every location is 1-based;
//! - `check_local_peer` with an enrolled (or bootstrap) peer's id yields an
//!   error and withdraws the config.

use std::fmt::Write as _;
use std::sync::LazyLock;

use vine_core::config::{self, Parsed};
use vine_core::{Identity, PeerId};

/// The config text for a `config_parse` input: fields mode when the first
/// byte is NUL, the (lossily decoded) bytes themselves otherwise. See
/// the module docs.
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

/// Key paths whose location the host layer asks for.
const KEY_PATHS: &[&str] = &[
    "node.name",
    "node.network_id",
    "node.identity_path",
    "node.listen_address",
    "node.listen_port",
    "node.runtime_dir",
    "tun.name",
    "tun.address",
    "tun.prefix_len",
    "tun.mtu",
    "policy.strict_allowlist",
    "policy.allow_relay",
    "policy.allow_signaling_upgrade",
    "allowed_peers[0].peer_id",
    "allowed_peers[0].prefix",
    "allowed_peers[1].peer_id",
    "bootstrap_peers[0].peer_id",
    "bootstrap_peers[0].address",
    "",
    "nope",
];

/// Runs one input (see the module docs).
pub fn config_parse(data: &[u8]) {
    let text = config_text(data);
    let parsed = config::parse(&text);
    exercise(&parsed);

    // A local id that is (almost certainly) not in the config.
    let mut stranger = parsed.clone();
    stranger.check_local_peer(PeerId::from_public_key([7; 32]));
    exercise(&stranger);

    // The local id equal to an enrolled / bootstrap peer must be refused.
    if let Some(config) = &parsed.config {
        let listed = config
            .allowed_peers
            .first()
            .map(|p| p.peer_id)
            .into_iter()
            .chain(config.bootstrap_peers.first().map(|p| p.peer_id));
        for local in listed {
            let mut me = parsed.clone();
            me.check_local_peer(local);
            exercise(&me);
            assert!(me.has_errors(), "check_local_peer({local}) found nothing");
            assert!(me.config.is_none(), "an error must withdraw the config");
        }
    }
}

fn exercise(parsed: &Parsed) {
    let (errors, warnings) = parsed.counts();
    assert_eq!(errors + warnings, parsed.diagnostics.len());
    assert_eq!(errors > 0, parsed.has_errors());
    if parsed.config.is_some() {
        assert!(!parsed.has_errors(), "config present despite errors");
    }
    for d in &parsed.diagnostics {
        if let Some(loc) = d.location {
            assert!(loc.line >= 1 && loc.column >= 1, "{loc:?}");
        }
        let rendered = d.render("x");
        assert!(rendered.starts_with('x'));
        let _ = d.render("/etc/libvine/vine.toml");
    }
    for path in KEY_PATHS {
        if let Some(loc) = parsed.locate(path) {
            assert!(loc.line >= 1 && loc.column >= 1, "{path}: {loc:?}");
        }
    }
    let _ = parsed.identity_path.as_deref();
    serde_json::to_string(&parsed.diagnostics).expect("diagnostics serialize");
    if let Some(config) = &parsed.config {
        serde_json::to_string(config).expect("config serializes");
        let _ = config.tun.local_prefix().to_string();
        for b in &config.bootstrap_peers {
            let _ = b.address.to_string();
            let _ = b.peer_id.short();
        }
        for a in &config.allowed_peers {
            let _ = a.peer_id.short();
            let _ = a.prefix.last();
        }
    }
}
