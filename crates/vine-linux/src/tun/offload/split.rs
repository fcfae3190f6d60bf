//! TX direction: a packet read from an offloading TUN (virtio header +
//! possibly a TSO/USO super-packet of up to 64 KiB) becomes wire-sized
//! IPv4 packets with complete checksums, laid out so the caller can encrypt
//! each one in place.

use vine_core::wire::checksum::{fold, pseudo_header_sum, sum};
use vine_core::wire::ipv4;

use super::vnet::{
    OffloadError, TCP_CSUM_OFFSET, TCP_CWR, TCP_FIN, TCP_PSH, UDP_CSUM_OFFSET,
    VIRTIO_NET_HDR_GSO_NONE, VIRTIO_NET_HDR_GSO_TCPV4, VIRTIO_NET_HDR_GSO_UDP_L4,
    VIRTIO_NET_HDR_LEN, VirtioNetHdr, complete_checksum,
};

/// Default for [`SegmentBuf::max_segments`]: a 64 KiB super-packet cut at
/// an MSS of 128 bytes or more.
pub const DEFAULT_MAX_SEGMENTS: usize = 512;

/// Slots are aligned to this many bytes.
const SLOT_ALIGN: usize = 16;

/// Caller-owned, reusable storage for the segments of one [`split`].
///
/// Segment `i` is an IPv4 packet at `i * stride() + headroom()`, followed
/// by at least `tailroom()` free bytes, so a caller can write a transport
/// header in front of it and an authentication tag (and padding) behind it
/// without copying ([`SegmentBuf::slot_mut`]). The stride is chosen per
/// split from the largest segment; the storage only grows (up to
/// `max_segments` slots of the largest stride seen).
#[derive(Debug, Clone)]
pub struct SegmentBuf {
    data: Vec<u8>,
    lens: Vec<usize>,
    headroom: usize,
    tailroom: usize,
    stride: usize,
    max_segments: usize,
}

impl SegmentBuf {
    /// Empty storage with `headroom` bytes before and `tailroom` bytes
    /// after every segment, holding up to [`DEFAULT_MAX_SEGMENTS`].
    pub fn new(headroom: usize, tailroom: usize) -> SegmentBuf {
        SegmentBuf::with_max_segments(headroom, tailroom, DEFAULT_MAX_SEGMENTS)
    }

    /// Like [`SegmentBuf::new`] with another segment limit (at least 1);
    /// [`split`] refuses super-packets that would need more.
    pub fn with_max_segments(headroom: usize, tailroom: usize, max_segments: usize) -> SegmentBuf {
        SegmentBuf {
            data: Vec::new(),
            lens: Vec::new(),
            headroom,
            tailroom,
            stride: 0,
            max_segments: max_segments.max(1),
        }
    }

    /// Bytes reserved before each segment.
    pub fn headroom(&self) -> usize {
        self.headroom
    }

    /// Bytes reserved after each segment.
    pub fn tailroom(&self) -> usize {
        self.tailroom
    }

    /// Distance between consecutive slots for the current segments.
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// The segment limit.
    pub fn max_segments(&self) -> usize {
        self.max_segments
    }

    /// Number of segments from the last [`split`].
    pub fn len(&self) -> usize {
        self.lens.len()
    }

    /// Whether there are no segments.
    pub fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }

    /// Segment `i` (an IPv4 packet). Panics if `i >= len()`.
    pub fn segment(&self, i: usize) -> &[u8] {
        let start = i * self.stride + self.headroom;
        &self.data[start..start + self.lens[i]]
    }

    /// Segment `i`, mutable. Panics if `i >= len()`.
    pub fn segment_mut(&mut self, i: usize) -> &mut [u8] {
        let start = i * self.stride + self.headroom;
        &mut self.data[start..start + self.lens[i]]
    }

    /// The whole slot of segment `i` (`headroom` bytes, the packet, then at
    /// least `tailroom` bytes) and the packet's length; the packet starts at
    /// offset `headroom()`. Panics if `i >= len()`.
    pub fn slot_mut(&mut self, i: usize) -> (&mut [u8], usize) {
        let len = self.lens[i];
        let start = i * self.stride;
        (&mut self.data[start..start + self.stride], len)
    }

    /// Every segment's slot (as [`SegmentBuf::slot_mut`]) with its
    /// packet's length, in order.
    pub fn slots_mut(&mut self) -> impl ExactSizeIterator<Item = (&mut [u8], usize)> + '_ {
        let count = self.lens.len();
        self.data
            .chunks_mut(self.stride.max(1))
            .zip(self.lens.iter().copied())
            .take(count)
    }

    /// The whole slot of segment `i`, read-only (see [`SegmentBuf::slot_mut`]).
    /// Panics if `i >= len()`.
    pub fn slot(&self, i: usize) -> &[u8] {
        let start = i * self.stride;
        &self.data[start..start + self.stride]
    }

    /// The segments in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        (0..self.len()).map(|i| self.segment(i))
    }

    fn clear(&mut self) {
        self.lens.clear();
        self.stride = 0;
    }

    /// Makes room for `count` segments of at most `max_len` bytes and
    /// returns the stride.
    fn prepare(&mut self, count: usize, max_len: usize) -> usize {
        let stride = (self.headroom + max_len + self.tailroom).next_multiple_of(SLOT_ALIGN);
        let needed = stride * count;
        if self.data.len() < needed {
            self.data.resize(needed, 0);
        }
        self.stride = stride;
        stride
    }

    /// The slot of segment `i` as a packet buffer of `len` bytes.
    fn packet_mut(&mut self, i: usize, len: usize) -> &mut [u8] {
        let start = i * self.stride + self.headroom;
        &mut self.data[start..start + len]
    }
}

/// Splits one packet read with [`crate::tun::Tun::read_vnet`] (virtio
/// header first) into `out` and returns the number of segments.
///
/// - `GSO_NONE`: one segment, a copy of the packet (any IP version), with
///   its checksum completed when `NEEDS_CSUM` is set.
/// - `GSO_TCPV4` (TSO): per segment the IPv4 total length, id (`+i`) and
///   header checksum, the TCP sequence number, FIN/PSH only on the last and
///   CWR only on the first segment, and a full TCP checksum.
/// - `GSO_UDP_L4` (USO) over IPv4: per segment the IPv4 fields, the UDP
///   length and a full UDP checksum.
///
/// Anything else, and any inconsistent or truncated input, is an error;
/// `out` is then empty.
pub fn split(packet_with_hdr: &[u8], out: &mut SegmentBuf) -> Result<usize, OffloadError> {
    out.clear();
    let hdr = VirtioNetHdr::decode(packet_with_hdr)?;
    let packet = &packet_with_hdr[VIRTIO_NET_HDR_LEN..];
    match hdr.gso_type {
        VIRTIO_NET_HDR_GSO_NONE => split_none(&hdr, packet, out),
        VIRTIO_NET_HDR_GSO_TCPV4 => split_gso(&hdr, packet, out, L4::Tcp),
        VIRTIO_NET_HDR_GSO_UDP_L4 => split_gso(&hdr, packet, out, L4::Udp),
        gso_type => Err(OffloadError::UnsupportedGso { gso_type }),
    }
}

fn split_none(
    hdr: &VirtioNetHdr,
    packet: &[u8],
    out: &mut SegmentBuf,
) -> Result<usize, OffloadError> {
    if packet.is_empty() {
        return Err(OffloadError::Malformed("empty packet"));
    }
    if packet.len() > ipv4::MAX_PACKET {
        return Err(OffloadError::Malformed("packet longer than 65535 bytes"));
    }
    out.prepare(1, packet.len());
    let seg = out.packet_mut(0, packet.len());
    seg.copy_from_slice(packet);
    if hdr.needs_csum() {
        complete_checksum(seg, hdr.csum_start, hdr.csum_offset)?;
    }
    out.lens.push(packet.len());
    Ok(1)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum L4 {
    Tcp,
    Udp,
}

fn split_gso(
    hdr: &VirtioNetHdr,
    packet: &[u8],
    out: &mut SegmentBuf,
    l4: L4,
) -> Result<usize, OffloadError> {
    let version = packet.first().map_or(0, |b| b >> 4);
    if version != 4 {
        return Err(OffloadError::NotIpv4 { version });
    }
    let ip = ipv4::Header::parse(packet).ok_or(OffloadError::Malformed("truncated IPv4 header"))?;
    let (protocol, csum_offset) = match l4 {
        L4::Tcp => (ipv4::PROTO_TCP, TCP_CSUM_OFFSET),
        L4::Udp => (ipv4::PROTO_UDP, UDP_CSUM_OFFSET),
    };
    if ip.protocol != protocol {
        return Err(OffloadError::Malformed(
            "GSO type does not match the IP protocol",
        ));
    }
    if ip.fragment {
        return Err(OffloadError::Malformed("GSO super-packet is a fragment"));
    }
    if hdr.needs_csum() && (usize::from(hdr.csum_start) != ip.ihl || hdr.csum_offset != csum_offset)
    {
        return Err(OffloadError::Malformed(
            "checksum start/offset do not point at the L4 checksum",
        ));
    }
    if usize::from(hdr.hdr_len) > packet.len() {
        return Err(OffloadError::Malformed("hdr_len beyond the packet"));
    }
    let l4_hdr_len = match l4 {
        L4::Tcp => {
            let doff = packet
                .get(ip.ihl + 12)
                .ok_or(OffloadError::Malformed("truncated TCP header"))?;
            usize::from(doff >> 4) * 4
        }
        L4::Udp => 8,
    };
    if l4_hdr_len < 20 && l4 == L4::Tcp {
        return Err(OffloadError::Malformed("TCP data offset below 5"));
    }
    let hdr_len = ip.ihl + l4_hdr_len;
    if hdr_len > packet.len() {
        return Err(OffloadError::Malformed("truncated L4 header"));
    }
    let gso_size = usize::from(hdr.gso_size);
    if gso_size == 0 {
        return Err(OffloadError::Malformed("gso_size is 0"));
    }
    let payload = &packet[hdr_len..];
    if payload.is_empty() {
        return Err(OffloadError::Malformed("GSO super-packet without payload"));
    }
    let max_len = hdr_len + gso_size.min(payload.len());
    if max_len > ipv4::MAX_PACKET {
        return Err(OffloadError::Malformed(
            "segment would exceed the IPv4 maximum",
        ));
    }
    let count = payload.len().div_ceil(gso_size);
    if count > out.max_segments {
        return Err(OffloadError::TooManySegments {
            needed: count,
            max: out.max_segments,
        });
    }

    out.prepare(count, max_len);
    let (src, dst) = ipv4::addr_bytes(packet);
    let first_id = u16::from_be_bytes([packet[4], packet[5]]);
    let l4_start = ip.ihl;
    let first_seq = u32::from_be_bytes([
        packet[l4_start + 4],
        packet[l4_start + 5],
        packet[l4_start + 6],
        packet[l4_start + 7],
    ]);
    for (i, chunk) in payload.chunks(gso_size).enumerate() {
        let len = hdr_len + chunk.len();
        let last = i + 1 == count;
        let seg = out.packet_mut(i, len);
        seg[..hdr_len].copy_from_slice(&packet[..hdr_len]);
        seg[hdr_len..].copy_from_slice(chunk);
        // The IPv4 id increments per segment, as the kernel's GSO does.
        // `i` and `len` fit in 16 bits: count <= payload length and
        // len <= ipv4::MAX_PACKET.
        let id = first_id.wrapping_add(i as u16);
        seg[4..6].copy_from_slice(&id.to_be_bytes());
        ipv4::set_len_and_checksum(seg, ip.ihl, len as u16);
        let l4_len = (len - l4_start) as u16;
        let csum_at = l4_start + usize::from(csum_offset);
        match l4 {
            L4::Tcp => {
                let seq = first_seq.wrapping_add((i * gso_size) as u32);
                seg[l4_start + 4..l4_start + 8].copy_from_slice(&seq.to_be_bytes());
                let flags = &mut seg[l4_start + 13];
                if !last {
                    *flags &= !(TCP_FIN | TCP_PSH);
                }
                if i > 0 {
                    *flags &= !TCP_CWR;
                }
            }
            L4::Udp => {
                seg[l4_start + 4..l4_start + 6].copy_from_slice(&l4_len.to_be_bytes());
            }
        }
        seg[csum_at..csum_at + 2].copy_from_slice(&[0, 0]);
        let initial = pseudo_header_sum(src, dst, protocol, l4_len);
        let mut csum = !fold(sum(&seg[l4_start..], initial));
        if l4 == L4::Udp && csum == 0 {
            // 0 means "no checksum" in UDP; the same value is 0xffff.
            csum = 0xffff;
        }
        seg[csum_at..csum_at + 2].copy_from_slice(&csum.to_be_bytes());
        out.lens.push(len);
    }
    Ok(count)
}
