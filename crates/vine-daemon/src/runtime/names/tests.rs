use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

fn peer(seed: u8) -> PeerId {
    vine_core::Identity::from_seed([seed; 32]).peer_id()
}

fn config(bootstrap: &[(PeerId, &str)]) -> Config {
    let mut text = String::from(
        "[node]\nname = \"alpha\"\nnetwork_id = \"home-net\"\n\n[tun]\naddress = \"10.42.0.1\"\nprefix_len = 24\n\n",
    );
    for (i, (id, address)) in bootstrap.iter().enumerate() {
        text += &format!(
            "[[bootstrap_peers]]\npeer_id = \"{id}\"\naddress = \"{address}\"\n\n[[allowed_peers]]\npeer_id = \"{id}\"\nprefix = \"10.42.{}.0/24\"\n\n",
            i + 1
        );
    }
    let parsed = vine_core::config::parse(&text);
    parsed
        .config
        .unwrap_or_else(|| panic!("{:?}", parsed.diagnostics))
}

fn name(seed: u8, host: &str) -> Name {
    Name {
        peer: peer(seed),
        host: host.into(),
        port: 4100,
    }
}

#[test]
fn only_host_names_are_watched() {
    let c = config(&[
        (peer(2), "udp://198.51.100.10:4100"),
        (peer(3), "udp://localhost:4100"),
        (peer(4), "udp://relay.example.net:4200"),
    ]);
    assert_eq!(
        names(&c),
        [
            name(3, "localhost"),
            Name {
                port: 4200,
                ..name(4, "relay.example.net")
            }
        ]
    );
}

#[test]
fn the_system_resolver_resolves_localhost() {
    let resolved = resolve_all(&[name(3, "localhost")], &system());
    assert_eq!(
        resolved,
        [Resolved {
            name: name(3, "localhost"),
            addr: Some(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 4100)),
        }]
    );
}

#[tokio::test]
async fn re_resolution_reports_localhost_off_the_event_loop() {
    let initial = vec![Resolved {
        name: name(3, "localhost"),
        addr: None,
    }];
    let mut watch = NameWatch::spawn(
        initial,
        system(),
        Duration::from_secs(3600),
        Duration::from_millis(10),
    );
    let round = tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await
        .expect("a round within the retry interval");
    assert_eq!(
        round[0].addr,
        Some(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 4100))
    );
}

#[tokio::test]
async fn a_failing_name_is_retried_fast_and_changes_are_reported() {
    // Fails twice, then answers 203.0.113.5, then moves to .6.
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let resolver: Resolver = {
        let calls = Arc::clone(&calls);
        let seen = Arc::clone(&seen);
        Arc::new(move |host: &str, port: u16| {
            seen.lock().expect("lock").push(host.to_owned());
            let n = calls.fetch_add(1, Ordering::SeqCst);
            let last = match n {
                0 | 1 => return None,
                2 | 3 => 5,
                _ => 6,
            };
            Some(SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, last), port))
        })
    };
    let initial = resolve_all(&[name(4, "relay.example.net")], &resolver);
    assert_eq!(initial[0].addr, None);
    // Failing names are retried every 10 ms; once they resolve the refresh
    // interval (20 ms here) applies.
    let mut watch = NameWatch::spawn(
        initial,
        resolver,
        Duration::from_millis(20),
        Duration::from_millis(10),
    );
    let mut answers = Vec::new();
    while answers.len() < 4 {
        let round = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .expect("rounds keep coming");
        answers.push(round[0].addr.map(|a| a.ip().octets()[3]));
    }
    assert_eq!(answers, [None, Some(5), Some(5), Some(6)]);
    assert!(
        seen.lock()
            .expect("lock")
            .iter()
            .all(|h| h == "relay.example.net")
    );
    drop(watch);
}

#[tokio::test]
async fn nothing_to_watch_never_yields() {
    let mut watch = NameWatch::spawn(Vec::new(), system(), REFRESH, RETRY);
    assert!(
        tokio::time::timeout(Duration::from_millis(50), watch.next())
            .await
            .is_err()
    );
}
