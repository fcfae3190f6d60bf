//! The identity file on disk: create (OS RNG, mode 0600, atomic) and load
//! (mode, size and tamper checks).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use vine_core::Identity;
use vine_core::identity::IdentityFileError;

use crate::fsutil;

/// Identity files are tiny; anything bigger is not one.
const MAX_IDENTITY_BYTES: usize = 4096;

/// Why an identity file could not be created or loaded.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The path is relative.
    #[error("identity path {0} is not absolute; use a full path such as /var/lib/libvine/identity")]
    NotAbsolute(PathBuf),
    /// No file at the path.
    #[error("no identity file at {0}; create one with `vine identity init --identity {0}`")]
    NotFound(PathBuf),
    /// `init` would overwrite an existing identity.
    #[error(
        "an identity already exists at {0} (PeerId {1}); keep it, or replace it with `vine identity init --force` — this gives the node a new PeerId that every peer must re-enroll"
    )]
    Exists(PathBuf, String),
    /// Something other than a regular file is there.
    #[error(
        "{0} is not a regular file; point identity_path at the identity file made by `vine identity init`"
    )]
    NotAFile(PathBuf),
    /// Readable by others.
    #[error(
        "identity file {path} has mode {mode:04o}; it must be 0600 because it holds the node's secret: run `chmod 600 {path}`"
    )]
    BadMode {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Larger than any identity file.
    #[error(
        "{0} is larger than {MAX_IDENTITY_BYTES} bytes, so it is not a vine identity file; check identity_path"
    )]
    TooLarge(PathBuf),
    /// Not UTF-8 text.
    #[error("{0} is not a text file, so it is not a vine identity file; check identity_path")]
    NotText(PathBuf),
    /// The content is damaged, tampered with or from another version.
    #[error("identity file {path} is unusable: {source}; {hint}", hint = source.hint())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with its content.
        source: IdentityFileError,
    },
    /// The OS RNG failed.
    #[error("could not draw random bytes from the operating system: {0}")]
    Random(String),
    /// Any other IO failure.
    #[error("{action} {path}: {source}")]
    Io {
        /// What we were doing.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

impl IdentityError {
    /// A short stable code for JSON output and config diagnostics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotAbsolute(_) => "relative-path",
            Self::NotFound(_) => "identity-missing",
            Self::Exists(..) => "identity-exists",
            Self::NotAFile(_) | Self::TooLarge(_) | Self::NotText(_) => "identity-not-a-file",
            Self::BadMode { .. } => "identity-mode",
            Self::Invalid { .. } => "identity-invalid",
            Self::Random(_) | Self::Io { .. } => "identity-io",
        }
    }
}

fn io_err<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> IdentityError + 'a {
    move |source| IdentityError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// Loads and verifies the identity at `path`.
pub fn load(path: &Path) -> Result<Identity, IdentityError> {
    if !path.is_absolute() {
        return Err(IdentityError::NotAbsolute(path.to_owned()));
    }
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(IdentityError::NotFound(path.to_owned()));
        }
        Err(e) => return Err(io_err("cannot read", path)(e)),
    };
    if !meta.is_file() {
        return Err(IdentityError::NotAFile(path.to_owned()));
    }
    let mode = fsutil::permission_bits(&meta);
    if mode & 0o777 != 0o600 {
        return Err(IdentityError::BadMode {
            path: path.to_owned(),
            mode,
        });
    }
    let bytes = fsutil::read_limited(path, MAX_IDENTITY_BYTES)
        .map_err(io_err("cannot read", path))?
        .ok_or_else(|| IdentityError::TooLarge(path.to_owned()))?;
    let bytes = zeroize::Zeroizing::new(bytes);
    let text = std::str::from_utf8(&bytes).map_err(|_| IdentityError::NotText(path.to_owned()))?;
    Identity::from_file_text(text).map_err(|source| IdentityError::Invalid {
        path: path.to_owned(),
        source,
    })
}

/// Creates a new identity from the OS RNG and writes it to `path` (mode
/// 0600, parent directories 0700). Refuses to replace an existing file
/// unless `force`.
pub fn create(path: &Path, force: bool) -> Result<Identity, IdentityError> {
    let mut seed = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::fill(&mut *seed).map_err(|e| IdentityError::Random(e.to_string()))?;
    create_from_seed(path, *seed, force)
}

/// Like [`create`] with a given seed (for tests and reproducible fixtures).
pub fn create_from_seed(
    path: &Path,
    seed: [u8; 32],
    force: bool,
) -> Result<Identity, IdentityError> {
    if !path.is_absolute() {
        return Err(IdentityError::NotAbsolute(path.to_owned()));
    }
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => return Err(IdentityError::NotAFile(path.to_owned())),
        Ok(_) if !force => {
            let existing = load(path)
                .map(|id| id.peer_id().to_string())
                .unwrap_or_else(|_| "unreadable".to_owned());
            return Err(IdentityError::Exists(path.to_owned(), existing));
        }
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("cannot inspect", path)(e)),
    }
    let identity = Identity::from_seed(seed);
    fsutil::write_atomic(path, identity.to_file_text().as_bytes(), 0o600, 0o700)
        .map_err(io_err("cannot write", path))?;
    Ok(identity)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn setup() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state/identity");
        (dir, path)
    }

    #[test]
    fn create_then_load_round_trips_with_strict_modes() {
        let (_dir, path) = setup();
        let made = create(&path, false).expect("create");
        let loaded = load(&path).expect("load");
        assert_eq!(made.peer_id(), loaded.peer_id());
        let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = fs::metadata(path.parent().expect("parent"))
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700);
    }

    #[test]
    fn two_identities_differ() {
        let (_dir, path) = setup();
        let a = create(&path, false).expect("create");
        let b = create(&path, true).expect("force");
        assert_ne!(a.peer_id(), b.peer_id());
    }

    #[test]
    fn init_refuses_to_overwrite_without_force() {
        let (_dir, path) = setup();
        let a = create(&path, false).expect("create");
        let err = create(&path, false).expect_err("exists");
        assert!(matches!(err, IdentityError::Exists(..)));
        assert!(err.to_string().contains(&a.peer_id().to_string()));
        assert!(err.to_string().contains("--force"));
        assert_eq!(load(&path).expect("still there").peer_id(), a.peer_id());
    }

    #[test]
    fn loose_mode_is_refused_with_chmod_hint() {
        let (_dir, path) = setup();
        create(&path, false).expect("create");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = load(&path).expect_err("mode");
        assert!(matches!(err, IdentityError::BadMode { mode: 0o644, .. }));
        assert!(
            err.to_string()
                .contains(&format!("chmod 600 {}", path.display()))
        );
    }

    #[test]
    fn missing_relative_and_directory_paths_are_named() {
        let (dir, path) = setup();
        assert!(matches!(load(&path), Err(IdentityError::NotFound(_))));
        assert!(
            load(&path)
                .expect_err("missing")
                .to_string()
                .contains("vine identity init")
        );
        assert!(matches!(
            load(Path::new("identity")),
            Err(IdentityError::NotAbsolute(_))
        ));
        assert!(matches!(load(dir.path()), Err(IdentityError::NotAFile(_))));
    }

    #[test]
    fn damaged_files_are_refused_with_the_reason() {
        let (_dir, path) = setup();
        create(&path, false).expect("create");
        let text = fs::read_to_string(&path).expect("read");
        fs::write(&path, &text[..text.len() / 2]).expect("truncate");
        let err = load(&path).expect_err("truncated");
        assert!(err.to_string().contains("truncated"), "{err}");
        fs::write(&path, vec![0xffu8; 64]).expect("junk");
        assert!(matches!(load(&path), Err(IdentityError::NotText(_))));
        fs::write(&path, vec![b'#'; 10_000]).expect("big");
        assert!(matches!(load(&path), Err(IdentityError::TooLarge(_))));
    }
}
