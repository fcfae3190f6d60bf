//! Background daemon lifecycle: start (re-exec detached), stop (pidfile +
//! SIGTERM), status (state file + pidfile + liveness).
//!
//! A pid counts as a running daemon only if it is alive and is vine: it
//! holds the runtime directory's lock (`/proc/locks`) or its executable
//! (`/proc/PID/exe`) is named `vine…` ([`is_vine`]).

use std::fs;
use std::io;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::Serialize;

use crate::api::client::{self, ClientError};
use crate::api::{RequestBody, ResponseBody, Status};
use crate::files::{self, RuntimeDirError, RuntimePaths, StateFile};

/// How long `start` waits for the daemon to answer.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `stop` waits for the daemon to exit.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// A background log larger than this is rotated to `vine.log.1` (replacing
/// the previous one) when the next background daemon starts; the running
/// daemon caps it at the same size.
pub const LOG_ROTATE_BYTES: u64 = files::LOG_CAP;
const POLL: Duration = Duration::from_millis(50);

/// Why a lifecycle action failed.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// A daemon already runs for this runtime directory.
    #[error("vine is already running with pid {pid} (pidfile {}); stop it with `vine daemon stop`", pidfile.display())]
    AlreadyRunning {
        /// Its pid.
        pid: u32,
        /// The pidfile.
        pidfile: PathBuf,
    },
    /// No pidfile: nothing to stop.
    #[error("vine is not running (no pidfile at {})", .0.display())]
    NotRunning(PathBuf),
    /// The pidfile names a process that is gone; the pidfile was removed.
    #[error("vine is not running: pidfile {} named pid {pid}, which no longer exists (stale pidfile removed; the daemon did not shut down cleanly, check for leftover routes)", pidfile.display())]
    StalePidfile {
        /// The dead pid.
        pid: u32,
        /// The pidfile.
        pidfile: PathBuf,
    },
    /// The pidfile names a live process that is not vine.
    #[error("pidfile {} names pid {pid}, which is not a vine daemon ({cmdline}); not signalling it — remove the pidfile if it is stale", pidfile.display())]
    NotVine {
        /// The pid.
        pid: u32,
        /// The pidfile.
        pidfile: PathBuf,
        /// What runs there.
        cmdline: String,
    },
    /// The child exited during startup.
    #[error("the daemon exited during startup ({status}); last lines of {}:\n{log_tail}", log.display())]
    ChildExited {
        /// Exit status.
        status: String,
        /// The log file.
        log: PathBuf,
        /// Its last lines.
        log_tail: String,
    },
    /// The daemon did not become ready in time.
    #[error("the daemon (pid {pid}) did not answer on {} within {timeout:?}; see {}", socket.display(), log.display())]
    StartTimeout {
        /// The child.
        pid: u32,
        /// The socket waited on.
        socket: PathBuf,
        /// The log file.
        log: PathBuf,
        /// The bound.
        timeout: Duration,
    },
    /// The daemon did not exit in time after SIGTERM.
    #[error("vine (pid {pid}) did not exit within {timeout:?} of SIGTERM; check its log, or `kill -9 {pid}` and remove {}", pidfile.display())]
    StopTimeout {
        /// The pid.
        pid: u32,
        /// The pidfile.
        pidfile: PathBuf,
        /// The bound.
        timeout: Duration,
    },
    /// Signalling failed (permissions).
    #[error("cannot signal pid {pid}: {source} (run as the daemon's user, usually root)")]
    Signal {
        /// The pid.
        pid: u32,
        /// The error.
        source: nix::Error,
    },
    /// The runtime directory is not owned by root or is writable by group
    /// or others.
    #[error("{0}; the daemon was not started")]
    UnsafeRuntimeDir(#[from] RuntimeDirError),
    /// A runtime file could not be read or written.
    #[error("cannot {what} {}: {source}", path.display())]
    File {
        /// What was done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

/// What a successful `start` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Started {
    /// The daemon's pid.
    pub pid: u32,
    /// Its log file.
    pub log: PathBuf,
    /// Its status once ready.
    pub status: Status,
}

/// Whether `pid` is a live (non-zombie) process.
pub fn process_alive(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    if kill(Pid::from_raw(raw), None).is_err_and(|e| e == nix::Error::ESRCH) {
        return false;
    }
    // A zombie still answers kill(0); its state in /proc/PID/stat is 'Z'.
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_none_or(|state| state != 'Z'),
        Err(_) => false,
    }
}

/// Whether `pid` is a live vine daemon for `paths`: alive, and holding the
/// runtime directory's lock or running an executable named `vine…`.
pub fn is_vine(pid: u32, paths: &RuntimePaths) -> bool {
    process_alive(pid) && (files::lock_holders(paths).contains(&pid) || exe_is_vine(pid))
}

fn exe_is_vine(pid: u32) -> bool {
    fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| {
        exe.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("vine"))
    })
}

/// The pid of the running daemon for `paths`, if any: the pidfile's pid if
/// it [`is_vine`], else the lock's holder.
fn running_pid(paths: &RuntimePaths) -> Option<u32> {
    files::read_pidfile(paths)
        .ok()
        .flatten()
        .filter(|&pid| is_vine(pid, paths))
        .or_else(|| {
            files::lock_holders(paths)
                .into_iter()
                .find(|&pid| process_alive(pid))
        })
}

/// Rotates `log` to `<log>.1` when it is larger than `cap` bytes.
pub fn rotate_log(log: &Path, cap: u64) -> io::Result<()> {
    match fs::symlink_metadata(log) {
        Ok(meta) if meta.len() > cap => {
            let mut old = log.as_os_str().to_owned();
            old.push(".1");
            fs::rename(log, PathBuf::from(old))
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Opens the background log for appending: mode 0600 when created, never
/// through a symlink.
pub fn open_log(log: &Path) -> io::Result<fs::File> {
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(log)
}

fn cmdline(pid: u32) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// Starts `exe daemon run -c CONFIG` detached (the child calls `setsid`,
/// stdio goes to `<runtime_dir>/vine.log`) and waits until its control
/// socket answers `status`, or it exits (reporting its log's tail).
pub fn start_background(
    config: &Path,
    runtime_dir: &Path,
    exe: &Path,
) -> Result<Started, LifecycleError> {
    let paths = RuntimePaths::new(runtime_dir);
    if let Some(pid) = running_pid(&paths) {
        return Err(LifecycleError::AlreadyRunning {
            pid,
            pidfile: paths.pidfile(),
        });
    }
    let file_err = |what, path: PathBuf| move |source| LifecycleError::File { what, path, source };
    paths
        .create_dir()
        .map_err(file_err("create runtime directory", paths.dir.clone()))?;
    paths.check_dir()?;
    let log = paths.log();
    rotate_log(&log, LOG_ROTATE_BYTES).map_err(file_err("rotate log", log.clone()))?;
    let open_log = || open_log(&log).map_err(file_err("open log", log.clone()));
    let log_start = fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    let mut child = Command::new(exe)
        .arg("daemon")
        .arg("run")
        .arg("-c")
        .arg(config)
        .env(DETACH_ENV, "1")
        .stdin(Stdio::null())
        .stdout(open_log()?)
        .stderr(open_log()?)
        .spawn()
        .map_err(file_err("run", exe.to_owned()))?;
    let pid = child.id();
    let socket = paths.socket();
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(LifecycleError::ChildExited {
                status: status.to_string(),
                log_tail: log_tail(&log, log_start),
                log,
            });
        }
        match client::request(&socket, RequestBody::Status, Duration::from_secs(1)) {
            Ok(ResponseBody::Status(status)) if status.pid == pid => {
                return Ok(Started { pid, log, status });
            }
            Ok(_) | Err(ClientError::NotRunning(_)) => {}
            Err(_) => {}
        }
        if Instant::now() >= deadline {
            return Err(LifecycleError::StartTimeout {
                pid,
                socket,
                log,
                timeout: START_TIMEOUT,
            });
        }
        std::thread::sleep(POLL);
    }
}

/// Set in the environment of a background daemon: `vine daemon run` then
/// detaches (setsid).
pub const DETACH_ENV: &str = "VINE_DAEMON_DETACH";

fn log_tail(log: &Path, from: u64) -> String {
    let text = fs::read(log)
        .map(|b| {
            let from = usize::try_from(from).unwrap_or(0).min(b.len());
            String::from_utf8_lossy(&b[from..]).into_owned()
        })
        .unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(20)..].join("\n");
    if tail.is_empty() {
        "(the log is empty)".to_owned()
    } else {
        tail
    }
}

/// What `stop` did.
#[derive(Debug, Clone, Serialize)]
pub struct Stopped {
    /// The pid that was stopped.
    pub pid: u32,
}

/// Stops the daemon named by the pidfile in `runtime_dir`: checks it is a
/// live vine process, sends SIGTERM, waits (bounded) for it to exit and
/// removes a leftover pidfile.
pub fn stop(runtime_dir: &Path) -> Result<Stopped, LifecycleError> {
    let paths = RuntimePaths::new(runtime_dir);
    let pidfile = paths.pidfile();
    let pid = files::read_pidfile(&paths)
        .map_err(|source| LifecycleError::File {
            what: "read pidfile",
            path: pidfile.clone(),
            source,
        })?
        .ok_or_else(|| LifecycleError::NotRunning(pidfile.clone()))?;
    if !process_alive(pid) {
        let _ = files::remove_if_present(&pidfile);
        let _ = files::remove_if_present(&paths.state_file());
        return Err(LifecycleError::StalePidfile { pid, pidfile });
    }
    if !is_vine(pid, &paths) {
        return Err(LifecycleError::NotVine {
            pid,
            pidfile,
            cmdline: cmdline(pid),
        });
    }
    let raw = i32::try_from(pid).map_err(|_| LifecycleError::NotRunning(pidfile.clone()))?;
    kill(Pid::from_raw(raw), Signal::SIGTERM)
        .map_err(|source| LifecycleError::Signal { pid, source })?;
    let deadline = Instant::now() + STOP_TIMEOUT;
    while process_alive(pid) {
        if Instant::now() >= deadline {
            return Err(LifecycleError::StopTimeout {
                pid,
                pidfile,
                timeout: STOP_TIMEOUT,
            });
        }
        std::thread::sleep(POLL);
    }
    let _ = files::remove_if_present(&pidfile);
    Ok(Stopped { pid })
}

/// What `status` found.
#[derive(Debug, Clone, Serialize)]
pub struct DaemonStatus {
    /// The runtime directory.
    pub runtime_dir: PathBuf,
    /// The state file, if any.
    pub state: Option<StateFile>,
    /// The pid from the pidfile (or the state file).
    pub pid: Option<u32>,
    /// Whether that pid is a live vine daemon ([`is_vine`]).
    pub alive: bool,
    /// A pidfile or state file names a dead process.
    pub stale: bool,
}

/// Reads the state file and pidfile and checks liveness.
pub fn status(runtime_dir: &Path) -> Result<DaemonStatus, LifecycleError> {
    let paths = RuntimePaths::new(runtime_dir);
    let state = files::read_state(&paths).map_err(|source| LifecycleError::File {
        what: "read state file",
        path: paths.state_file(),
        source,
    })?;
    let pid = files::read_pidfile(&paths)
        .map_err(|source| LifecycleError::File {
            what: "read pidfile",
            path: paths.pidfile(),
            source,
        })?
        .or(state.as_ref().map(|s| s.pid))
        .or_else(|| running_pid(&paths));
    let alive = pid.is_some_and(|pid| is_vine(pid, &paths));
    Ok(DaemonStatus {
        runtime_dir: runtime_dir.to_owned(),
        stale: pid.is_some() && !alive,
        state,
        pid,
        alive,
    })
}
