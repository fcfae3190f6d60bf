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
