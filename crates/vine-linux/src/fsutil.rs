//! Small filesystem helpers: atomic writes that never follow a planted
//! symlink, reads that do not follow one, and mode checks.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Writes `contents` to `path` atomically: a temporary file with a unique,
/// unpredictable name in the same directory is created with `O_EXCL` and
/// `O_NOFOLLOW` (never through a symlink someone planted), given exactly
/// `mode` before anything is written, written, synced and renamed over
/// `path`, then the directory is synced. `rename` replaces whatever is at
/// `path` (a symlink included) without following it, so a symlink planted at
/// `path` is replaced and its target left unchanged. Missing parent
/// directories are created with `dir_mode`. A reader sees the old file or the
/// new one, never a mix.
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
    let (tmp, mut file) = create_temp(parent, file_name, mode)?;
    let result = (|| {
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

/// Creates `.<name>.tmp-<pid>-<random>` in `dir` with `O_CREAT | O_EXCL |
/// O_NOFOLLOW | O_CLOEXEC` and sets its mode to exactly `mode` (the umask
/// may only have narrowed it) before returning it, retrying on a name
/// collision.
pub fn create_temp(dir: &Path, name: &std::ffi::OsStr, mode: u32) -> io::Result<(PathBuf, File)> {
    let mut last = None;
    for _ in 0..16 {
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).map_err(|e| io::Error::other(e.to_string()))?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(
            ".tmp-{}-{:016x}",
            std::process::id(),
            u64::from_le_bytes(random)
        ));
        let tmp = dir.join(tmp_name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
        {
            Ok(file) => {
                if let Err(e) = file.set_permissions(fs::Permissions::from_mode(mode)) {
                    let _ = fs::remove_file(&tmp);
                    return Err(e);
                }
                return Ok((tmp, file));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("cannot create a temporary file")))
}

/// Opens `path` for reading without following a symlink at its last
/// component (`O_NOFOLLOW`: a symlink gives `ELOOP`).
pub fn open_nofollow(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
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
    fn atomic_write_replaces_a_planted_symlink_and_leaves_its_target_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let victim = dir.path().join("victim");
        fs::write(&victim, b"precious").expect("write victim");
        fs::set_permissions(&victim, fs::Permissions::from_mode(0o644)).expect("chmod");
        let path = dir.path().join("state");
        std::os::unix::fs::symlink(&victim, &path).expect("symlink");
        write_atomic(&path, b"new", 0o600, 0o755).expect("write");
        assert_eq!(fs::read(&victim).expect("read victim"), b"precious");
        let victim_meta = fs::metadata(&victim).expect("meta");
        assert_eq!(permission_bits(&victim_meta), 0o644);
        let meta = fs::symlink_metadata(&path).expect("lstat");
        assert!(meta.file_type().is_file(), "the symlink was replaced");
        assert_eq!(permission_bits(&meta), 0o600);
        assert_eq!(fs::read(&path).expect("read"), b"new");
    }

    #[test]
    fn atomic_write_sets_the_exact_mode_and_uses_unpredictable_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        // A file at the old predictable temp name does not block the write.
        let old_tmp = dir.path().join(format!(".f.tmp-{}", std::process::id()));
        fs::write(&old_tmp, b"planted").expect("plant");
        write_atomic(&path, b"x", 0o640, 0o755).expect("write");
        assert_eq!(permission_bits(&fs::metadata(&path).expect("meta")), 0o640);
        assert_eq!(fs::read(&old_tmp).expect("read"), b"planted");
    }

    #[test]
    fn open_nofollow_refuses_a_symlink() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("t");
        fs::write(&target, b"t").expect("write");
        let link = dir.path().join("l");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        assert!(open_nofollow(&link).is_err());
        assert!(open_nofollow(&target).is_ok());
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
