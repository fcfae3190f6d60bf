//! # vine-linux
//!
//! Host integration for vine: everything that touches the Linux host on the
//! node's behalf:
//!
//! - the node's files — the identity file (mode 0600, atomic writes, tamper
//!   checks via [`vine_core::Identity`]) and the config file (path and
//!   permission rules, then [`vine_core::config::parse`]);
//! - the TUN device ([`tun::Tun`]) and the kernel routes that send overlay
//!   prefixes into it ([`routes::Routes`]), both over netlink;
//! - the data-plane UDP socket with batched, offloaded send and receive
//!   ([`udp::UdpBatch`]);
//! - host readiness checks for `vine doctor` ([`doctor`]);
//! - private network namespaces for tests ([`netns::in_netns`]).
//!
//! ## IO contract
//!
//! Functions here do blocking IO (files, ioctls, netlink) and return typed
//! errors whose messages name the path, interface or prefix and the fix.
//! Network state is read and changed in the network namespace of the calling
//! thread. Nothing here reads the clock.

pub mod attach;
pub mod config_file;
pub mod doctor;
mod error;
pub mod fsutil;
#[doc(hidden)]
pub mod fuzzing;
pub mod identity_store;
mod netlink;
pub mod netns;
pub mod routes;
pub mod tun;
pub mod udp;
pub mod undo;

pub use error::HostError;
pub use routes::Routes;
pub use tun::Tun;
