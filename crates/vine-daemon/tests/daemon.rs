//! The real event loop with fake TUN devices and route appliers, real UDP
//! on 127.0.0.1 and the real control socket.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/fakes.rs"]
mod support;

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use support::{FakeHost, NodeFiles, RouteOp, wait_for};
use vine_core::node::{Timers, build_test_packet};
use vine_daemon::api::client::{self, ClientError};
use vine_daemon::api::{ErrorCode, Phase, ReloadOutcome, RequestBody, Response, ResponseBody};
use vine_daemon::{DaemonError, DaemonHandle, RunOptions};

const LIMIT: Duration = Duration::from_secs(20);

fn options(files: &NodeFiles, host: &Arc<FakeHost>) -> RunOptions {
    let mut o = RunOptions::new(&files.config, true).with_host(host.clone());
    o.timers = Timers {
        probe_active: Duration::from_millis(100),
        probe_candidate: Duration::from_millis(200),
        probe_timeout: Duration::from_millis(300),
        announce_interval: Duration::from_secs(1),
        ..Timers::default()
    };
    o
}

async fn ask(socket: PathBuf, body: RequestBody) -> Result<ResponseBody, ClientError> {
    tokio::task::spawn_blocking(move || client::request(&socket, body, Duration::from_secs(5)))
        .await
        .unwrap()
}

fn installed(host: &FakeHost, prefix: vine_core::Ipv4Prefix) -> bool {
    host.route_ops().contains(&RouteOp::Install(prefix))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_daemons_carry_a_packet_over_loopback_and_shut_down_cleanly() {
    let root = tempfile::tempdir().unwrap();
    let a = NodeFiles::new(root.path(), "alpha", 1);
    let b = NodeFiles::new(root.path(), "beta", 2);
    a.write_config(&a.config_text(&[&b], ""));
    b.write_config(&b.config_text(&[&a], ""));
    let host_a = FakeHost::new("vt-alpha");
    let host_b = FakeHost::new("vt-beta");
    let da = DaemonHandle::start(options(&a, &host_a))
        .await
        .expect("alpha starts");
    let db = DaemonHandle::start(options(&b, &host_b))
        .await
        .expect("beta starts");
    assert_eq!(da.udp_addr().port(), a.port);

    // Runtime files exist with the right modes.
    let paths = da.paths().clone();
    let mode = |p: &PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&paths.socket()), 0o600);
    assert_eq!(mode(&paths.pidfile()), 0o644);
    assert_eq!(mode(&paths.dir), 0o755);
    let state = vine_daemon::files::read_state(&paths)
        .unwrap()
        .expect("state file");
    assert_eq!(state.phase, Phase::Running);
    assert_eq!(state.pid, std::process::id());

    // Both enroll each other: routes are installed through the applier.
    wait_for("alpha installs beta's route", LIMIT, || {
        installed(&host_a, b.prefix())
    })
    .await;
    wait_for("beta installs alpha's route", LIMIT, || {
        installed(&host_b, a.prefix())
    })
    .await;

    // A packet from alpha's TUN arrives at beta's TUN.
    let packet = build_test_packet(a.address(), b.address(), b"hello over vine");
    host_a.device.inject(packet.clone());
    wait_for("the packet reaches beta's TUN", LIMIT, || {
        host_b.device.written().contains(&packet)
    })
    .await;

    // The control socket answers.
    match ask(paths.socket(), RequestBody::Status).await.unwrap() {
        ResponseBody::Status(s) => {
            assert_eq!(s.phase, Phase::Running);
            assert_eq!(s.peer_id, a.peer_id);
            assert_eq!(s.pid, std::process::id());
            assert_eq!(s.network_id, "test-net");
            assert_eq!(s.prefix, "10.77.1.0/24");
            assert_eq!(s.tun_name, "vt-alpha");
            assert_eq!(s.listen_address, format!("127.0.0.1:{}", a.port));
            assert_eq!(s.enrolled_peers, 1);
        }
        other => panic!("{other:?}"),
    }
    match ask(paths.socket(), RequestBody::Peers).await.unwrap() {
        ResponseBody::Peers(peers) => {
            assert_eq!(peers.len(), 1);
            assert_eq!(peers[0].peer_id, b.peer_id);
            assert_eq!(peers[0].name.as_deref(), Some("beta"));
            assert!(peers[0].enrolled && peers[0].session_up);
            assert_eq!(peers[0].class.as_deref(), Some("direct"));
        }
        other => panic!("{other:?}"),
    }
    match ask(paths.socket(), RequestBody::Snapshot).await.unwrap() {
        ResponseBody::Snapshot(v) => {
            assert_eq!(v["running"], true);
            assert_eq!(v["peers"][0]["peer_id"], b.peer_id.to_string());
            assert!(v["counters"]["packets_sent"].as_u64().unwrap() >= 1);
        }
        other => panic!("{other:?}"),
    }
    match ask(paths.socket(), RequestBody::Routes).await.unwrap() {
        ResponseBody::Routes(r) => {
            assert_eq!(r.len(), 1);
            assert_eq!(r[0].prefix, "10.77.2.0/24");
            assert_eq!(r[0].state, "installed");
        }
        other => panic!("{other:?}"),
    }
    match ask(
        paths.socket(),
        RequestBody::Ping {
            address: b.address(),
            count: 1,
        },
    )
    .await
    .unwrap()
    {
        ResponseBody::Ping(p) => {
            assert_eq!(p.peer, Some(b.peer_id));
            assert_eq!(p.prefix.as_deref(), Some("10.77.2.0/24"));
            assert_eq!(p.class.as_deref(), Some("direct"));
        }
        other => panic!("{other:?}"),
    }

    // SIGUSR1-equivalent: the snapshot file is written.
    da.dump_snapshot().await;
    wait_for("snapshot.json", LIMIT, || paths.snapshot().exists()).await;

    // Shutdown over the socket: alpha withdraws (beta removes its route),
    // removes routes and its runtime files.
    assert_eq!(
        ask(paths.socket(), RequestBody::Shutdown).await.unwrap(),
        ResponseBody::ShuttingDown
    );
    tokio::time::timeout(LIMIT, da.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(host_a.route_ops().contains(&RouteOp::RemoveAll));
    for p in [paths.socket(), paths.pidfile(), paths.state_file()] {
        assert!(!p.exists(), "{} left behind", p.display());
    }
    wait_for(
        "beta removes alpha's route after the Withdraw",
        LIMIT,
        || host_b.route_ops().contains(&RouteOp::Remove(a.prefix())),
    )
    .await;
    assert!(matches!(
        ask(paths.socket(), RequestBody::Status).await,
        Err(ClientError::NotRunning(_))
    ));

    db.shutdown().await;
    tokio::time::timeout(LIMIT, db.wait())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_keeps_the_old_config_unless_the_new_one_is_valid_and_reloadable() {
    let root = tempfile::tempdir().unwrap();
    let a = NodeFiles::new(root.path(), "alpha", 1);
    let b = NodeFiles::new(root.path(), "beta", 2);
    let good = a.config_text(&[], "");
    a.write_config(&good);
    let host = FakeHost::new("vt-alpha");
    let d = DaemonHandle::start(options(&a, &host)).await.unwrap();

    // Same config: nothing to do.
    assert_eq!(d.reload().await.unwrap(), ReloadOutcome::Unchanged);

    // Invalid config: rejected with diagnostics, still serving.
    a.write_config(&good.replace("prefix_len = 24", "prefix_len = 99"));
    match d.reload().await.unwrap() {
        ReloadOutcome::Rejected { diagnostics } => {
            assert!(!diagnostics.is_empty());
            assert!(
                diagnostics.iter().any(|d| d.contains("prefix_len")),
                "{diagnostics:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    a.write_config("this is [not toml");
    assert!(matches!(
        d.reload().await.unwrap(),
        ReloadOutcome::Rejected { .. }
    ));
    match d.request(RequestBody::Status).await.body.unwrap() {
        ResponseBody::Status(s) => assert_eq!(s.phase, Phase::Running),
        other => panic!("{other:?}"),
    }

    // [tun] changed: restart required, old config stays.
    a.write_config(&good.replace("mtu = 1400", "mtu = 1300"));
    assert_eq!(
        d.reload().await.unwrap(),
        ReloadOutcome::RestartRequired {
            sections: vec!["tun".into()]
        }
    );

    // A new allowed peer: applied with a fresh node.
    a.write_config(&a.config_text(&[&b], ""));
    assert_eq!(d.reload().await.unwrap(), ReloadOutcome::Applied);
    match d.request(RequestBody::Peers).await.body.unwrap() {
        ResponseBody::Peers(p) => {
            assert_eq!(p.len(), 1);
            assert_eq!(p[0].peer_id, b.peer_id);
        }
        other => panic!("{other:?}"),
    }

    d.shutdown().await;
    tokio::time::timeout(LIMIT, d.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(host.route_ops().contains(&RouteOp::RemoveAll));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_to_start_on_an_invalid_config_and_leaves_nothing_behind() {
    let root = tempfile::tempdir().unwrap();
    let a = NodeFiles::new(root.path(), "alpha", 1);
    a.write_config(
        &a.config_text(&[], "")
            .replace("network_id = \"test-net\"", "network_id = \"\""),
    );
    let host = FakeHost::new("vt-alpha");
    let err = DaemonHandle::start(options(&a, &host)).await.unwrap_err();
    match &err {
        DaemonError::InvalidConfig { diagnostics, .. } => assert!(!diagnostics.is_empty()),
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("did not start"), "{err}");
    assert!(!a.runtime.join("vine.pid").exists());

    // A missing config is its own error.
    let mut o = options(&a, &host);
    o.config_path = root.path().join("missing.toml");
    assert!(matches!(
        DaemonHandle::start(o).await.unwrap_err(),
        DaemonError::ConfigUnreadable(_)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_socket_survives_malformed_lines_and_unknown_versions() {
    let root = tempfile::tempdir().unwrap();
    let a = NodeFiles::new(root.path(), "alpha", 1);
    a.write_config(&a.config_text(&[], ""));
    let host = FakeHost::new("vt-alpha");
    let d = DaemonHandle::start(options(&a, &host)).await.unwrap();
    let socket = d.paths().socket();

    let replies = tokio::task::spawn_blocking(move || {
        let stream = UnixStream::connect(&socket).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut w = stream;
        let mut out = Vec::new();
        for line in [
            "garbage",
            r#"{"version":9,"body":{"type":"status"}}"#,
            r#"{"version":1,"body":{"type":"frobnicate"}}"#,
            r#"{"version":1,"body":{"type":"status"}}"#,
        ] {
            w.write_all(line.as_bytes()).unwrap();
            w.write_all(b"\n").unwrap();
            let mut reply = String::new();
            reader.read_line(&mut reply).unwrap();
            out.push(serde_json::from_str::<Response>(&reply).unwrap());
        }
        // An over-long line is answered and the connection closed.
        let long = vec![b'x'; vine_daemon::api::MAX_REQUEST_LINE + 10];
        let _ = w.write_all(&long);
        let mut reply = String::new();
        reader.read_line(&mut reply).unwrap();
        out.push(serde_json::from_str::<Response>(&reply).unwrap());
        let mut rest = String::new();
        assert_eq!(reader.read_line(&mut rest).unwrap_or(0), 0, "closed");
        out
    })
    .await
    .unwrap();
    let code = |r: &Response| r.body.as_ref().err().map(|e| e.code);
    assert_eq!(code(&replies[0]), Some(ErrorCode::MalformedRequest));
    assert_eq!(code(&replies[1]), Some(ErrorCode::UnsupportedVersion));
    assert_eq!(code(&replies[2]), Some(ErrorCode::MalformedRequest));
    assert!(matches!(replies[3].body, Ok(ResponseBody::Status(_))));
    assert_eq!(code(&replies[4]), Some(ErrorCode::LineTooLong));

    d.shutdown().await;
    tokio::time::timeout(LIMIT, d.wait())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_daemon_on_the_same_runtime_dir_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let a = NodeFiles::new(root.path(), "alpha", 1);
    a.write_config(&a.config_text(&[], ""));
    let host = FakeHost::new("vt-alpha");
    let d = DaemonHandle::start(options(&a, &host)).await.unwrap();
    // Our own pid is in the pidfile; pretend another live process (pid 1)
    // wrote it.
    std::fs::write(d.paths().pidfile(), "1\n").unwrap();
    let err = DaemonHandle::start(options(&a, &host)).await.unwrap_err();
    assert!(
        matches!(err, DaemonError::AlreadyRunning { pid: 1, .. }),
        "{err}"
    );
    d.shutdown().await;
    tokio::time::timeout(LIMIT, d.wait())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bootstrap_host_name_resolves_and_explain_names_the_path() {
    let root = tempfile::tempdir().unwrap();
    let a = NodeFiles::new(root.path(), "alpha", 1);
    let b = NodeFiles::new(root.path(), "beta", 2);
    // alpha finds beta by host name.
    a.write_config(
        &a.config_text(&[&b], "")
            .replace("udp://127.0.0.1:", "udp://localhost:"),
    );
    b.write_config(&b.config_text(&[&a], ""));
    let host_a = FakeHost::new("vt-alpha");
    let host_b = FakeHost::new("vt-beta");
    let da = DaemonHandle::start(options(&a, &host_a)).await.unwrap();
    let db = DaemonHandle::start(options(&b, &host_b)).await.unwrap();
    wait_for("alpha installs beta's route", LIMIT, || {
        installed(&host_a, b.prefix())
    })
    .await;
    let socket = da.paths().socket();
    for query in [
        "beta".to_owned(),
        b.peer_id.to_string(),
        b.peer_id.to_string()[..12].to_owned(),
        b.address().to_string(),
    ] {
        match ask(
            socket.clone(),
            RequestBody::Explain {
                peer: query.clone(),
            },
        )
        .await
        .unwrap()
        {
            ResponseBody::Explain(e) => {
                assert_eq!(e.peer_id, b.peer_id, "{query}");
                assert_eq!(e.class.as_deref(), Some("direct"));
                let path = format!("udp://127.0.0.1:{}", b.port);
                assert!(
                    e.why.starts_with(&format!("direct via {path}")),
                    "{}",
                    e.why
                );
                let current: Vec<_> = e.attempts.iter().filter(|x| x.current).collect();
                assert_eq!(current.len(), 1, "{:?}", e.attempts);
                assert_eq!(current[0].path, path);
                assert_eq!(current[0].outcome, "working");
            }
            other => panic!("{other:?}"),
        }
    }
    // The snapshot (and SIGUSR1's file) carries the same attempts.
    match ask(socket.clone(), RequestBody::Snapshot).await.unwrap() {
        ResponseBody::Snapshot(v) => {
            let beta = &v["peers"][0];
            assert!(beta["why"].as_str().unwrap().starts_with("direct via"));
            assert_eq!(beta["attempts"][0]["outcome"], "working");
        }
        other => panic!("{other:?}"),
    }
    let r = da
        .request(RequestBody::Explain {
            peer: "nobody".into(),
        })
        .await;
    let e = r.body.unwrap_err();
    assert_eq!(e.code, ErrorCode::UnknownPeer);
    assert!(e.message.contains("known: beta"), "{}", e.message);

    for d in [da, db] {
        d.shutdown().await;
        tokio::time::timeout(LIMIT, d.wait())
            .await
            .unwrap()
            .unwrap();
    }
}
