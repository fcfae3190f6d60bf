//! Fuzzes the TUN offload code with what a kernel (or a bug) could hand it:
//! `split` of an arbitrary virtio-net header + packet never panics, every
//! segment fits its slot and every segment a TSO/USO split makes is IPv4;
//! the GRO coalescer never panics on arbitrary packets, and coalescing the
//! segments of a split and splitting the result again gives the same
//! segments back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vine_linux::tun::offload::{Coalescer, SegmentBuf, VIRTIO_NET_HDR_LEN, split};

fuzz_target!(|data: &[u8]| {
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
});
