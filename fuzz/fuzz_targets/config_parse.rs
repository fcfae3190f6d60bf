//! Fuzzes `vine_core::config::parse` and the `Parsed` API.
//!
//! Two input modes, chosen by the first byte:
//!
//! - **raw** (any first byte but NUL): the bytes are decoded as UTF-8
//!   (invalid sequences become U+FFFD, so valid UTF-8 reaches the parser
//!   unchanged) and parsed as the config text. This finds TOML-level problems,
//!   but most mutated inputs stop at a syntax error.
//! - **fields** (first byte NUL): the rest is split into lines, and line *i*
//!   becomes the value of the *i*-th key of a fixed, valid config (see
//!   `vine_fuzz::FIELDS`): an empty line drops the key, a missing line keeps
//!   the valid default. String keys get the line as an escaped TOML string,
//!   integer and boolean keys get it verbatim. The document stays well-formed
//!   TOML (except where a verbatim value is not), so the fuzzer spends its
//!   time in vine's validator instead of the TOML lexer.
//!
//! Besides "never panics", the target checks a few documented invariants:
//!
//! - `config` is present only when no diagnostic is an error;
//! - `counts()` adds up and every location is 1-based;
//! - `check_local_peer` with an enrolled (or bootstrap) peer's id yields an
//!   error and withdraws the config.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vine_core::PeerId;
use vine_core::config::{self, Parsed};
use vine_fuzz::config_text;

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

fuzz_target!(|data: &[u8]| {
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
});

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
        assert!(rendered.starts_with("x"));
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
