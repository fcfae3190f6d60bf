//! Realms (address spaces), hosts and NAT placement, and packet routing
//! through them.
//!
//! Routing is split in two so that each NAT acts at the right moment: the
//! sender's side ([`Topology::climb`]) runs when a packet is sent, walking up
//! through gateway NATs until it reaches a realm that owns the destination
//! IP; the receiver's side ([`Topology::resolve`]) runs when the packet
//! arrives, walking down through NAT public addresses to a host's socket.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

use super::ids::{HostId, NatId, RealmId};
use super::nat::{Mapping, NatBox, NatConfig};
use super::stats::DropReason;

/// Longest realm chain a packet may cross each way; more means a routing
/// loop in the topology.
const MAX_HOPS: usize = 32;

/// Why a topology change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopologyError {
    /// The realm id was not issued by this network.
    #[error(
        "realm #{0} does not exist in this network; use an id returned by add_realm or internet()"
    )]
    UnknownRealm(usize),
    /// The NAT id was not issued by this network.
    #[error("NAT #{0} does not exist in this network; use an id returned by add_nat")]
    UnknownNat(usize),
    /// Another host already has this socket address in the realm.
    #[error(
        "{addr} is already taken in realm `{realm}`; give host `{host}` another address or port"
    )]
    AddressInUse {
        /// The host being added.
        host: String,
        /// The realm's name.
        realm: String,
        /// The contested socket address.
        addr: SocketAddrV4,
    },
    /// The IP belongs to a NAT (or to hosts, when adding a NAT) in the realm.
    #[error("{ip} is already used by {owner} in realm `{realm}`; pick a free address for `{name}`")]
    IpInUse {
        /// The host or NAT being added.
        name: String,
        /// The realm's name.
        realm: String,
        /// The contested IP.
        ip: Ipv4Addr,
        /// What owns it.
        owner: String,
    },
    /// The gateway NAT's inside realm is not the host's (or NAT's) realm.
    #[error(
        "`{name}` is in realm `{realm}` but gateway NAT `{gateway}` serves realm `{gateway_inside}`; \
         use a NAT whose inside realm is `{realm}`"
    )]
    GatewayElsewhere {
        /// The host or NAT whose gateway this is.
        name: String,
        /// Its realm.
        realm: String,
        /// The gateway NAT's name.
        gateway: String,
        /// The gateway NAT's inside realm.
        gateway_inside: String,
    },
    /// A NAT's inside and outside realms are the same.
    #[error("NAT `{0}` has the same inside and outside realm; a NAT joins two different realms")]
    SameRealm(String),
    /// A NAT's mapping timeout is zero.
    #[error("NAT `{0}` has a zero mapping_timeout; every mapping would expire at once")]
    ZeroTimeout(String),
    /// A host behind a non-translating NAT (firewall) does not use its
    /// public IP.
    #[error(
        "host `{host}` is behind `{nat}`, which does not translate addresses; \
         give the host the NAT's public IP {public_ip} (not {ip})"
    )]
    NotFirewallAddress {
        /// The host being added.
        host: String,
        /// The firewall's name.
        nat: String,
        /// The address the host asked for.
        ip: Ipv4Addr,
        /// The address it must use.
        public_ip: Ipv4Addr,
    },
}

/// What owns an IP inside one realm.
#[derive(Debug, Clone, Copy)]
enum IpOwner {
    /// One or more host sockets (see [`Realm::sockets`]).
    Hosts,
    /// A NAT's inside address: nothing listens there.
    NatInside(NatId),
    /// A NAT's public address: inbound packets are translated.
    NatOutside(NatId),
}

#[derive(Debug)]
struct Realm {
    name: String,
    ips: BTreeMap<Ipv4Addr, IpOwner>,
    sockets: BTreeMap<SocketAddrV4, HostId>,
    /// NATs whose inside realm this is (candidate upstreams).
    nats_inside: Vec<NatId>,
}

/// A host's place in the topology.
#[derive(Debug)]
pub(crate) struct HostInfo {
    pub(crate) name: String,
    pub(crate) realm: RealmId,
    pub(crate) addr: SocketAddrV4,
    pub(crate) gateway: Option<NatId>,
}

/// A packet on its way: the realm it is in and its current addresses.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Flight {
    pub(crate) realm: RealmId,
    pub(crate) src: SocketAddrV4,
    pub(crate) dst: SocketAddrV4,
}

/// Every realm, NAT and host of a network.
#[derive(Debug)]
pub(crate) struct Topology {
    realms: Vec<Realm>,
    nats: Vec<NatBox>,
    upstreams: Vec<Option<NatId>>,
    hosts: Vec<HostInfo>,
}

impl Topology {
    /// A topology with just the (empty) internet realm.
    pub(crate) fn new() -> Self {
        let mut topo = Self {
            realms: Vec::new(),
            nats: Vec::new(),
            upstreams: Vec::new(),
            hosts: Vec::new(),
        };
        topo.add_realm("internet".to_owned());
        topo
    }

    pub(crate) fn add_realm(&mut self, name: String) -> RealmId {
        self.realms.push(Realm {
            name,
            ips: BTreeMap::new(),
            sockets: BTreeMap::new(),
            nats_inside: Vec::new(),
        });
        RealmId(self.realms.len() - 1)
    }

    fn realm(&self, id: RealmId) -> Result<&Realm, TopologyError> {
        self.realms
            .get(id.0)
            .ok_or(TopologyError::UnknownRealm(id.0))
    }

    fn nat_checked(&self, id: NatId) -> Result<&NatBox, TopologyError> {
        self.nats.get(id.0).ok_or(TopologyError::UnknownNat(id.0))
    }

    /// Describes the current owner of `ip` in `realm`, if any.
    fn owner_of(&self, realm: &Realm, ip: Ipv4Addr) -> Option<String> {
        realm.ips.get(&ip).map(|owner| match owner {
            IpOwner::Hosts => "a host".to_owned(),
            IpOwner::NatInside(n) => format!("NAT `{}` (inside)", self.nats[n.0].config().name),
            IpOwner::NatOutside(n) => format!("NAT `{}` (public)", self.nats[n.0].config().name),
        })
    }

    pub(crate) fn add_nat(&mut self, config: NatConfig) -> Result<NatId, TopologyError> {
        let inside = self.realm(config.inside)?;
        let outside = self.realm(config.outside)?;
        if config.inside == config.outside {
            return Err(TopologyError::SameRealm(config.name));
        }
        if config.mapping_timeout.is_zero() {
            return Err(TopologyError::ZeroTimeout(config.name));
        }
        for (realm, ip) in [(inside, config.inside_ip), (outside, config.public_ip)] {
            if let Some(owner) = self.owner_of(realm, ip) {
                return Err(TopologyError::IpInUse {
                    name: config.name,
                    realm: realm.name.clone(),
                    ip,
                    owner,
                });
            }
        }
        let id = NatId(self.nats.len());
        let inside = &mut self.realms[config.inside.0];
        inside.ips.insert(config.inside_ip, IpOwner::NatInside(id));
        inside.nats_inside.push(id);
        self.realms[config.outside.0]
            .ips
            .insert(config.public_ip, IpOwner::NatOutside(id));
        self.nats.push(NatBox::new(config));
        self.upstreams.push(None);
        Ok(id)
    }

    /// Sends `nat`'s outbound traffic that leaves its outside realm through
    /// `gateway`.
    pub(crate) fn set_upstream(&mut self, nat: NatId, gateway: NatId) -> Result<(), TopologyError> {
        let outside = self.nat_checked(nat)?.config().outside;
        let gw = self.nat_checked(gateway)?.config();
        if gw.inside != outside {
            return Err(TopologyError::GatewayElsewhere {
                name: self.nats[nat.0].config().name.clone(),
                realm: self.realms[outside.0].name.clone(),
                gateway: gw.name.clone(),
                gateway_inside: self.realms[gw.inside.0].name.clone(),
            });
        }
        self.upstreams[nat.0] = Some(gateway);
        Ok(())
    }

    /// The NAT that `nat`'s outbound traffic leaving its outside realm goes
    /// to: the one set explicitly, else the only NAT serving that realm.
    fn upstream(&self, nat: NatId) -> Option<NatId> {
        self.upstreams[nat.0].or_else(|| {
            let candidates = &self.realms[self.nats[nat.0].config().outside.0].nats_inside;
            match candidates.as_slice() {
                [only] => Some(*only),
                _ => None,
            }
        })
    }

    pub(crate) fn add_host(
        &mut self,
        name: String,
        realm_id: RealmId,
        addr: SocketAddrV4,
        gateway: Option<NatId>,
    ) -> Result<HostId, TopologyError> {
        let realm = self.realm(realm_id)?;
        if let Some(gw) = gateway {
            let cfg = self.nat_checked(gw)?.config();
            if cfg.inside != realm_id {
                return Err(TopologyError::GatewayElsewhere {
                    name,
                    realm: realm.name.clone(),
                    gateway: cfg.name.clone(),
                    gateway_inside: self.realms[cfg.inside.0].name.clone(),
                });
            }
            if cfg.mapping == Mapping::None && *addr.ip() != cfg.public_ip {
                return Err(TopologyError::NotFirewallAddress {
                    host: name,
                    nat: cfg.name.clone(),
                    ip: *addr.ip(),
                    public_ip: cfg.public_ip,
                });
            }
        }
        match realm.ips.get(addr.ip()) {
            None | Some(IpOwner::Hosts) => {}
            Some(_) => {
                let owner = self.owner_of(realm, *addr.ip()).unwrap_or_default();
                let realm = realm.name.clone();
                return Err(TopologyError::IpInUse {
                    name,
                    realm,
                    ip: *addr.ip(),
                    owner,
                });
            }
        }
        if realm.sockets.contains_key(&addr) {
            return Err(TopologyError::AddressInUse {
                host: name,
                realm: realm.name.clone(),
                addr,
            });
        }
        let id = HostId(self.hosts.len());
        let realm = &mut self.realms[realm_id.0];
        realm.ips.insert(*addr.ip(), IpOwner::Hosts);
        realm.sockets.insert(addr, id);
        self.hosts.push(HostInfo {
            name,
            realm: realm_id,
            addr,
            gateway,
        });
        Ok(id)
    }

    /// The host, or a panic naming the foreign id.
    pub(crate) fn host(&self, host: HostId) -> &HostInfo {
        self.hosts
            .get(host.0)
            .unwrap_or_else(|| panic!("{host:?} was not issued by this network"))
    }

    pub(crate) fn host_count(&self) -> usize {
        self.hosts.len()
    }

    /// The NAT, or a panic naming the foreign id.
    pub(crate) fn nat(&self, nat: NatId) -> &NatBox {
        self.nats
            .get(nat.0)
            .unwrap_or_else(|| panic!("{nat:?} was not issued by this network"))
    }

    pub(crate) fn nat_mut(&mut self, nat: NatId) -> &mut NatBox {
        self.nats
            .get_mut(nat.0)
            .unwrap_or_else(|| panic!("{nat:?} was not issued by this network"))
    }

    pub(crate) fn realm_name(&self, realm: RealmId) -> &str {
        &self.realms[realm.0].name
    }

    /// The sender's side of routing, run at send time: from `from`'s socket
    /// up through gateway NATs (creating or refreshing their mappings) to the
    /// first realm that owns `dst`'s IP.
    pub(crate) fn climb(
        &mut self,
        now: Instant,
        from: HostId,
        dst: SocketAddrV4,
    ) -> Result<Flight, DropReason> {
        let host = self.host(from);
        let (mut realm, mut src, mut gateway) = (host.realm, host.addr, host.gateway);
        for _ in 0..MAX_HOPS {
            if self.realms[realm.0].ips.contains_key(dst.ip()) {
                return Ok(Flight { realm, src, dst });
            }
            let Some(nat) = gateway else {
                return Err(DropReason::NoRoute);
            };
            gateway = self.upstream(nat);
            let nat = &mut self.nats[nat.0];
            src = nat.outbound(now, src, dst)?;
            realm = nat.config().outside;
        }
        Err(DropReason::NoRoute)
    }

    /// The receiver's side of routing: from the realm that owns the
    /// destination down through NAT public addresses to a host socket.
    /// Applies NAT filtering only when `filter` is set (at arrival); without
    /// it, predicts the receiver of a packet just sent.
    pub(crate) fn resolve(
        &self,
        now: Instant,
        flight: &Flight,
        filter: bool,
    ) -> Result<HostId, DropReason> {
        let (mut realm, mut dst) = (flight.realm, flight.dst);
        for _ in 0..MAX_HOPS {
            let r = &self.realms[realm.0];
            match r.ips.get(dst.ip()) {
                Some(IpOwner::Hosts) => {
                    return r.sockets.get(&dst).copied().ok_or(DropReason::NoHost);
                }
                Some(IpOwner::NatOutside(n)) => {
                    let nat = &self.nats[n.0];
                    dst = nat.inbound(now, flight.src, dst.port(), filter)?;
                    realm = nat.config().inside;
                }
                Some(IpOwner::NatInside(_)) | None => return Err(DropReason::NoHost),
            }
        }
        Err(DropReason::NoRoute)
    }
}
