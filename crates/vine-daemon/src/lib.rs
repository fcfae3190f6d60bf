//! # vine-daemon
//!
//! The IO shell around the sans-IO [`vine_core::node::Node`]: the
//! data-plane threads (TUN → UDP and UDP → TUN, or one thread for both on
//! machines with one or two CPUs, working on the node's
//! published [`vine_core::dataplane`] tables with batched syscalls), the
//! event loop (everything else the data plane hands over, timers), the
//! api (the daemon's control socket: its protocol in [`api`], its blocking
//! client in [`api::client`], its server in [`runtime`]), pidfile and state
//! file ([`files`]), signals, reload and the bounded startup/shutdown
//! sequences ([`runtime`]) and the background lifecycle used by
//! `vine daemon start|stop|status` ([`lifecycle`]).
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
pub mod error;
pub mod files;
pub mod host;
pub mod lifecycle;
pub mod linux;
pub mod runtime;

// Transitional: runtime/** still names the api `crate::protocol`.
mod protocol;

pub use error::DaemonError;
pub use runtime::{DaemonHandle, RunOptions, run};
