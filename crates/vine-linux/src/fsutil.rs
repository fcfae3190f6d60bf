//! Small filesystem helpers: atomic writes and mode checks.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Writes `contents` to `path` atomically: a temporary file with `mode` in
/// the same directory is written, synced and renamed over `path`, then the
/// directory is synced. Missing parent directories are created with
/// `dir_mode`. A reader sees the old file or the new one, never a mix.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32, dir_mode: u32) -> io::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.exists() {
        DirBuilder::new()
            .recursive(true)
            .mode(dir_mode)
            .create(parent)?;
    }
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = parent.join(tmp_name);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        // The umask may have narrowed `mode`; set it exactly.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(parent)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Reads at most `limit` bytes of `path`; `Ok(None)` if the file is larger.
pub fn read_limited(path: &Path, limit: usize) -> io::Result<Option<Vec<u8>>> {
    let file = File::open(path)?;
    let mut buf = Vec::new();
    file.take(limit as u64 + 1).read_to_end(&mut buf)?;
    Ok((buf.len() <= limit).then_some(buf))
}

/// The permission bits (`0o777` part) of a file's mode.
pub fn permission_bits(meta: &fs::Metadata) -> u32 {
    meta.permissions().mode() & 0o7777
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_creates_parents_and_sets_modes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a/b/file");
        write_atomic(&path, b"hello", 0o600, 0o700).expect("write");
        assert_eq!(fs::read(&path).expect("read"), b"hello");
        let meta = fs::metadata(&path).expect("meta");
        assert_eq!(permission_bits(&meta), 0o600);
        let dmeta = fs::metadata(dir.path().join("a/b")).expect("meta");
        assert_eq!(permission_bits(&dmeta), 0o700);
        write_atomic(&path, b"again", 0o600, 0o700).expect("overwrite");
        assert_eq!(fs::read(&path).expect("read"), b"again");
        // No temporary files are left behind.
        assert_eq!(fs::read_dir(dir.path().join("a/b")).expect("ls").count(), 1);
    }

    #[test]
    fn read_limited_refuses_large_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        fs::write(&path, vec![b'x'; 100]).expect("write");
        assert_eq!(
            read_limited(&path, 100).expect("read").map(|v| v.len()),
            Some(100)
        );
        assert_eq!(read_limited(&path, 99).expect("read"), None);
    }
}
