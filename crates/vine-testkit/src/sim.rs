//! A deterministic in-memory UDP network simulator for sans-IO endpoints.
//!
//! # Model
//!
//! - **Virtual clock.** [`Network::new`] reads [`Instant::now`](std::time::Instant::now) once as the
//!   epoch; afterwards time only moves when the run loop jumps to the earliest
//!   of the next packet delivery and every endpoint's
//!   [`Endpoint::poll_timeout`]. Packet events are ordered by (time, insertion
//!   sequence); at equal times packets are delivered before timers fire, and
//!   timers fire in host order. All randomness (loss) comes from a [`SimRng`]
//!   seeded with the network's seed, so a run is reproducible bit for bit.
//! - **Realms** are IPv4 address spaces: [`Network::internet`] is the public
//!   one, [`Network::add_realm`] adds private ones (LANs, carrier networks).
//!   Each host has one UDP socket (`ip:port`) in one realm and an optional
//!   gateway NAT. A packet to an IP owned in the sender's realm (by a host, a
//!   NAT's inside address or a NAT's public address) stays in the realm;
//!   anything else goes to the gateway, or is dropped with
//!   [`DropReason::NoRoute`] if there is none.
//! - **NAT boxes** ([`NatConfig`], presets in [`NatType`]) translate between an
//!   inside realm and an outside realm following RFC 4787 mapping
//!   ([`Mapping`]) and filtering ([`Filtering`]) behaviour. A NAT's outside
//!   realm may be another private realm, so NATs chain (carrier-grade NAT
//!   behind a home router). Hairpinning is supported (RFC 4787 REQ-9, the
//!   packet is seen with the sender's external address and filtered as usual)
//!   and can be turned off per NAT. Mappings are refreshed by outbound traffic
//!   only and expire after [`NatConfig::mapping_timeout`] without it; a
//!   filter permission (a remote endpoint the mapping sent to) lasts as long
//!   after the last packet to it. Public ports are handed out sequentially
//!   from 40000 per NAT, so a symmetric NAT's next port is predictable.
//! - **Links.** Every host has access-link [`LinkParams`]; a packet's one-way
//!   delay is the sum of the sender's and the receiver's latency, and it
//!   survives both links' loss. [`Network::set_path`] overrides both for one
//!   pair of hosts. NATs add no delay: the sender's NATs translate the packet
//!   when it is sent, the receiver's NATs when it arrives, so two packets sent
//!   "at the same time" from behind two NATs both find the hole the other one
//!   punched. The receiving host (hence the delay, loss and partition check)
//!   is predicted at send time from the mappings alive then; a packet whose
//!   destination cannot be resolved at all (no route, no host, no mapping) is
//!   dropped at once, while filtering is decided on arrival.
//! - **Partitions** ([`Network::block`], [`Network::isolate`]) are matched by
//!   sending and receiving *host*, so they work through NATs; a packet is
//!   dropped if the pair is cut when it is sent or when it arrives.
//! - **Stats and trace.** [`Network::stats`] and [`Network::host_stats`] count
//!   deliveries and drops by [`DropReason`]; [`Network::enable_trace`] records
//!   every packet's fate as a [`TraceEvent`].
//!
//! # Run loop
//!
//! ```
//! use std::net::{Ipv4Addr, SocketAddrV4};
//! use std::time::{Duration, Instant};
//! use vine_testkit::sim::{Endpoint, LinkParams, Network, Transmit};
//!
//! /// Answers every datagram with the same bytes.
//! #[derive(Default)]
//! struct Echo { outbox: Vec<Transmit>, heard: usize }
//!
//! impl Endpoint for Echo {
//!     fn handle_datagram(&mut self, _now: Instant, _local: SocketAddrV4, from: SocketAddrV4, data: &[u8]) {
//!         self.heard += 1;
//!         if data != b"pong" {
//!             self.outbox.push(Transmit { dst: from, data: b"pong".to_vec() });
//!         }
//!     }
//!     fn handle_timeout(&mut self, _now: Instant) {}
//!     fn poll_transmit(&mut self) -> Option<Transmit> { self.outbox.pop() }
//!     fn poll_timeout(&self) -> Option<Instant> { None }
//! }
//!
//! let mut net = Network::new(7);
//! let inet = net.internet();
//! let a = net.add_host("a", inet, Ipv4Addr::new(192, 0, 2, 1), 4000, None, Echo::default());
//! let b = net.add_host("b", inet, Ipv4Addr::new(192, 0, 2, 2), 4000, None, Echo::default());
//! net.set_link(a, LinkParams { latency: Duration::from_millis(20), loss: 0.0 });
//! let dst = net.host_addr(b);
//! // Poke an endpoint from outside; the next step polls its transmits.
//! net.endpoint_mut(a).outbox.push(Transmit { dst, data: b"ping".to_vec() });
//! assert!(net.run_until_cond(Duration::from_secs(1), |n| n.endpoint(a).heard == 1));
//! assert_eq!(net.elapsed(), Duration::from_millis(50)); // 2 × (20 ms + 5 ms)
//! ```

mod clock;
mod endpoint;
mod ids;
mod link;
mod nat;
mod network;
mod rng;
mod stats;
mod topology;

#[cfg(test)]
mod tests;

pub use endpoint::{Endpoint, Transmit};
pub use ids::{HostId, NatId, RealmId};
pub use link::LinkParams;
pub use nat::{Filtering, Mapping, NatConfig, NatType};
pub use network::Network;
pub use rng::SimRng;
pub use stats::{Counters, DropCounts, DropReason, Outcome, TraceEvent};
pub use topology::TopologyError;
