//! TUN offloads in userspace: the `virtio_net_hdr` that prefixes every
//! packet on a TUN opened with `IFF_VNET_HDR`, splitting the kernel's
//! TSO/USO super-packets into wire-sized segments ([`split`]), merging
//! received segments back into super-packets for the kernel
//! ([`Coalescer`], GRO).
//!
//! Everything here is pure: no syscalls, and no allocation per packet once
//! the reusable buffers ([`SegmentBuf`], [`Coalescer`]) have grown to their
//! working size. Only IPv4 is handled (vine's overlay is IPv4); GSO types
//! for IPv6 are reported as [`OffloadError::UnsupportedGso`].
//!
//! Byte order: the header fields are little-endian, which is what the TUN
//! uses on little-endian hosts and on every host once `TUNSETVNETLE` is
//! set ([`super::Tun::open_with`] sets it).
//!
//! The IPv4 header view and the checksum are vine-core's
//! ([`vine_core::wire`]), shared with the node.

mod coalesce;
mod split;
#[cfg(test)]
mod tests;
mod vnet;

pub use coalesce::{CoalesceError, Coalescer, DEFAULT_MAX_PACKETS};
pub use split::{DEFAULT_MAX_SEGMENTS, SegmentBuf, split};
pub use vnet::{
    OffloadError, VIRTIO_NET_HDR_F_DATA_VALID, VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_ECN,
    VIRTIO_NET_HDR_GSO_NONE, VIRTIO_NET_HDR_GSO_TCPV4, VIRTIO_NET_HDR_GSO_TCPV6,
    VIRTIO_NET_HDR_GSO_UDP, VIRTIO_NET_HDR_GSO_UDP_L4, VIRTIO_NET_HDR_LEN, VirtioNetHdr,
    complete_checksum,
};
