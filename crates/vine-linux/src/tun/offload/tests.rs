//! Offload unit tests: checksums, the virtio header and split, with the
//! packet builders the coalescer tests ([`coalesce`]) share; garbage input
//! must never panic.

use vine_core::wire::checksum::{checksum, fold, pseudo_header_sum, sum};
use vine_core::wire::ipv4;

use super::vnet::{TCP_ACK, TCP_CWR, TCP_FIN, TCP_PSH};
use super::*;

mod coalesce;

const SRC: [u8; 4] = [10, 77, 0, 1];
const DST: [u8; 4] = [10, 77, 0, 2];
/// A timestamp option (NOP, NOP, TS) as Linux sends on every segment.
const TS_OPTION: [u8; 12] = [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2];
const MSS: u16 = 1448;

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// RFC 1071, 16 bits at a time: the reference for [`checksum`].
fn slow_checksum(data: &[u8]) -> u16 {
    let mut sum: u64 = 0;
    for chunk in data.chunks(2) {
        sum += u64::from(u16::from_be_bytes([
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
        ]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[derive(Clone)]
struct Tcp {
    src_port: u16,
    dst_port: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    options: Vec<u8>,
    ttl: u8,
    tos: u8,
    id: u16,
}

impl Default for Tcp {
    fn default() -> Self {
        Tcp {
            src_port: 40000,
            dst_port: 5201,
            seq: 0xffff_f000, // wraps within a few segments
            ack: 77,
            flags: TCP_ACK,
            window: 500,
            options: TS_OPTION.to_vec(),
            ttl: 64,
            tos: 0,
            id: 0xfffe,
        }
    }
}

fn ipv4_header(protocol: u8, total: usize, id: u16, ttl: u8, tos: u8) -> Vec<u8> {
    let mut h = vec![0x45, tos];
    h.extend_from_slice(&(total as u16).to_be_bytes());
    h.extend_from_slice(&id.to_be_bytes());
    h.extend_from_slice(&[0x40, 0, ttl, protocol, 0, 0]);
    h.extend_from_slice(&SRC);
    h.extend_from_slice(&DST);
    let c = checksum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h
}

/// An IPv4 TCP packet; `full_csum` chooses a complete checksum or the
/// kernel's partial one (the pseudo-header sum).
fn tcp_packet(t: &Tcp, payload: &[u8], full_csum: bool) -> Vec<u8> {
    let tcp_len = 20 + t.options.len();
    let total = 20 + tcp_len + payload.len();
    let mut p = ipv4_header(ipv4::PROTO_TCP, total, t.id, t.ttl, t.tos);
    p.extend_from_slice(&t.src_port.to_be_bytes());
    p.extend_from_slice(&t.dst_port.to_be_bytes());
    p.extend_from_slice(&t.seq.to_be_bytes());
    p.extend_from_slice(&t.ack.to_be_bytes());
    p.push(((tcp_len / 4) as u8) << 4);
    p.push(t.flags);
    p.extend_from_slice(&t.window.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0]);
    p.extend_from_slice(&t.options);
    p.extend_from_slice(payload);
    fill_l4_checksum(&mut p, 16, full_csum);
    p
}

fn udp_packet(src_port: u16, payload: &[u8], full_csum: bool) -> Vec<u8> {
    let total = 28 + payload.len();
    let mut p = ipv4_header(ipv4::PROTO_UDP, total, 9, 64, 0);
    p.extend_from_slice(&src_port.to_be_bytes());
    p.extend_from_slice(&53u16.to_be_bytes());
    p.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    fill_l4_checksum(&mut p, 6, full_csum);
    p
}

fn fill_l4_checksum(p: &mut [u8], offset: usize, full: bool) {
    let l4_len = (p.len() - 20) as u16;
    let pseudo = pseudo_header_sum(SRC, DST, p[9], l4_len);
    let at = 20 + offset;
    p[at..at + 2].copy_from_slice(&[0, 0]);
    let c = if full {
        !fold(sum(&p[20..], pseudo))
    } else {
        fold(pseudo)
    };
    p[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

fn with_hdr(hdr: VirtioNetHdr, packet: &[u8]) -> Vec<u8> {
    let mut v = hdr.encode().to_vec();
    v.extend_from_slice(packet);
    v
}

/// A TSO super-packet as the kernel hands it out.
fn tso(t: &Tcp, payload: &[u8], gso_size: u16) -> Vec<u8> {
    let p = tcp_packet(t, payload, false);
    let hdr = VirtioNetHdr {
        flags: VIRTIO_NET_HDR_F_NEEDS_CSUM,
        gso_type: VIRTIO_NET_HDR_GSO_TCPV4,
        hdr_len: p.len().min(128) as u16, // the kernel's linear length
        gso_size,
        csum_start: 20,
        csum_offset: 16,
    };
    with_hdr(hdr, &p)
}

fn uso(payload: &[u8], gso_size: u16) -> Vec<u8> {
    let p = udp_packet(4000, payload, false);
    let hdr = VirtioNetHdr {
        flags: VIRTIO_NET_HDR_F_NEEDS_CSUM,
        gso_type: VIRTIO_NET_HDR_GSO_UDP_L4,
        hdr_len: 28,
        gso_size,
        csum_start: 20,
        csum_offset: 6,
    };
    with_hdr(hdr, &p)
}

fn assert_ipv4_valid(p: &[u8]) {
    assert_eq!(checksum(&p[..20]), 0, "IPv4 header checksum");
    assert_eq!(
        usize::from(u16::from_be_bytes([p[2], p[3]])),
        p.len(),
        "total length"
    );
}

fn l4_valid(p: &[u8]) -> bool {
    let pseudo = pseudo_header_sum(SRC, DST, p[9], (p.len() - 20) as u16);
    fold(sum(&p[20..], pseudo)) == 0xffff
}

fn payload(n: usize, seed: u64) -> Vec<u8> {
    Rng(seed | 1).bytes(n)
}

fn split_vec(input: &[u8]) -> Vec<Vec<u8>> {
    let mut out = SegmentBuf::new(16, 31);
    let n = split(input, &mut out).expect("split");
    assert_eq!(n, out.len());
    out.iter().map(<[u8]>::to_vec).collect()
}

/// Flushes `c` and returns each write, header decoded.
fn flush_all(c: &mut Coalescer) -> Vec<(VirtioNetHdr, Vec<u8>)> {
    let mut written = Vec::new();
    c.flush(|b| {
        written.push((VirtioNetHdr::decode(b).expect("header"), b[10..].to_vec()));
        Ok(b.len())
    })
    .expect("flush");
    assert!(c.is_empty());
    written
}

fn push_all(c: &mut Coalescer, packets: &[Vec<u8>]) {
    for p in packets {
        c.push(p).expect("push");
    }
}

// ---- checksums and header ----

#[test]
fn checksum_matches_rfc1071_reference_at_every_length() {
    // The RFC 1071 example: words 0001 f203 f4f5 f6f7 sum to ddf2.
    assert_eq!(
        fold(sum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7], 0)),
        0xddf2
    );
    let mut rng = Rng(7);
    let data = rng.bytes(3000);
    for len in (0..200).chain([1499, 1500, 2999, 3000]) {
        assert_eq!(
            checksum(&data[..len]),
            slow_checksum(&data[..len]),
            "len {len}"
        );
    }
    let ones = vec![0xffu8; 70_000];
    assert_eq!(checksum(&ones), slow_checksum(&ones));
    // Sums compose when split at even offsets.
    let whole = fold(sum(&data, 0));
    assert_eq!(fold(sum(&data[1000..], sum(&data[..1000], 0))), whole);
}

#[test]
fn virtio_header_round_trips_little_endian() {
    let hdr = VirtioNetHdr {
        flags: 1,
        gso_type: 5,
        hdr_len: 0x1234,
        gso_size: 1448,
        csum_start: 20,
        csum_offset: 6,
    };
    let b = hdr.encode();
    assert_eq!(b, [1, 5, 0x34, 0x12, 0xa8, 0x05, 20, 0, 6, 0]);
    assert_eq!(VirtioNetHdr::decode(&b), Ok(hdr));
    assert_eq!(
        VirtioNetHdr::decode(&b[..9]),
        Err(OffloadError::ShortHeader { len: 9 })
    );
}

// ---- split ----

#[test]
fn tso_split_makes_independently_valid_segments() {
    let data = payload(10_000, 1);
    let t = Tcp {
        flags: TCP_ACK | TCP_PSH | TCP_FIN | TCP_CWR,
        ..Tcp::default()
    };
    let input = tso(&t, &data, MSS);
    let mut out = SegmentBuf::new(16, 31);
    assert_eq!(split(&input, &mut out), Ok(7));
    let hlen = 20 + 32;
    let mut joined = Vec::new();
    for (i, seg) in out.iter().enumerate() {
        let want = if i < 6 {
            usize::from(MSS)
        } else {
            10_000 - 6 * 1448
        };
        assert_eq!(seg.len(), hlen + want, "segment {i}");
        assert_ipv4_valid(seg);
        assert!(l4_valid(seg), "TCP checksum of segment {i}");
        let id = u16::from_be_bytes([seg[4], seg[5]]);
        assert_eq!(id, 0xfffeu16.wrapping_add(i as u16));
        let seq = u32::from_be_bytes([seg[24], seg[25], seg[26], seg[27]]);
        assert_eq!(seq, t.seq.wrapping_add(1448 * i as u32));
        let flags = seg[33];
        assert_eq!(flags & TCP_CWR != 0, i == 0, "CWR only first ({i})");
        assert_eq!(
            flags & (TCP_FIN | TCP_PSH) != 0,
            i == 6,
            "FIN/PSH only last"
        );
        assert_eq!(flags & TCP_ACK, TCP_ACK);
        assert_eq!(&seg[40..52], &TS_OPTION, "options copied");
        joined.extend_from_slice(&seg[hlen..]);
    }
    assert_eq!(joined, data);
    // Layout: room for a transport header and a tag around each segment.
    let stride = out.stride();
    assert!(stride >= 16 + hlen + 1448 + 31);
    for i in 0..out.len() {
        let seg = out.segment(i).to_vec();
        let (slot, len) = out.slot_mut(i);
        assert_eq!(slot.len(), stride);
        assert_eq!(len, seg.len());
        assert_eq!(&slot[16..16 + len], &seg[..]);
        assert!(slot.len() - 16 - len >= 31);
    }
}

#[test]
fn uso_split_makes_independently_valid_datagrams() {
    let data = payload(4000, 2);
    let input = uso(&data, 1200);
    let segs = split_vec(&input);
    assert_eq!(segs.len(), 4);
    let mut joined = Vec::new();
    for (i, seg) in segs.iter().enumerate() {
        assert_ipv4_valid(seg);
        assert!(l4_valid(seg), "UDP checksum of segment {i}");
        let udp_len = usize::from(u16::from_be_bytes([seg[24], seg[25]]));
        assert_eq!(udp_len, seg.len() - 20);
        assert_eq!(udp_len - 8, if i < 3 { 1200 } else { 400 });
        joined.extend_from_slice(&seg[28..]);
    }
    assert_eq!(joined, data);
}

#[test]
fn gso_none_is_copied_and_its_partial_checksum_completed() {
    let p = udp_packet(1234, b"hello offload", false);
    let hdr = VirtioNetHdr {
        flags: VIRTIO_NET_HDR_F_NEEDS_CSUM,
        csum_start: 20,
        csum_offset: 6,
        ..VirtioNetHdr::default()
    };
    let segs = split_vec(&with_hdr(hdr, &p));
    assert_eq!(segs.len(), 1);
    assert!(l4_valid(&segs[0]));
    assert_eq!(segs[0], udp_packet(1234, b"hello offload", true));

    let plain = tcp_packet(&Tcp::default(), b"x", true);
    assert_eq!(
        split_vec(&with_hdr(VirtioNetHdr::default(), &plain)),
        vec![plain]
    );
}

#[test]
fn unsupported_and_inconsistent_input_is_a_typed_error() {
    let good = tso(&Tcp::default(), &payload(3000, 3), MSS);
    let mut out = SegmentBuf::new(16, 31);
    let with = |f: &dyn Fn(&mut VirtioNetHdr, &mut Vec<u8>)| {
        let mut hdr = VirtioNetHdr::decode(&good).expect("header");
        let mut p = good[10..].to_vec();
        f(&mut hdr, &mut p);
        with_hdr(hdr, &p)
    };
    let cases: Vec<(Vec<u8>, OffloadError)> = vec![
        (
            with(&|h, _| h.gso_type = VIRTIO_NET_HDR_GSO_TCPV6),
            OffloadError::UnsupportedGso { gso_type: 4 },
        ),
        (
            with(&|h, _| h.gso_type |= VIRTIO_NET_HDR_GSO_ECN),
            OffloadError::UnsupportedGso { gso_type: 0x81 },
        ),
        (
            with(&|h, _| h.gso_type = VIRTIO_NET_HDR_GSO_UDP),
            OffloadError::UnsupportedGso { gso_type: 3 },
        ),
        (
            with(&|h, _| h.gso_type = 9),
            OffloadError::UnsupportedGso { gso_type: 9 },
        ),
        (
            with(&|_, p| p[0] = 0x60),
            OffloadError::NotIpv4 { version: 6 },
        ),
        (
            with(&|h, _| h.gso_size = 0),
            OffloadError::Malformed("gso_size is 0"),
        ),
        (
            with(&|h, _| h.csum_start = 24),
            OffloadError::Malformed("checksum start/offset do not point at the L4 checksum"),
        ),
        (
            with(&|h, _| h.csum_offset = 6),
            OffloadError::Malformed("checksum start/offset do not point at the L4 checksum"),
        ),
        (
            with(&|h, p| h.hdr_len = p.len() as u16 + 1),
            OffloadError::Malformed("hdr_len beyond the packet"),
        ),
        (
            with(&|_, p| p[9] = ipv4::PROTO_UDP),
            OffloadError::Malformed("GSO type does not match the IP protocol"),
        ),
        (
            with(&|_, p| p[6] |= 0x20),
            OffloadError::Malformed("GSO super-packet is a fragment"),
        ),
        (
            with(&|_, p| p[32] = 0x40),
            OffloadError::Malformed("TCP data offset below 5"),
        ),
        (
            with(&|h, p| {
                p.truncate(52);
                h.hdr_len = 52;
            }),
            OffloadError::Malformed("GSO super-packet without payload"),
        ),
    ];
    for (input, want) in cases {
        assert_eq!(split(&input, &mut out), Err(want));
        assert!(out.is_empty(), "no segments after an error");
    }
    let mut small = SegmentBuf::with_max_segments(0, 0, 2);
    assert_eq!(
        split(&good, &mut small),
        Err(OffloadError::TooManySegments { needed: 3, max: 2 })
    );
}

#[test]
fn truncated_and_random_input_never_panics() {
    let mut out = SegmentBuf::with_max_segments(16, 31, 64);
    let valid = [
        tso(&Tcp::default(), &payload(5000, 4), 1000),
        uso(&payload(3000, 5), 700),
        with_hdr(
            VirtioNetHdr {
                flags: 1,
                csum_start: 20,
                csum_offset: 6,
                ..VirtioNetHdr::default()
            },
            &udp_packet(1, b"abc", false),
        ),
    ];
    for v in &valid {
        for len in 0..=v.len() {
            let _ = split(&v[..len], &mut out);
        }
    }
    let mut rng = Rng(99);
    for round in 0..20_000 {
        let base = &valid[round % valid.len()];
        let mut v = if round % 2 == 0 {
            base[..rng.below(base.len() + 1)].to_vec()
        } else {
            let n = rng.below(400);
            rng.bytes(n)
        };
        // Corrupt a few bytes, mostly in the headers.
        for _ in 0..rng.below(4) {
            if !v.is_empty() {
                let at = rng.below(v.len().min(80));
                v[at] = rng.next() as u8;
            }
        }
        if v.len() > 1 && round % 3 == 0 {
            v[1] = [0, 1, 5][rng.below(3)]; // reach the GSO paths
        }
        if let Ok(n) = split(&v, &mut out) {
            assert_eq!(n, out.len());
        }
    }
}
