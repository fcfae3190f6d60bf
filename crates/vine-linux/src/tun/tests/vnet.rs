//! Offload tests against the kernel: what `open_with` enables and the
//! plain packet path on a vnet TUN.

use std::net::SocketAddr;

use super::*;
use crate::tun::offload::{fold, pseudo_header_sum, sum};

const WITH_OFFLOAD: TunOptions = TunOptions { offload: true };

#[test]
fn offloads_degrade_on_einval_and_stop_on_other_errors() {
    let mut tried = Vec::new();
    let got = negotiate_offloads(|flags| {
        tried.push(flags);
        if flags & (libc::TUN_F_USO4 | libc::TUN_F_USO6) != 0 {
            Err(io::Error::from_raw_os_error(libc::EINVAL)) // before Linux 6.2
        } else {
            Ok(())
        }
    })
    .expect("TSO without USO");
    assert_eq!(
        got,
        Offloads {
            vnet_hdr: true,
            csum: true,
            tso: true,
            uso: false
        }
    );
    assert_eq!(tried.len(), 2);
    assert_eq!(got.to_string(), "vnet_hdr+csum+tso");

    let only_none = negotiate_offloads(|flags| {
        if flags == 0 {
            Ok(())
        } else {
            Err(io::Error::from_raw_os_error(libc::EINVAL))
        }
    })
    .expect("no offloads at all");
    assert_eq!(
        only_none,
        Offloads {
            vnet_hdr: true,
            ..Offloads::default()
        }
    );
    let err = negotiate_offloads(|_| Err(io::Error::from_raw_os_error(libc::EBADF)))
        .expect_err("EBADF is not a capability problem");
    assert_eq!(err.raw_os_error(), Some(libc::EBADF));
    assert_eq!(Offloads::default().to_string(), "none");
}

#[test]
fn opening_with_offload_reports_what_the_kernel_enabled() {
    in_netns(|| {
        let plain = open_test_tun();
        assert_eq!(plain.offloads(), Offloads::default());
        let err = plain
            .read_vnet(&mut [0u8; 100])
            .expect_err("no vnet header");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        drop(plain);

        let tun = Tun::open_with("vt0", ADDR, 24, 1400, WITH_OFFLOAD).expect("open with offload");
        let offloads = tun.offloads();
        eprintln!("offloads enabled: {offloads}");
        // Every kernel vine runs on has had these since 2.6.27; USO needs
        // Linux 6.2 and is reported either way.
        assert!(
            offloads.vnet_hdr && offloads.csum && offloads.tso,
            "{offloads}"
        );
        let err = tun
            .write_vnet(&[0u8; 9])
            .expect_err("shorter than a header");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    });
}

#[test]
fn read_and_write_still_move_plain_packets_on_a_vnet_tun() {
    in_netns(|| {
        let tun = Tun::open_with("vt0", ADDR, 24, 1400, WITH_OFFLOAD).expect("open with offload");
        let socket = UdpSocket::bind((ADDR, 7000)).expect("bind on the TUN address");
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");

        // Outbound: with checksum offload the kernel hands over a partial
        // UDP checksum; `read` completes it.
        socket
            .send_to(b"needs a checksum", (PEER, 9000))
            .expect("send into the overlay prefix");
        let packet = read_until(&tun, |p| {
            parse(p).is_some_and(|(proto, _, dst, _)| proto == 17 && dst == PEER)
        });
        let (_, src, dst, l4) = parse(&packet).expect("IPv4");
        assert_eq!(&l4[8..], b"needs a checksum");
        assert_ne!(&l4[6..8], &[0, 0], "a UDP checksum is present");
        let pseudo = pseudo_header_sum(src.octets(), dst.octets(), 17, l4.len() as u16);
        assert_eq!(fold(sum(l4, pseudo)), 0xffff, "UDP checksum verifies");

        // Inbound: `write` puts a zero header in front.
        let peer = SocketAddrV4::new(PEER, 5555);
        let packet = udp(peer, SocketAddrV4::new(ADDR, 7000), b"plain write");
        assert_eq!(tun.write(&packet).expect("TUN write"), packet.len());
        let mut buf = [0u8; 100];
        let (n, from) = socket.recv_from(&mut buf).expect("datagram from the TUN");
        assert_eq!(&buf[..n], b"plain write");
        assert_eq!(from, SocketAddr::V4(peer));
    });
}
