//! Entry points for the fuzz targets in `fuzz/` (through `vine-fuzz`):
//! the smallest wrappers around crate-private parsers. Not an API; hidden
//! from the docs and subject to change.

use std::io;
use std::net::SocketAddrV4;

use crate::netlink;

/// `SLOT_BYTES`: the most bytes one received message holds.
pub const UDP_SLOT_BYTES: usize = crate::udp::SLOT_BYTES;

/// Parses `data` as one buffer of netlink replies to request `seq` (as
/// the netlink client does with each buffer it receives), then reads every
/// reply it collected as a link and as a main-table route, as `link`,
/// `links` and `main_routes` do. Returns what the buffer said (`None`: more
/// buffers would follow) and the links and routes, rendered with `Debug`.
pub fn netlink_reply(data: &[u8], seq: u32) -> (Option<io::Result<()>>, Vec<String>) {
    let mut replies = Vec::new();
    let end = netlink::parse_replies(data, seq, &mut replies);
    let mut seen = Vec::new();
    for m in replies {
        if let netlink_packet_route::RouteNetlinkMessage::NewLink(l) = &m {
            let link = netlink::parse_link(l.clone());
            let _ = (link.is_tun(), link.tun_in_use(), link.describe_kind());
            seen.push(format!("{link:?}"));
        }
        if let Some(route) = netlink::main_route(m) {
            seen.push(format!("{route:?}"));
        }
    }
    (end, seen)
}

/// Message 0 of a UDP receive whose `recvmmsg` left these header fields
/// and control bytes, as the receive path reads it: sender, byte count and
/// datagram stride (`UDP_GRO`), or `None` when the message is skipped.
/// `name` is the first 8 bytes of the `sockaddr_in` (family, port,
/// address, in the kernel's byte order).
pub fn udp_received(
    name: [u8; 8],
    namelen: u32,
    msg_len: u32,
    control: &[u8],
    controllen: usize,
) -> Option<(SocketAddrV4, usize, usize)> {
    crate::udp::parse_received(name, namelen, msg_len, control, controllen)
}
