//! `vine demo` run for real (as root): non-interactively it tells the whole
//! story and succeeds; interrupted with SIGINT halfway it still cleans up.
//! Either way no namespace, daemon or file of the demo is left behind.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const VINE: &str = env!("CARGO_BIN_EXE_vine");

fn demo() -> Child {
    Command::new(VINE)
        .args(["demo", "--no-pause"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vine demo")
}

/// The daemon PIDs the demo printed ("… pid N …").
fn daemon_pids(out: &str) -> Vec<i32> {
    out.lines()
        .filter(|l| l.contains("vine daemon start"))
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            words.find(|w| *w == "pid")?;
            words.next()?.parse().ok()
        })
        .collect()
}

/// Nothing of demo process `pid` is left: namespaces, daemons, files.
fn assert_nothing_left(pid: u32, daemons: &[i32]) {
    let list = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    let list = String::from_utf8_lossy(&list.stdout);
    let prefix = format!("vt{pid}-");
    assert!(
        !list.lines().any(|l| l.starts_with(&prefix)),
        "namespaces left behind:\n{list}"
    );
    for d in daemons {
        let alive = std::fs::read_to_string(format!("/proc/{d}/cmdline"))
            .is_ok_and(|c| c.contains("vine-demo"));
        assert!(!alive, "daemon {d} is still running");
    }
    let dir = std::env::temp_dir().join(format!("vine-demo-{pid}"));
    assert!(!Path::new(&dir).exists(), "{} left behind", dir.display());
}

/// Waits at most `limit` for `child` to exit; returns its code.
fn wait(child: &mut Child, limit: Duration) -> Option<i32> {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status.code().unwrap_or(-1));
        }
        thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[test]
fn demo_tells_the_story_and_leaves_nothing_behind() {
    let child = demo();
    let pid = child.id();
    let out = child.wait_with_output().expect("demo output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "vine demo failed:\n{stdout}\n{stderr}"
    );
    for expected in [
        "Step 6/6",
        "20 of 20 answer",
        "direct",
        "signaling_then_direct",
        "relay:",
        "fell back to the relay after",
        "is still beta's",
        "promoted back to direct after",
        "cleaned up",
    ] {
        assert!(stdout.contains(expected), "no {expected:?} in:\n{stdout}");
    }
    let daemons = daemon_pids(&stdout);
    assert_eq!(daemons.len(), 5, "{stdout}");
    assert_nothing_left(pid, &daemons);
}

#[test]
fn interrupted_demo_cleans_up() {
    let mut child = demo();
    let pid = child.id();
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Interrupt once every daemon runs and the paths are being set up.
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline && !seen.contains("Step 4/6") {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            seen.push_str(&line);
            seen.push('\n');
        }
    }
    assert!(
        seen.contains("Step 4/6"),
        "the demo did not get going:\n{seen}"
    );
    let daemons = daemon_pids(&seen);
    assert_eq!(daemons.len(), 5, "{seen}");
    let sent = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let code = wait(&mut child, Duration::from_secs(30));
    assert_eq!(code, Some(130), "exit code after SIGINT:\n{seen}");
    assert_nothing_left(pid, &daemons);
}
