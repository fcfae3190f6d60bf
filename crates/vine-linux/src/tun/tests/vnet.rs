//! Offload tests against the kernel: what `open_with` enables, the plain
//! packet path on a vnet TUN, and TCP between two namespaces through a
//! userspace forwarder that splits the kernel's TSO super-packets and
//! coalesces them again on the other side.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use vine_core::net::Ipv4Prefix;

use super::*;
use crate::routes::Routes;
use crate::tun::offload::{
    CoalesceError, Coalescer, DEFAULT_MAX_PACKETS, SegmentBuf, VIRTIO_NET_HDR_GSO_TCPV4, split,
};
use vine_core::wire::checksum::{fold, pseudo_header_sum, sum};
use vine_core::wire::ipv4;

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

// ---- two namespaces, one forwarder ----

const NODE_A: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const NODE_B: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
const TRANSFER: usize = 32 << 20;
const CHUNK: usize = 256 << 10;
const DEADLINE: Duration = Duration::from_secs(90);

/// What one direction of the forwarder saw.
#[derive(Debug, Default)]
struct Stats {
    reads: AtomicU64,
    tso_reads: AtomicU64,
    largest_read: AtomicU64,
    segments: AtomicU64,
    split_errors: AtomicU64,
    writes: AtomicU64,
    merged_writes: AtomicU64,
}

impl Stats {
    fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Sets the flag when dropped, also while unwinding from a panic.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Opens `vo0` with offloads at `local/32` with a route to `remote/32`.
fn open_end(local: Ipv4Addr, remote: Ipv4Addr) -> Tun {
    let tun = Tun::open_with("vo0", local, 32, 1420, WITH_OFFLOAD).expect("open with offload");
    let prefix = Ipv4Prefix::containing(remote, 32).expect("a /32");
    Routes::new()
        .expect("netlink")
        .install(prefix, tun.index())
        .expect("route to the other end");
    tun
}

/// Moves packets from `from` to `to` as vine's data path would: read a
/// (super-)packet, split it into segments, and coalesce the segments for
/// the other TUN. Runs until `stop`; on error it sets `stop` itself.
fn forward(from: &Tun, to: &Tun, stop: &AtomicBool, stats: &Stats) -> io::Result<()> {
    let result = forward_loop(from, to, stop, stats);
    if result.is_err() {
        stop.store(true, Ordering::Relaxed);
    }
    result
}

fn forward_loop(from: &Tun, to: &Tun, stop: &AtomicBool, stats: &Stats) -> io::Result<()> {
    let mut buf = vec![0u8; offload::VIRTIO_NET_HDR_LEN + ipv4::MAX_PACKET];
    let mut segments = SegmentBuf::new(16, 31);
    let mut coalescer = Coalescer::new(DEFAULT_MAX_PACKETS, to.offloads().uso);
    from.set_nonblocking(true)?;
    while !stop.load(Ordering::Relaxed) {
        if !sys::poll_readable(from.as_fd(), 20)? {
            continue;
        }
        for _ in 0..64 {
            let n = match from.read_vnet(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            };
            stats.reads.fetch_add(1, Ordering::Relaxed);
            if buf[1] == VIRTIO_NET_HDR_GSO_TCPV4 {
                stats.tso_reads.fetch_add(1, Ordering::Relaxed);
                stats.largest_read.fetch_max(n as u64, Ordering::Relaxed);
            }
            let count = match split(&buf[..n], &mut segments) {
                Ok(count) => count,
                Err(_) => {
                    stats.split_errors.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            };
            stats.segments.fetch_add(count as u64, Ordering::Relaxed);
            for segment in segments.iter() {
                if let Err(CoalesceError::Full { .. }) = coalescer.push(segment) {
                    flush(&mut coalescer, to, stats)?;
                    coalescer.push(segment).map_err(io::Error::other)?;
                }
            }
        }
        flush(&mut coalescer, to, stats)?;
    }
    Ok(())
}

fn flush(coalescer: &mut Coalescer, to: &Tun, stats: &Stats) -> io::Result<()> {
    coalescer.flush(|packet| {
        stats.writes.fetch_add(1, Ordering::Relaxed);
        if packet[1] == VIRTIO_NET_HDR_GSO_TCPV4 {
            stats.merged_writes.fetch_add(1, Ordering::Relaxed);
        }
        to.write_vnet(packet)
    })
}

/// The transfer's content: 8-byte blocks of a keyed mix of their index,
/// so any offset can be checked without keeping the stream.
fn fill(buf: &mut [u8], offset: usize) {
    debug_assert!(offset.is_multiple_of(8) && buf.len().is_multiple_of(8));
    for (i, block) in buf.chunks_exact_mut(8).enumerate() {
        let mut x = ((offset / 8 + i) as u64).wrapping_add(0x9e37_79b9_7f4a_7c15);
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        block.copy_from_slice(&(x ^ (x >> 31)).to_le_bytes());
    }
}

fn check(stop: &AtomicBool, deadline: Instant) -> io::Result<()> {
    if stop.load(Ordering::Relaxed) {
        return Err(io::Error::other("stopped (a forwarder failed)"));
    }
    if Instant::now() > deadline {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "transfer did not finish in time",
        ));
    }
    Ok(())
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

fn send(to: SocketAddr, stop: &AtomicBool, deadline: Instant) -> io::Result<()> {
    let mut stream = TcpStream::connect_timeout(&to, Duration::from_secs(5))?;
    stream.set_write_timeout(Some(Duration::from_millis(200)))?;
    let mut chunk = vec![0u8; CHUNK];
    for offset in (0..TRANSFER).step_by(CHUNK) {
        fill(&mut chunk, offset);
        let mut done = 0;
        while done < CHUNK {
            check(stop, deadline)?;
            match stream.write(&chunk[done..]) {
                Ok(n) => done += n,
                Err(e) if is_timeout(&e) => {}
                Err(e) => return Err(e),
            }
        }
    }
    stream.shutdown(Shutdown::Write)
}

/// Accepts one connection and checks every byte; returns the count.
fn receive(listener: &TcpListener, stop: &AtomicBool, deadline: Instant) -> io::Result<usize> {
    while !sys::poll_readable(listener.as_fd(), 100)? {
        check(stop, deadline)?;
    }
    let (mut stream, _) = listener.accept()?;
    stream.set_read_timeout(Some(Duration::from_millis(200)))?;
    let mut buf = vec![0u8; CHUNK];
    let mut expected = vec![0u8; CHUNK];
    let mut window = usize::MAX;
    let mut total = 0;
    loop {
        check(stop, deadline)?;
        let n = match stream.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if is_timeout(&e) => continue,
            Err(e) => return Err(e),
        };
        let mut i = 0;
        while i < n {
            let pos = total + i;
            if pos >= TRANSFER {
                return Err(io::Error::other("more bytes than were sent"));
            }
            if pos / CHUNK != window {
                window = pos / CHUNK;
                fill(&mut expected, window * CHUNK);
            }
            let at = pos % CHUNK;
            let take = (CHUNK - at).min(n - i);
            if buf[i..i + take] != expected[at..at + take] {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("corrupted stream near byte {pos}"),
                ));
            }
            i += take;
        }
        total += n;
    }
}

fn joined<T>(handle: thread::ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|payload| std::panic::resume_unwind(payload))
}

#[test]
fn tcp_crosses_two_namespaces_through_split_and_coalesce() {
    in_netns(|| {
        let tun_a = open_end(NODE_A, NODE_B);
        let (tun_b, listener) = in_netns(|| {
            let tun = open_end(NODE_B, NODE_A);
            let listener = TcpListener::bind((NODE_B, 0)).expect("listen in namespace B");
            (tun, listener)
        });
        let to = listener.local_addr().expect("listener address");
        let stop = AtomicBool::new(false);
        let (a_to_b, b_to_a) = (Stats::default(), Stats::default());
        let deadline = Instant::now() + DEADLINE;

        let (sent, received, elapsed, fwd) = thread::scope(|s| {
            let _stop = StopOnDrop(&stop);
            let fwd_ab = s.spawn(|| forward(&tun_a, &tun_b, &stop, &a_to_b));
            let fwd_ba = s.spawn(|| forward(&tun_b, &tun_a, &stop, &b_to_a));
            let server = s.spawn(|| receive(&listener, &stop, deadline));
            let started = Instant::now();
            let sent = send(to, &stop, deadline);
            if sent.is_err() {
                stop.store(true, Ordering::Relaxed); // the server stops waiting
            }
            let received = joined(server);
            let elapsed = started.elapsed();
            stop.store(true, Ordering::Relaxed);
            let fwd = (joined(fwd_ab), joined(fwd_ba));
            (sent, received, elapsed, fwd)
        });

        eprintln!("A->B {a_to_b:?}\nB->A {b_to_a:?}");
        fwd.0.expect("forwarder A->B");
        fwd.1.expect("forwarder B->A");
        sent.expect("client in namespace A");
        assert_eq!(received.expect("server in namespace B"), TRANSFER);
        let mbit = TRANSFER as f64 * 8.0 / elapsed.as_secs_f64() / 1e6;
        eprintln!(
            "32 MiB in {:.2} s: {mbit:.0} Mbit/s through the forwarder",
            elapsed.as_secs_f64()
        );
        assert!(
            Stats::get(&a_to_b.tso_reads) > 0,
            "the kernel never handed over a TSO super-packet: {a_to_b:?}"
        );
        assert!(
            Stats::get(&a_to_b.largest_read) > 2 * 1420,
            "super-packets span several segments: {a_to_b:?}"
        );
        assert!(
            Stats::get(&a_to_b.merged_writes) > 0,
            "the coalescer never merged: {a_to_b:?}"
        );
        assert!(
            Stats::get(&a_to_b.writes) < Stats::get(&a_to_b.segments),
            "fewer writes than segments: {a_to_b:?}"
        );
        assert_eq!(Stats::get(&a_to_b.split_errors), 0, "{a_to_b:?}");
        assert_eq!(Stats::get(&b_to_a.split_errors), 0, "{b_to_a:?}");
        assert!(Stats::get(&b_to_a.reads) > 0, "ACKs came back: {b_to_a:?}");
    });
}
