//! The allocator against its rules and against a plain model.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use super::*;

fn name(s: &str) -> WorkloadName {
    s.parse().unwrap()
}

fn prefix(s: &str) -> Ipv4Prefix {
    s.parse().unwrap()
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[test]
fn names_are_dns_labels() {
    assert_eq!(name("Web-1").as_str(), "web-1");
    assert_eq!("".parse::<WorkloadName>(), Err(NameError::Empty));
    assert!(matches!(
        "a.b".parse::<WorkloadName>(),
        Err(NameError::BadCharacter { found: '.', .. })
    ));
    assert!(matches!(
        "wéb".parse::<WorkloadName>(),
        Err(NameError::BadCharacter { found: 'é', .. })
    ));
    assert!(matches!(
        "-web".parse::<WorkloadName>(),
        Err(NameError::EdgeHyphen(_))
    ));
    assert!(matches!(
        "web-".parse::<WorkloadName>(),
        Err(NameError::EdgeHyphen(_))
    ));
    assert!("a".repeat(63).parse::<WorkloadName>().is_ok());
    let long = "a".repeat(64).parse::<WorkloadName>().unwrap_err();
    assert!(long.to_string().contains("at most 63"), "{long}");
    let bad = "my_app".parse::<WorkloadName>().unwrap_err().to_string();
    assert!(bad.contains("letters, digits and `-`"), "{bad}");
}

#[test]
fn never_network_broadcast_or_node() {
    let mut leases = Leases::new(prefix("10.42.1.0/29"), ip("10.42.1.1"));
    assert_eq!(leases.capacity(), 5);
    let mut got = Vec::new();
    for i in 0..5 {
        got.push(
            leases
                .allocate(name(&format!("w{i}")), "/run/netns/x", 7)
                .unwrap()
                .address,
        );
    }
    assert_eq!(
        got,
        [
            "10.42.1.2",
            "10.42.1.3",
            "10.42.1.4",
            "10.42.1.5",
            "10.42.1.6"
        ]
        .map(ip)
    );
    let full = leases.allocate(name("w5"), "/run/netns/x", 7).unwrap_err();
    assert_eq!(
        full,
        LeaseError::PrefixFull {
            prefix: prefix("10.42.1.0/29"),
            capacity: 5
        }
    );
    assert!(full.to_string().contains("larger prefix"), "{full}");
    assert_eq!(leases.len(), 5, "a refused allocation changes nothing");
}

#[test]
fn tiny_prefixes_have_no_room() {
    for p in ["10.42.1.0/31", "10.42.1.1/32"] {
        let mut leases = Leases::new(prefix(p), ip("10.42.1.1"));
        assert_eq!(leases.capacity(), 0);
        assert!(matches!(
            leases.allocate(name("w"), "/run/netns/w", 0),
            Err(LeaseError::PrefixFull { capacity: 0, .. })
        ));
    }
    // A /30 has two host addresses; the node holds one.
    let mut leases = Leases::new(prefix("10.42.1.0/30"), ip("10.42.1.1"));
    assert_eq!(leases.capacity(), 1);
    assert_eq!(
        leases.allocate(name("w"), "/n", 0).unwrap().address,
        ip("10.42.1.2")
    );
}

#[test]
fn node_address_anywhere_in_the_prefix_is_skipped() {
    let mut leases = Leases::new(prefix("10.42.1.0/29"), ip("10.42.1.4"));
    let got: Vec<_> = (0..5)
        .map(|i| {
            leases
                .allocate(name(&format!("w{i}")), "/n", 0)
                .unwrap()
                .address
        })
        .collect();
    // Next-fit starts after the node's own address, then wraps.
    assert_eq!(
        got,
        [
            "10.42.1.5",
            "10.42.1.6",
            "10.42.1.1",
            "10.42.1.2",
            "10.42.1.3"
        ]
        .map(ip)
    );
    assert!(!got.contains(&ip("10.42.1.4")));
    assert_eq!(leases.capacity(), 5);
}

#[test]
fn a_name_holds_one_lease() {
    let mut leases = Leases::new(prefix("10.42.1.0/24"), ip("10.42.1.1"));
    leases.allocate(name("web"), "/run/netns/web", 1).unwrap();
    let err = leases
        .allocate(name("WEB"), "/run/netns/other", 2)
        .unwrap_err();
    assert_eq!(
        err,
        LeaseError::NameTaken {
            name: name("web"),
            address: ip("10.42.1.2")
        }
    );
    assert!(err.to_string().contains("vine detach web"), "{err}");
    assert_eq!(leases.get(&name("web")).unwrap().netns, "/run/netns/web");
    assert_eq!(
        leases.allocate(name("x"), "", 0).unwrap_err(),
        LeaseError::BadNetns
    );
}

#[test]
fn released_addresses_come_back_last() {
    let mut leases = Leases::new(prefix("10.42.1.0/24"), ip("10.42.1.1"));
    let a = leases.allocate(name("a"), "/n", 0).unwrap().address;
    leases.allocate(name("b"), "/n", 0).unwrap();
    assert_eq!(leases.release(&name("a")).unwrap().address, a);
    assert_eq!(leases.release(&name("a")), None);
    let c = leases.allocate(name("c"), "/n", 0).unwrap().address;
    assert_eq!(c, ip("10.42.1.4"), "not the address just released");
    assert_eq!(leases.holder(ip("10.42.1.3")).unwrap().name, name("b"));
    assert_eq!(leases.holder(a), None);
}

#[test]
fn retain_releases_the_dead() {
    let mut leases = Leases::new(prefix("10.42.1.0/24"), ip("10.42.1.1"));
    for n in ["a", "b", "c"] {
        leases
            .allocate(name(n), &format!("/run/netns/{n}"), 0)
            .unwrap();
    }
    let gone = leases.retain(|l| l.name.as_str() != "b");
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].name, name("b"));
    assert_eq!(leases.len(), 2);
    assert!(leases.holder(gone[0].address).is_none());
}

#[test]
fn journal_round_trips() {
    let mut leases = Leases::new(prefix("10.42.1.0/24"), ip("10.42.1.1"));
    leases
        .allocate(name("web"), "/run/netns/web", 1_700_000_000)
        .unwrap();
    leases
        .allocate(name("db"), "/proc/123/ns/net", 1_700_000_001)
        .unwrap();
    leases.release(&name("web"));
    leases
        .allocate(name("odd"), "/var/run/my \"netns\" =\n", 3)
        .unwrap();
    let text = leases.to_journal();
    let (back, stale) =
        Leases::from_journal(prefix("10.42.1.0/24"), ip("10.42.1.1"), &text).unwrap();
    assert!(stale.is_empty());
    assert_eq!(
        back.iter().cloned().collect::<Vec<_>>(),
        leases.iter().cloned().collect::<Vec<_>>()
    );
    // The cursor survives: the next address is the same on both.
    let mut back = back;
    assert_eq!(
        leases.allocate(name("n"), "/n", 0).unwrap().address,
        back.allocate(name("n"), "/n", 0).unwrap().address
    );
}

#[test]
fn journal_under_a_new_prefix_reports_stale_entries() {
    let text = r#"
version = 1
prefix = "10.42.1.0/24"
cursor = "10.42.1.9"

[[lease]]
name = "keep"
address = "10.42.1.5"
netns = "/run/netns/keep"
since = 1

[[lease]]
name = "moved"
address = "10.42.9.5"
netns = "/run/netns/moved"
since = 1

[[lease]]
name = "keep"
address = "10.42.1.6"
netns = "/run/netns/twice"
since = 1

[[lease]]
name = "node"
address = "10.42.1.1"
netns = "/run/netns/node"
since = 1

[[lease]]
name = "bad_name"
address = "10.42.1.7"
netns = "/n"
since = 1

[[lease]]
name = "noaddr"
address = "ten"
netns = "/n"
since = 1
"#;
    let (leases, stale) =
        Leases::from_journal(prefix("10.42.1.0/24"), ip("10.42.1.1"), text).unwrap();
    assert_eq!(leases.len(), 1);
    assert_eq!(leases.get(&name("keep")).unwrap().address, ip("10.42.1.5"));
    let reasons: Vec<_> = stale.iter().map(|s| (s.name.as_str(), s.reason)).collect();
    assert_eq!(
        reasons,
        [
            ("moved", StaleReason::OutsidePrefix),
            ("keep", StaleReason::Duplicate),
            ("node", StaleReason::OutsidePrefix),
            ("bad_name", StaleReason::BadName),
            ("noaddr", StaleReason::BadAddress),
        ]
    );
}

#[test]
fn bad_journals_are_errors_not_panics() {
    let p = prefix("10.42.1.0/24");
    let node = ip("10.42.1.1");
    for text in [
        "",
        "version = 1",
        "garbage [[[",
        "version = 1\nprefix = 3\ncursor = \"x\"",
    ] {
        assert!(
            matches!(
                Leases::from_journal(p, node, text),
                Err(JournalError::Syntax(_))
            ),
            "{text:?}"
        );
    }
    let newer = "version = 2\nprefix = \"10.42.1.0/24\"\ncursor = \"10.42.1.1\"\n";
    let err = Leases::from_journal(p, node, newer).unwrap_err();
    assert_eq!(err, JournalError::Version(2));
    assert!(err.to_string().contains("move the file away"), "{err}");
    let extra = "version = 1\nprefix = \"10.42.1.0/24\"\ncursor = \"10.42.1.1\"\nsurprise = 1\n";
    assert!(matches!(
        Leases::from_journal(p, node, extra),
        Err(JournalError::Syntax(_))
    ));
    // A cursor outside the prefix is ignored, not trusted.
    let odd = "version = 1\nprefix = \"10.42.1.0/24\"\ncursor = \"8.8.8.8\"\n";
    let (mut l, _) = Leases::from_journal(p, node, odd).unwrap();
    assert_eq!(
        l.allocate(name("a"), "/n", 0).unwrap().address,
        ip("10.42.1.2")
    );
}

/// Random allocate / release / retain / journal round trips against a
/// plain model: no address is ever handed out twice, every address is a
/// workload address, the count never exceeds capacity, a refusal happens
/// exactly when the model is full, and the journal always reads back to the
/// same set.
#[test]
fn random_operations_match_the_model() {
    for seed in 0..40u64 {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let len = 24 + (rng.next_u32() % 7) as u8; // /24 ../30
        let p = Ipv4Prefix::containing(ip("10.77.3.0"), len).unwrap();
        let hosts = (1u32 << (32 - len)) - 2;
        let node = Ipv4Addr::from(u32::from(p.network()) + 1 + rng.next_u32() % hosts);
        let mut leases = Leases::new(p, node);
        let mut model: BTreeMap<String, Ipv4Addr> = BTreeMap::new();
        let capacity = leases.capacity();
        assert_eq!(capacity, u64::from(hosts) - 1);
        for step in 0..400 {
            let n = format!("w{}", rng.next_u32() % 80);
            match rng.next_u32() % 10 {
                0..=5 => {
                    let r = leases.allocate(name(&n), "/n", step).map(|l| l.address);
                    if model.contains_key(&n) {
                        assert!(matches!(r, Err(LeaseError::NameTaken { .. })));
                    } else if model.len() as u64 == capacity {
                        assert!(matches!(r, Err(LeaseError::PrefixFull { .. })));
                    } else {
                        let a = r.unwrap();
                        assert!(leases.is_workload_address(a), "{a} in {p} node {node}");
                        assert!(!model.values().any(|&b| b == a), "{a} handed out twice");
                        model.insert(n, a);
                    }
                }
                6..=8 => {
                    let r = leases.release(&name(&n)).map(|l| l.address);
                    assert_eq!(r, model.remove(&n));
                }
                _ => {
                    let text = leases.to_journal();
                    let (back, stale) = Leases::from_journal(p, node, &text).unwrap();
                    assert!(stale.is_empty());
                    leases = back;
                }
            }
            assert_eq!(leases.len(), model.len());
            for (k, v) in &model {
                assert_eq!(leases.get(&name(k)).unwrap().address, *v);
            }
        }
    }
}

#[test]
fn a_full_large_prefix_is_found_quickly() {
    // 4094 addresses in a /20, all leased: allocation must still answer
    // (O(leases) walk, not a scan per address that could loop).
    let mut leases = Leases::new(prefix("10.64.0.0/20"), ip("10.64.0.1"));
    for i in 0..leases.capacity() {
        leases.allocate(name(&format!("w{i}")), "/n", 0).unwrap();
    }
    assert!(matches!(
        leases.allocate(name("one-more"), "/n", 0),
        Err(LeaseError::PrefixFull { capacity: 4093, .. })
    ));
    leases.release(&name("w100"));
    assert_eq!(
        leases.allocate(name("again"), "/n", 0).unwrap().address,
        ip("10.64.0.102")
    );
}
