//! RX direction (GRO): decrypted IPv4 packets are collected and consecutive
//! TCP (and optionally UDP) segments of one flow are merged into a single
//! super-packet that the kernel accepts from a TUN with offloads, so its
//! stack handles one 64 KiB packet instead of ~45 small ones.
//!
//! The rules follow the kernel's own GRO: same addresses and ports, TOS,
//! TTL and DF; TCP sequence numbers that continue exactly, the same ack,
//! window and options; only ACK (plus PSH on the last segment); every
//! segment but the last carries the same payload size; valid checksums;
//! at most 64 KiB in total. Anything else is written as it came, behind a
//! zero virtio header.

use std::io;

use vine_core::wire::checksum::{fold, pseudo_header_sum, sum};
use vine_core::wire::ipv4;

use super::vnet::{
    TCP_ACK, TCP_CSUM_OFFSET, TCP_PSH, UDP_CSUM_OFFSET, VIRTIO_NET_HDR_F_NEEDS_CSUM,
    VIRTIO_NET_HDR_GSO_TCPV4, VIRTIO_NET_HDR_GSO_UDP_L4, VIRTIO_NET_HDR_LEN, VirtioNetHdr,
};

/// Default for [`Coalescer::new`]'s packet limit.
pub const DEFAULT_MAX_PACKETS: usize = 128;

/// The kernel refuses UDP super-packets of more segments
/// (`UDP_MAX_SEGMENTS`).
const MAX_UDP_SEGMENTS: u16 = 64;

/// The header of an IPv4 packet that may be merged: no options.
const IP_HDR: usize = 20;

/// Why [`Coalescer::push`] did not take a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CoalesceError {
    /// Every slot is in use: [`Coalescer::flush`], then push again.
    #[error("coalescer holds {max} packets already; flush it first")]
    Full {
        /// The limit.
        max: usize,
    },
    /// Longer than any IPv4 packet can be.
    #[error("packet of {len} bytes is longer than an IPv4 packet can be")]
    TooLarge {
        /// The packet's length.
        len: usize,
    },
}

/// Collects decrypted IPv4 packets for one TUN and writes them, merged
/// where possible, with [`Coalescer::flush`].
///
/// Holds at most `max_packets` pending output packets, each in a buffer
/// that is reused across flushes (so memory stays below `max_packets` ×
/// 64 KiB and nothing is allocated once the buffers have grown).
#[derive(Debug)]
pub struct Coalescer {
    slots: Vec<Slot>,
    used: usize,
    max_packets: usize,
    uso: bool,
    /// Check each segment's TCP/UDP checksum before merging it.
    verify: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FlowKey {
    src: [u8; 4],
    dst: [u8; 4],
    src_port: u16,
    dst_port: u16,
    protocol: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    Tcp,
    Udp,
}

/// A pending packet that later segments of its flow may extend.
#[derive(Debug, Clone, Copy)]
struct Merge {
    proto: Proto,
    /// TCP header with options, or the 8-byte UDP header.
    l4_hdr_len: usize,
    /// Payload bytes of the first segment: every segment but the last
    /// carries exactly this much.
    gso_size: usize,
    /// The sequence number the next TCP segment must carry.
    next_seq: u32,
    segments: u16,
    /// False once a short segment, a PSH or a bad checksum closed it.
    open: bool,
}

#[derive(Debug, Default)]
struct Slot {
    /// A virtio header (zero until flush) and then the IPv4 packet.
    buf: Vec<u8>,
    /// The flow, for TCP and UDP packets whose ports are readable.
    key: Option<FlowKey>,
    merge: Option<Merge>,
}

/// What [`classify`] found out about a pushed packet.
struct Class<'a> {
    /// The packet, trimmed to its IPv4 total length when that is sane.
    packet: &'a [u8],
    key: Option<FlowKey>,
    candidate: Option<Candidate>,
}

/// A segment that may start or extend a merge.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    proto: Proto,
    l4_hdr_len: usize,
    payload_len: usize,
    seq: u32,
    psh: bool,
}

impl Coalescer {
    /// An empty coalescer holding up to `max_packets` (at least 1) pending
    /// output packets. `uso`: also merge UDP datagrams (only when the TUN
    /// accepted `TUN_F_USO4`, i.e. [`crate::tun::Offloads::uso`]).
    pub fn new(max_packets: usize, uso: bool) -> Coalescer {
        Coalescer {
            slots: Vec::new(),
            used: 0,
            max_packets: max_packets.max(1),
            uso,
            verify: true,
        }
    }

    /// Skips the per-segment checksum check before merging. For packets
    /// whose integrity is already proven — vine's receive path only pushes
    /// packets that authenticated (ChaCha20-Poly1305) as sent by an
    /// enrolled peer, whose sender completed every checksum — the check is
    /// a second pass over every byte for nothing (about 2 % of the data
    /// plane's CPU time).
    pub fn trusting_checksums(mut self) -> Coalescer {
        self.verify = false;
        self
    }

    /// Number of pending output packets.
    pub fn pending(&self) -> usize {
        self.used
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.used == 0
    }

    /// Whether a push that cannot merge would fail with
    /// [`CoalesceError::Full`].
    pub fn is_full(&self) -> bool {
        self.used == self.max_packets
    }

    /// Whether UDP datagrams are merged.
    pub fn uso(&self) -> bool {
        self.uso
    }

    /// Adds one IPv4 packet: appended to the latest pending packet of its
    /// flow when the merge rules allow, else queued on its own.
    pub fn push(&mut self, packet: &[u8]) -> Result<(), CoalesceError> {
        if packet.len() > ipv4::MAX_PACKET {
            return Err(CoalesceError::TooLarge { len: packet.len() });
        }
        let class = classify(packet, self.uso);
        if let (Some(key), Some(cand)) = (class.key, class.candidate) {
            let latest = self.slots[..self.used]
                .iter_mut()
                .rev()
                .find(|s| s.key == Some(key));
            if let Some(slot) = latest
                && slot.try_append(&cand, class.packet, self.verify)
            {
                return Ok(());
            }
        }
        if self.is_full() {
            return Err(CoalesceError::Full {
                max: self.max_packets,
            });
        }
        if self.used == self.slots.len() {
            self.slots.push(Slot::default());
        }
        let slot = &mut self.slots[self.used];
        self.used += 1;
        slot.buf.clear();
        slot.buf.extend_from_slice(&[0u8; VIRTIO_NET_HDR_LEN]);
        slot.buf.extend_from_slice(class.packet);
        slot.key = class.key;
        slot.merge = class.candidate.map(|c| Merge {
            proto: c.proto,
            l4_hdr_len: c.l4_hdr_len,
            gso_size: c.payload_len,
            next_seq: c.seq.wrapping_add(c.payload_len as u32),
            segments: 1,
            open: !c.psh,
        });
        Ok(())
    }

    /// Writes every pending packet, each behind its 10-byte virtio header,
    /// in the order the flows arrived (per flow, in packet order), and
    /// empties the coalescer. Every packet is attempted; the first write
    /// error is returned.
    pub fn flush(&mut self, mut write: impl FnMut(&[u8]) -> io::Result<usize>) -> io::Result<()> {
        let mut first_error = None;
        for slot in &mut self.slots[..self.used] {
            slot.finish();
            if let Err(e) = write(&slot.buf) {
                first_error.get_or_insert(e);
            }
        }
        self.used = 0;
        first_error.map_or(Ok(()), Err)
    }
}

impl Slot {
    fn packet(&self) -> &[u8] {
        &self.buf[VIRTIO_NET_HDR_LEN..]
    }

    /// Appends `cand`'s payload if the merge rules allow.
    fn try_append(&mut self, cand: &Candidate, packet: &[u8], verify: bool) -> bool {
        let Some(mut m) = self.merge else {
            return false;
        };
        if !m.open || !can_merge(&m, self.packet(), cand, packet) {
            return false;
        }
        if verify && m.segments == 1 && !l4_checksum_valid(self.packet(), m.proto) {
            // Never extend a packet whose own checksum is bad: the merged
            // packet's checksum is computed afresh and would hide it.
            m.open = false;
            self.merge = Some(m);
            return false;
        }
        if verify && !l4_checksum_valid(packet, cand.proto) {
            return false;
        }
        self.buf
            .extend_from_slice(&packet[IP_HDR + cand.l4_hdr_len..]);
        if cand.psh {
            self.buf[VIRTIO_NET_HDR_LEN + IP_HDR + 13] |= TCP_PSH;
        }
        m.segments += 1;
        m.next_seq = m.next_seq.wrapping_add(cand.payload_len as u32);
        if cand.payload_len < m.gso_size
            || cand.psh
            || (m.proto == Proto::Udp && m.segments >= MAX_UDP_SEGMENTS)
        {
            m.open = false;
        }
        self.merge = Some(m);
        true
    }

    /// Fixes the IPv4 header and fills in the virtio header of a merged
    /// packet; a single packet keeps its zero header and its bytes.
    fn finish(&mut self) {
        let Some(m) = self.merge else { return };
        if m.segments < 2 {
            return;
        }
        let (gso_type, csum_offset, protocol) = match m.proto {
            Proto::Tcp => (VIRTIO_NET_HDR_GSO_TCPV4, TCP_CSUM_OFFSET, ipv4::PROTO_TCP),
            Proto::Udp => (VIRTIO_NET_HDR_GSO_UDP_L4, UDP_CSUM_OFFSET, ipv4::PROTO_UDP),
        };
        let packet = &mut self.buf[VIRTIO_NET_HDR_LEN..];
        // Merging stops before 64 KiB, so the lengths fit in 16 bits.
        let total = packet.len() as u16;
        let l4_len = total - IP_HDR as u16;
        ipv4::set_len_and_checksum(packet, IP_HDR, total);
        if m.proto == Proto::Udp {
            packet[IP_HDR + 4..IP_HDR + 6].copy_from_slice(&l4_len.to_be_bytes());
        }
        // CHECKSUM_PARTIAL: the field holds the folded pseudo-header sum,
        // the kernel adds the rest from csum_start on.
        let (src, dst) = ipv4::addr_bytes(packet);
        let partial = fold(pseudo_header_sum(src, dst, protocol, l4_len));
        let at = IP_HDR + usize::from(csum_offset);
        packet[at..at + 2].copy_from_slice(&partial.to_be_bytes());
        let hdr = VirtioNetHdr {
            flags: VIRTIO_NET_HDR_F_NEEDS_CSUM,
            gso_type,
            hdr_len: (IP_HDR + m.l4_hdr_len) as u16,
            gso_size: m.gso_size as u16,
            csum_start: IP_HDR as u16,
            csum_offset,
        };
        self.buf[..VIRTIO_NET_HDR_LEN].copy_from_slice(&hdr.encode());
    }
}

/// The merge rules between the pending `head` (state `m`) and `packet`;
/// the flow key already matched.
fn can_merge(m: &Merge, head: &[u8], cand: &Candidate, packet: &[u8]) -> bool {
    let same_ip = head[1] == packet[1] // TOS (DSCP + ECN)
        && head[6] >> 5 == packet[6] >> 5 // reserved, DF, MF bits
        && head[8] == packet[8]; // TTL
    if !same_ip
        || m.proto != cand.proto
        || cand.payload_len > m.gso_size
        || head.len() + cand.payload_len > ipv4::MAX_PACKET
    {
        return false;
    }
    match m.proto {
        Proto::Udp => m.segments < MAX_UDP_SEGMENTS,
        Proto::Tcp => {
            let t = IP_HDR;
            cand.l4_hdr_len == m.l4_hdr_len
                && cand.seq == m.next_seq
                && head[t + 8..t + 12] == packet[t + 8..t + 12] // ack
                && head[t + 14..t + 16] == packet[t + 14..t + 16] // window
                && head[t + 20..t + m.l4_hdr_len] == packet[t + 20..t + m.l4_hdr_len] // options
        }
    }
}

/// Whether the TCP/UDP checksum of an option-less IPv4 `packet` verifies
/// (a zero UDP checksum means none and passes).
fn l4_checksum_valid(packet: &[u8], proto: Proto) -> bool {
    let protocol = match proto {
        Proto::Tcp => ipv4::PROTO_TCP,
        Proto::Udp => {
            if packet[IP_HDR + 6..IP_HDR + 8] == [0, 0] {
                return true;
            }
            ipv4::PROTO_UDP
        }
    };
    let (src, dst) = ipv4::addr_bytes(packet);
    // Candidates are at most 64 KiB.
    let l4_len = (packet.len() - IP_HDR) as u16;
    fold(sum(
        &packet[IP_HDR..],
        pseudo_header_sum(src, dst, protocol, l4_len),
    )) == 0xffff
}

fn classify(packet: &[u8], uso: bool) -> Class<'_> {
    let none = Class {
        packet,
        key: None,
        candidate: None,
    };
    let Some(ip) = ipv4::Header::parse(packet) else {
        return none;
    };
    if ip.total_len < ip.ihl || ip.total_len > packet.len() {
        return none;
    }
    let packet = &packet[..ip.total_len];
    let mut class = Class {
        packet,
        key: None,
        candidate: None,
    };
    let proto = match ip.protocol {
        ipv4::PROTO_TCP => Proto::Tcp,
        ipv4::PROTO_UDP if uso => Proto::Udp,
        _ => return class,
    };
    if ip.fragment || packet.len() < ip.ihl + 4 {
        return class;
    }
    let (src, dst) = ipv4::addr_bytes(packet);
    let l4 = &packet[ip.ihl..];
    class.key = Some(FlowKey {
        src,
        dst,
        src_port: u16::from_be_bytes([l4[0], l4[1]]),
        dst_port: u16::from_be_bytes([l4[2], l4[3]]),
        protocol: ip.protocol,
    });
    if ip.ihl != IP_HDR {
        return class;
    }
    class.candidate = match proto {
        Proto::Tcp => tcp_candidate(l4),
        Proto::Udp => udp_candidate(l4),
    };
    class
}

fn tcp_candidate(l4: &[u8]) -> Option<Candidate> {
    let doff = usize::from(*l4.get(12)? >> 4) * 4;
    if doff < 20 || l4.len() <= doff {
        return None; // bad header, or no payload
    }
    let flags = l4[13];
    if flags & !TCP_PSH != TCP_ACK {
        return None;
    }
    Some(Candidate {
        proto: Proto::Tcp,
        l4_hdr_len: doff,
        payload_len: l4.len() - doff,
        seq: u32::from_be_bytes([l4[4], l4[5], l4[6], l4[7]]),
        psh: flags & TCP_PSH != 0,
    })
}

fn udp_candidate(l4: &[u8]) -> Option<Candidate> {
    let len = usize::from(u16::from_be_bytes([*l4.get(4)?, *l4.get(5)?]));
    if len != l4.len() || len <= 8 {
        return None;
    }
    Some(Candidate {
        proto: Proto::Udp,
        l4_hdr_len: 8,
        payload_len: len - 8,
        seq: 0,
        psh: false,
    })
}
