//! # vine-core
//!
//! The sans-IO heart of vine, an authenticated IPv4 overlay VPN.
//!
//! This crate owns the data model and the rules: node identities and their
//! text file format ([`identity`]), peer identifiers and fingerprints
//! ([`peer_id`]), IPv4 prefixes ([`net`]), the TOML configuration model
//! with its validator ([`config`]), the WireGuard-protocol sessions ([`wg`]),
//! the peer frames inside them ([`frame`]), the route
//! table ([`route`]) and the overlay [`node`] state machine that ties them
//! together.
//!
//! The packet path is layered one way: [`wire`] (the IPv4 header view, the
//! checksum, counters and drop reasons) at the bottom, the published
//! data-plane tables ([`dataplane`]) above it, the [`node`] on top.
//!
//! ## IO and time contract
//!
//! Nothing in this crate touches the outside world: it never reads files,
//! opens sockets, reads the clock or draws random numbers. Callers hand in
//! bytes (a file's text, a 32-byte seed drawn from the OS RNG) and facts they
//! gathered (a file's mode), and get values or typed errors back. That keeps
//! every parser fuzzable and every rule unit-testable, and lets a simulator
//! run many nodes on a virtual clock.

pub mod config;
pub mod dataplane;
pub mod frame;
pub mod identity;
pub mod lease;
pub mod names;
pub mod net;
pub mod node;
pub mod peer_id;
pub mod route;
pub mod wg;
pub mod wire;

pub use identity::Identity;
pub use net::Ipv4Prefix;
pub use peer_id::{Fingerprint, PeerId};
