//! # vine-daemon
//!
//! The IO shell around the sans-IO [`vine_core::node::Node`]: the
//! dataplane threads (TUN → UDP and UDP → TUN, or one thread for both on
//! machines with one or two CPUs, working on the node's
//! published [`vine_core::dataplane`] tables with batched syscalls), the
//! event loop (everything else the dataplane hands over, timers), the
//! control socket server
//! ([`protocol`]), pidfile and state file ([`files`]), signals, reload and
//! the bounded startup/shutdown sequences ([`runtime`]), the background
//! lifecycle used by `vine daemon start|stop|status` ([`lifecycle`]) and the
//! control socket client ([`client`]).
//!
//! ## IO and time contract
//!
//! This crate does the IO: it owns the sockets, reads the clock
//! (`Instant::now()` for the node, `SystemTime` for the wall clock and the
//! state file) and draws the node's seed from the OS RNG. Host resources
//! come through the [`host::Host`] trait so tests can run the real event
//! loop with in-memory devices; [`linux::LinuxHost`] is the real one. It
//! logs with `tracing` and installs no subscriber.

pub mod client;
pub mod error;
pub mod files;
pub mod host;
pub mod lifecycle;
pub mod linux;
pub mod protocol;
pub mod runtime;

pub use error::DaemonError;
pub use runtime::{DaemonHandle, DataplaneTuning, RunOptions, run};
