//! Coalescer tests: the split/coalesce round trip, the merge rules, limits,
//! and garbage that must never panic.

use std::io;

use super::*;

fn segments_of(t: &Tcp, data: &[u8], mss: u16) -> Vec<Vec<u8>> {
    split_vec(&tso(t, data, mss))
}

#[test]
fn split_then_coalesce_round_trips() {
    let data = payload(20_000, 6);
    let t = Tcp {
        flags: TCP_ACK | TCP_PSH,
        ..Tcp::default()
    };
    let segs = segments_of(&t, &data, MSS);
    assert_eq!(segs.len(), 14);
    let mut c = Coalescer::new(DEFAULT_MAX_PACKETS, false);
    push_all(&mut c, &segs);
    assert_eq!(c.pending(), 1);
    let out = flush_all(&mut c);
    assert_eq!(out.len(), 1);
    let (hdr, merged) = &out[0];
    assert_eq!(
        *hdr,
        VirtioNetHdr {
            flags: VIRTIO_NET_HDR_F_NEEDS_CSUM,
            gso_type: VIRTIO_NET_HDR_GSO_TCPV4,
            hdr_len: 52,
            gso_size: MSS,
            csum_start: 20,
            csum_offset: 16,
        }
    );
    assert_ipv4_valid(merged);
    // The checksum field holds the pseudo-header sum the kernel completes.
    let partial = fold(pseudo_header_sum(SRC, DST, 6, (merged.len() - 20) as u16));
    assert_eq!(&merged[36..38], &partial.to_be_bytes());
    let mut completed = merged.clone();
    complete_checksum(&mut completed, 20, 16).expect("complete");
    assert!(l4_valid(&completed));
    // Splitting the merged packet gives back exactly the segments.
    assert_eq!(split_vec(&with_hdr(*hdr, merged)), segs);
}

#[test]
fn uso_coalescing_is_optional_and_round_trips() {
    let data = payload(5000, 7);
    let segs = split_vec(&uso(&data, 1000));
    let mut off = Coalescer::new(16, false);
    push_all(&mut off, &segs);
    let out = flush_all(&mut off);
    assert_eq!(out.len(), 5);
    for ((hdr, p), s) in out.iter().zip(&segs) {
        assert_eq!(*hdr, VirtioNetHdr::default());
        assert_eq!(p, s);
    }
    let mut on = Coalescer::new(16, true);
    assert!(on.uso());
    push_all(&mut on, &segs);
    let out = flush_all(&mut on);
    assert_eq!(out.len(), 1);
    let (hdr, merged) = &out[0];
    assert_eq!(hdr.gso_type, VIRTIO_NET_HDR_GSO_UDP_L4);
    assert_eq!(
        (hdr.gso_size, hdr.csum_start, hdr.csum_offset),
        (1000, 20, 6)
    );
    assert_ipv4_valid(merged);
    assert_eq!(split_vec(&with_hdr(*hdr, merged)), segs);
}

#[test]
fn flows_are_kept_apart_and_in_arrival_order() {
    let a = segments_of(&Tcp::default(), &payload(3000, 8), 1000);
    let b = segments_of(
        &Tcp {
            src_port: 40001,
            ..Tcp::default()
        },
        &payload(3000, 9),
        1000,
    );
    let icmp = {
        let mut p = ipv4_header(1, 28, 1, 64, 0);
        p.extend_from_slice(&[8, 0, 0xf7, 0xff, 0, 0, 0, 0]);
        p
    };
    let mut c = Coalescer::new(16, false);
    for i in 0..3 {
        c.push(&a[i]).expect("push");
        c.push(&b[i]).expect("push");
        if i == 1 {
            c.push(&icmp).expect("push");
        }
    }
    let out = flush_all(&mut c);
    assert_eq!(out.len(), 3);
    assert_eq!(split_vec(&with_hdr(out[0].0, &out[0].1)), a);
    assert_eq!(split_vec(&with_hdr(out[1].0, &out[1].1)), b);
    assert_eq!(out[2], (VirtioNetHdr::default(), icmp));
}

/// Pushes `packets` and returns how many segments each written packet holds.
fn merge_shape(packets: &[Vec<u8>]) -> Vec<usize> {
    let mut c = Coalescer::new(64, true);
    push_all(&mut c, packets);
    flush_all(&mut c)
        .iter()
        .map(|(hdr, p)| {
            if hdr.gso_type == VIRTIO_NET_HDR_GSO_NONE {
                assert_eq!(*hdr, VirtioNetHdr::default());
                1
            } else {
                split_vec(&with_hdr(*hdr, p)).len()
            }
        })
        .collect()
}

/// Consecutive segments of `t` with these payload sizes.
fn run(t: &Tcp, sizes: &[usize]) -> Vec<Vec<u8>> {
    let mut seq = t.seq;
    sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let p = tcp_packet(
                &Tcp {
                    seq,
                    id: t.id.wrapping_add(i as u16),
                    ..t.clone()
                },
                &payload(n, i as u64 + 10),
                true,
            );
            seq = seq.wrapping_add(n as u32);
            p
        })
        .collect()
}

#[test]
fn only_continuing_same_shaped_segments_merge() {
    let t = Tcp::default();
    assert_eq!(merge_shape(&run(&t, &[1000, 1000, 1000])), [3]);
    assert_eq!(merge_shape(&run(&t, &[1000, 1000, 300])), [3], "short last");
    assert_eq!(
        merge_shape(&run(&t, &[1000, 300, 300])),
        [2, 1],
        "short closes"
    );
    assert_eq!(merge_shape(&run(&t, &[1000, 1200])), [1, 1], "larger after");
    assert_eq!(
        merge_shape(&run(&t, &[1000, 0, 1000])),
        [1, 1, 1],
        "pure ACK"
    );

    let mut gap = run(&t, &[1000, 1000, 1000]);
    gap.remove(1);
    assert_eq!(merge_shape(&gap), [1, 1], "sequence gap");
    let mut reordered = run(&t, &[1000, 1000, 1000]);
    reordered.swap(1, 2);
    assert_eq!(merge_shape(&reordered), [1, 1, 1], "out of order");

    // PSH may end a merged packet but never sits in its middle.
    let mut psh = run(&t, &[1000, 1000, 1000]);
    psh[1][33] |= TCP_PSH;
    fill_l4_checksum(&mut psh[1], 16, true);
    assert_eq!(merge_shape(&psh), [2, 1]);

    for (what, change) in [
        (
            "SYN",
            &(|p: &mut Vec<u8>| p[33] |= 0x02) as &dyn Fn(&mut Vec<u8>),
        ),
        ("FIN", &|p| p[33] |= TCP_FIN),
        ("RST", &|p| p[33] |= 0x04),
        ("URG", &|p| p[33] |= 0x20),
        ("ECE", &|p| p[33] |= 0x40),
        ("CWR", &|p| p[33] |= TCP_CWR),
        ("ack", &|p| p[31] ^= 1),
        ("window", &|p| p[35] ^= 1),
        ("options", &|p| p[47] ^= 1),
    ] {
        let mut pkts = run(&t, &[1000, 1000, 1000]);
        change(&mut pkts[1]);
        fill_l4_checksum(&mut pkts[1], 16, true);
        let shape = merge_shape(&pkts);
        assert!(
            shape.len() >= 2 && shape.iter().sum::<usize>() == 3,
            "{what}: {shape:?}"
        );
        assert_eq!(shape[0], 1, "{what}: the first segment stays alone");
    }
    for (what, change) in [
        (
            "TTL",
            &(|p: &mut Vec<u8>| p[8] -= 1) as &dyn Fn(&mut Vec<u8>),
        ),
        ("TOS", &|p| p[1] = 0x10),
        ("DF", &|p| p[6] = 0),
    ] {
        let mut pkts = run(&t, &[1000, 1000]);
        change(&mut pkts[1]);
        pkts[1][10..12].copy_from_slice(&[0, 0]);
        let c = checksum(&pkts[1][..20]);
        pkts[1][10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(merge_shape(&pkts), [1, 1], "{what}");
    }
    // IP options are never merged.
    let mut opts = run(&t, &[1000, 1000]);
    for p in &mut opts {
        p.splice(20..20, [1, 1, 1, 0]);
        p[0] = 0x46;
        let total = p.len() as u16;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p[10..12].copy_from_slice(&[0, 0]);
        let c = checksum(&p[..24]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
    }
    let mut c = Coalescer::new(8, false);
    push_all(&mut c, &opts);
    assert_eq!(flush_all(&mut c).len(), 2, "IP options");
}

#[test]
fn bad_checksums_are_never_merged() {
    let t = Tcp::default();
    let mut pkts = run(&t, &[1000, 1000, 1000]);
    pkts[1][100] ^= 0xff;
    let mut c = Coalescer::new(8, false);
    push_all(&mut c, &pkts);
    let out = flush_all(&mut c);
    assert_eq!(out.len(), 3);
    for ((hdr, p), orig) in out.iter().zip(&pkts) {
        assert_eq!(*hdr, VirtioNetHdr::default());
        assert_eq!(p, orig, "unmerged packets are written unchanged");
    }
    let mut head_bad = run(&t, &[1000, 1000]);
    head_bad[0][100] ^= 0xff;
    assert_eq!(merge_shape(&head_bad), [1, 1]);
}

#[test]
fn a_trusting_coalescer_merges_without_checking_checksums() {
    let t = Tcp::default();
    let good = run(&t, &[1000, 1000, 1000]);
    let mut c = Coalescer::new(8, false).trusting_checksums();
    push_all(&mut c, &good);
    let out = flush_all(&mut c);
    assert_eq!(out.len(), 1, "valid segments merge as with checking");
    let mut resplit = Vec::new();
    for (hdr, p) in &out {
        resplit.extend(split_vec(&with_hdr(*hdr, p)));
    }
    assert_eq!(resplit, good, "and split back into the same segments");
    // A payload byte changed after the checksum was computed: no longer
    // detected (the caller vouches for integrity), so it merges.
    let mut bad = good.clone();
    bad[1][100] ^= 0xff;
    let mut c = Coalescer::new(8, false).trusting_checksums();
    push_all(&mut c, &bad);
    assert_eq!(flush_all(&mut c).len(), 1);
}

#[test]
fn merged_packets_stay_within_64k_and_keep_every_byte() {
    let segs = run(&Tcp::default(), &[usize::from(MSS); 100]);
    // (65535 - 52) / 1448 = 45 segments fit in one packet.
    assert_eq!(merge_shape(&segs), [45, 45, 10]);
    let mut c = Coalescer::new(64, false);
    push_all(&mut c, &segs);
    let out = flush_all(&mut c);
    let mut resplit = Vec::new();
    for (hdr, p) in &out {
        assert!(p.len() <= ipv4::MAX_PACKET);
        resplit.extend(split_vec(&with_hdr(*hdr, p)));
    }
    assert_eq!(resplit, segs);
}

#[test]
fn trailing_bytes_after_the_ip_total_length_are_dropped() {
    let mut pkts = run(&Tcp::default(), &[1000, 1000]);
    let clean = pkts.clone();
    for p in &mut pkts {
        p.extend_from_slice(&[0; 13]); // e.g. WireGuard padding
    }
    let mut c = Coalescer::new(8, false);
    push_all(&mut c, &pkts);
    let out = flush_all(&mut c);
    assert_eq!(out.len(), 1);
    assert_eq!(split_vec(&with_hdr(out[0].0, &out[0].1)), clean);
}

#[test]
fn limits_and_write_errors() {
    let mut c = Coalescer::new(2, false);
    let a = run(&Tcp::default(), &[1000, 1000, 1000]);
    let other = run(
        &Tcp {
            dst_port: 1,
            ..Tcp::default()
        },
        &[10],
    );
    push_all(&mut c, &a); // one slot
    c.push(&other[0]).expect("second slot");
    assert!(c.is_full());
    assert_eq!(c.push(&other[0]), Err(CoalesceError::Full { max: 2 }));
    assert_eq!(
        c.push(&[0x45; 70_000]),
        Err(CoalesceError::TooLarge { len: 70_000 })
    );
    let mut calls = 0;
    let err = c
        .flush(|_| {
            calls += 1;
            Err(io::Error::other("device gone"))
        })
        .expect_err("write error is reported");
    assert_eq!(err.to_string(), "device gone");
    assert_eq!(calls, 2, "every packet is attempted");
    assert!(c.is_empty(), "reset even after errors");
    c.push(&other[0]).expect("room again");
}

#[test]
fn garbage_into_the_coalescer_never_panics() {
    let mut rng = Rng(1234);
    let mut c = Coalescer::new(32, true);
    let valid = run(&Tcp::default(), &[500, 500, 500]);
    let udp = udp_packet(7, &payload(300, 12), true);
    // Every truncation, each after a valid head of its flow.
    for base in valid.iter().chain([&udp]) {
        for len in 0..=base.len() {
            if c.pending() + 2 > 32 {
                flush_all(&mut c);
            }
            c.push(&valid[0]).expect("push");
            c.push(&base[..len]).expect("push");
        }
    }
    flush_all(&mut c);
    for round in 0..20_000 {
        let mut v = match round % 3 {
            0 => {
                let base = &valid[rng.below(3)];
                base[..rng.below(base.len() + 1)].to_vec()
            }
            1 => udp[..rng.below(udp.len() + 1)].to_vec(),
            _ => {
                let n = rng.below(200);
                rng.bytes(n)
            }
        };
        for _ in 0..rng.below(3) {
            if !v.is_empty() {
                let at = rng.below(v.len().min(60));
                v[at] = rng.next() as u8;
            }
        }
        if c.push(&v) == Err(CoalesceError::Full { max: 32 }) {
            flush_all(&mut c);
        }
    }
    flush_all(&mut c);
}
