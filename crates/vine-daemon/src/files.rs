//! The daemon's files in `[node] runtime_dir`: pidfile, state file, control
//! socket, snapshot dump, background log and the single-instance lock.
//!
//! # Trust
//!
//! The runtime directory is the daemon's only state directory. Before the
//! daemon writes anything there it checks ([`RuntimePaths::check_dir`]) that
//! the directory is owned by the daemon's user (root) and not writable by
//! group or others, so no other user can plant or swap files in it. Files
//! are written by [`write_file`]: a fresh unpredictable temp name created
//! with `O_EXCL | O_NOFOLLOW`, its final mode set before any byte is
//! written, fsync, rename (which replaces a planted symlink rather than
//! following it). Modes: pidfile and state file 0644, `snapshot.json`
//! 0600, lock file 0600, control socket 0600, background log 0600.

use std::fs;
use std::io::{self, Read as _};
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use vine_linux::fsutil;

use crate::api::Phase;

/// The background log's cap: past it, `vine.log` is moved (at start) or
/// copied and truncated (while running) to `vine.log.1`.
pub const LOG_CAP: u64 = 8 * 1024 * 1024;

/// Paths of the files in a runtime directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimePaths {
    /// The directory.
    pub dir: PathBuf,
}

impl RuntimePaths {
    /// Paths inside `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// `vine.pid`: the daemon's pid in decimal (mode 0644).
    pub fn pidfile(&self) -> PathBuf {
        self.dir.join("vine.pid")
    }

    /// `vine.state.json`: the [`StateFile`].
    pub fn state_file(&self) -> PathBuf {
        self.dir.join("vine.state.json")
    }

    /// `vine.sock`: the control socket (mode 0600).
    pub fn socket(&self) -> PathBuf {
        self.dir.join("vine.sock")
    }

    /// `vine.lock`: held with `flock(LOCK_EX)` by the running daemon
    /// (mode 0600; never removed, so every daemon locks the same file).
    pub fn lock(&self) -> PathBuf {
        self.dir.join("vine.lock")
    }

    /// `snapshot.json`: written on SIGUSR1 (mode 0600).
    pub fn snapshot(&self) -> PathBuf {
        self.dir.join("snapshot.json")
    }

    /// `vine.log`: stdout/stderr of a background daemon (mode 0600).
    pub fn log(&self) -> PathBuf {
        self.dir.join("vine.log")
    }

    /// Creates the directory (mode 0755) if it is missing.
    pub fn create_dir(&self) -> io::Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&self.dir)
    }

    /// Checks that the directory is a directory owned by the daemon's user
    /// (its effective uid: root for a real daemon), not writable by group
    /// or others, and that none of the daemon's file names in it is a
    /// symlink. The daemon refuses to start otherwise.
    pub fn check_dir(&self) -> Result<(), RuntimeDirError> {
        check_dir(&self.dir, nix::unistd::geteuid().as_raw())?;
        for path in [
            self.pidfile(),
            self.state_file(),
            self.socket(),
            self.snapshot(),
            self.log(),
            self.lock(),
        ] {
            if fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
                let target = fs::read_link(&path).unwrap_or_default();
                return Err(RuntimeDirError::Symlink { path, target });
            }
        }
        Ok(())
    }
}

/// Why the runtime directory cannot be trusted with the daemon's files.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeDirError {
    /// Its metadata could not be read.
    #[error("cannot inspect the runtime directory {}: {source}", path.display())]
    Unreadable {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The path is not a directory.
    #[error("runtime directory {} is not a directory; remove it or set [node] runtime_dir to a directory", path.display())]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// One of the daemon's file names is a symlink (someone may be
    /// pointing the daemon's writes at another file).
    #[error("{} is a symlink (to {}); the daemon never writes through one: remove it (`rm {}`) and check who made it", path.display(), target.display(), path.display())]
    Symlink {
        /// The symlink.
        path: PathBuf,
        /// Where it points.
        target: PathBuf,
    },
    /// Another user owns it, or group or others may write to it: they
    /// could plant symlinks or swap the daemon's files.
    #[error(
        "runtime directory {} is owned by uid {uid} with mode {mode:04o}; it must be owned by {owner} and not writable by group or others, or another user could replace the daemon's files: run `chown {fix_owner} {} && chmod 0755 {}`",
        path.display(), path.display(), path.display(),
        owner = owner_name(*euid), fix_owner = chown_arg(*euid)
    )]
    Unsafe {
        /// The directory.
        path: PathBuf,
        /// Its owner.
        uid: u32,
        /// Its permission bits.
        mode: u32,
        /// The daemon's effective uid.
        euid: u32,
    },
}

fn owner_name(euid: u32) -> String {
    if euid == 0 {
        "root".to_owned()
    } else {
        format!("uid {euid} (the daemon's user)")
    }
}

fn chown_arg(euid: u32) -> String {
    if euid == 0 {
        "root:root".to_owned()
    } else {
        euid.to_string()
    }
}

/// [`RuntimePaths::check_dir`] for an explicit owner.
pub fn check_dir(dir: &Path, euid: u32) -> Result<(), RuntimeDirError> {
    let meta = fs::metadata(dir).map_err(|source| RuntimeDirError::Unreadable {
        path: dir.to_owned(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(RuntimeDirError::NotADirectory {
            path: dir.to_owned(),
        });
    }
    let mode = fsutil::permission_bits(&meta);
    if meta.uid() != euid || mode & 0o022 != 0 {
        return Err(RuntimeDirError::Unsafe {
            path: dir.to_owned(),
            uid: meta.uid(),
            mode,
            euid,
        });
    }
    Ok(())
}

/// The single-instance lock: `vine.lock` held with `flock(LOCK_EX |
/// LOCK_NB)` until this value is dropped (or the process dies, when the
/// kernel releases it). The file is never removed: removing it would let
/// a second daemon lock a fresh file while the first still holds the old
/// one.
#[derive(Debug)]
pub struct RuntimeLock {
    _file: fs::File,
}

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it: a daemon runs for this directory.
    #[error("{} is locked by another process", .0.display())]
    Held(PathBuf),
    /// The lock file could not be opened or locked.
    #[error("cannot lock {}: {source}", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

impl RuntimeLock {
    /// Opens (creating with mode 0600, never through a symlink) and locks
    /// `vine.lock`; [`LockError::Held`] when another process holds it.
    pub fn acquire(paths: &RuntimePaths) -> Result<Self, LockError> {
        let path = paths.lock();
        let io_err = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
            .open(&path)
            .map_err(io_err)?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(fs::TryLockError::WouldBlock) => Err(LockError::Held(path)),
            Err(fs::TryLockError::Error(e)) => Err(io_err(e)),
        }
    }
}

/// The pids holding a `flock` on `vine.lock`, from `/proc/locks` (empty
/// when there is no lock file or `/proc/locks` cannot be read).
pub fn lock_holders(paths: &RuntimePaths) -> Vec<u32> {
    let Ok(meta) = fs::symlink_metadata(paths.lock()) else {
        return Vec::new();
    };
    let Ok(locks) = fs::read_to_string("/proc/locks") else {
        return Vec::new();
    };
    let dev = meta.dev();
    let (major, minor) = (
        ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff),
        (dev & 0xff) | ((dev >> 12) & !0xff),
    );
    let want = format!("{major:02x}:{minor:02x}:{}", meta.ino());
    locks
        .lines()
        .filter_map(|line| {
            // "1: FLOCK  ADVISORY  WRITE 1234 00:2d:5678 0 EOF"; blocked
            // waiters have "->" after the index.
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.as_slice() {
                [_, "FLOCK", _, _, pid, id, ..] if *id == want => pid.parse().ok(),
                _ => None,
            }
        })
        .collect()
}

/// The state file's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateFile {
    /// Lifecycle phase.
    pub phase: Phase,
    /// Daemon pid.
    pub pid: u32,
    /// Config file in use.
    pub config_path: String,
    /// Start time, seconds since the UNIX epoch.
    pub started_at: u64,
}

/// Writes `contents` to `path` atomically with exactly `mode`: a fresh
/// temp name in the same directory created with `O_EXCL | O_NOFOLLOW` and
/// its mode set before writing, fsync, rename over `path` (a symlink there
/// is replaced, its target untouched), fsync of the directory.
pub fn write_file(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    fsutil::write_atomic(path, contents, mode, 0o755)
}

/// Writes `snapshot.json` (mode 0600: it names peers and addresses).
pub fn write_snapshot(paths: &RuntimePaths, contents: &[u8]) -> io::Result<()> {
    write_file(&paths.snapshot(), contents, 0o600)
}

/// The largest pidfile or state file read.
const MAX_SMALL_FILE: usize = 64 * 1024;

/// Reads a small runtime file without following a symlink; `Ok(None)` when
/// it is missing.
fn read_small(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let file = match fsutil::open_nofollow(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut buf = Vec::new();
    file.take(MAX_SMALL_FILE as u64 + 1).read_to_end(&mut buf)?;
    if buf.len() > MAX_SMALL_FILE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is larger than {MAX_SMALL_FILE} bytes", path.display()),
        ));
    }
    Ok(Some(buf))
}

/// Writes the state file (mode 0644).
pub fn write_state(paths: &RuntimePaths, state: &StateFile) -> io::Result<()> {
    let mut text = serde_json::to_vec_pretty(state).map_err(io::Error::other)?;
    text.push(b'\n');
    write_file(&paths.state_file(), &text, 0o644)
}

/// Reads the state file; `Ok(None)` when there is none.
pub fn read_state(paths: &RuntimePaths) -> io::Result<Option<StateFile>> {
    match read_small(&paths.state_file())? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
        None => Ok(None),
    }
}

/// Writes the pidfile (mode 0644).
pub fn write_pidfile(paths: &RuntimePaths, pid: u32) -> io::Result<()> {
    write_file(&paths.pidfile(), format!("{pid}\n").as_bytes(), 0o644)
}

/// Reads the pidfile; `Ok(None)` when there is none.
pub fn read_pidfile(paths: &RuntimePaths) -> io::Result<Option<u32>> {
    match read_small(&paths.pidfile())? {
        Some(bytes) => String::from_utf8_lossy(&bytes)
            .trim()
            .parse::<u32>()
            .map(Some)
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "pidfile {} does not hold a process id",
                        paths.pidfile().display()
                    ),
                )
            }),
        None => Ok(None),
    }
}

/// Removes what a daemon killed half-way through a write or a socket bind
/// left in the runtime directory: `.<name>.tmp-*` files of the state files
/// it writes and `.vine.sock.bind-*` directories. Call it only while holding
/// the single-instance lock (no live daemon writes here then). Returns the
/// paths removed.
pub fn sweep_leftovers(paths: &RuntimePaths) -> io::Result<Vec<PathBuf>> {
    let names: Vec<String> = [paths.pidfile(), paths.state_file(), paths.snapshot()]
        .iter()
        .filter_map(|p| p.file_name())
        .map(|n| format!(".{}.tmp-", n.to_string_lossy()))
        .collect();
    let bind = paths
        .socket()
        .file_name()
        .map(|n| format!(".{}.bind-", n.to_string_lossy()));
    let mut removed = Vec::new();
    for entry in fs::read_dir(&paths.dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        // file_type() does not follow symlinks: a planted link is removed
        // as a link, never followed.
        let is_dir = entry.file_type()?.is_dir();
        if names.iter().any(|n| name.starts_with(n.as_str())) && !is_dir {
            fs::remove_file(&path)?;
        } else if bind.as_deref().is_some_and(|b| name.starts_with(b)) {
            if is_dir {
                fs::remove_dir_all(&path)?;
            } else {
                fs::remove_file(&path)?;
            }
        } else {
            continue;
        }
        removed.push(path);
    }
    Ok(removed)
}

/// Removes a file, ignoring "not found".
pub fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
