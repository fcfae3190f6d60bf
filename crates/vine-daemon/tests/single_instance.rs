//! Single instance across processes: pairs of real daemon processes (this
//! test binary re-run as `child_daemon_process`, which calls
//! `vine_daemon::run` with fake TUN devices) started at once on one runtime
//! directory. Exactly one runs; the other exits with "already running";
//! the winner's socket and pidfile are intact and `lifecycle::stop`
//! (which checks the pid holds the lock) stops it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/fakes.rs"]
mod support;

use std::io::Read as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{FakeHost, NodeFiles};
use vine_daemon::api::client;
use vine_daemon::api::{RequestBody, ResponseBody};
use vine_daemon::files::{self, RuntimePaths};
use vine_daemon::lifecycle;
use vine_daemon::{DaemonError, RunOptions};

/// Set for the child: the config to run.
const CHILD_CONFIG: &str = "VINE_TEST_CHILD_CONFIG";
/// Exit code of a child refused because another daemon runs.
const ALREADY_RUNNING: i32 = 3;
const ROUNDS: usize = 50;
const LIMIT: Duration = Duration::from_secs(20);

/// Not a test of its own: the daemon process the test below starts.
#[test]
#[ignore = "run by fifty_double_starts_of_real_processes_leave_one_daemon"]
fn child_daemon_process() {
    let Some(config) = std::env::var_os(CHILD_CONFIG) else {
        return;
    };
    let options = RunOptions::new(PathBuf::from(config), true).with_host(FakeHost::new("vt-x"));
    match vine_daemon::run(options) {
        Ok(()) => std::process::exit(0),
        Err(e @ DaemonError::AlreadyRunning { .. }) => {
            eprintln!("{e}");
            std::process::exit(ALREADY_RUNNING)
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1)
        }
    }
}

fn spawn_child(config: &std::path::Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_daemon_process",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_CONFIG, config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn status_pid(paths: &RuntimePaths) -> Option<u32> {
    match client::request(&paths.socket(), RequestBody::Status, Duration::from_secs(2)) {
        Ok(ResponseBody::Status(s)) => Some(s.pid),
        _ => None,
    }
}

/// Kills whatever is left of `children` (by pid, through their handles).
struct Reap(Vec<Child>);

impl Drop for Reap {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn fifty_double_starts_of_real_processes_leave_one_daemon() {
    let root = tempfile::tempdir().unwrap();
    let a = NodeFiles::new(root.path(), "alpha", 1);
    a.write_config(&a.config_text(&[], ""));
    let paths = RuntimePaths::new(&a.runtime);
    for round in 0..ROUNDS {
        let mut reap = Reap(vec![spawn_child(&a.config), spawn_child(&a.config)]);
        let pids: Vec<u32> = reap.0.iter().map(Child::id).collect();

        // One exits "already running"; the other serves.
        let deadline = Instant::now() + LIMIT;
        let loser = loop {
            let exited = reap
                .0
                .iter_mut()
                .position(|c| c.try_wait().unwrap().is_some());
            if let Some(i) = exited {
                break i;
            }
            assert!(Instant::now() < deadline, "round {round}: nobody lost");
            std::thread::sleep(Duration::from_millis(10));
        };
        let mut lost = reap.0.remove(loser);
        let code = lost.wait().unwrap().code();
        let mut err = String::new();
        lost.stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert_eq!(code, Some(ALREADY_RUNNING), "round {round}: {err}");
        let winner = pids[1 - loser];
        assert!(
            err.contains(&format!("pid {winner}")),
            "round {round}: {err}"
        );

        while status_pid(&paths) != Some(winner) {
            assert!(
                reap.0[0].try_wait().unwrap().is_none(),
                "round {round}: the winner exited"
            );
            assert!(Instant::now() < deadline, "round {round}: no answer");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(files::read_pidfile(&paths).unwrap(), Some(winner));
        assert_eq!(files::lock_holders(&paths), vec![winner]);
        let s = lifecycle::status(&paths.dir).unwrap();
        assert!(s.alive && s.pid == Some(winner), "round {round}: {s:?}");

        // `stop` recognizes it as vine (it holds the lock) and stops it.
        assert_eq!(lifecycle::stop(&paths.dir).unwrap().pid, winner);
        assert_eq!(reap.0[0].wait().unwrap().code(), Some(0));
        assert!(!paths.pidfile().exists() && !paths.socket().exists());
        assert!(files::lock_holders(&paths).is_empty());
    }
}
