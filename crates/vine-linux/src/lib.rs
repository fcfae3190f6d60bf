//! # vine-linux
//!
//! Host integration for vine: everything that touches the Linux host on the
//! node's behalf. Today that is the node's files — the identity file (mode
//! 0600, atomic writes, tamper checks via [`vine_core::Identity`]) and the
//! config file (path and permission rules, then [`vine_core::config::parse`]).
//! TUN devices, netlink routes and namespaces join it as they are built.
//!
//! ## IO contract
//!
//! Functions here do blocking filesystem IO and return typed errors whose
//! messages name the path and the fix. Nothing here reads the clock.

pub mod config_file;
pub mod fsutil;
pub mod identity_store;
