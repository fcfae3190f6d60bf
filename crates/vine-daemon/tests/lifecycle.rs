//! Pidfile handling of `stop` and `status` (no daemon needed).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use vine_daemon::api::Phase;
use vine_daemon::files::{self, RuntimePaths, StateFile};
use vine_daemon::lifecycle::{self, LifecycleError};

fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[test]
fn stop_without_a_pidfile_says_not_running() {
    let t = tempfile::tempdir().unwrap();
    let err = lifecycle::stop(t.path()).unwrap_err();
    assert!(matches!(err, LifecycleError::NotRunning(_)), "{err}");
    assert!(err.to_string().contains("not running"));
}

#[test]
fn a_stale_pidfile_is_reported_and_removed() {
    let t = tempfile::tempdir().unwrap();
    let paths = RuntimePaths::new(t.path());
    let pid = dead_pid();
    files::write_pidfile(&paths, pid).unwrap();
    files::write_state(
        &paths,
        &StateFile {
            phase: Phase::Running,
            pid,
            config_path: "/etc/libvine/vine.toml".into(),
            started_at: 1,
        },
    )
    .unwrap();
    let s = lifecycle::status(t.path()).unwrap();
    assert_eq!(s.pid, Some(pid));
    assert!(!s.alive && s.stale);
    assert_eq!(s.state.as_ref().map(|s| s.phase), Some(Phase::Running));

    let err = lifecycle::stop(t.path()).unwrap_err();
    assert!(matches!(err, LifecycleError::StalePidfile { .. }), "{err}");
    assert!(err.to_string().contains("stale pidfile"), "{err}");
    assert!(!paths.pidfile().exists());
    assert!(!paths.state_file().exists());
}

#[test]
fn a_pidfile_naming_another_program_is_not_signalled() {
    let t = tempfile::tempdir().unwrap();
    let paths = RuntimePaths::new(t.path());
    let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
    files::write_pidfile(&paths, sleeper.id()).unwrap();
    let err = lifecycle::stop(t.path()).unwrap_err();
    let alive = lifecycle::process_alive(sleeper.id());
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    assert!(matches!(err, LifecycleError::NotVine { .. }), "{err}");
    assert!(alive, "sleep was not signalled");
    assert!(paths.pidfile().exists(), "left for the operator to judge");
}

#[test]
fn status_of_an_empty_runtime_dir() {
    let t = tempfile::tempdir().unwrap();
    let s = lifecycle::status(t.path()).unwrap();
    assert!(s.state.is_none() && s.pid.is_none() && !s.alive && !s.stale);
}
