//! Local hardening: the runtime directory's owner and mode, planted
//! symlinks, the control socket's liveness check, the single-instance lock
//! and the pid checks. Real files, sockets and processes in temp dirs; the
//! daemon runs in-process with fake TUN devices.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/fakes.rs"]
mod support;

use std::fs;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use support::{FakeHost, NodeFiles};
use vine_core::node::Timers;
use vine_daemon::api::client;
use vine_daemon::api::{RequestBody, ResponseBody};
use vine_daemon::files::{self, RuntimeDirError, RuntimeLock, RuntimePaths};
use vine_daemon::lifecycle::{self, LifecycleError};
use vine_daemon::{DaemonError, DaemonHandle, RunOptions};

const LIMIT: Duration = Duration::from_secs(20);
/// Owned by nobody: not the daemon's user.
const NOBODY: u32 = 65534;

fn options(files: &NodeFiles, host: &Arc<FakeHost>) -> RunOptions {
    let mut o = RunOptions::new(&files.config, true).with_host(host.clone());
    o.timers = Timers {
        announce_interval: Duration::from_secs(1),
        ..Timers::default()
    };
    o
}

fn one_node(root: &Path) -> (NodeFiles, Arc<FakeHost>) {
    let a = NodeFiles::new(root, "alpha", 1);
    a.write_config(&a.config_text(&[], ""));
    (a, FakeHost::new("vt-alpha"))
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

async fn status_pid(socket: PathBuf) -> Option<u32> {
    tokio::task::spawn_blocking(move || {
        match client::request(&socket, RequestBody::Status, Duration::from_secs(5)) {
            Ok(ResponseBody::Status(s)) => Some(s.pid),
            _ => None,
        }
    })
    .await
    .unwrap()
}

async fn stop(d: DaemonHandle) {
    d.shutdown().await;
    tokio::time::timeout(LIMIT, d.wait())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_dir_owned_by_another_user_is_refused_with_the_fix() {
    let root = tempfile::tempdir().unwrap();
    let (a, host) = one_node(root.path());
    fs::create_dir(&a.runtime).unwrap();
    fs::set_permissions(&a.runtime, fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(&a.runtime, Some(NOBODY), Some(NOBODY)).unwrap();

    let err = DaemonHandle::start(options(&a, &host)).await.unwrap_err();
    assert!(
        matches!(
            err,
            DaemonError::UnsafeRuntimeDir(RuntimeDirError::Unsafe { uid: NOBODY, .. })
        ),
        "{err}"
    );
    let msg = err.to_string();
    let dir = a.runtime.display().to_string();
    for needle in [
        dir.as_str(),
        "uid 65534",
        "mode 0755",
        "chown root:root",
        "chmod 0755",
        "did not start",
    ] {
        assert!(msg.contains(needle), "{needle:?} missing from: {msg}");
    }
    assert_eq!(
        fs::read_dir(&a.runtime).unwrap().count(),
        0,
        "nothing written"
    );

    // `vine daemon start` refuses the same directory before spawning.
    let err =
        lifecycle::start_background(&a.config, &a.runtime, Path::new("/bin/false")).unwrap_err();
    assert!(matches!(err, LifecycleError::UnsafeRuntimeDir(_)), "{err}");
    assert_eq!(
        fs::read_dir(&a.runtime).unwrap().count(),
        0,
        "no log either"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_or_world_writable_runtime_dir_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let (a, host) = one_node(root.path());
    fs::create_dir(&a.runtime).unwrap();
    for bad in [0o777, 0o775, 0o757, 0o1777] {
        fs::set_permissions(&a.runtime, fs::Permissions::from_mode(bad)).unwrap();
        let err = DaemonHandle::start(options(&a, &host)).await.unwrap_err();
        match &err {
            DaemonError::UnsafeRuntimeDir(RuntimeDirError::Unsafe { mode, uid: 0, .. }) => {
                assert_eq!(*mode, bad);
            }
            other => panic!("{bad:o}: {other}"),
        }
        assert!(
            err.to_string().contains(&format!("mode {bad:04o}")),
            "{err}"
        );
        assert_eq!(fs::read_dir(&a.runtime).unwrap().count(), 0);
    }
    // Not a directory at all.
    let file = root.path().join("plain");
    fs::write(&file, b"").unwrap();
    assert!(matches!(
        files::check_dir(&file, 0),
        Err(RuntimeDirError::NotADirectory { .. })
    ));
    // 0755 and 0700, owned by the daemon's user, are fine.
    for good in [0o755, 0o700, 0o750] {
        fs::set_permissions(&a.runtime, fs::Permissions::from_mode(good)).unwrap();
        files::check_dir(&a.runtime, 0).unwrap();
    }
    let d = DaemonHandle::start(options(&a, &host)).await.unwrap();
    stop(d).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planted_symlink_makes_the_daemon_refuse_and_leaves_the_victim_unchanged() {
    let root = tempfile::tempdir().unwrap();
    let (a, host) = one_node(root.path());
    fs::create_dir(&a.runtime).unwrap();
    fs::set_permissions(&a.runtime, fs::Permissions::from_mode(0o755)).unwrap();
    let victim = root.path().join("victim");
    fs::write(&victim, b"precious\n").unwrap();
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o644)).unwrap();
    let before = fs::metadata(&victim).unwrap();
    let paths = RuntimePaths::new(&a.runtime);
    for name in [
        "vine.pid",
        "vine.state.json",
        "vine.sock",
        "snapshot.json",
        "vine.log",
        "vine.lock",
    ] {
        let link = a.runtime.join(name);
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let err = DaemonHandle::start(options(&a, &host)).await.unwrap_err();
        match &err {
            DaemonError::UnsafeRuntimeDir(RuntimeDirError::Symlink { path, target }) => {
                assert_eq!(path, &link);
                assert_eq!(target, &victim);
            }
            other => panic!("{name}: {other}"),
        }
        assert!(err.to_string().contains("rm "), "{err}");
        let err = lifecycle::start_background(&a.config, &a.runtime, Path::new("/bin/false"))
            .unwrap_err();
        assert!(matches!(err, LifecycleError::UnsafeRuntimeDir(_)), "{err}");
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        fs::remove_file(&link).unwrap();
    }
    // Writers replace a symlink rather than following it, whatever put it
    // there after the check.
    std::os::unix::fs::symlink(&victim, paths.pidfile()).unwrap();
    files::write_pidfile(&paths, 42).unwrap();
    std::os::unix::fs::symlink(&victim, paths.snapshot()).unwrap();
    files::write_snapshot(&paths, b"{}\n").unwrap();
    assert_eq!(files::read_pidfile(&paths).unwrap(), Some(42));
    assert_eq!(mode(&paths.snapshot()), 0o600);
    // Readers do not follow one either.
    fs::remove_file(paths.pidfile()).unwrap();
    std::os::unix::fs::symlink(&victim, paths.pidfile()).unwrap();
    assert!(files::read_pidfile(&paths).is_err());
    // The lock is not taken through a symlink.
    std::os::unix::fs::symlink(&victim, paths.lock()).unwrap();
    assert!(RuntimeLock::acquire(&paths).is_err());
    // The log is not opened through one.
    std::os::unix::fs::symlink(&victim, paths.log()).unwrap();
    assert!(lifecycle::open_log(&paths.log()).is_err());

    let after = fs::metadata(&victim).unwrap();
    assert_eq!(fs::read(&victim).unwrap(), b"precious\n");
    assert_eq!(after.permissions().mode() & 0o7777, 0o644);
    assert_eq!(after.ino(), before.ino());
    assert_eq!(after.mtime_nsec(), before.mtime_nsec());
    assert_eq!(after.len(), before.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_files_have_their_modes_and_no_temp_files_are_left() {
    let root = tempfile::tempdir().unwrap();
    let (a, host) = one_node(root.path());
    let d = DaemonHandle::start(options(&a, &host)).await.unwrap();
    let paths = d.paths().clone();
    d.dump_snapshot().await;
    support::wait_for("snapshot.json", LIMIT, || paths.snapshot().exists()).await;
    assert_eq!(mode(&paths.snapshot()), 0o600);
    assert_eq!(mode(&paths.socket()), 0o600);
    assert_eq!(mode(&paths.lock()), 0o600);
    assert_eq!(mode(&paths.pidfile()), 0o644);
    assert_eq!(mode(&paths.state_file()), 0o644);
    let mut names: Vec<String> = fs::read_dir(&paths.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "snapshot.json",
            "vine.lock",
            "vine.pid",
            "vine.sock",
            "vine.state.json"
        ]
    );
    stop(d).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_killed_daemon_left_half_written_is_swept_at_the_next_start() {
    let root = tempfile::tempdir().unwrap();
    let (a, host) = one_node(root.path());
    fs::create_dir(&a.runtime).unwrap();
    fs::set_permissions(&a.runtime, fs::Permissions::from_mode(0o755)).unwrap();
    // What a daemon killed during a state write or a socket bind leaves.
    let left = [
        a.runtime.join(".vine.pid.tmp-4242-00000000deadbeef"),
        a.runtime.join(".vine.state.json.tmp-4242-0000000000000001"),
        a.runtime.join(".snapshot.json.tmp-4242-0000000000000002"),
    ];
    for f in &left {
        fs::write(f, b"half").unwrap();
    }
    let bind = a.runtime.join(".vine.sock.bind-4242-0000000000000003");
    fs::create_dir(&bind).unwrap();
    fs::write(bind.join("vine.sock"), b"").unwrap();
    // Not vine's: stays.
    let foreign = a.runtime.join(".notes.tmp-1");
    fs::write(&foreign, b"keep").unwrap();

    let d = DaemonHandle::start(options(&a, &host)).await.unwrap();
    for f in &left {
        assert!(!f.exists(), "{} was not swept", f.display());
    }
    assert!(!bind.exists(), "the bind directory was not swept");
    assert_eq!(fs::read(&foreign).unwrap(), b"keep");
    stop(d).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_control_socket_is_never_removed_and_a_stale_one_is_replaced() {
    let root = tempfile::tempdir().unwrap();
    let (a, host) = one_node(root.path());
    let paths = RuntimePaths::new(&a.runtime);
    paths.create_dir().unwrap();

    // Something live (not holding the lock) answers on the socket path.
    let live = UnixListener::bind(paths.socket()).unwrap();
    let ino = fs::metadata(paths.socket()).unwrap().ino();
    let err = DaemonHandle::start(options(&a, &host)).await.unwrap_err();
    assert!(
        matches!(err, DaemonError::ControlSocketInUse { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("vine daemon stop"), "{err}");
    assert_eq!(fs::metadata(paths.socket()).unwrap().ino(), ino, "kept");
    let _client = UnixStream::connect(paths.socket()).expect("still live");
    assert!(live.accept().is_ok());
    // The failed start removed only its own files, and released the lock.
    assert!(!paths.pidfile().exists() && !paths.state_file().exists());
    drop(RuntimeLock::acquire(&paths).expect("the lock was released"));

    // The same socket, dead: it is replaced.
    drop(live);
    assert!(paths.socket().exists());
    assert!(UnixStream::connect(paths.socket()).is_err());
    let d = DaemonHandle::start(options(&a, &host)).await.unwrap();
    assert_ne!(fs::metadata(paths.socket()).unwrap().ino(), ino);
    assert_eq!(mode(&paths.socket()), 0o600);
    assert_eq!(status_pid(paths.socket()).await, Some(std::process::id()));
    // No staging directory is left behind.
    assert!(
        fs::read_dir(&paths.dir).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains(".bind-"))
    );
    stop(d).await;
}

/// 50 rounds of two daemons started at once on one runtime directory:
/// exactly one runs, the other is refused, and the winner's socket and
/// pidfile are intact. Each round also proves the lock is released on
/// shutdown (the next round starts on the same directory).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_double_starts_leave_exactly_one_daemon() {
    let root = tempfile::tempdir().unwrap();
    let (a, host) = one_node(root.path());
    let paths = RuntimePaths::new(&a.runtime);
    let me = std::process::id();
    for round in 0..50 {
        let (x, y) = tokio::join!(
            tokio::spawn(DaemonHandle::start(options(&a, &host))),
            tokio::spawn(DaemonHandle::start(options(&a, &host))),
        );
        let (x, y) = (x.unwrap(), y.unwrap());
        let (winner, err) = match (x, y) {
            (Ok(d), Err(e)) | (Err(e), Ok(d)) => (d, e),
            (Ok(_), Ok(_)) => panic!("round {round}: two daemons started"),
            (Err(e1), Err(e2)) => panic!("round {round}: none started: {e1}; {e2}"),
        };
        assert!(
            matches!(err, DaemonError::AlreadyRunning { pid, .. } if pid == me),
            "round {round}: {err}"
        );
        assert_eq!(
            files::read_pidfile(&paths).unwrap(),
            Some(me),
            "round {round}"
        );
        assert_eq!(status_pid(paths.socket()).await, Some(me), "round {round}");
        assert_eq!(files::lock_holders(&paths), vec![me], "round {round}");
        assert!(lifecycle::status(&paths.dir).unwrap().alive);
        stop(winner).await;
        assert!(!paths.pidfile().exists() && !paths.socket().exists());
    }
}

#[test]
fn the_pid_checks_confirm_the_process_is_vine() {
    let t = tempfile::tempdir().unwrap();
    let paths = RuntimePaths::new(t.path());
    let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
    let pid = sleeper.id();
    files::write_pidfile(&paths, pid).unwrap();
    // Alive, but neither the lock holder nor a vine executable.
    let s = lifecycle::status(t.path()).unwrap();
    let refused = lifecycle::start_background(
        &t.path().join("vine.toml"),
        t.path(),
        Path::new("/bin/false"),
    );
    let vine = lifecycle::is_vine(pid, &paths);
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    assert!(!vine);
    assert_eq!(s.pid, Some(pid));
    assert!(!s.alive && s.stale, "{s:?}");
    // Not reported as running: the start went ahead (and /bin/false exited).
    assert!(
        matches!(refused, Err(LifecycleError::ChildExited { .. })),
        "{refused:?}"
    );

    // The lock holder counts, whatever its executable is called.
    let lock = RuntimeLock::acquire(&paths).unwrap();
    assert_eq!(files::lock_holders(&paths), vec![std::process::id()]);
    assert!(lifecycle::is_vine(std::process::id(), &paths));
    files::write_pidfile(&paths, std::process::id()).unwrap();
    assert!(lifecycle::status(t.path()).unwrap().alive);
    drop(lock);
    assert!(files::lock_holders(&paths).is_empty());
    assert!(!lifecycle::is_vine(std::process::id(), &paths));
}

#[test]
fn the_background_log_is_rotated_above_its_cap() {
    let t = tempfile::tempdir().unwrap();
    let log = t.path().join("vine.log");
    lifecycle::rotate_log(&log, 10).unwrap(); // missing: nothing to do
    fs::write(&log, b"0123456789").unwrap();
    lifecycle::rotate_log(&log, 10).unwrap();
    assert!(log.exists(), "at the cap: kept");
    fs::write(&log, b"0123456789A").unwrap();
    lifecycle::rotate_log(&log, 10).unwrap();
    assert!(!log.exists());
    assert_eq!(
        fs::read(t.path().join("vine.log.1")).unwrap(),
        b"0123456789A"
    );
    let f = lifecycle::open_log(&log).unwrap();
    drop(f);
    assert_eq!(mode(&log), 0o600);
}
