//! Inputs the fuzz targets (or their workspace runs) found, as unit tests
//! of the code they broke. Their bytes are also under
//! `fuzz/regressions/<target>/`, which `tests/bodies.rs` replays.

use std::io;

use vine_linux::fuzzing::netlink_reply;

/// A netlink message of `kind` for request `seq` whose payload is `code`
/// (then `extra` bytes).
fn netlink_code(kind: u16, seq: u32, code: i32, extra: &[u8]) -> Vec<u8> {
    let len = 16 + 4 + extra.len();
    let mut m = (len as u32).to_ne_bytes().to_vec();
    m.extend(kind.to_ne_bytes());
    m.extend(0u16.to_ne_bytes());
    m.extend(seq.to_ne_bytes());
    m.extend(0u32.to_ne_bytes());
    m.extend(code.to_ne_bytes());
    m.extend(extra);
    m
}

/// `NLMSG_DONE` / `NLMSG_ERROR` with the code `i32::MIN`, which has no
/// negation: found by the `netlink_reply` body's workspace run ("attempt
/// to negate with overflow" in `parse_replies`). No kernel sends it, but
/// the reply parser must answer with an error, not panic.
#[test]
fn a_netlink_error_code_of_i32_min_is_an_error_not_a_panic() {
    const NLMSG_ERROR: u16 = 2;
    const NLMSG_DONE: u16 = 3;
    for (kind, extra) in [(NLMSG_DONE, &[][..]), (NLMSG_ERROR, &[0u8; 16][..])] {
        let (end, seen) = netlink_reply(&netlink_code(kind, 7, i32::MIN, extra), 7);
        assert!(seen.is_empty());
        let err = end
            .expect("the message ends the request")
            .expect_err("an error");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        assert!(err.to_string().contains("-2147483648"), "{err}");
    }
    // Ordinary codes still map to the errno.
    let (end, _) = netlink_reply(&netlink_code(NLMSG_DONE, 7, -libc::ENODEV, &[]), 7);
    let err = end.expect("ends").expect_err("an error");
    assert_eq!(err.raw_os_error(), Some(libc::ENODEV));
}

/// A receive header whose control buffer starts with a `cmsghdr` of
/// length `cmsg_len` (level/type not `UDP_GRO`) over 64 control bytes.
fn udp_header_with_cmsg_len(cmsg_len: usize) -> Vec<u8> {
    let mut v = (libc::AF_INET as u16).to_ne_bytes().to_vec();
    v.extend(4100u16.to_be().to_ne_bytes());
    v.extend([192, 0, 2, 2]);
    v.push(0); // namelen = sizeof(sockaddr_in)
    v.extend(1500u32.to_le_bytes());
    v.extend(64u16.to_le_bytes());
    v.extend(cmsg_len.to_ne_bytes());
    v.extend(libc::SOL_IP.to_ne_bytes());
    v.extend(libc::IP_TTL.to_ne_bytes());
    v.resize(v.len() + 48, 0);
    v
}

/// A control message whose `cmsg_len` is near `usize::MAX`: aligning it
/// overflows in the walk to the next header. No kernel writes it; the
/// walk must still end (not panic, not loop).
#[test]
fn a_control_message_length_near_usize_max_ends_the_walk() {
    for cmsg_len in [usize::MAX, usize::MAX - 2, usize::MAX - 7, 65, 1 << 40] {
        vine_fuzz::udp_cmsg(&udp_header_with_cmsg_len(cmsg_len));
    }
}

/// Found by `udp_cmsg` under ASan (heap-buffer-overflow, a 4-byte read
/// just past the 64-byte control buffer): a `UDP_GRO` header in the last
/// 16 bytes of the control data. libc's `CMSG_NXTHDR` checks only that
/// the next header fits, so the walk read the `int` after it, past the
/// control data (past the buffer when the header ended it). The walk now
/// stops at a message that runs past the data. A debug build does not
/// fault on the over-read, so this puts the header where its `int` lies
/// past `msg_controllen` but inside the buffer, with a size there: before
/// the fix that size was believed.
#[test]
fn a_udp_gro_message_cut_off_by_the_control_length_is_not_read() {
    let mut control = vec![0u8; 64];
    // First message: 24 bytes of something else.
    control[..8].copy_from_slice(&24usize.to_ne_bytes());
    control[8..12].copy_from_slice(&libc::SOL_IP.to_ne_bytes());
    control[12..16].copy_from_slice(&libc::IP_TTL.to_ne_bytes());
    // Second, at 24: a UDP_GRO header (24..40) whose int (40..44) lies past
    // a control length of 40.
    control[24..32].copy_from_slice(&20usize.to_ne_bytes());
    control[32..36].copy_from_slice(&libc::SOL_UDP.to_ne_bytes());
    control[36..40].copy_from_slice(&libc::UDP_GRO.to_ne_bytes());
    control[40..44].copy_from_slice(&1400i32.to_ne_bytes());
    let mut name = [0u8; 8];
    name[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
    let got = vine_linux::fuzzing::udp_received(name, 16, 3000, &control, 40);
    let (_, len, stride) = got.expect("an IPv4 sender");
    assert_eq!(
        (len, stride),
        (3000, 3000),
        "no GRO size from a cut-off message"
    );
    // Whole (control length 44), the same message is read.
    let got = vine_linux::fuzzing::udp_received(name, 16, 3000, &control, 44);
    assert_eq!(got.map(|g| g.2), Some(1400));
    // The committed crasher runs clean through the target.
    let crasher = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fuzz/regressions/udp_cmsg/gro-header-in-last-16-bytes"
    ))
    .expect("the regression input");
    vine_fuzz::udp_cmsg(&crasher);
}
