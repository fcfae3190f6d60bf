//! Delivery and drop counters, and the optional packet trace.

use std::fmt;
use std::net::SocketAddrV4;
use std::time::Duration;

use super::ids::HostId;

/// Why the simulator dropped a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DropReason {
    /// Random loss on an access link or path.
    Loss,
    /// A partition: the pair is blocked or one side is isolated.
    Blocked,
    /// A NAT's filtering behaviour refused an inbound packet.
    Filtered,
    /// An inbound packet hit a NAT public port with no live mapping (or the
    /// NAT ran out of public ports).
    NoMapping,
    /// The destination is outside the realm and there is no gateway (or
    /// hairpinning is off, or routing looped).
    NoRoute,
    /// The address is in the realm but nothing listens there.
    NoHost,
}

impl DropReason {
    /// Every reason, in declaration order.
    pub const ALL: [DropReason; 6] = [
        DropReason::Loss,
        DropReason::Blocked,
        DropReason::Filtered,
        DropReason::NoMapping,
        DropReason::NoRoute,
        DropReason::NoHost,
    ];

    /// A short lowercase name, e.g. `no-mapping`.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Loss => "loss",
            DropReason::Blocked => "blocked",
            DropReason::Filtered => "filtered",
            DropReason::NoMapping => "no-mapping",
            DropReason::NoRoute => "no-route",
            DropReason::NoHost => "no-host",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Dropped packets by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DropCounts {
    /// [`DropReason::Loss`].
    pub loss: u64,
    /// [`DropReason::Blocked`].
    pub blocked: u64,
    /// [`DropReason::Filtered`].
    pub filtered: u64,
    /// [`DropReason::NoMapping`].
    pub no_mapping: u64,
    /// [`DropReason::NoRoute`].
    pub no_route: u64,
    /// [`DropReason::NoHost`].
    pub no_host: u64,
}

impl DropCounts {
    /// The count for one reason.
    pub fn get(&self, reason: DropReason) -> u64 {
        match reason {
            DropReason::Loss => self.loss,
            DropReason::Blocked => self.blocked,
            DropReason::Filtered => self.filtered,
            DropReason::NoMapping => self.no_mapping,
            DropReason::NoRoute => self.no_route,
            DropReason::NoHost => self.no_host,
        }
    }

    /// All drops.
    pub fn total(&self) -> u64 {
        DropReason::ALL.iter().map(|r| self.get(*r)).sum()
    }

    fn bump(&mut self, reason: DropReason) {
        let slot = match reason {
            DropReason::Loss => &mut self.loss,
            DropReason::Blocked => &mut self.blocked,
            DropReason::Filtered => &mut self.filtered,
            DropReason::NoMapping => &mut self.no_mapping,
            DropReason::NoRoute => &mut self.no_route,
            DropReason::NoHost => &mut self.no_host,
        };
        *slot += 1;
    }
}

/// Packet counters, for the whole network or for one host.
///
/// For one host, `sent`, `delivered` and `dropped` count the packets it sent
/// and `received` the packets delivered to it. For the network, `received`
/// equals `delivered`. Packets still in flight are in `sent` only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Datagrams handed to the network.
    pub sent: u64,
    /// Of those, delivered to an endpoint.
    pub delivered: u64,
    /// Datagrams delivered to this host (network-wide: to any host).
    pub received: u64,
    /// Of the sent datagrams, dropped, by reason.
    pub dropped: DropCounts,
}

/// What finally happened to a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Handed to the receiving endpoint.
    Delivered,
    /// Dropped for this reason.
    Dropped(DropReason),
}

/// One packet's fate, recorded when it is delivered or dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceEvent {
    /// Virtual time since the network's epoch when the outcome happened.
    pub time: Duration,
    /// Virtual time since the epoch when the packet was sent.
    pub sent: Duration,
    /// The sending host.
    pub from: HostId,
    /// The receiving host, if routing got far enough to know it.
    pub to: Option<HostId>,
    /// The sender's own address.
    pub src: SocketAddrV4,
    /// The destination as the sender addressed it.
    pub dst: SocketAddrV4,
    /// The source after the sender's NATs (what the receiver sees), if the
    /// packet got out of the sender's realm chain.
    pub seen_src: Option<SocketAddrV4>,
    /// Payload length in bytes.
    pub len: usize,
    /// Delivered or dropped.
    pub outcome: Outcome,
}

impl fmt::Display for TraceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:>12?} h{} {} -> {}",
            self.time, self.from.0, self.src, self.dst
        )?;
        if let Some(seen) = self.seen_src {
            write!(f, " (as {seen})")?;
        }
        match self.to {
            Some(to) => write!(f, " => h{}", to.0)?,
            None => f.write_str(" => ?")?,
        }
        match self.outcome {
            Outcome::Delivered => write!(f, " {}B delivered", self.len),
            Outcome::Dropped(r) => write!(f, " {}B dropped: {r}", self.len),
        }
    }
}

/// The network's counters: global and per host.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    global: Counters,
    hosts: Vec<Counters>,
}

impl Stats {
    pub(crate) fn add_host(&mut self) {
        self.hosts.push(Counters::default());
    }

    pub(crate) fn global(&self) -> &Counters {
        &self.global
    }

    pub(crate) fn host(&self, host: HostId) -> &Counters {
        &self.hosts[host.0]
    }

    pub(crate) fn reset(&mut self) {
        self.global = Counters::default();
        self.hosts.iter_mut().for_each(|c| *c = Counters::default());
    }

    pub(crate) fn sent(&mut self, from: HostId) {
        self.global.sent += 1;
        self.hosts[from.0].sent += 1;
    }

    pub(crate) fn delivered(&mut self, from: HostId, to: HostId) {
        self.global.delivered += 1;
        self.global.received += 1;
        self.hosts[from.0].delivered += 1;
        self.hosts[to.0].received += 1;
    }

    pub(crate) fn dropped(&mut self, from: HostId, reason: DropReason) {
        self.global.dropped.bump(reason);
        self.hosts[from.0].dropped.bump(reason);
    }
}
