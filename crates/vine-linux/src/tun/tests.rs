//! TUN tests. Everything that touches the kernel runs in a private network
//! namespace ([`in_netns`]); they need root and fail (not skip) without it.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::*;
use crate::netns::in_netns;

mod vnet;

const ADDR: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);

fn open_test_tun() -> Tun {
    Tun::open("vt0", ADDR, 24, 1400).expect("Tun::open in a fresh namespace (needs root)")
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in data.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], chunk.get(1).copied().unwrap_or(0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload: &[u8]) -> Vec<u8> {
    let total = u16::try_from(20 + payload.len()).expect("test packet is small");
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0x40, 0, 64, proto, 0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    let sum = checksum(&p);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

fn udp(src: SocketAddrV4, dst: SocketAddrV4, data: &[u8]) -> Vec<u8> {
    let len = u16::try_from(8 + data.len()).expect("test packet is small");
    let mut u = Vec::new();
    u.extend_from_slice(&src.port().to_be_bytes());
    u.extend_from_slice(&dst.port().to_be_bytes());
    u.extend_from_slice(&len.to_be_bytes());
    u.extend_from_slice(&[0, 0]); // no UDP checksum (allowed for IPv4)
    u.extend_from_slice(data);
    ipv4(*src.ip(), *dst.ip(), 17, &u)
}

fn icmp_echo_request(src: Ipv4Addr, dst: Ipv4Addr, id: u16, data: &[u8]) -> Vec<u8> {
    let mut m = vec![8, 0, 0, 0];
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    m.extend_from_slice(data);
    let sum = checksum(&m);
    m[2..4].copy_from_slice(&sum.to_be_bytes());
    ipv4(src, dst, 1, &m)
}

/// A parsed IPv4 packet: (protocol, src, dst, L4 bytes).
fn parse(p: &[u8]) -> Option<(u8, Ipv4Addr, Ipv4Addr, &[u8])> {
    if p.len() < 20 || p[0] >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(p[0] & 0x0f) * 4;
    let src = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
    let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
    Some((p[9], src, dst, p.get(ihl..)?))
}

/// Reads packets (non-blocking, polling) until `want` accepts one or 5 s pass.
/// Other packets (e.g. IPv6 router solicitations) are skipped.
fn read_until(tun: &Tun, want: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    tun.set_nonblocking(true).expect("set O_NONBLOCK");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buf = vec![0u8; 65536];
    loop {
        match tun.read(&mut buf) {
            Ok(n) if want(&buf[..n]) => return buf[..n].to_vec(),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("TUN read failed: {e}"),
        }
        assert!(
            Instant::now() < deadline,
            "expected packet did not arrive on the TUN within 5 s"
        );
    }
}

#[test]
fn tun_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Tun>();
}

#[test]
fn invalid_names_and_parameters_are_refused_before_touching_the_host() {
    for name in ["", ".", "..", "a/b", "a:b", "a b", "sixteen-chars-xx"] {
        let err = Tun::open(name, ADDR, 24, 1400).expect_err(name);
        assert!(
            matches!(err, HostError::InvalidName { .. }),
            "{name}: {err}"
        );
        assert!(
            err.to_string().contains("choose another [tun] name"),
            "{err}"
        );
    }
    assert!(validate_name("fifteen-chars-x").is_ok());
    let err = Tun::open("vt0", ADDR, 33, 1400).expect_err("prefix 33");
    assert!(matches!(
        err,
        HostError::InvalidPrefixLen { prefix_len: 33 }
    ));
    let err = Tun::open("vt0", ADDR, 24, 40).expect_err("mtu 40");
    assert!(
        matches!(err, HostError::InvalidMtu { mtu: 40, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("vt0"), "{err}");
}

#[test]
fn address_mtu_and_link_state_are_applied_and_drop_removes_the_device() {
    in_netns(|| {
        let tun = open_test_tun();
        assert_eq!(tun.name(), "vt0");
        assert!(!tun.replaced_stale());
        let mut nl = Netlink::new().expect("netlink");
        let link = nl.link("vt0").expect("lookup").expect("vt0 exists");
        assert_eq!(link.index, tun.index());
        assert_eq!(interface_index("vt0").expect("lookup"), Some(tun.index()));
        assert_eq!(link.mtu, Some(1400));
        assert!(link.up, "vt0 is up");
        assert!(link.is_tun(), "kind is tun: {link:?}");
        assert!(link.tun_in_use(), "our fd is attached: {link:?}");
        assert_eq!(
            nl.addresses(tun.index()).expect("address dump"),
            vec![(ADDR, 24)]
        );
        assert_eq!(name_state("vt0").expect("state"), NameState::TunInUse);
        assert!(tun.as_raw_fd() >= 0);
        drop(tun);
        assert_eq!(
            nl.link("vt0").expect("lookup"),
            None,
            "device gone with the fd"
        );
        assert_eq!(name_state("vt0").expect("state"), NameState::Free);
    });
}

#[test]
fn outbound_udp_is_read_from_the_tun() {
    in_netns(|| {
        let tun = open_test_tun();
        let socket = UdpSocket::bind((ADDR, 0)).expect("bind on the TUN address");
        let from = match socket.local_addr().expect("local addr") {
            std::net::SocketAddr::V4(a) => a,
            other => panic!("unexpected {other}"),
        };
        socket
            .send_to(b"hello-tun", (PEER, 9000))
            .expect("send into the overlay prefix");
        let packet = read_until(&tun, |p| {
            parse(p).is_some_and(|(proto, _, dst, _)| proto == 17 && dst == PEER)
        });
        let (_, src, _, l4) = parse(&packet).expect("IPv4");
        assert_eq!(src, ADDR);
        assert_eq!(u16::from_be_bytes([l4[0], l4[1]]), from.port());
        assert_eq!(u16::from_be_bytes([l4[2], l4[3]]), 9000);
        assert_eq!(&l4[8..], b"hello-tun");
    });
}

#[test]
fn packets_written_to_the_tun_reach_local_sockets_while_another_thread_reads() {
    in_netns(|| {
        let tun = Arc::new(open_test_tun());
        let socket = UdpSocket::bind((ADDR, 7000)).expect("bind on the TUN address");
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");

        // A reader thread waits for the kernel's replies while this thread
        // writes: read and write share the fd through &Tun.
        let reader = {
            let tun = Arc::clone(&tun);
            thread::spawn(move || {
                let echo_reply = read_until(&tun, |p| {
                    parse(p).is_some_and(|(proto, _, dst, l4)| {
                        proto == 1 && dst == PEER && l4.first() == Some(&0)
                    })
                });
                let udp_reply = read_until(&tun, |p| {
                    parse(p).is_some_and(|(proto, _, dst, _)| proto == 17 && dst == PEER)
                });
                (echo_reply, udp_reply)
            })
        };

        let peer = SocketAddrV4::new(PEER, 5555);
        let packet = udp(peer, SocketAddrV4::new(ADDR, 7000), b"from-the-overlay");
        assert_eq!(tun.write(&packet).expect("TUN write"), packet.len());
        let mut buf = [0u8; 100];
        let (n, from) = socket
            .recv_from(&mut buf)
            .expect("UDP datagram from the TUN");
        assert_eq!(&buf[..n], b"from-the-overlay");
        assert_eq!(from, std::net::SocketAddr::V4(peer));

        let ping = icmp_echo_request(PEER, ADDR, 0x1234, b"ping");
        tun.write(&ping).expect("TUN write");
        socket.send_to(b"reply", peer).expect("reply");

        let (echo_reply, udp_reply) = reader.join().expect("reader thread");
        let (_, src, _, icmp) = parse(&echo_reply).expect("IPv4");
        assert_eq!(src, ADDR);
        assert_eq!(&icmp[4..6], &0x1234u16.to_be_bytes(), "echo id");
        assert_eq!(&icmp[8..], b"ping");
        let (_, _, _, l4) = parse(&udp_reply).expect("IPv4");
        assert_eq!(u16::from_be_bytes([l4[2], l4[3]]), 5555);
        assert_eq!(&l4[8..], b"reply");
    });
}

#[test]
fn a_stale_persistent_tun_is_replaced() {
    in_netns(|| {
        // A persistent TUN outlives its fd, as one left by a crash would.
        let fd = sys::open_clone_device().expect("open /dev/net/tun (needs the tun module)");
        sys::set_iff(fd.as_fd(), "vt0", false).expect("TUNSETIFF");
        sys::set_persist(fd.as_fd(), true).expect("TUNSETPERSIST");
        drop(fd);
        assert_eq!(name_state("vt0").expect("state"), NameState::StaleTun);

        let tun = open_test_tun();
        assert!(tun.replaced_stale());
        let mut nl = Netlink::new().expect("netlink");
        let link = nl.link("vt0").expect("lookup").expect("vt0 exists");
        assert_eq!(link.tun.map(|t| t.persist), Some(false), "{link:?}");
        drop(tun);
        assert_eq!(nl.link("vt0").expect("lookup"), None);
    });
}

#[test]
fn a_tun_held_by_a_running_process_is_not_taken_over() {
    in_netns(|| {
        let fd = sys::open_clone_device().expect("open /dev/net/tun");
        sys::set_iff(fd.as_fd(), "vt0", false).expect("TUNSETIFF");
        let err = Tun::open("vt0", ADDR, 24, 1400).expect_err("vt0 is held");
        assert!(matches!(err, HostError::TunInUse { .. }), "{err}");
        assert!(err.to_string().contains("vt0"), "{err}");
        drop(fd);
        assert!(
            open_test_tun().index() > 0,
            "free again once the holder closes it"
        );
    });
}

#[test]
fn a_non_tun_interface_with_the_name_is_an_error() {
    in_netns(|| {
        Netlink::new()
            .expect("netlink")
            .add_veth("vt0", "vt0-peer")
            .expect("create veth pair");
        let err = Tun::open("vt0", ADDR, 24, 1400).expect_err("vt0 is a veth");
        assert!(matches!(err, HostError::NameTaken { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("interface vt0 exists and is not a TUN device")
                && msg.contains("choose another [tun] name"),
            "{msg}"
        );
        assert!(
            matches!(name_state("vt0").expect("state"), NameState::Other(k) if k.contains("veth"))
        );
        // The veth is untouched.
        assert!(interface_index("vt0").expect("lookup").is_some());
    });
}
