use std::collections::BTreeSet;
use std::net::UdpSocket;
use std::time::Duration;

use vine_core::Identity;
use vine_core::wg::{Wg, WgError};

use super::*;

fn args(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

#[test]
fn a_forged_initiation_passes_mac1_of_its_target_only() {
    let target = Identity::from_seed([3; 32]);
    let other = Identity::from_seed([4; 32]);
    let mut wg = Wg::new(target.x25519_secret().clone(), [5; 32]);
    let key = mac1_key(target.peer_id().public_key());
    let mut rng = XorShift::new(11);
    let mut buf = [0u8; INITIATION_LEN];
    let now = std::time::Instant::now();
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for _ in 0..20 {
        forge_initiation(&key, &mut rng, &mut buf);
        assert_eq!(&buf[..4], &[1, 0, 0, 0]);
        assert_eq!(&buf[INITIATION_LEN - 16..], &[0; 16], "mac2 is zero");
        seen.insert(buf[4..8].to_vec());
        // Past mac1: the responder spends its Diffie-Hellman and then
        // fails to open the random static key.
        assert_eq!(
            wg.decrypt(now, Duration::ZERO, &buf, &mut out).err(),
            Some(WgError::Decrypt)
        );
    }
    assert_eq!(seen.len(), 20, "random sender indices");
    let wrong = mac1_key(other.peer_id().public_key());
    forge_initiation(&wrong, &mut rng, &mut buf);
    assert_eq!(
        wg.decrypt(now, Duration::ZERO, &buf, &mut out).err(),
        Some(WgError::BadMac1)
    );
}

#[test]
fn a_flood_sends_at_its_rate_from_its_ports() {
    let sink = UdpSocket::bind("127.0.0.1:0").expect("sink");
    sink.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let target = match sink.local_addr().expect("addr") {
        std::net::SocketAddr::V4(a) => a,
        other => panic!("not IPv4: {other}"),
    };
    let spec = FloodSpec {
        target,
        payload: Payload::Junk { size: 300 },
        rate: 2_000,
        duration: Duration::from_millis(250),
        ports: 8,
        bind: Ipv4Addr::LOCALHOST,
        seed: 1,
    };
    let flood = Flood::open(spec).expect("open");
    // Received as they come (the socket buffer holds fewer than 500).
    let receiver = std::thread::spawn(move || {
        let mut ports = BTreeSet::new();
        let mut got = 0u64;
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = sink.recv_from(&mut buf) {
            assert_eq!(n, 300);
            ports.insert(from.port());
            got += 1;
        }
        (got, ports)
    });
    let report = flood.run(&AtomicBool::new(false));
    // 2,000/s for 0.25 s: 500 due by the end, paced in 1 ms steps.
    assert!(
        (400..=500).contains(&(report.sent + report.errors)),
        "{report:?}"
    );
    assert_eq!(report.bytes, report.sent * 300);
    assert_eq!(report.ports, 8);
    let (got, ports) = receiver.join().expect("receiver");
    assert_eq!(got, report.sent, "every datagram arrived on loopback");
    assert_eq!(ports.len(), 8, "from every port");
}

#[test]
fn a_set_stop_flag_ends_a_flood_at_once() {
    let spec = FloodSpec {
        target: SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9),
        payload: Payload::Junk { size: 10 },
        rate: 1_000,
        duration: Duration::from_secs(3600),
        ports: 1,
        bind: Ipv4Addr::LOCALHOST,
        seed: 2,
    };
    let report = Flood::open(spec).expect("open").run(&AtomicBool::new(true));
    assert_eq!(report.sent + report.errors, 0);
}

#[test]
fn arguments_are_parsed_and_bad_ones_explained() {
    let id = Identity::from_seed([3; 32]).peer_id();
    let (spec, mode) = parse_args(
        &args(&format!(
            "--target 203.0.113.2:4100 --peer-id {id} --rate 500 --seconds 1.5 --ports 16"
        )),
        7,
    )
    .expect("parses");
    assert_eq!(mode, "initiations");
    assert_eq!(spec.target.to_string(), "203.0.113.2:4100");
    assert_eq!(
        spec.payload,
        Payload::Initiations {
            public_key: *id.public_key()
        }
    );
    assert_eq!((spec.rate, spec.ports), (500, 16));
    assert_eq!(spec.duration, Duration::from_millis(1500));
    let (spec, mode) = parse_args(&args("--junk --target 203.0.113.2:4100"), 7).expect("junk");
    assert_eq!(mode, "junk");
    assert_eq!(spec.payload, Payload::Junk { size: MAX_JUNK });
    let (spec, _) =
        parse_args(&args("--target 203.0.113.2:4100 --junk 1000"), 7).expect("junk size");
    assert_eq!(spec.payload, Payload::Junk { size: 1000 });
    for (bad, says) in [
        ("--junk", "--target is required"),
        ("--target 203.0.113.2", "give IP:PORT"),
        ("--target 203.0.113.2:1", "give --peer-id"),
        ("--target 203.0.113.2:1 --peer-id beta", "not a vine PeerId"),
        ("--target 203.0.113.2:1 --junk 70000", "1 to 65507 bytes"),
        ("--target 203.0.113.2:1 --junk --ports 0", "1 to 10000"),
        ("--target 203.0.113.2:1 --junk --seconds -1", "positive"),
        ("--target 203.0.113.2:1 --junk --rate", "--rate needs"),
        ("--flood", "unknown argument `--flood`"),
    ] {
        let e = parse_args(&args(bad), 7).expect_err(bad);
        assert!(e.contains(says), "{bad}: {e}");
    }
}

#[test]
fn junk_sizes_are_checked_when_opening() {
    let spec = |size| FloodSpec {
        target: SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9),
        payload: Payload::Junk { size },
        rate: 1,
        duration: Duration::from_secs(1),
        ports: 1,
        bind: Ipv4Addr::LOCALHOST,
        seed: 2,
    };
    assert!(Flood::open(spec(0)).is_err());
    assert!(Flood::open(spec(MAX_JUNK + 1)).is_err());
    assert!(Flood::open(spec(MAX_JUNK)).is_ok());
}
