//! WireGuard's under-load behaviour on the simulator: a normal two-node
//! session comes up without cookies, and one whose responder is under load
//! comes up through the cookie path (cookie reply, retry with mac2).

use std::time::Duration;

use vine_testkit::overlay::{Overlay, member};

fn duo() -> Vec<vine_testkit::overlay::MemberSpec> {
    vec![
        member("alpha", 2, [10, 42, 0, 1], false),
        member("beta", 3, [10, 42, 1, 1], false),
    ]
}

/// Sends tagged packets from `from` to `to` every 10 ms until one arrives;
/// the virtual time it took.
fn first_packet(o: &mut Overlay, from: &str, to: &str) -> Duration {
    let start = o.net.elapsed();
    for i in 0..500 {
        o.send(from, to, format!("hello {i}").as_bytes());
        o.net.run_for(Duration::from_millis(10));
        if let Some((t, _)) = o
            .node(to)
            .delivered
            .iter()
            .find(|(_, p)| p.get(20..).is_some_and(|b| b.starts_with(b"hello ")))
        {
            return *t - start;
        }
    }
    panic!("no packet from {from} to {to} within 5 s");
}

#[test]
fn a_normal_session_needs_no_cookie() {
    let mut o = Overlay::public(21, &duo(), Some("beta"), |_, _| {});
    let t = first_packet(&mut o, "alpha", "beta");
    assert!(t < Duration::from_millis(500), "took {t:?}");
    first_packet(&mut o, "beta", "alpha");
    for name in ["alpha", "beta"] {
        let load = o.node(name).node.handshake_load();
        assert!(!load.under_load, "{name}: {load:?}");
        assert_eq!(load.cookie_replies_sent, 0, "{name}: {load:?}");
        assert_eq!(load.rate_limited, 0, "{name}: {load:?}");
        assert!(load.dh_computed >= 1, "{name}: {load:?}");
        let c = o.node(name).node.counters();
        assert_eq!(c.handshake_dh_computed, load.dh_computed);
    }
}

#[test]
fn a_session_with_a_node_under_load_comes_up_through_a_cookie() {
    let mut o = Overlay::public(22, &duo(), Some("beta"), |_, _| {});
    let beta = o.host("beta");
    let until = o.net.now() + Duration::from_secs(60);
    o.net.endpoint_mut(beta).node.set_under_load(until);

    let t = first_packet(&mut o, "alpha", "beta");
    assert!(t < Duration::from_secs(1), "took {t:?}");
    let beta_load = o.node("beta").node.handshake_load();
    let alpha_load = o.node("alpha").node.handshake_load();
    assert!(beta_load.under_load);
    assert!(beta_load.cookie_replies_sent >= 1, "{beta_load:?}");
    assert_eq!(beta_load.mac2_missing, beta_load.cookie_replies_sent);
    assert!(alpha_load.cookie_replies_received >= 1, "{alpha_load:?}");
    assert_eq!(alpha_load.bad_cookie_replies, 0, "{alpha_load:?}");
    let c = o.node("beta").node.counters();
    assert_eq!(c.cookie_replies_sent, beta_load.cookie_replies_sent);
    // And back.
    first_packet(&mut o, "beta", "alpha");
}

#[test]
fn a_forty_node_mesh_starts_without_cookies_or_refusals() {
    // Every node handshakes with every other at about the same time: below
    // the load threshold and within every source's limit, so none of it
    // takes the cookie path.
    let specs: Vec<_> = (0..40u8)
        .map(|i| member(&format!("n{i:02}"), i + 1, [10, 42, i, 1], i == 0))
        .collect();
    let mut o = Overlay::public(23, &specs, Some("n00"), |_, _| {});
    let converged = o.run_until(Duration::from_secs(30), |o| {
        (0..40u8).all(|i| o.node(&format!("n{i:02}")).kernel_routes.len() == 39)
    });
    assert!(converged, "not every node routes all 39 others");
    println!(
        "40-node mesh converged after {:?} simulated",
        o.net.elapsed()
    );
    for i in 0..40u8 {
        let name = format!("n{i:02}");
        let load = o.node(&name).node.handshake_load();
        assert_eq!(
            (
                load.cookie_replies_sent,
                load.rate_limited,
                load.bad_cookie_replies
            ),
            (0, 0, 0),
            "{name}: {load:?}"
        );
    }
}
