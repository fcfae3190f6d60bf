//! The `virtio_net_hdr` that prefixes every packet on a TUN opened with
//! `IFF_VNET_HDR`, the TCP/UDP header facts both directions use, and the
//! errors of both.

use vine_core::wire::checksum::{fold, sum};

/// Length of `struct virtio_net_hdr` (the TUN's default `vnet_hdr_sz`).
pub const VIRTIO_NET_HDR_LEN: usize = 10;

/// `flags`: the packet's L4 checksum is partial; complete it over
/// `[csum_start..]` and store it at `csum_start + csum_offset`.
pub const VIRTIO_NET_HDR_F_NEEDS_CSUM: u8 = 1;
/// `flags`: the checksum was already validated (never set by the TUN).
pub const VIRTIO_NET_HDR_F_DATA_VALID: u8 = 2;

/// `gso_type`: a single packet.
pub const VIRTIO_NET_HDR_GSO_NONE: u8 = 0;
/// `gso_type`: an IPv4 TCP super-packet (TSO).
pub const VIRTIO_NET_HDR_GSO_TCPV4: u8 = 1;
/// `gso_type`: UDP fragmentation offload (UFO; obsolete, unsupported).
pub const VIRTIO_NET_HDR_GSO_UDP: u8 = 3;
/// `gso_type`: an IPv6 TCP super-packet (unsupported: the overlay is IPv4).
pub const VIRTIO_NET_HDR_GSO_TCPV6: u8 = 4;
/// `gso_type`: a UDP super-packet split at L4 (USO), IPv4 or IPv6.
pub const VIRTIO_NET_HDR_GSO_UDP_L4: u8 = 5;
/// `gso_type` bit: TCP with ECN (CWR handling; unsupported).
pub const VIRTIO_NET_HDR_GSO_ECN: u8 = 0x80;

pub(crate) const TCP_FIN: u8 = 0x01;
pub(crate) const TCP_PSH: u8 = 0x08;
pub(crate) const TCP_ACK: u8 = 0x10;
pub(crate) const TCP_CWR: u8 = 0x80;

/// Offset of the TCP checksum within the TCP header.
pub(crate) const TCP_CSUM_OFFSET: u16 = 16;
/// Offset of the UDP checksum within the UDP header.
pub(crate) const UDP_CSUM_OFFSET: u16 = 6;

/// `struct virtio_net_hdr` (`include/uapi/linux/virtio_net.h`), decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VirtioNetHdr {
    /// `VIRTIO_NET_HDR_F_*`.
    pub flags: u8,
    /// `VIRTIO_NET_HDR_GSO_*`, possibly with [`VIRTIO_NET_HDR_GSO_ECN`].
    pub gso_type: u8,
    /// Length of the headers copied into each segment. The kernel reports
    /// the linear part of its buffer here, which may be longer, so [`split`](super::split())
    /// derives the real header length from the packet.
    pub hdr_len: u16,
    /// Payload bytes per segment.
    pub gso_size: u16,
    /// Where checksumming starts (the L4 header).
    pub csum_start: u16,
    /// Where the checksum goes, relative to `csum_start`.
    pub csum_offset: u16,
}

impl VirtioNetHdr {
    /// Decodes the first [`VIRTIO_NET_HDR_LEN`] bytes of `buf`.
    pub fn decode(buf: &[u8]) -> Result<VirtioNetHdr, OffloadError> {
        let b: &[u8; VIRTIO_NET_HDR_LEN] = buf
            .get(..VIRTIO_NET_HDR_LEN)
            .and_then(|b| b.try_into().ok())
            .ok_or(OffloadError::ShortHeader { len: buf.len() })?;
        Ok(VirtioNetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u16::from_le_bytes([b[2], b[3]]),
            gso_size: u16::from_le_bytes([b[4], b[5]]),
            csum_start: u16::from_le_bytes([b[6], b[7]]),
            csum_offset: u16::from_le_bytes([b[8], b[9]]),
        })
    }

    /// The 10 wire bytes.
    pub fn encode(&self) -> [u8; VIRTIO_NET_HDR_LEN] {
        let mut b = [0u8; VIRTIO_NET_HDR_LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_le_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_le_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_le_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_le_bytes());
        b
    }

    /// Whether [`VIRTIO_NET_HDR_F_NEEDS_CSUM`] is set.
    pub fn needs_csum(&self) -> bool {
        self.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM != 0
    }
}

/// Why a packet read from an offloading TUN cannot be handled. The caller
/// drops the packet and counts the error; none of these is fatal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OffloadError {
    /// Fewer bytes than a `virtio_net_hdr`.
    #[error("packet of {len} bytes is shorter than the 10-byte virtio_net_hdr")]
    ShortHeader {
        /// Bytes available.
        len: usize,
    },
    /// A GSO type vine does not split (IPv6, ECN, UFO or unknown).
    #[error("unsupported GSO type {gso_type:#04x} (vine splits TCPv4 and UDP_L4 over IPv4)")]
    UnsupportedGso {
        /// The `gso_type` byte.
        gso_type: u8,
    },
    /// A GSO super-packet that is not IPv4.
    #[error("GSO super-packet is not IPv4 (version {version})")]
    NotIpv4 {
        /// The IP version nibble.
        version: u8,
    },
    /// Inconsistent header fields or truncated headers.
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    /// More segments than the [`SegmentBuf`](super::SegmentBuf) may hold.
    #[error("super-packet needs {needed} segments, more than the limit of {max}")]
    TooManySegments {
        /// Segments the packet would produce.
        needed: usize,
        /// The buffer's limit.
        max: usize,
    },
}

/// Completes the partial checksum of a `NEEDS_CSUM` packet in place: sums
/// `packet[csum_start..]` (whose checksum field holds the pseudo-header sum
/// the kernel put there) and stores the complement at
/// `csum_start + csum_offset`.
pub fn complete_checksum(
    packet: &mut [u8],
    csum_start: u16,
    csum_offset: u16,
) -> Result<(), OffloadError> {
    let start = usize::from(csum_start);
    let at = start + usize::from(csum_offset);
    if at + 2 > packet.len() {
        return Err(OffloadError::Malformed(
            "checksum offset lies beyond the packet",
        ));
    }
    let sum = !fold(sum(&packet[start..], 0));
    packet[at..at + 2].copy_from_slice(&sum.to_be_bytes());
    Ok(())
}
