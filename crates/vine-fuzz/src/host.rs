//! Targets on what the Linux host hands vine: TUN offload metadata,
//! netlink replies and UDP receive headers.

use std::ffi::c_int;
use std::net::Ipv4Addr;

use vine_linux::fuzzing::{UDP_SLOT_BYTES, netlink_reply as parse_netlink, udp_received};
use vine_linux::tun::offload::{Coalescer, SegmentBuf, VIRTIO_NET_HDR_LEN, split};

use crate::input::Input;

/// `tun_offload`: `split` of an arbitrary virtio-net header + packet never
/// panics, every segment fits its slot and every segment a TSO/USO split
/// makes is IPv4; the GRO coalescer never panics on arbitrary packets, and
/// coalescing the segments of a split and splitting the result again gives
/// the same segments back.
pub fn tun_offload(data: &[u8]) {
    let mut segments = SegmentBuf::new(16, 32);
    let mut gro = Coalescer::new(64, true);
    // Arbitrary bytes as a packet for the coalescer (it checks checksums).
    let _ = gro.push(data.get(VIRTIO_NET_HDR_LEN..).unwrap_or(data));
    let _ = gro.flush(|b| Ok(b.len()));

    let Ok(n) = split(data, &mut segments) else {
        return;
    };
    assert_eq!(n, segments.len());
    let originals: Vec<Vec<u8>> = segments.iter().map(<[u8]>::to_vec).collect();
    // GSO_NONE passes any packet through (routing drops what is not IPv4);
    // segmentation only ever makes IPv4 packets.
    let segmented = data.get(1).is_some_and(|gso_type| *gso_type != 0);
    for (i, seg) in originals.iter().enumerate() {
        if segmented {
            assert!(seg.len() >= 20, "segment {i} shorter than an IPv4 header");
            assert_eq!(seg[0] >> 4, 4, "segment {i} is not IPv4");
        }
        let (slot, len) = segments.slot_mut(i);
        assert!(slot.len() >= 16 + len + 32, "slot {i} leaves no room");
    }
    // Round trip: what the coalescer merges splits back into the segments.
    let mut merged: Vec<Vec<u8>> = Vec::new();
    for seg in &originals {
        if gro.push(seg).is_err() {
            return;
        }
    }
    let _ = gro.flush(|b| {
        merged.push(b.to_vec());
        Ok(b.len())
    });
    let mut again = Vec::new();
    let mut buf = SegmentBuf::new(16, 32);
    for m in &merged {
        if split(m, &mut buf).is_ok() {
            again.extend(buf.iter().map(<[u8]>::to_vec));
        }
    }
    // (A GSO_NONE packet is copied with any bytes after its IPv4 total
    // length, which the coalescer trims by design; segments are exact.)
    if segmented && again.len() == originals.len() {
        assert_eq!(again, originals, "coalesce then split changed the segments");
    }
}

/// `netlink_reply`: the netlink client's reply parser on one receive
/// buffer. The first four input bytes are the request's sequence number
/// (so replies for it and for others both occur); the rest is the buffer.
/// Every reply collected is read as a link and as a route, as the client's
/// callers do. Checked: never a panic, and a buffer with no complete
/// netlink header yields nothing.
pub fn netlink_reply(data: &[u8]) {
    let mut input = Input::new(data);
    let seq = u32::from(input.u16()) | u32::from(input.u16()) << 16;
    let buffer = input.rest();
    let (end, seen) = parse_netlink(buffer, seq);
    if buffer.len() < 16 {
        assert!(
            seen.is_empty(),
            "replies from a buffer without a whole header"
        );
    }
    if let Some(Err(e)) = end {
        let _ = e.to_string();
    }
}

/// `udp_cmsg`: the UDP receive path's reading of one `recvmmsg` header:
/// the sender's `sockaddr_in`, `msg_namelen`, `msg_len`, and the
/// `UDP_GRO` control message walk over `msg_controllen` bytes of the
/// control buffer. Input: 8 bytes of `sockaddr_in`, a namelen byte, a u32
/// `msg_len`, a u16 `msg_controllen`, then the control bytes.
///
/// Checked against a plain reading of the same header: the sender is
/// reported exactly for an `AF_INET` name of full length; the length is
/// `msg_len` capped at the slot size; the stride is in `1..=len` (or 1
/// for an empty message), and it is the `UDP_GRO` size whenever the first
/// control message is a well-formed `UDP_GRO` one with a positive size
/// below the length.
pub fn udp_cmsg(data: &[u8]) {
    let mut input = Input::new(data);
    let mut name = [0u8; 8];
    for b in &mut name {
        *b = input.u8();
    }
    let namelen = match input.u8() {
        0..=127 => 16,
        n => u32::from(n) - 128,
    };
    let msg_len = u32::from(input.u16()) | u32::from(input.u16()) << 16;
    let controllen = usize::from(input.u16());
    let control = input.rest();

    let got = udp_received(name, namelen, msg_len, control, controllen);
    let family = c_int::from(u16::from_ne_bytes([name[0], name[1]]));
    let inet = namelen >= 16 && family == libc::AF_INET;
    let Some((from, len, stride)) = got else {
        assert!(!inet, "an AF_INET sender was skipped");
        return;
    };
    assert!(inet, "a non-IPv4 sender was accepted");
    let ip = Ipv4Addr::from(u32::from_be(u32::from_ne_bytes([
        name[4], name[5], name[6], name[7],
    ])));
    assert_eq!(*from.ip(), ip);
    assert_eq!(
        from.port(),
        u16::from_be(u16::from_ne_bytes([name[2], name[3]]))
    );
    assert_eq!(len, (msg_len as usize).min(UDP_SLOT_BYTES));
    assert!(
        stride >= 1 && (stride <= len || len == 0),
        "stride {stride} for {len} bytes"
    );
    if let Some(size) = first_gro(control, controllen)
        && size < len
    {
        assert_eq!(stride, size, "the first UDP_GRO message was not used");
    }
}

/// The `UDP_GRO` size of the first control message when it is one, whole
/// within `controllen` (capped at the 64 bytes of control space), read
/// without any libc macro.
fn first_gro(control: &[u8], controllen: usize) -> Option<usize> {
    // The receive buffer: the control bytes, zero after them.
    let mut buf = [0u8; 64];
    let k = control.len().min(64);
    buf[..k].copy_from_slice(&control[..k]);
    let len = controllen.min(64);
    let b = &buf[..len];
    let word = |at: usize, n: usize| b.get(at..at + n);
    let cmsg_len = usize::from_ne_bytes(word(0, 8)?.try_into().ok()?);
    let level = c_int::from_ne_bytes(word(8, 4)?.try_into().ok()?);
    let kind = c_int::from_ne_bytes(word(12, 4)?.try_into().ok()?);
    if level != libc::SOL_UDP || kind != libc::UDP_GRO || !(20..=len).contains(&cmsg_len) {
        return None;
    }
    // A later message could be another UDP_GRO one (the last one wins):
    // only claim the first when nothing follows it.
    if cmsg_len.div_ceil(8) * 8 + 16 <= len {
        return None;
    }
    let size = c_int::from_ne_bytes(word(16, 4)?.try_into().ok()?);
    usize::try_from(size).ok().filter(|&s| s > 0)
}
