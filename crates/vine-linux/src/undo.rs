//! The host-change journal: every change vine makes to the host outside its
//! own runtime files (a network interface it creates, a sysctl it sets, a
//! file or directory it creates elsewhere) is appended here, and synced,
//! *before* the change is made, so whatever happens next — a clean stop, a
//! failure half-way, `kill -9` — the journal names everything that may have
//! to be put back.
//!
//! [`Journal::open`] hands back what a previous process left (it died
//! before it reverted); the caller reverts those first ([`Journal::revert`])
//! and only then builds anew. A clean stop reverts everything in reverse
//! order. A change undone on its own (one workload detached) leaves the
//! journal with [`Journal::forget`].
//!
//! Undoing is idempotent and careful: an interface that is already gone, a
//! file already removed, are fine; a sysctl is put back only if it still
//! holds the value vine set (an operator who changed it since keeps their
//! value); a directory is removed only when empty.
//!
//! The file is JSON lines, one [`Change`] per line. A torn last line (the
//! process died mid-append, before the change was made) is ignored.

#[cfg(test)]
mod tests;

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fsutil;
use crate::netlink::Netlink;

/// The longest journal this reads (a journal is a few lines per workload).
const MAX_JOURNAL: usize = 4 << 20;

/// Reads the changes in the journal at `path` without creating or
/// changing it (for reports: `vine doctor`). A missing file has none.
pub fn recorded_changes(path: &Path) -> io::Result<Vec<Change>> {
    match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(file) => read_changes(&file, path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// One change to the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case", deny_unknown_fields)]
pub enum Change {
    /// A network interface vine created in the daemon's network namespace
    /// (deleting it also deletes a veth's peer, its addresses and routes).
    Link {
        /// Its name.
        name: String,
    },
    /// A sysctl vine wrote, e.g. `/proc/sys/net/ipv4/ip_forward`.
    Sysctl {
        /// The file under `/proc/sys`.
        path: String,
        /// What it held before.
        previous: String,
        /// What vine wrote.
        set: String,
    },
    /// A file vine created (nothing was there before).
    File {
        /// Its path.
        path: String,
    },
    /// A directory vine created (nothing was there before).
    Dir {
        /// Its path.
        path: String,
    },
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Link { name } => write!(f, "interface {name}"),
            Self::Sysctl {
                path,
                previous,
                set,
            } => {
                write!(f, "sysctl {path} (was {previous}, set to {set})")
            }
            Self::File { path } => write!(f, "file {path}"),
            Self::Dir { path } => write!(f, "directory {path}"),
        }
    }
}

/// What undoing one change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undone {
    /// Put back.
    Reverted,
    /// Nothing to do: already gone (or never made).
    Absent,
    /// Left alone on purpose, with why (a sysctl someone changed since).
    Kept(String),
}

/// The journal file and the changes it holds.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    changes: Vec<Change>,
}

impl Journal {
    /// Opens (creating, mode 0600) the journal at `path` and returns it
    /// with the changes a previous process recorded and did not revert. The
    /// file is not followed if it is a symlink.
    pub fn open(path: &Path) -> io::Result<Self> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "cannot open the host-change journal {}: {e}",
                        path.display()
                    ),
                )
            })?;
        let changes = read_changes(&file, path)?;
        Ok(Self {
            path: path.to_owned(),
            file,
            changes,
        })
    }

    /// The changes recorded and not yet reverted, oldest first.
    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    /// Appends `change` and syncs it to disk. Call it *before* making the
    /// change; if it fails, do not make the change.
    pub fn record(&mut self, change: Change) -> io::Result<()> {
        let mut line = serde_json::to_string(&change).map_err(io::Error::other)?;
        line.push('\n');
        self.file.write_all(line.as_bytes())?;
        self.file.sync_data()?;
        self.changes.push(change);
        Ok(())
    }

    /// Drops the entries `undone` matches (changes the caller undid on its
    /// own) and rewrites the file atomically.
    pub fn forget(&mut self, undone: impl Fn(&Change) -> bool) -> io::Result<()> {
        let before = self.changes.len();
        self.changes.retain(|c| !undone(c));
        if self.changes.len() != before {
            self.rewrite()?;
        }
        Ok(())
    }

    /// Undoes every recorded change, newest first, with `undo` (normally
    /// [`undo`]), and forgets the ones that are done. Returns what each did;
    /// a change whose undo failed stays in the journal (a later start tries
    /// again) and comes back as an error.
    pub fn revert(
        &mut self,
        mut undo: impl FnMut(&Change) -> io::Result<Undone>,
    ) -> Vec<(Change, io::Result<Undone>)> {
        let mut report = Vec::new();
        let mut failed = Vec::new();
        for change in self.changes.iter().rev() {
            let result = undo(change);
            if result.is_err() {
                failed.push(change.clone());
            }
            report.push((change.clone(), result));
        }
        failed.reverse();
        self.changes = failed;
        if let Err(e) = self.rewrite() {
            report.push((
                Change::File {
                    path: self.path.display().to_string(),
                },
                Err(e),
            ));
        }
        report
    }

    fn rewrite(&mut self) -> io::Result<()> {
        let mut text = String::new();
        for c in &self.changes {
            text.push_str(&serde_json::to_string(c).map_err(io::Error::other)?);
            text.push('\n');
        }
        fsutil::write_atomic(&self.path, text.as_bytes(), 0o600, 0o700)?;
        self.file = OpenOptions::new()
            .read(true)
            .append(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&self.path)?;
        Ok(())
    }
}

fn read_changes(file: &File, path: &Path) -> io::Result<Vec<Change>> {
    let meta = file.metadata()?;
    if meta.len() > MAX_JOURNAL as u64 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the host-change journal {} is {} bytes, more than vine ever writes; look at it, revert what it lists by hand, and remove it",
                path.display(),
                meta.len()
            ),
        ));
    }
    let mut changes = Vec::new();
    let mut lines = BufReader::new(file).split(b'\n').peekable();
    let mut number = 0;
    while let Some(line) = lines.next() {
        let line = line?;
        number += 1;
        let last = lines.peek().is_none();
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Change>(&line) {
            Ok(c) => changes.push(c),
            // The process died while appending this line, before making the
            // change it describes.
            Err(_) if last && !ends_with_newline(file)? => {}
            Err(e) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "the host-change journal {} line {number} is not a change vine wrote ({e}); revert what the file lists by hand and remove it",
                        path.display()
                    ),
                ));
            }
        }
    }
    Ok(changes)
}

fn ends_with_newline(file: &File) -> io::Result<bool> {
    use std::os::unix::fs::FileExt;
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(true);
    }
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, len - 1)?;
    Ok(byte[0] == b'\n')
}

/// Undoes one change on this host (in the calling thread's network
/// namespace).
pub fn undo(change: &Change) -> io::Result<Undone> {
    match change {
        Change::Link { name } => {
            let mut nl = Netlink::new()?;
            match nl.link(name)? {
                Some(link) => {
                    nl.delete_link(link.index)?;
                    Ok(Undone::Reverted)
                }
                None => Ok(Undone::Absent),
            }
        }
        Change::Sysctl {
            path,
            previous,
            set,
        } => {
            let now = match fs::read_to_string(path) {
                Ok(v) => v,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Undone::Absent),
                Err(e) => return Err(e),
            };
            if now.trim() != set.trim() {
                return Ok(Undone::Kept(format!(
                    "{path} is {} now, not the {} vine set; left as it is",
                    now.trim(),
                    set.trim()
                )));
            }
            fs::write(path, previous.trim())?;
            Ok(Undone::Reverted)
        }
        Change::File { path } => match fs::remove_file(path) {
            Ok(()) => Ok(Undone::Reverted),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Undone::Absent),
            Err(e) => Err(e),
        },
        Change::Dir { path } => match fs::remove_dir(path) {
            Ok(()) => Ok(Undone::Reverted),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Undone::Absent),
            Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) => Ok(Undone::Kept(format!(
                "{path} is not empty (someone else put files in it); left as it is"
            ))),
            Err(e) => Err(e),
        },
    }
}

/// Sets the sysctl at `path` to `value`, recording the change first; does
/// nothing (and records nothing) if it already holds `value`. Returns
/// whether it changed anything.
pub fn set_sysctl(journal: &mut Journal, path: &str, value: &str) -> io::Result<bool> {
    let previous = fs::read_to_string(path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot read {path}: {e}")))?;
    if previous.trim() == value {
        return Ok(false);
    }
    journal.record(Change::Sysctl {
        path: path.to_owned(),
        previous: previous.trim().to_owned(),
        set: value.to_owned(),
    })?;
    fs::write(path, value)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot write {path}: {e}")))?;
    Ok(true)
}
