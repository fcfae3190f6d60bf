//! Just enough IPv4 header parsing for routing and source authorization.

use std::net::Ipv4Addr;

/// Source and destination of a well-formed IPv4 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addrs {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
}

/// Checks the header (version 4, header length, total length within the
/// buffer) and returns the addresses.
pub fn parse(packet: &[u8]) -> Option<Addrs> {
    let first = *packet.first()?;
    if first >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(first & 0x0f) * 4;
    if ihl < 20 || packet.len() < ihl {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
    if total < ihl || total > packet.len() {
        return None;
    }
    Some(Addrs {
        src: Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]),
        dst: Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]),
    })
}

/// Source and destination of a well-formed IPv4 packet (for the fast path).
pub(crate) fn addrs(packet: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr)> {
    parse(packet).map(|a| (a.src, a.dst))
}

/// Builds a minimal IPv4/UDP-less packet (protocol 253, experimental) with
/// `payload`, for tests and examples.
pub fn build_test_packet(src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
    let total = 20 + payload.len();
    let mut p = Vec::with_capacity(total);
    p.extend_from_slice(&[0x45, 0]);
    p.extend_from_slice(&(total as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0, 64, 253, 0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    let mut sum: u32 = 0;
    for pair in p.chunks(2) {
        sum += u32::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let checksum = !(sum as u16);
    p[10..12].copy_from_slice(&checksum.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_valid_and_rejects_broken_headers() {
        let a = Ipv4Addr::new(10, 42, 0, 1);
        let b = Ipv4Addr::new(10, 42, 1, 1);
        let p = build_test_packet(a, b, b"hi");
        assert_eq!(parse(&p), Some(Addrs { src: a, dst: b }));
        assert_eq!(parse(&p[..19]), None);
        assert_eq!(parse(&[]), None);
        let mut v6 = p.clone();
        v6[0] = 0x60;
        assert_eq!(parse(&v6), None);
        let mut short_ihl = p.clone();
        short_ihl[0] = 0x44;
        assert_eq!(parse(&short_ihl), None);
        let mut long_total = p;
        long_total[3] = 200;
        assert_eq!(parse(&long_total), None);
    }
}
