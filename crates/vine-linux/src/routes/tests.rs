//! Route tests, each in a private network namespace (need root).

use std::net::Ipv4Addr;

use super::*;
use crate::netns::in_netns;
use crate::tun::Tun;

fn p(s: &str) -> Ipv4Prefix {
    s.parse().expect("test prefix is valid")
}

fn routes_to(nl: &mut Netlink, prefix: Ipv4Prefix) -> Vec<Route> {
    nl.main_routes()
        .expect("route dump")
        .into_iter()
        .filter(|r| r.prefix == prefix)
        .collect()
}

#[test]
fn install_and_remove_are_idempotent() {
    in_netns(|| {
        let tun = Tun::open("vt0", Ipv4Addr::new(10, 99, 0, 1), 24, 1400).expect("TUN");
        let mut routes = Routes::new().expect("netlink");
        let mut nl = Netlink::new().expect("netlink");
        let prefix = p("10.98.0.0/16");

        routes.install(prefix, tun.index()).expect("install");
        routes
            .install(prefix, tun.index())
            .expect("install again is fine");
        assert_eq!(routes.installed(), vec![prefix]);
        let found = routes_to(&mut nl, prefix);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].oif, Some(tun.index()));
        assert_eq!(found[0].protocol, RouteProtocol::Static);

        routes.remove(prefix, tun.index()).expect("remove");
        routes
            .remove(prefix, tun.index())
            .expect("remove again is fine");
        assert!(routes.installed().is_empty());
        assert!(routes_to(&mut nl, prefix).is_empty());

        // The connected route the address created is identical to what we
        // would add: installing it is fine, and it is not recorded as ours.
        let connected = p("10.99.0.0/24");
        routes
            .install(connected, tun.index())
            .expect("identical route exists");
        assert!(routes.installed().is_empty());
    });
}

#[test]
fn remove_all_removes_exactly_what_was_added() {
    in_netns(|| {
        let tun = Tun::open("vt0", Ipv4Addr::new(10, 99, 0, 1), 24, 1400).expect("TUN");
        let mut routes = Routes::new().expect("netlink");
        let mut nl = Netlink::new().expect("netlink");
        let added = [p("10.98.1.0/24"), p("10.98.2.0/24"), p("10.98.3.3/32")];
        for prefix in added {
            routes.install(prefix, tun.index()).expect("install");
        }
        assert_eq!(routes.installed(), added.to_vec());
        routes.remove_all().expect("remove_all");
        assert!(routes.installed().is_empty());
        for prefix in added {
            assert!(
                routes_to(&mut nl, prefix).is_empty(),
                "{prefix} still routed"
            );
        }
        assert_eq!(
            routes_to(&mut nl, p("10.99.0.0/24")).len(),
            1,
            "the connected route was not ours and stays"
        );
        routes.remove_all().expect("remove_all again is a no-op");

        // After the device is gone, removing is still fine.
        routes
            .install(p("10.98.4.0/24"), tun.index())
            .expect("install");
        drop(tun);
        routes
            .remove_all()
            .expect("the kernel already dropped the route");
    });
}

#[test]
fn a_route_for_the_prefix_through_another_device_is_an_error() {
    in_netns(|| {
        let tun = Tun::open("vt0", Ipv4Addr::new(10, 99, 0, 1), 24, 1400).expect("TUN");
        Netlink::new()
            .expect("netlink")
            .add_veth("eth-test", "eth-peer")
            .expect("veth");
        let veth = crate::tun::interface_index("eth-test")
            .expect("lookup")
            .expect("veth exists");
        Netlink::new()
            .expect("netlink")
            .set_link(veth, None, true)
            .expect("up");
        let prefix = p("10.97.0.0/24");
        let mut other = Routes::new().expect("netlink");
        other.install(prefix, veth).expect("route via the veth");

        let mut routes = Routes::new().expect("netlink");
        let err = routes.install(prefix, tun.index()).expect_err("taken");
        assert!(matches!(err, HostError::RouteExists { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("10.97.0.0/24") && msg.contains("dev eth-test"),
            "{msg}"
        );
        assert!(routes.installed().is_empty());
    });
}

#[test]
fn conflicts_lists_overlapping_routes_not_through_our_device() {
    in_netns(|| {
        let tun = Tun::open("vt0", Ipv4Addr::new(10, 99, 0, 1), 24, 1400).expect("TUN");
        let mut nl = Netlink::new().expect("netlink");
        nl.add_veth("eth-test", "eth-peer").expect("veth");
        let veth = crate::tun::interface_index("eth-test")
            .expect("lookup")
            .expect("veth exists");
        nl.add_address(veth, Ipv4Addr::new(10, 50, 1, 1), 16)
            .expect("address");
        nl.set_link(veth, None, true).expect("up");
        nl.change_route(
            Ipv4Prefix::containing_clamped(Ipv4Addr::UNSPECIFIED, 0),
            veth,
            true,
        )
        .expect("default route");

        let mut routes = Routes::new().expect("netlink");
        let c = routes
            .conflicts(p("10.50.7.0/24"), Some(tun.index()))
            .expect("conflicts");
        assert_eq!(c, vec!["10.50.0.0/16 dev eth-test proto kernel".to_owned()]);
        let c = routes
            .conflicts(p("10.0.0.0/8"), Some(tun.index()))
            .expect("conflicts");
        assert_eq!(c.len(), 1, "a wider prefix also overlaps: {c:?}");

        assert!(
            routes
                .conflicts(p("10.60.0.0/16"), Some(tun.index()))
                .expect("conflicts")
                .is_empty(),
            "no overlap, and the default route is not a conflict"
        );
        // Routes through our own TUN are not conflicts, unless we say we
        // have no device.
        assert!(
            routes
                .conflicts(p("10.99.0.0/24"), Some(tun.index()))
                .expect("conflicts")
                .is_empty()
        );
        assert_eq!(
            routes
                .conflicts(p("10.99.0.0/24"), None)
                .expect("conflicts"),
            vec!["10.99.0.0/24 dev vt0 proto kernel".to_owned()]
        );
    });
}
