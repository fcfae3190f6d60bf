//! # vine-daemon
//!
//! The IO shell around the sans-IO [`vine_core::node::Node`].
//! It owns:
//!
//! * the **dataplane** threads (TUN → UDP and UDP → TUN, or one thread for
//!   both on machines with one or two CPUs), working on the node's
//!   published [`vine_core::dataplane`] tables with batched syscalls,
//!   tuned by one [`DataplaneTuning`];
//! * the **event loop**, which owns the node and is handed everything the
//!   dataplane does not handle, timers and requests;
//! * the **api**: the control socket's server and its wire format
//!   ([`api`]), and the blocking client the CLI uses ([`api::client`]);
//! * the bounded startup and shutdown sequences, signals and reload
//!   ([`runtime`]); pidfile and state file ([`files`]); the background
//!   lifecycle used by `vine daemon start|stop|status` ([`lifecycle`]).
//!
//! ## IO and time contract
//!
//! This crate does the IO: it owns the sockets, reads the clock
//! (`Instant::now()` for the node, `SystemTime` for the wall clock and the
//! state file) and draws the node's seed from the OS RNG. Host resources
//! come through the [`host::Host`] trait so tests can run the real event
//! loop with in-memory devices; [`linux::LinuxHost`] is the real one. It
//! logs with `tracing` and installs no subscriber.

pub mod api;
pub mod dns;
pub mod error;
pub mod files;
pub mod host;
pub mod lifecycle;
pub mod linux;
pub mod runtime;
mod workloads;

pub use error::DaemonError;
pub use runtime::{DaemonHandle, DataplaneTuning, RunOptions, run};
