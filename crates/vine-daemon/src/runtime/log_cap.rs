//! The background log's cap: a background daemon's stdout and stderr are
//! `<runtime_dir>/vine.log` (opened by `lifecycle::start_background`);
//! while it runs, a log grown past the cap is copied to `vine.log.1`
//! (replacing the previous copy) and truncated, as logrotate's
//! `copytruncate` does. The log is opened for appending, so later lines
//! go to the start of the emptied file.

use std::fs::{self, File};
use std::io;
use std::os::fd::AsFd as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::time::Duration;

use tokio::task::JoinHandle;
use tracing::{info, warn};
use vine_linux::fsutil;

/// How often the log's size is checked.
const CHECK_EVERY: Duration = Duration::from_secs(30);

/// Copies the log open as `log` (whose path is `path`) to `<path>.1` and
/// truncates it, if it is a regular file larger than `cap` bytes. Returns
/// whether it did. Lines written between the copy and the truncation are
/// lost.
pub(crate) fn cap_once(log: &File, path: &Path, cap: u64) -> io::Result<bool> {
    let meta = log.metadata()?;
    if !meta.is_file() || meta.len() <= cap {
        return Ok(false);
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut old = path.file_name().unwrap_or_default().to_owned();
    old.push(".1");
    let (tmp, mut copy) = fsutil::create_temp(dir, &old, 0o600)?;
    let copied = (|| {
        let mut source = File::open(format!("/proc/self/fd/{}", fd_number(log)))?;
        io::copy(&mut source, &mut copy)?;
        copy.sync_all()?;
        fs::rename(&tmp, dir.join(&old))
    })();
    if copied.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    copied?;
    log.set_len(0)?;
    Ok(true)
}

fn fd_number(file: &File) -> i32 {
    use std::os::fd::AsRawFd as _;
    file.as_raw_fd()
}

/// When this process's stderr (where the daemon logs) is the file at
/// `path` — a background daemon's `vine.log` — checks it every
/// [`CHECK_EVERY`] and caps it at `cap` bytes. Anything else (a terminal,
/// the journal, a file the operator chose) is left alone.
pub(crate) fn spawn(path: &Path, cap: u64) -> Option<JoinHandle<()>> {
    let stderr = File::from(io::stderr().as_fd().try_clone_to_owned().ok()?);
    let (Ok(ours), Ok(log)) = (stderr.metadata(), fs::symlink_metadata(path)) else {
        return None;
    };
    if !log.is_file() || (ours.dev(), ours.ino()) != (log.dev(), log.ino()) {
        return None;
    }
    let path = path.to_owned();
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(CHECK_EVERY);
        loop {
            tick.tick().await;
            match cap_once(&stderr, &path, cap) {
                Ok(true) => {
                    info!(log = %path.display(), cap, "log capped: the old lines are in .1")
                }
                Ok(false) => {}
                Err(e) => {
                    warn!(log = %path.display(), "cannot cap the log: {e}");
                    return;
                }
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn a_log_past_its_cap_is_copied_to_dot_one_and_emptied() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("vine.log");
        let mut log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .expect("open");
        log.write_all(b"0123456789").expect("write");
        assert!(!cap_once(&log, &path, 10).expect("cap"), "at the cap");
        log.write_all(b"abc\n").expect("write");
        assert!(cap_once(&log, &path, 10).expect("cap"));
        let old = dir.path().join("vine.log.1");
        assert_eq!(fs::read(&old).expect("read"), b"0123456789abc\n");
        assert_eq!(
            fs::metadata(&old).expect("meta").permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(fs::metadata(&path).expect("meta").len(), 0);
        log.write_all(b"next\n").expect("write");
        assert_eq!(fs::read(&path).expect("read"), b"next\n");
        // Only the log and its one old copy: no temp files.
        assert_eq!(fs::read_dir(dir.path()).expect("ls").count(), 2);
    }

    #[test]
    fn a_terminal_or_pipe_is_left_alone() {
        let (read, write) = std::io::pipe().expect("pipe");
        let dir = tempfile::tempdir().expect("tempdir");
        let file = File::from(std::os::fd::OwnedFd::from(write));
        assert!(!cap_once(&file, &dir.path().join("vine.log"), 0).expect("cap"));
        drop(read);
    }
}
