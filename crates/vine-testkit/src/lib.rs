//! # vine-testkit
//!
//! Test support for vine.
//!
//! This crate owns the deterministic network simulator ([`sim`]): a virtual
//! clock and an in-memory IPv4/UDP network of address spaces ("realms"),
//! hosts with access links (latency, loss), per-pair path overrides,
//! partitions and RFC 4787 NAT boxes (full cone, restricted cone,
//! port-restricted cone, symmetric, stateful firewall, and NAT chains). It
//! drives sans-IO endpoints through the [`sim::Endpoint`] trait so that many
//! nodes can run direct, hole-punched and relayed scenarios in milliseconds.
//! [`overlay`] runs real vine nodes in it. The network-namespace lab for
//! end-to-end tests on real Linux is the `vine-lab` crate.
//!
//! ## IO and time contract
//!
//! The simulator reads the wall clock exactly once, in
//! [`sim::Network::new`], to get an epoch [`std::time::Instant`]; after that
//! time only moves virtually, jumping to the next packet delivery or endpoint
//! timeout. It opens no sockets, spawns no threads, and draws all randomness
//! from a seeded generator ([`sim::SimRng`]), so a run is a pure function of
//! its seed, its topology and its endpoints.

pub mod overlay;
pub mod sim;
