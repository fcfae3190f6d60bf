//! A small synchronous rtnetlink client: links, addresses and IPv4 routes.
//!
//! Built on `netlink-packet-route` (message types) and `netlink-sys` (the
//! socket) rather than `rtnetlink`, because every caller is synchronous and
//! a hidden tokio runtime would buy nothing. A socket belongs to the network
//! namespace of the thread that created it.

use std::io;
use std::net::{IpAddr, Ipv4Addr};

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage,
    NetlinkPayload, Nla,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoTun, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use vine_core::net::Ipv4Prefix;

mod workload;

/// `IFLA_TUN_PERSIST` (u8) inside a TUN link's `IFLA_INFO_DATA`.
const IFLA_TUN_PERSIST: u16 = 6;
/// `IFLA_TUN_NUM_QUEUES` (u32): queues attached to an open file.
const IFLA_TUN_NUM_QUEUES: u16 = 8;
/// `IFLA_TUN_NUM_DISABLED_QUEUES` (u32): attached but disabled queues.
const IFLA_TUN_NUM_DISABLED_QUEUES: u16 = 9;

/// What the kernel reports about one link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Link {
    /// ifindex.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// MTU.
    pub mtu: Option<u32>,
    /// Administratively up.
    pub up: bool,
    /// `IFLA_CARRIER`. A TUN device has carrier exactly while a file is
    /// attached to it (unless its holder cleared it with `TUNSETCARRIER`).
    pub carrier: Option<bool>,
    /// `IFLA_INFO_KIND`, e.g. "tun", "veth"; `None` for devices without
    /// rtnl link ops (e.g. `lo`, physical NICs).
    pub kind: Option<String>,
    /// For TUN devices: persistence and attached queues, when reported.
    pub tun: Option<TunState>,
}

/// The state of a TUN device as `IFLA_INFO_DATA` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct TunState {
    /// `TUNSETPERSIST` was set.
    pub persist: bool,
    /// Queues attached to open files (enabled plus disabled). The kernel
    /// reports this only for multi-queue devices; 0 otherwise.
    pub attached_queues: u32,
}

impl Link {
    /// Whether the device is a TUN/TAP device.
    pub fn is_tun(&self) -> bool {
        self.kind.as_deref() == Some("tun")
    }

    /// Whether some process holds the TUN open: it has carrier, or (for
    /// multi-queue devices) attached queues.
    pub fn tun_in_use(&self) -> bool {
        self.carrier == Some(true) || self.tun.is_some_and(|t| t.attached_queues > 0)
    }

    /// "a veth device", "a device without a link kind (e.g. loopback or a NIC)".
    pub fn describe_kind(&self) -> String {
        match &self.kind {
            Some(k) => format!("a {k} device"),
            None => "a device without a link kind (e.g. loopback or a physical NIC)".to_owned(),
        }
    }
}

/// One IPv4 route from a dump of the main table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    /// Destination prefix.
    pub prefix: Ipv4Prefix,
    /// Output interface, if any.
    pub oif: Option<u32>,
    /// Gateway, if any.
    pub gateway: Option<Ipv4Addr>,
    /// Route type (unicast, blackhole, …).
    pub kind: RouteType,
    /// Who installed it.
    pub protocol: RouteProtocol,
}

/// A netlink route socket with request/response handling.
pub(crate) struct Netlink {
    socket: Socket,
    seq: u32,
}

impl Netlink {
    /// Opens a socket in the calling thread's network namespace.
    pub fn new() -> io::Result<Self> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(Self { socket, seq: 0 })
    }

    /// Sends `msg` and collects the replies: until `NLMSG_DONE` for dumps,
    /// until the ACK otherwise. A NACK becomes the matching `io::Error`.
    pub(crate) fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags | if dump { 0 } else { NLM_F_ACK };
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let mut buf = vec![0; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.socket.send(&buf, 0)?;

        let mut replies = Vec::new();
        loop {
            let (data, _) = self.socket.recv_from_full()?;
            if let Some(end) = parse_replies(&data, self.seq, &mut replies) {
                return end.map(|()| replies);
            }
        }
    }

    /// The link called `name`, or `None` if there is none.
    pub fn link(&mut self, name: &str) -> io::Result<Option<Link>> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
        match self.request(RouteNetlinkMessage::GetLink(msg), 0) {
            Ok(replies) => Ok(replies.into_iter().find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(parse_link(l)),
                _ => None,
            })),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every link in the namespace.
    pub fn links(&mut self) -> io::Result<Vec<Link>> {
        let replies = self.request(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
        )?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(parse_link(l)),
                _ => None,
            })
            .collect())
    }

    /// Deletes the link with `index`.
    pub fn delete_link(&mut self, index: u32) -> io::Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        self.request(RouteNetlinkMessage::DelLink(msg), 0)?;
        Ok(())
    }

    /// Sets the MTU (when given) and brings the link up (or down).
    pub fn set_link(&mut self, index: u32, mtu: Option<u32>, up: bool) -> io::Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.change_mask = LinkFlags::Up;
        if up {
            msg.header.flags = LinkFlags::Up;
        }
        if let Some(mtu) = mtu {
            msg.attributes.push(LinkAttribute::Mtu(mtu));
        }
        self.request(RouteNetlinkMessage::SetLink(msg), 0)?;
        Ok(())
    }

    /// Adds `address/prefix_len` to the link; an identical existing address
    /// is success.
    pub fn add_address(&mut self, index: u32, address: Ipv4Addr, prefix_len: u8) -> io::Result<()> {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        msg.header.prefix_len = prefix_len;
        msg.header.index = index;
        msg.attributes
            .push(AddressAttribute::Local(IpAddr::V4(address)));
        msg.attributes
            .push(AddressAttribute::Address(IpAddr::V4(address)));
        match self.request(
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        ) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            other => other.map(drop),
        }
    }

    /// The IPv4 addresses (with prefix lengths) on the link.
    #[cfg(test)]
    pub fn addresses(&mut self, index: u32) -> io::Result<Vec<(Ipv4Addr, u8)>> {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        let replies = self.request(RouteNetlinkMessage::GetAddress(msg), NLM_F_DUMP)?;
        let mut out = Vec::new();
        for m in replies {
            let RouteNetlinkMessage::NewAddress(a) = m else {
                continue;
            };
            if a.header.index != index {
                continue;
            }
            for attr in &a.attributes {
                if let AddressAttribute::Local(IpAddr::V4(ip)) = attr {
                    out.push((*ip, a.header.prefix_len));
                }
            }
        }
        Ok(out)
    }

    /// IPv4 routes in the main table.
    pub fn main_routes(&mut self) -> io::Result<Vec<Route>> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet;
        let replies = self.request(RouteNetlinkMessage::GetRoute(msg), NLM_F_DUMP)?;
        Ok(replies.into_iter().filter_map(main_route).collect())
    }

    /// Adds (`add`) or deletes a link-scope unicast route for `prefix`
    /// through `oif` in the main table. Adding uses `NLM_F_EXCL`, so an
    /// existing route for the same prefix yields EEXIST.
    pub fn change_route(&mut self, prefix: Ipv4Prefix, oif: u32, add: bool) -> io::Result<()> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet;
        msg.header.destination_prefix_length = prefix.len();
        msg.header.table = RouteHeader::RT_TABLE_MAIN;
        msg.header.protocol = RouteProtocol::Static;
        msg.header.scope = RouteScope::Link;
        msg.header.kind = RouteType::Unicast;
        msg.attributes
            .push(RouteAttribute::Destination(RouteAddress::Inet(
                prefix.network(),
            )));
        msg.attributes.push(RouteAttribute::Oif(oif));
        if add {
            self.request(
                RouteNetlinkMessage::NewRoute(msg),
                NLM_F_CREATE | NLM_F_EXCL,
            )?;
        } else {
            self.request(RouteNetlinkMessage::DelRoute(msg), 0)?;
        }
        Ok(())
    }
}

/// Parses one buffer of replies to request `seq`, appending the messages it
/// carries to `replies`. `Some` when the buffer ends the request (its
/// `NLMSG_DONE`, ACK or NACK, or bytes that are not netlink), `None` when
/// more buffers follow.
pub(crate) fn parse_replies(
    data: &[u8],
    seq: u32,
    replies: &mut Vec<RouteNetlinkMessage>,
) -> Option<io::Result<()>> {
    let mut offset = 0;
    while offset < data.len() {
        let reply = match NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[offset..]) {
            Ok(reply) => reply,
            Err(e) => {
                return Some(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    e.to_string(),
                )));
            }
        };
        let len = reply.header.length as usize;
        if len == 0 {
            break;
        }
        offset += (len + 3) & !3;
        if reply.header.sequence_number != seq {
            continue;
        }
        match reply.payload {
            NetlinkPayload::Done(done) => {
                return Some(if done.code < 0 {
                    Err(errno_error(done.code))
                } else {
                    Ok(())
                });
            }
            NetlinkPayload::Error(e) => {
                return Some(match e.code {
                    None => Ok(()),
                    Some(code) => Err(errno_error(code.get())),
                });
            }
            NetlinkPayload::InnerMessage(m) => replies.push(m),
            _ => {}
        }
    }
    None
}

/// The error a netlink reply's (negative) error code stands for: the errno
/// `-code`, or `InvalidData` for a code that is no errno (`i32::MIN` has
/// no negation; a kernel never sends it).
fn errno_error(code: i32) -> io::Error {
    match code.checked_neg() {
        Some(errno) => io::Error::from_raw_os_error(errno),
        None => io::Error::new(
            io::ErrorKind::InvalidData,
            format!("netlink reply with error code {code}, which is no errno"),
        ),
    }
}

/// The IPv4 main-table route a `RTM_NEWROUTE` reply describes, if it is one.
pub(crate) fn main_route(m: RouteNetlinkMessage) -> Option<Route> {
    let RouteNetlinkMessage::NewRoute(r) = m else {
        return None;
    };
    if r.header.address_family != AddressFamily::Inet {
        return None;
    }
    let mut table = u32::from(r.header.table);
    let mut dst = Ipv4Addr::UNSPECIFIED;
    let mut oif = None;
    let mut gateway = None;
    for attr in &r.attributes {
        match attr {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Destination(RouteAddress::Inet(a)) => dst = *a,
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Gateway(RouteAddress::Inet(a)) => gateway = Some(*a),
            _ => {}
        }
    }
    if table != u32::from(RouteHeader::RT_TABLE_MAIN) {
        return None;
    }
    Some(Route {
        prefix: Ipv4Prefix::containing_clamped(dst, r.header.destination_prefix_length),
        oif,
        gateway,
        kind: r.header.kind,
        protocol: r.header.protocol,
    })
}

pub(crate) fn parse_link(msg: LinkMessage) -> Link {
    let mut link = Link {
        index: msg.header.index,
        name: String::new(),
        mtu: None,
        up: msg.header.flags.contains(LinkFlags::Up),
        carrier: None,
        kind: None,
        tun: None,
    };
    for attr in msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => link.name = n,
            LinkAttribute::Mtu(m) => link.mtu = Some(m),
            LinkAttribute::Carrier(c) => link.carrier = Some(c != 0),
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    match info {
                        LinkInfo::Kind(k) => link.kind = Some(k.to_string()),
                        LinkInfo::Data(InfoData::Tun(nlas)) => link.tun = Some(tun_state(&nlas)),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    link
}

fn tun_state(nlas: &[InfoTun]) -> TunState {
    let mut state = TunState::default();
    for nla in nlas {
        let mut value = vec![0; nla.value_len()];
        nla.emit_value(&mut value);
        let as_u32 = || {
            value
                .get(..4)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map_or(0, u32::from_ne_bytes)
        };
        match nla.kind() {
            IFLA_TUN_PERSIST => state.persist = value.first().is_some_and(|b| *b != 0),
            IFLA_TUN_NUM_QUEUES | IFLA_TUN_NUM_DISABLED_QUEUES => {
                state.attached_queues = state.attached_queues.saturating_add(as_u32());
            }
            _ => {}
        }
    }
    state
}
