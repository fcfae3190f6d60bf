//! UDP batch tests. Planning is tested without sockets; everything else
//! uses real sockets on 127.0.0.1 inside a private network namespace
//! ([`in_netns`]), so they need root and fail (not skip) without it.

use std::net::Ipv4Addr;
use std::time::Instant;

use super::*;
use crate::netlink::Netlink;
use crate::netns::in_netns;

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;
const MIB: usize = 1 << 20;

fn bind() -> UdpBatch {
    UdpBatch::bind(SocketAddrV4::new(LO, 0), 4 * MIB).expect("bind 127.0.0.1:0 (needs root)")
}

fn addr(s: &UdpBatch) -> SocketAddrV4 {
    s.local_addr().expect("local_addr")
}

/// A payload that names its destination, sequence number and length in
/// every byte, so a swapped, cut or merged datagram cannot compare equal.
fn payload(dst: usize, seq: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|j| (dst * 131 + seq * 31 + j * 7 + len) as u8)
        .collect()
}

/// Receives until `want` datagrams arrived or nothing came for a second.
/// Returns the datagrams and the number of messages they came in.
fn recv_all(s: &UdpBatch, want: usize) -> (Vec<Vec<u8>>, usize) {
    s.set_read_timeout(Some(Duration::from_secs(1)))
        .expect("set_read_timeout");
    let mut batch = RecvBatch::new(32);
    let (mut out, mut messages) = (Vec::new(), 0);
    while out.len() < want {
        match s.recv_batch(&mut batch) {
            Ok(n) => {
                assert!(n > 0 && n == batch.len());
                for i in 0..n {
                    let mut m = batch.message(i);
                    let count = m.count();
                    let got: Vec<Vec<u8>> = m.datagrams().map(|d| d.to_vec()).collect();
                    assert_eq!(got.len(), count);
                    out.extend(got);
                    messages += 1;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("recv_batch: {e}"),
        }
    }
    (out, messages)
}

fn run(start: usize, count: usize, segment: u16) -> Run {
    Run {
        start,
        count,
        segment,
    }
}

fn plan_of(datagrams: &[(SocketAddrV4, &[u8])], gso: bool) -> Vec<Run> {
    let mut runs = Vec::new();
    plan(datagrams, 0, gso, &mut runs);
    runs
}

#[test]
fn plan_groups_same_destination_same_length_runs() {
    let a = SocketAddrV4::new(LO, 1000);
    let b = SocketAddrV4::new(LO, 2000);
    let (big, small) = ([0u8; 100], [0u8; 60]);
    let d: Vec<(SocketAddrV4, &[u8])> = vec![
        (a, &big),
        (a, &big),
        (a, &small), // shorter: ends the run
        (a, &big),
        (b, &big), // other destination
        (b, &big),
        (b, &big),
        (a, &small),
        (a, &big), // longer than the run's size: new run
    ];
    assert_eq!(
        plan_of(&d, true),
        vec![
            run(0, 3, 100),
            run(3, 1, 0),
            run(4, 3, 100),
            run(7, 1, 0),
            run(8, 1, 0),
        ]
    );
    let single: Vec<Run> = (0..d.len()).map(|i| run(i, 1, 0)).collect();
    assert_eq!(plan_of(&d, false), single, "without GSO: one per datagram");
    let mut runs = Vec::new();
    plan(&d, 4, true, &mut runs);
    assert_eq!(runs, vec![run(4, 3, 100), run(7, 1, 0), run(8, 1, 0)]);
}

#[test]
fn plan_respects_segment_and_payload_limits() {
    let a = SocketAddrV4::new(LO, 1000);
    let (p1400, p100) = ([0u8; 1400], [0u8; 100]);
    let d: Vec<(SocketAddrV4, &[u8])> = vec![(a, &p1400); 200];
    let runs = plan_of(&d, true);
    let per = MAX_PAYLOAD / 1400; // 46
    assert_eq!(runs.len(), 200_usize.div_ceil(per));
    assert!(runs.iter().all(|r| r.count * 1400 <= MAX_PAYLOAD));
    assert_eq!(runs.iter().map(|r| r.count).sum::<usize>(), 200);

    let d: Vec<(SocketAddrV4, &[u8])> = vec![(a, &p100); 200];
    let runs = plan_of(&d, true);
    assert_eq!(
        runs.iter().map(|r| r.count).collect::<Vec<_>>(),
        vec![64, 64, 64, 8]
    );

    let huge = vec![0u8; 40_000];
    let d: Vec<(SocketAddrV4, &[u8])> = vec![(a, &huge); 3];
    assert!(
        plan_of(&d, true)
            .iter()
            .all(|r| r.count == 1 && r.segment == 0)
    );
}

#[test]
fn plan_never_groups_empty_datagrams_or_port_zero() {
    let a = SocketAddrV4::new(LO, 1000);
    let zero = SocketAddrV4::new(LO, 0);
    let (p, e) = ([0u8; 10], [0u8; 0]);
    let d: Vec<(SocketAddrV4, &[u8])> =
        vec![(a, &e), (a, &e), (a, &p), (a, &e), (zero, &p), (zero, &p)];
    assert_eq!(
        plan_of(&d, true),
        vec![
            run(0, 1, 0),
            run(1, 1, 0),
            run(2, 1, 0),
            run(3, 1, 0),
            run(4, 1, 0),
            run(5, 1, 0),
        ]
    );
}

#[test]
fn handles_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<UdpBatch>();
    check::<RecvBatch>();
    check::<SendScratch>();
}

#[test]
fn bind_sets_large_buffers_and_reports_offloads() {
    in_netns(|| {
        let s = bind();
        assert_ne!(addr(&s).port(), 0);
        let (rcv, snd) = s.buffer_sizes().expect("buffer_sizes");
        assert!(rcv >= 4 * MIB, "receive buffer {rcv}");
        assert!(snd >= 4 * MIB, "send buffer {snd}");
        // This kernel has both; fail loudly if that changes, since the
        // other tests would then not cover the offload paths.
        assert!(s.gso(), "UDP_SEGMENT available");
        assert!(s.gro(), "UDP_GRO available");
    });
}

fn mixed_batch_delivers_in_order(gso: bool) {
    in_netns(|| {
        let sender = bind();
        sender.set_gso(gso);
        let receivers: Vec<UdpBatch> = (0..3).map(|_| bind()).collect();
        let dsts: Vec<SocketAddrV4> = receivers.iter().map(addr).collect();
        // (destination, length) pattern: runs, shorter tails, interleaving.
        let mut shape = Vec::new();
        for round in 0..4 {
            shape.extend((0..10).map(|_| (0, 1200)));
            shape.push((0, 300));
            shape.extend((0..5).map(|_| (1, 80)));
            shape.push((2, 1 + round));
            shape.push((1, 80));
            shape.extend((0..70).map(|_| (2, 512)));
            shape.push((0, 1400));
            shape.push((2, 511));
        }
        let mut seq = [0usize; 3];
        let owned: Vec<(usize, Vec<u8>)> = shape
            .iter()
            .map(|&(r, len)| {
                seq[r] += 1;
                (r, payload(r, seq[r], len))
            })
            .collect();
        let batch: Vec<(SocketAddrV4, &[u8])> = owned
            .iter()
            .map(|(r, p)| (dsts[*r], p.as_slice()))
            .collect();

        let mut scratch = SendScratch::new();
        let report = sender.send_batch(&batch, &mut scratch).expect("send_batch");
        assert_eq!(
            report,
            SendReport {
                sent: batch.len(),
                dropped: 0,
                gso_disabled: false
            }
        );
        assert_eq!(sender.gso(), gso);
        for (r, receiver) in receivers.iter().enumerate() {
            let want: Vec<Vec<u8>> = owned
                .iter()
                .filter(|(d, _)| *d == r)
                .map(|(_, p)| p.clone())
                .collect();
            let (got, _) = recv_all(receiver, want.len());
            assert_eq!(got.len(), want.len(), "receiver {r}: count");
            assert!(got == want, "receiver {r}: contents or order differ");
        }
    });
}

#[test]
fn mixed_batch_delivers_every_datagram_in_order_with_gso() {
    mixed_batch_delivers_in_order(true);
}

#[test]
fn mixed_batch_delivers_every_datagram_in_order_without_gso() {
    mixed_batch_delivers_in_order(false);
}

#[test]
fn gro_returns_one_gso_message_as_strided_datagrams() {
    in_netns(|| {
        let (sender, receiver) = (bind(), bind());
        let dst = addr(&receiver);
        let owned: Vec<Vec<u8>> = (0..40).map(|i| payload(0, i, 1000)).collect();
        let batch: Vec<(SocketAddrV4, &[u8])> = owned.iter().map(|p| (dst, p.as_slice())).collect();
        let report = sender
            .send_batch(&batch, &mut SendScratch::new())
            .expect("send_batch");
        assert_eq!(report.sent, 40);

        receiver
            .set_read_timeout(Some(Duration::from_secs(1)))
            .expect("timeout");
        let mut rb = RecvBatch::new(8);
        let n = receiver.recv_batch(&mut rb).expect("recv_batch");
        let mut m = rb.message(0);
        assert_eq!(m.from, addr(&sender));
        assert_eq!(n, 1, "one GSO message arrives as one GRO message");
        assert_eq!((m.stride, m.data.len(), m.count()), (1000, 40_000, 40));
        // In-place mutation is visible through datagrams().
        m.data[0] ^= 0xff;
        let got: Vec<Vec<u8>> = m.datagrams().map(|d| d.to_vec()).collect();
        let mut want = owned.clone();
        want[0][0] ^= 0xff;
        assert!(got == want, "datagrams() yields the sent payloads in order");
        assert!(!rb.is_lone(), "a GRO message is not a lone datagram");
    });
}

#[test]
fn is_lone_tells_one_datagram_from_several() {
    in_netns(|| {
        let (sender, receiver) = (bind(), bind());
        let dst = addr(&receiver);
        receiver
            .set_read_timeout(Some(Duration::from_secs(1)))
            .expect("timeout");
        let mut rb = RecvBatch::new(8);
        let one = payload(0, 0, 100);
        sender
            .send_batch(&[(dst, one.as_slice())], &mut SendScratch::new())
            .expect("send_batch");
        assert_eq!(receiver.recv_batch(&mut rb).expect("recv_batch"), 1);
        assert!(rb.is_lone(), "one datagram of 100 bytes");
        // Two datagrams sent together are queued before send_batch returns
        // (loopback): two messages, or one GRO message of two.
        let (a, b) = (payload(0, 1, 100), payload(0, 2, 60));
        sender
            .send_batch(
                &[(dst, a.as_slice()), (dst, b.as_slice())],
                &mut SendScratch::new(),
            )
            .expect("send_batch");
        let n = receiver.recv_batch(&mut rb).expect("recv_batch");
        let datagrams: usize = (0..n).map(|i| rb.message(i).count()).sum();
        assert_eq!(datagrams, 2);
        assert!(!rb.is_lone(), "two datagrams in one receive");
    });
}

#[test]
fn long_runs_respect_segment_and_size_limits() {
    in_netns(|| {
        let (sender, receiver) = (bind(), bind());
        let dst = addr(&receiver);
        for (count, len) in [(200, 1400), (200, 100)] {
            let owned: Vec<Vec<u8>> = (0..count).map(|i| payload(1, i, len)).collect();
            let batch: Vec<(SocketAddrV4, &[u8])> =
                owned.iter().map(|p| (dst, p.as_slice())).collect();
            let report = sender
                .send_batch(&batch, &mut SendScratch::new())
                .expect("send_batch");
            assert_eq!(report.sent, count, "{count} x {len}");
            assert!(!report.gso_disabled && sender.gso(), "no GSO rejection");
            let (got, messages) = recv_all(&receiver, count);
            assert!(got == owned, "{count} x {len}: contents or order differ");
            assert!(messages < count, "GRO coalesced ({messages} messages)");
        }
    });
}

#[test]
fn recv_times_out_on_an_idle_socket() {
    in_netns(|| {
        let s = bind();
        s.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let mut rb = RecvBatch::new(4);
        let start = Instant::now();
        let err = s.recv_batch(&mut rb).expect_err("nothing was sent");
        let took = start.elapsed();
        assert!(
            matches!(
                err.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
            "{err}"
        );
        assert!(took >= Duration::from_millis(40) && took < Duration::from_secs(2));
        assert!(rb.is_empty());
    });
}

#[test]
fn unreachable_destinations_do_not_stop_the_batch() {
    in_netns(|| {
        let (sender, receiver) = (bind(), bind());
        // Report ICMP errors on the socket, so a send to a closed port
        // makes a later send fail with ECONNREFUSED (vine does not set
        // IP_RECVERR, but other setups, e.g. a connected socket, would).
        sys::set_int(sender.as_fd(), libc::IPPROTO_IP, libc::IP_RECVERR, 1).expect("IP_RECVERR");
        let closed = addr(&bind()); // bound, then dropped: the port is closed
        let open = addr(&receiver);
        let zero = SocketAddrV4::new(LO, 0); // EINVAL: skipped, not sent
        let mut scratch = SendScratch::new();
        let mut want = Vec::new();
        for round in 0..3 {
            let owned: Vec<(SocketAddrV4, Vec<u8>)> = (0..12)
                .map(|i| {
                    let dst = match i % 4 {
                        0 => closed,
                        3 => zero,
                        _ => open,
                    };
                    (dst, payload(round, i, 200))
                })
                .collect();
            let batch: Vec<(SocketAddrV4, &[u8])> =
                owned.iter().map(|(d, p)| (*d, p.as_slice())).collect();
            let report = sender.send_batch(&batch, &mut scratch).expect("send_batch");
            assert_eq!(report.dropped, 3, "round {round}: the port-0 datagrams");
            assert_eq!(report.sent, 9, "round {round}");
            want.extend(
                owned
                    .into_iter()
                    .filter(|(d, _)| *d == open)
                    .map(|(_, p)| p),
            );
            // Let the ICMP port-unreachable reports arrive.
            thread::sleep(Duration::from_millis(20));
        }
        let (got, _) = recv_all(&receiver, want.len());
        assert!(got == want, "every datagram to the open port arrived");
    });
}

#[test]
fn gso_rejected_by_the_kernel_falls_back_for_good() {
    in_netns(|| {
        // A segment larger than the route MTU makes the kernel refuse the
        // GSO message (EINVAL); plain sends are fragmented and get through.
        let mut nl = Netlink::new().expect("netlink");
        let lo = nl.link("lo").expect("link dump").expect("lo exists");
        nl.set_link(lo.index, Some(1280), true)
            .expect("lo mtu 1280");

        let (sender, receiver) = (bind(), bind());
        let clone = sender.try_clone().expect("try_clone");
        let dst = addr(&receiver);
        let owned: Vec<Vec<u8>> = (0..10).map(|i| payload(2, i, 1400)).collect();
        let batch: Vec<(SocketAddrV4, &[u8])> = owned.iter().map(|p| (dst, p.as_slice())).collect();
        let mut scratch = SendScratch::new();
        let report = sender.send_batch(&batch, &mut scratch).expect("send_batch");
        assert_eq!(
            report,
            SendReport {
                sent: 10,
                dropped: 0,
                gso_disabled: true
            }
        );
        assert!(!sender.gso() && !clone.gso(), "off for every handle");
        let again = sender.send_batch(&batch, &mut scratch).expect("send_batch");
        assert_eq!((again.sent, again.gso_disabled), (10, false));
        let (got, _) = recv_all(&receiver, 20);
        let want: Vec<Vec<u8>> = owned.iter().chain(&owned).cloned().collect();
        assert!(got == want, "all 20 arrived in order");
    });
}

#[test]
fn clones_receive_and_send_on_separate_threads() {
    in_netns(|| {
        let a = Arc::new(bind());
        let b = bind();
        let b_addr = addr(&b);
        let a_addr = addr(&a);
        let rx = a.try_clone().expect("try_clone");
        let receiver = thread::spawn(move || recv_all(&rx, 100).0);
        let echo = thread::spawn(move || {
            let (got, _) = recv_all(&b, 100);
            let batch: Vec<(SocketAddrV4, &[u8])> =
                got.iter().map(|p| (a_addr, p.as_slice())).collect();
            b.send_batch(&batch, &mut SendScratch::new())
                .expect("echo")
                .sent
        });
        let owned: Vec<Vec<u8>> = (0..100).map(|i| payload(3, i, 64 + i)).collect();
        for p in &owned {
            assert_eq!(a.send_to(p, b_addr).expect("send_to"), p.len());
        }
        assert_eq!(echo.join().expect("echo thread"), 100);
        let got = receiver.join().expect("receive thread");
        assert!(got == owned, "echoed back intact and in order");
    });
}

#[test]
fn only_errors_that_may_be_stale_icmp_reports_are_retried() {
    let e = |n| io::Error::from_raw_os_error(n);
    for n in [
        libc::ECONNREFUSED,
        libc::EHOSTUNREACH,
        libc::ENETUNREACH,
        libc::EHOSTDOWN,
    ] {
        assert_eq!(classify(&e(n), false), Failure::Stale, "errno {n}");
    }
    // A local firewall's verdict (nftables drop in the output hook) is for
    // this datagram: sending it again would only ask the firewall twice,
    // and a random-drop rule would lose less than configured.
    for n in [libc::EPERM, libc::EACCES, libc::EMSGSIZE, libc::EINVAL] {
        assert_eq!(classify(&e(n), false), Failure::Destination, "errno {n}");
    }
    assert_eq!(classify(&e(libc::EIO), true), Failure::GsoRejected);
    assert_eq!(classify(&e(libc::ENOBUFS), false), Failure::Busy);
    assert_eq!(classify(&e(libc::EBADF), false), Failure::Fatal);
}

#[test]
fn a_connected_socket_takes_its_peers_datagrams_and_sends_from_the_same_port() {
    in_netns(|| {
        let main = bind();
        let (x, y) = (bind(), bind());
        let conn = main.connect_to(addr(&x), 4 * MIB).expect("connect_to");
        assert_eq!(conn.peer(), Some(addr(&x)));
        assert_eq!(addr(&conn), addr(&main), "same address and port");
        let mut scratch = SendScratch::new();
        let from_x = payload(1, 0, 200);
        let from_y = payload(2, 0, 300);
        x.send_batch(&[(addr(&main), from_x.as_slice())], &mut scratch)
            .expect("x sends");
        y.send_batch(&[(addr(&main), from_y.as_slice())], &mut scratch)
            .expect("y sends");
        let (got, _) = recv_all(&conn, 1);
        assert_eq!(
            got,
            vec![from_x.clone()],
            "the peer's datagram reaches the connected socket"
        );
        let (got, _) = recv_all(&main, 1);
        assert_eq!(got, vec![from_y], "everyone else's reaches the bound one");
        // Sent without an address (and with GSO: one run of three), from
        // the shared port.
        let three: Vec<Vec<u8>> = (0..3).map(|i| payload(3, i, 500)).collect();
        let batch: Vec<(SocketAddrV4, &[u8])> =
            three.iter().map(|p| (addr(&x), p.as_slice())).collect();
        let report = conn.send_batch(&batch, &mut scratch).expect("conn sends");
        assert_eq!(report.sent, 3);
        let mut rb = RecvBatch::new(8);
        x.set_read_timeout(Some(Duration::from_secs(1)))
            .expect("timeout");
        let n = x.recv_batch(&mut rb).expect("x receives");
        let mut all = Vec::new();
        for i in 0..n {
            let mut m = rb.message(i);
            assert_eq!(m.from, addr(&main), "from the shared port");
            all.extend(m.datagrams().map(|d| d.to_vec()));
        }
        if all.len() < 3 {
            let (rest, _) = recv_all(&x, 3 - all.len());
            all.extend(rest);
        }
        assert_eq!(all, three);
        // The port is still not free for anyone binding it plainly.
        let err = UdpBatch::bind(addr(&main), MIB).expect_err("the port is taken");
        assert!(matches!(err, HostError::UdpBind { .. }), "{err:?}");
        // Once the connected socket is gone its peer reaches the bound one.
        drop(conn);
        x.send_batch(&[(addr(&main), from_x.as_slice())], &mut scratch)
            .expect("x sends");
        let (got, _) = recv_all(&main, 1);
        assert_eq!(got, vec![from_x]);
    });
}
