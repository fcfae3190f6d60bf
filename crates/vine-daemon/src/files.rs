//! The daemon's files in `[node] runtime_dir`: pidfile, state file, control
//! socket, snapshot dump and background log.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::api::Phase;

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

    /// `snapshot.json`: written on SIGUSR1.
    pub fn snapshot(&self) -> PathBuf {
        self.dir.join("snapshot.json")
    }

    /// `vine.log`: stdout/stderr of a background daemon.
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

/// Writes `contents` to `path` atomically (temp file + rename) with `mode`.
pub fn write_file(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    fs::write(&tmp, contents)?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))?;
    fs::rename(&tmp, path).inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}

/// Writes the state file (mode 0644).
pub fn write_state(paths: &RuntimePaths, state: &StateFile) -> io::Result<()> {
    let mut text = serde_json::to_vec_pretty(state).map_err(io::Error::other)?;
    text.push(b'\n');
    write_file(&paths.state_file(), &text, 0o644)
}

/// Reads the state file; `Ok(None)` when there is none.
pub fn read_state(paths: &RuntimePaths) -> io::Result<Option<StateFile>> {
    match fs::read(paths.state_file()) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes the pidfile (mode 0644).
pub fn write_pidfile(paths: &RuntimePaths, pid: u32) -> io::Result<()> {
    write_file(&paths.pidfile(), format!("{pid}\n").as_bytes(), 0o644)
}

/// Reads the pidfile; `Ok(None)` when there is none.
pub fn read_pidfile(paths: &RuntimePaths) -> io::Result<Option<u32>> {
    match fs::read_to_string(paths.pidfile()) {
        Ok(text) => text.trim().parse::<u32>().map(Some).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "pidfile {} does not hold a process id",
                    paths.pidfile().display()
                ),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Removes a file, ignoring "not found".
pub fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
