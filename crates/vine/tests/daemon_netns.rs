//! `vine daemon start|status|stop` with the real TUN device, inside a
//! private network namespace (`unshare --net`) so the host's network is
//! never touched. Skipped (with a note) where namespaces are unavailable.

use std::fs;
use std::path::Path;
use std::process::Command;

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

fn can_unshare() -> bool {
    Command::new("unshare")
        .args(["--net", "true"])
        .status()
        .is_ok_and(|st| st.success())
}

#[test]
fn daemon_lifecycle_in_a_private_network_namespace() {
    assert!(
        can_unshare(),
        "`unshare --net` failed: this test needs root; it must not pass without running"
    );
    let vine = env!("CARGO_BIN_EXE_vine");
    let t = tempfile::tempdir().expect("tempdir");
    let identity = t.path().join("state/identity");
    let config = t.path().join("vine.toml");
    let run = t.path().join("run");
    let out = t.path().join("out");
    fs::create_dir_all(&out).expect("out dir");
    let ok = |args: &[&str]| {
        let st = Command::new(vine).args(args).output().expect("run vine");
        assert!(st.status.success(), "vine {args:?}: {st:?}");
    };
    ok(&["identity", "init", "--identity", s(&identity)]);
    ok(&[
        "config",
        "init",
        "-c",
        s(&config),
        "--identity",
        s(&identity),
        "--name",
        "alpha",
        "--address",
        "10.42.0.1/24",
        "--runtime-dir",
        s(&run),
    ]);
    let script = format!(
        r#"set -e
V={vine}; C={c}; O={o}
$V daemon start -c $C > $O/start.txt
$V status -c $C --format json > $O/status.json
$V daemon status -c $C > $O/daemon-status.txt
ls -l {run}/vine.sock > $O/socket.txt
kill -USR1 $(cat {run}/vine.pid)
i=0; while [ ! -e {run}/snapshot.json ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
if $V daemon start -c $C 2> $O/second.txt; then exit 9; fi
$V daemon stop -c $C > $O/stop.txt
"#,
        c = s(&config),
        o = s(&out),
        run = s(&run),
    );
    let r = Command::new("unshare")
        .args(["--net", "sh", "-c", &script])
        .output()
        .expect("run unshare");
    let log = fs::read_to_string(run.join("vine.log")).unwrap_or_default();
    assert!(
        r.status.success(),
        "{r:?}\nstderr: {}\nlog:\n{log}",
        String::from_utf8_lossy(&r.stderr)
    );
    let read = |f: &str| fs::read_to_string(out.join(f)).expect("output file");
    assert!(read("start.txt").contains("vine started"));
    let status: serde_json::Value = serde_json::from_str(&read("status.json")).expect("json");
    assert_eq!(status["type"], "status");
    assert_eq!(status["data"]["phase"], "running");
    assert_eq!(status["data"]["tun_name"], "vine0");
    assert_eq!(status["data"]["prefix"], "10.42.0.0/24");
    assert!(read("daemon-status.txt").contains("running"));
    assert!(read("socket.txt").starts_with("srw-------"));
    assert!(read("second.txt").contains("already running"));
    assert!(read("stop.txt").contains("vine stopped"));
    assert!(
        run.join("snapshot.json").exists(),
        "SIGUSR1 wrote the snapshot"
    );
    for f in ["vine.sock", "vine.pid", "vine.state.json"] {
        assert!(!run.join(f).exists(), "{f} left behind");
    }
    assert!(log.contains("stopped"), "{log}");
}
