//! The wire layer, at the bottom of vine-core: what a packet looks like on
//! the TUN side and what happened to it. The IPv4 header view
//! ([`ipv4`]), the Internet checksum ([`checksum`]) and the counters and
//! drop reasons ([`counters`]) that the data-plane tables, the node and the
//! host's offload code (`vine-linux`) share.
//!
//! Nothing here uses another vine-core module: the data-plane tables
//! ([`crate::dataplane`]) sit above it, the [`Node`](crate::node::Node) on
//! top.

pub mod checksum;
pub mod counters;
pub mod ipv4;

pub use counters::{Counters, DropReason, PeerCounters, RejectReason, RelayPairCounters};
