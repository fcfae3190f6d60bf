//! The IPv4 header view: just enough parsing for routing and source
//! authorization ([`parse`]), the fields the TUN offloads look at
//! ([`Header`]), and the few packets vine writes itself (ICMP
//! "fragmentation needed", test packets).

use std::net::Ipv4Addr;

use super::checksum::checksum;

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

/// Source and destination of a well-formed IPv4 packet (for the dataplane).
pub fn addrs(packet: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr)> {
    parse(packet).map(|a| (a.src, a.dst))
}

/// Whether the packet's Don't Fragment bit is set (its sender does path
/// MTU discovery and wants to hear when it is too big).
pub fn dont_fragment(packet: &[u8]) -> bool {
    packet.get(6).is_some_and(|flags| flags & 0x40 != 0)
}

/// An ICMP "destination unreachable: fragmentation needed and DF set"
/// (type 3, code 4, RFC 1191) answering `packet` on behalf of its
/// destination: it tells the sender's kernel that packets to that address
/// may be at most `mtu` bytes, so TCP lowers its segment size and UDP
/// senders fragment before the overlay. It quotes the packet's IP header and
/// the first 8 bytes after it, as RFC 792 requires.
///
/// `None` for what must never be answered with an ICMP error (RFC 1122
/// 3.2.2): a malformed packet, a fragment other than the first, or an ICMP
/// error itself.
pub fn frag_needed(packet: &[u8], mtu: u16) -> Option<Vec<u8>> {
    let addrs = parse(packet)?;
    let ihl = usize::from(packet[0] & 0x0f) * 4;
    let offset = u16::from_be_bytes([packet[6], packet[7]]) & 0x1fff;
    if offset != 0 {
        return None;
    }
    if packet[9] == 1 {
        // Only queries (echo, timestamp, ...) may be answered with errors.
        let kind = *packet.get(ihl)?;
        if matches!(kind, 3 | 4 | 5 | 11 | 12) {
            return None;
        }
    }
    let quote = &packet[..(ihl + 8).min(packet.len())];
    let total = 20 + 8 + quote.len();
    let mut icmp = Vec::with_capacity(total);
    icmp.extend_from_slice(&[0x45, 0]);
    icmp.extend_from_slice(&(total as u16).to_be_bytes());
    icmp.extend_from_slice(&[0, 0, 0, 0, 64, 1, 0, 0]);
    icmp.extend_from_slice(&addrs.dst.octets());
    icmp.extend_from_slice(&addrs.src.octets());
    let ip_sum = checksum(&icmp[..20]);
    icmp[10..12].copy_from_slice(&ip_sum.to_be_bytes());
    icmp.extend_from_slice(&[3, 4, 0, 0, 0, 0]);
    icmp.extend_from_slice(&mtu.to_be_bytes());
    icmp.extend_from_slice(quote);
    let icmp_sum = checksum(&icmp[20..]);
    icmp[22..24].copy_from_slice(&icmp_sum.to_be_bytes());
    Some(icmp)
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
    let sum = checksum(&p);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// Sets the Don't Fragment bit of a packet made by [`build_test_packet`]
/// and recomputes its header checksum (for tests of path MTU handling).
pub fn set_dont_fragment(packet: &mut [u8]) {
    packet[6] |= 0x40;
    packet[10..12].fill(0);
    let sum = checksum(&packet[..20]);
    packet[10..12].copy_from_slice(&sum.to_be_bytes());
}

/// Largest IPv4 packet (the total-length field is 16 bits).
pub const MAX_PACKET: usize = 65_535;

/// The protocol number of TCP.
pub const PROTO_TCP: u8 = 6;
/// The protocol number of UDP.
pub const PROTO_UDP: u8 = 17;

/// The parts of an IPv4 header the TUN offloads look at.
#[derive(Debug, Clone, Copy)]
pub struct Header {
    /// Header length in bytes (20 to 60).
    pub ihl: usize,
    /// The total-length field.
    pub total_len: usize,
    /// The protocol field.
    pub protocol: u8,
    /// MF set or a non-zero fragment offset.
    pub fragment: bool,
}

impl Header {
    /// Parses the fixed header; `None` unless `p` starts with a complete
    /// IPv4 header.
    pub fn parse(p: &[u8]) -> Option<Header> {
        let first = *p.first()?;
        if first >> 4 != 4 {
            return None;
        }
        let ihl = usize::from(first & 0x0f) * 4;
        if ihl < 20 || p.len() < ihl {
            return None;
        }
        Some(Header {
            ihl,
            total_len: usize::from(u16::from_be_bytes([p[2], p[3]])),
            protocol: p[9],
            fragment: u16::from_be_bytes([p[6], p[7]]) & 0x3fff != 0,
        })
    }
}

/// Writes the IPv4 total length and recomputes the header checksum of
/// `packet` (whose header is `ihl` bytes).
pub fn set_len_and_checksum(packet: &mut [u8], ihl: usize, total_len: u16) {
    packet[2..4].copy_from_slice(&total_len.to_be_bytes());
    packet[10..12].copy_from_slice(&[0, 0]);
    let csum = checksum(&packet[..ihl]);
    packet[10..12].copy_from_slice(&csum.to_be_bytes());
}

/// The source and destination addresses of an IPv4 packet as bytes (the
/// caller checked that the header is there).
pub fn addr_bytes(packet: &[u8]) -> ([u8; 4], [u8; 4]) {
    let mut src = [0u8; 4];
    let mut dst = [0u8; 4];
    src.copy_from_slice(&packet[12..16]);
    dst.copy_from_slice(&packet[16..20]);
    (src, dst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frag_needed_quotes_the_packet_and_answers_only_what_may_be_answered() {
        let a = Ipv4Addr::new(10, 42, 0, 1);
        let b = Ipv4Addr::new(10, 42, 1, 1);
        let mut p = build_test_packet(a, b, &[7u8; 1400]);
        set_dont_fragment(&mut p);
        assert_eq!(checksum(&p[..20]), 0, "header checksum still valid");
        assert!(dont_fragment(&p));
        let icmp = frag_needed(&p, 1360).expect("answered");
        assert_eq!(icmp.len(), 20 + 8 + 28);
        assert_eq!(
            parse(&icmp),
            Some(Addrs { src: b, dst: a }),
            "from the destination, to the sender"
        );
        assert_eq!(icmp[9], 1, "ICMP");
        assert_eq!(checksum(&icmp[..20]), 0, "IP checksum");
        assert_eq!(&icmp[20..22], &[3, 4], "fragmentation needed");
        assert_eq!(checksum(&icmp[20..]), 0, "ICMP checksum");
        assert_eq!(u16::from_be_bytes([icmp[26], icmp[27]]), 1360);
        assert_eq!(&icmp[28..], &p[..28], "quotes the header and 8 bytes");
        // Never for a later fragment, an ICMP error or garbage.
        let mut later = p.clone();
        later[7] = 1;
        assert_eq!(frag_needed(&later, 1360), None);
        let mut error = p.clone();
        error[9] = 1;
        error[20] = 3;
        assert_eq!(frag_needed(&error, 1360), None);
        let mut echo = error.clone();
        echo[20] = 8;
        assert!(
            frag_needed(&echo, 1360).is_some(),
            "an echo request is answered"
        );
        assert_eq!(frag_needed(&p[..10], 1360), None);
        let mut no_df = p.clone();
        no_df[6] = 0;
        assert!(!dont_fragment(&no_df));
    }

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
