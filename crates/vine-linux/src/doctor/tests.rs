//! Doctor tests: a good and a bad host, each in a private network namespace
//! (need root), with config and identity in a temp dir.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use super::*;
use crate::netlink::Netlink;
use crate::netns::in_netns;

const TUN: &str = "vt-doc";
const PORT: u16 = 4177;

/// Writes an identity and a config naming it; returns the config path.
fn write_setup(dir: &Path, with_identity: bool) -> PathBuf {
    let identity_path = dir.join("identity");
    if with_identity {
        identity_store::create_from_seed(&identity_path, [7; 32], false).expect("identity");
    }
    let text = config::template(&config::TemplateParams {
        name: "doc".to_owned(),
        network_id: "doc-net".to_owned(),
        identity_path: identity_path.display().to_string(),
        runtime_dir: dir.join("run").display().to_string(),
        listen_port: PORT,
        tun_name: TUN.to_owned(),
        address: Ipv4Addr::new(10, 77, 0, 1),
        prefix_len: 24,
        local: None,
    });
    let path = dir.join("vine.toml");
    config_file::write_new(&path, &text, false).expect("config");
    path
}

fn by_name<'a>(checks: &'a [Check], name: &str) -> &'a Check {
    checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no `{name}` check in {checks:#?}"))
}

fn assert_failures_have_fixes(checks: &[Check]) {
    for c in checks {
        assert!(!c.name.is_empty());
        assert!(!c.detail.is_empty(), "{c:?}");
        assert_eq!(c.ok, c.fix.is_none(), "a failing check has a fix: {c:?}");
    }
}

#[test]
fn capability_mask_parsing() {
    let status = "Name:\tvine\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
    assert_eq!(effective_caps(status), Some(0x1ff_ffff_ffff));
    assert_eq!(effective_caps("Name: x\n"), None);
}

#[test]
fn a_ready_host_passes_every_check() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write_setup(dir.path(), true);
    let checks = in_netns(|| run_for_path(&path, None));
    assert_failures_have_fixes(&checks);
    let names: Vec<_> = checks.iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        [
            "tun-device",
            "cap-net-admin",
            "config",
            "identity",
            "tun-name",
            "route-conflicts",
            "udp-port",
            "workload-leftovers"
        ]
    );
    assert!(all_ok(&checks), "{checks:#?}");
}

#[test]
fn host_changes_a_stopped_daemon_left_are_reported_with_the_fix() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write_setup(dir.path(), true);
    std::fs::write(
        dir.path().join("host-changes.jsonl"),
        "{\"change\":\"link\",\"name\":\"vw0123456789ab\"}\n",
    )
    .expect("journal");
    let checks = in_netns(|| run_for_path(&path, None));
    let c = by_name(&checks, "workload-leftovers");
    assert!(!c.ok, "{c:?}");
    assert!(c.detail.contains("interface vw0123456789ab"), "{c:?}");
    assert!(
        c.fix
            .as_deref()
            .is_some_and(|f| f.contains("vine daemon start")),
        "{c:?}"
    );
}

#[test]
fn a_leftover_tun_is_fine() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write_setup(dir.path(), true);
    let checks = in_netns(|| {
        let fd = crate::tun::sys::open_clone_device().expect("open /dev/net/tun");
        crate::tun::sys::set_iff(std::os::fd::AsFd::as_fd(&fd), TUN, false).expect("TUNSETIFF");
        crate::tun::sys::set_persist(std::os::fd::AsFd::as_fd(&fd), true).expect("persist");
        drop(fd);
        run_for_path(&path, None)
    });
    let c = by_name(&checks, "tun-name");
    assert!(c.ok && c.detail.contains("leftover"), "{c:?}");
}

#[test]
fn a_broken_host_fails_with_fixes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write_setup(dir.path(), false);
    let checks = in_netns(|| {
        let mut nl = Netlink::new().expect("netlink");
        // The TUN name is taken by a veth whose network covers the overlay.
        nl.add_veth(TUN, "vt-doc-peer").expect("veth");
        let index = crate::tun::interface_index(TUN)
            .expect("lookup")
            .expect("veth exists");
        nl.add_address(index, Ipv4Addr::new(10, 77, 200, 1), 16)
            .expect("address");
        nl.set_link(index, None, true).expect("up");
        // Something else holds the UDP port.
        let _held = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, PORT)).expect("hold the port");
        run_for_path(&path, None)
    });
    assert_failures_have_fixes(&checks);
    assert!(!all_ok(&checks));

    let identity = by_name(&checks, "identity");
    assert!(!identity.ok, "{identity:?}");
    assert!(
        identity
            .fix
            .as_deref()
            .is_some_and(|f| f.contains("vine identity init")),
        "{identity:?}"
    );
    let name = by_name(&checks, "tun-name");
    assert!(
        !name.ok && name.detail.contains("not a TUN device"),
        "{name:?}"
    );
    let routes = by_name(&checks, "route-conflicts");
    assert!(
        !routes.ok && routes.detail.contains("10.77.0.0/16 dev vt-doc"),
        "{routes:?}"
    );
    let port = by_name(&checks, "udp-port");
    assert!(!port.ok && port.detail.contains("in use"), "{port:?}");
    // The config itself is fine; only the identity it names is missing.
    assert!(by_name(&checks, "config").ok, "{checks:#?}");
    // Host checks pass as root.
    assert!(by_name(&checks, "tun-device").ok);
    assert!(by_name(&checks, "cap-net-admin").ok);
}

#[test]
fn an_unreadable_config_still_runs_the_host_checks() {
    let dir = tempfile::tempdir().expect("temp dir");
    let checks = run_for_path(&dir.path().join("missing.toml"), None);
    assert_failures_have_fixes(&checks);
    let names: Vec<_> = checks.iter().map(|c| c.name).collect();
    assert_eq!(names, ["tun-device", "cap-net-admin", "config"]);
    assert!(!by_name(&checks, "config").ok);
}

#[test]
fn a_config_with_errors_fails_the_config_check_and_names_the_fix() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("vine.toml");
    config_file::write_new(&path, "[node]\nname = \"x\"\nbogus = 1\n", false).expect("write");
    let checks = run_for_path(&path, None);
    assert_failures_have_fixes(&checks);
    let c = by_name(&checks, "config");
    assert!(!c.ok, "{c:?}");
    assert!(
        c.fix
            .as_deref()
            .is_some_and(|f| f.contains("vine config validate")),
        "{c:?}"
    );
}
