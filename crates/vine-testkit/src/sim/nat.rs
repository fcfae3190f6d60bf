//! NAT boxes with RFC 4787 mapping and filtering behaviour.
//!
//! A NAT has one inside address (in its inside realm) and one public address
//! (in its outside realm). Outbound packets get a mapping (internal ip:port →
//! public ip:port) chosen by the [`Mapping`] behaviour; inbound packets to a
//! public port are translated back if the mapping is alive and the
//! [`Filtering`] behaviour admits the remote endpoint.
//!
//! - Mappings are refreshed by outbound traffic only (RFC 4787 REQ-6 allows
//!   either) and expire after `mapping_timeout` without it.
//! - Filtering state is per mapping: the remote endpoints the internal
//!   endpoint sent to through it, each remembered for `mapping_timeout` after
//!   the last packet to it.
//! - Public ports are allocated sequentially from 40000 (wrapping to 40000
//!   after 65535, skipping live mappings), so a symmetric NAT's ports are
//!   predictable; [`Mapping::None`] keeps the internal port.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use super::ids::RealmId;
use super::stats::DropReason;

/// First public port handed out by a translating NAT.
const FIRST_PORT: u16 = 40000;

/// How a NAT picks the public endpoint for an outbound packet (RFC 4787 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mapping {
    /// One public endpoint per internal endpoint, whatever the destination
    /// ("cone").
    EndpointIndependent,
    /// A new public endpoint per destination IP address.
    AddressDependent,
    /// A new public endpoint per destination ip:port ("symmetric").
    AddressAndPortDependent,
    /// No translation: the public endpoint is the internal one. Hosts behind
    /// such a box must use the box's `public_ip` as their own address; it is
    /// how [`NatType::Firewall`] models a stateful firewall.
    None,
}

/// Which inbound packets a NAT lets through to a mapping (RFC 4787 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Filtering {
    /// Anyone may send to a live mapping ("full cone").
    EndpointIndependent,
    /// Only IP addresses the internal endpoint has sent to ("restricted
    /// cone").
    AddressDependent,
    /// Only ip:port pairs the internal endpoint has sent to
    /// ("port-restricted cone", and the usual symmetric NAT).
    AddressAndPortDependent,
}

/// The classic NAT types, as presets of [`Mapping`] and [`Filtering`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NatType {
    /// Endpoint-independent mapping and filtering.
    FullCone,
    /// Endpoint-independent mapping, address-dependent filtering.
    RestrictedCone,
    /// Endpoint-independent mapping, address-and-port-dependent filtering.
    PortRestrictedCone,
    /// Address-and-port-dependent mapping and filtering.
    Symmetric,
    /// No translation, address-and-port-dependent filtering: a stateful
    /// firewall in front of hosts that use its `public_ip`.
    Firewall,
}

impl NatType {
    /// Every preset, in declaration order.
    pub const ALL: [NatType; 5] = [
        NatType::FullCone,
        NatType::RestrictedCone,
        NatType::PortRestrictedCone,
        NatType::Symmetric,
        NatType::Firewall,
    ];

    /// The preset's mapping behaviour.
    pub fn mapping(self) -> Mapping {
        match self {
            NatType::FullCone | NatType::RestrictedCone | NatType::PortRestrictedCone => {
                Mapping::EndpointIndependent
            }
            NatType::Symmetric => Mapping::AddressAndPortDependent,
            NatType::Firewall => Mapping::None,
        }
    }

    /// The preset's filtering behaviour.
    pub fn filtering(self) -> Filtering {
        match self {
            NatType::FullCone => Filtering::EndpointIndependent,
            NatType::RestrictedCone => Filtering::AddressDependent,
            NatType::PortRestrictedCone | NatType::Symmetric | NatType::Firewall => {
                Filtering::AddressAndPortDependent
            }
        }
    }
}

/// How to build a NAT box; see [`Network::add_nat`](super::Network::add_nat).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatConfig {
    /// Name used in errors and panics.
    pub name: String,
    /// The private realm behind the NAT.
    pub inside: RealmId,
    /// The NAT's own address in `inside` (hosts' gateway address).
    pub inside_ip: Ipv4Addr,
    /// The realm in front of the NAT: the internet or, for a NAT chain,
    /// another private realm.
    pub outside: RealmId,
    /// The NAT's address in `outside`; every mapping uses it.
    pub public_ip: Ipv4Addr,
    /// How public endpoints are chosen.
    pub mapping: Mapping,
    /// Which inbound packets are let through.
    pub filtering: Filtering,
    /// Mappings (and filter permissions) expire after this long without
    /// outbound traffic. Must be non-zero.
    pub mapping_timeout: Duration,
}

impl NatConfig {
    /// Two minutes: the shortest UDP mapping timer RFC 4787 REQ-5 allows.
    pub const DEFAULT_MAPPING_TIMEOUT: Duration = Duration::from_secs(120);

    /// A NAT of a preset type with the default mapping timeout.
    pub fn new(
        name: impl Into<String>,
        nat_type: NatType,
        inside: RealmId,
        inside_ip: Ipv4Addr,
        outside: RealmId,
        public_ip: Ipv4Addr,
    ) -> Self {
        Self {
            name: name.into(),
            inside,
            inside_ip,
            outside,
            public_ip,
            mapping: nat_type.mapping(),
            filtering: nat_type.filtering(),
            mapping_timeout: Self::DEFAULT_MAPPING_TIMEOUT,
        }
    }

    /// The same NAT with another mapping timeout.
    pub fn with_mapping_timeout(mut self, timeout: Duration) -> Self {
        self.mapping_timeout = timeout;
        self
    }
}

/// What a mapping is keyed by besides the internal endpoint.
type MapKey = (SocketAddrV4, Option<Ipv4Addr>, Option<u16>);

/// One live (or expired, not yet reclaimed) mapping.
#[derive(Debug)]
struct MappingState {
    key: MapKey,
    internal: SocketAddrV4,
    last_outbound: Instant,
    /// Remote endpoints sent to through this mapping, with the last time.
    permits: BTreeMap<(Ipv4Addr, u16), Instant>,
}

/// A NAT box's configuration and state.
#[derive(Debug)]
pub(crate) struct NatBox {
    config: NatConfig,
    hairpinning: bool,
    by_key: BTreeMap<MapKey, u16>,
    by_port: BTreeMap<u16, MappingState>,
    next_port: u16,
}

impl NatBox {
    pub(crate) fn new(config: NatConfig) -> Self {
        Self {
            config,
            hairpinning: true,
            by_key: BTreeMap::new(),
            by_port: BTreeMap::new(),
            next_port: FIRST_PORT,
        }
    }

    pub(crate) fn config(&self) -> &NatConfig {
        &self.config
    }

    pub(crate) fn set_hairpinning(&mut self, enabled: bool) {
        self.hairpinning = enabled;
    }

    /// Whether something seen at `last` is still remembered at `now`.
    fn fresh(&self, last: Instant, now: Instant) -> bool {
        now.saturating_duration_since(last) < self.config.mapping_timeout
    }

    /// Live mappings at `now`.
    pub(crate) fn active_mappings(&self, now: Instant) -> usize {
        self.by_port
            .values()
            .filter(|m| self.fresh(m.last_outbound, now))
            .count()
    }

    /// Translates an outbound packet from `src` (inside) to `dst`, creating
    /// or refreshing its mapping; returns the public source endpoint.
    pub(crate) fn outbound(
        &mut self,
        now: Instant,
        src: SocketAddrV4,
        dst: SocketAddrV4,
    ) -> Result<SocketAddrV4, DropReason> {
        if *dst.ip() == self.config.public_ip && !self.hairpinning {
            return Err(DropReason::NoRoute);
        }
        let key: MapKey = match self.config.mapping {
            Mapping::EndpointIndependent | Mapping::None => (src, None, None),
            Mapping::AddressDependent => (src, Some(*dst.ip()), None),
            Mapping::AddressAndPortDependent => (src, Some(*dst.ip()), Some(dst.port())),
        };
        let live = self.by_key.get(&key).copied().filter(|p| {
            self.by_port
                .get(p)
                .is_some_and(|m| self.fresh(m.last_outbound, now))
        });
        let port = match live {
            Some(port) => port,
            None => self.allocate(now, key, src)?,
        };
        let state = self.by_port.get_mut(&port).ok_or(DropReason::NoMapping)?;
        state.last_outbound = now;
        state.permits.insert((*dst.ip(), dst.port()), now);
        Ok(SocketAddrV4::new(self.config.public_ip, port))
    }

    /// Creates a mapping for `key`, reclaiming an expired one for the same
    /// key or port. Fails with [`DropReason::NoMapping`] when every public
    /// port is live.
    fn allocate(
        &mut self,
        now: Instant,
        key: MapKey,
        internal: SocketAddrV4,
    ) -> Result<u16, DropReason> {
        if let Some(old) = self.by_key.remove(&key) {
            self.by_port.remove(&old);
        }
        let port = match self.config.mapping {
            Mapping::None => internal.port(),
            _ => self.free_port(now).ok_or(DropReason::NoMapping)?,
        };
        if let Some(stale) = self.by_port.get(&port) {
            if self.fresh(stale.last_outbound, now) {
                return Err(DropReason::NoMapping);
            }
            let stale_key = stale.key;
            self.by_key.remove(&stale_key);
        }
        let state = MappingState {
            key,
            internal,
            last_outbound: now,
            permits: BTreeMap::new(),
        };
        self.by_port.insert(port, state);
        self.by_key.insert(key, port);
        Ok(port)
    }

    /// The next public port from the sequential cursor that is not live.
    fn free_port(&mut self, now: Instant) -> Option<u16> {
        let span = u32::from(u16::MAX - FIRST_PORT) + 1;
        for _ in 0..span {
            let port = self.next_port;
            self.next_port = if port == u16::MAX {
                FIRST_PORT
            } else {
                port + 1
            };
            let taken = self
                .by_port
                .get(&port)
                .is_some_and(|m| self.fresh(m.last_outbound, now));
            if !taken {
                return Some(port);
            }
        }
        None
    }

    /// Translates an inbound packet from `src` to public port `port`; returns
    /// the internal destination. With `filter` false only the mapping is
    /// looked up (used to predict where a packet in flight will land).
    pub(crate) fn inbound(
        &self,
        now: Instant,
        src: SocketAddrV4,
        port: u16,
        filter: bool,
    ) -> Result<SocketAddrV4, DropReason> {
        let state = self
            .by_port
            .get(&port)
            .filter(|m| self.fresh(m.last_outbound, now))
            .ok_or(DropReason::NoMapping)?;
        if filter && !self.admits(state, now, src) {
            return Err(DropReason::Filtered);
        }
        Ok(state.internal)
    }

    /// Whether the filtering behaviour lets `src` reach `state` at `now`.
    fn admits(&self, state: &MappingState, now: Instant, src: SocketAddrV4) -> bool {
        let ip = *src.ip();
        match self.config.filtering {
            Filtering::EndpointIndependent => true,
            Filtering::AddressDependent => state
                .permits
                .range((ip, 0)..=(ip, u16::MAX))
                .any(|(_, t)| self.fresh(*t, now)),
            Filtering::AddressAndPortDependent => state
                .permits
                .get(&(ip, src.port()))
                .is_some_and(|t| self.fresh(*t, now)),
        }
    }
}
