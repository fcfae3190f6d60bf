//! # vine-fuzz
//!
//! The bodies of vine's `cargo fuzz` targets (the `fuzz/` workspace, whose
//! targets are one line each: `fuzz_target!(|d| vine_fuzz::NAME(d))`),
//! kept in the main workspace so they build with every change and so
//! `tests/bodies.rs` runs each one over its committed seeds and a few
//! thousand deterministic pseudo-random inputs in the ordinary test suite.
//!
//! Every body takes arbitrary bytes and panics only on a broken invariant
//! (a bug in the code under test, or in the fixture). Parsers:
//! [`config_parse`], [`identity_parse`], [`frame_decode`],
//! [`control_json`], [`netlink_reply`], [`udp_cmsg`], [`tun_offload`];
//! crypto: [`aead_diff`], [`wg_decrypt`] (valid mac1, so mutations reach
//! the handshake code); the node: [`node_session`] and
//! [`dataplane_batch`], on a node holding real sessions ([`session`]).

pub mod config;
mod control;
mod crypto;
mod dataplane_batch;
mod host;
pub mod input;
mod node_session;
mod parsers;
pub mod seeds;
pub mod session;

pub use config::{config_parse, config_text, fields_defaults, fields_document};
pub use control::control_json;
pub use crypto::{WG_MAX_OPS, aead_diff, wg_decrypt};
pub use dataplane_batch::{MAX_BATCHES, dataplane_batch};
pub use host::{netlink_reply, tun_offload, udp_cmsg};
pub use node_session::{MAX_OPS, node_session};
pub use parsers::{frame_decode, identity_parse};

/// A target's body.
pub type Body = fn(&[u8]);

/// Every target: its name (the `fuzz/` binary and seed directory) and body.
pub const TARGETS: &[(&str, Body)] = &[
    ("config_parse", config_parse),
    ("identity_parse", identity_parse),
    ("frame_decode", frame_decode),
    ("wg_decrypt", wg_decrypt),
    ("tun_offload", tun_offload),
    ("aead_diff", aead_diff),
    ("node_session", node_session),
    ("dataplane_batch", dataplane_batch),
    ("netlink_reply", netlink_reply),
    ("udp_cmsg", udp_cmsg),
    ("control_json", control_json),
];
