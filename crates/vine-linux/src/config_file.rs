//! The config file on disk: path rules, reading, and the full validation
//! pipeline (`vine config validate`).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use vine_core::Identity;
use vine_core::config::{self, Diagnostic, MAX_CONFIG_BYTES, Parsed};

use crate::fsutil;
use crate::identity_store::{self, IdentityError};

/// The result of validating a config file against the host.
#[derive(Debug)]
pub struct Validation {
    /// The config file's path as given.
    pub path: PathBuf,
    /// Parser findings plus host findings (file modes, identity).
    pub parsed: Parsed,
    /// The identity named by `identity_path`, when it loaded.
    pub identity: Option<Identity>,
}

impl Validation {
    /// The config when there were no errors.
    pub fn config(&self) -> Option<&config::Config> {
        self.parsed.config.as_ref()
    }
}

/// Reads and fully validates the config at `path`: the path rules (absolute,
/// not group/world writable), the TOML schema and values, and the identity
/// file it names (exists, mode 0600, intact, not enrolled as a peer of itself).
///
/// Returns `Err` only when there is no file to read at all (missing,
/// unreadable); every other problem is a diagnostic.
pub fn validate(path: &Path) -> Result<Validation, ConfigFileError> {
    let mut file_diags = Vec::new();
    if !path.is_absolute() {
        file_diags.push(
            Diagnostic::error(
                "relative-path",
                format!("config path {} is not absolute", path.display()),
            )
            .hint(format!(
                "pass the full path, e.g. -c {}",
                absolute_hint(path)
            )),
        );
    }
    let (text, mode) = read(path)?;
    if mode & 0o022 != 0 {
        file_diags.push(
            Diagnostic::error(
                "config-writable",
                format!(
                    "config file {} has mode {mode:04o}, so other users can change it",
                    path.display()
                ),
            )
            .hint(format!("run `chmod go-w {}`", path.display())),
        );
    }
    let mut parsed = config::parse(&text);
    // The identity is checked before file-level errors withdraw the config,
    // so one run reports both.
    let identity = check_identity(&mut parsed);
    for d in file_diags {
        parsed.push(d);
    }
    Ok(Validation {
        path: path.to_owned(),
        parsed,
        identity,
    })
}

/// Reads the config file's text (at most [`MAX_CONFIG_BYTES`], UTF-8) and
/// returns it with the file's permission bits.
pub fn read(path: &Path) -> Result<(String, u32), ConfigFileError> {
    let meta = fs::metadata(path).map_err(|e| ConfigFileError::from_io(path, e))?;
    if !meta.is_file() {
        return Err(ConfigFileError::NotAFile(path.to_owned()));
    }
    let mode = fsutil::permission_bits(&meta);
    let bytes = fsutil::read_limited(path, MAX_CONFIG_BYTES)
        .map_err(|e| ConfigFileError::from_io(path, e))?
        .ok_or_else(|| ConfigFileError::TooLarge(path.to_owned()))?;
    let text = String::from_utf8(bytes).map_err(|_| ConfigFileError::NotText(path.to_owned()))?;
    Ok((text, mode))
}

/// Loads the identity named by the config and records any problem with it
/// as a diagnostic at `identity_path`.
fn check_identity(parsed: &mut Parsed) -> Option<Identity> {
    let identity_path = PathBuf::from(parsed.identity_path.as_ref()?);
    let location = parsed
        .locate("node.identity_path")
        .or_else(|| parsed.locate("node.name"));
    match identity_store::load(&identity_path) {
        Ok(identity) => {
            parsed.check_local_peer(identity.peer_id());
            Some(identity)
        }
        Err(e) => {
            // Short message here; the fix goes in the hint.
            let (message, hint) = match &e {
                IdentityError::NotFound(p) => (
                    format!("no identity file at {}", p.display()),
                    format!("run `vine identity init --identity {}`", p.display()),
                ),
                IdentityError::BadMode { path, mode } => (
                    format!(
                        "identity file {} has mode {mode:04o}; it must be 0600 because it holds the node's secret",
                        path.display()
                    ),
                    format!("run `chmod 600 {}`", path.display()),
                ),
                IdentityError::Invalid { path, source } => (
                    format!("identity file {} is unusable: {source}", path.display()),
                    source.hint().to_owned(),
                ),
                other => (
                    other.to_string(),
                    "point identity_path at the file made by `vine identity init`".to_owned(),
                ),
            };
            parsed.push(Diagnostic::error(e.code(), message).hint(hint).at(location));
            None
        }
    }
}

fn absolute_hint(path: &Path) -> String {
    std::env::current_dir()
        .map(|d| d.join(path).display().to_string())
        .unwrap_or_else(|_| format!("/path/to/{}", path.display()))
}

/// Why a config file could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// Nothing at the path.
    #[error(
        "no config file at {0}; create one with `vine config init -c {0}` or pass the right path with -c"
    )]
    NotFound(PathBuf),
    /// A directory or device.
    #[error("{0} is not a regular file; pass the path of vine.toml with -c")]
    NotAFile(PathBuf),
    /// Bigger than any config.
    #[error(
        "{0} is larger than {MAX_CONFIG_BYTES} bytes, so it is not a vine config; check the -c path"
    )]
    TooLarge(PathBuf),
    /// Not UTF-8.
    #[error("{0} is not UTF-8 text, so it is not a vine config; check the -c path")]
    NotText(PathBuf),
    /// Any other IO failure.
    #[error("cannot read config file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// `config init` would overwrite a file.
    #[error(
        "a config already exists at {0}; validate it with `vine config validate -c {0}`, or replace it with `vine config init --force`"
    )]
    Exists(PathBuf),
}

impl ConfigFileError {
    fn from_io(path: &Path, e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::NotFound {
            Self::NotFound(path.to_owned())
        } else {
            Self::Io {
                path: path.to_owned(),
                source: e,
            }
        }
    }
}

/// Writes a new config (mode 0644, parent directories 0755) unless one
/// exists and `force` is false.
pub fn write_new(path: &Path, text: &str, force: bool) -> Result<(), ConfigFileError> {
    if !force && fs::symlink_metadata(path).is_ok() {
        return Err(ConfigFileError::Exists(path.to_owned()));
    }
    fsutil::write_atomic(path, text.as_bytes(), 0o644, 0o755).map_err(|source| {
        ConfigFileError::Io {
            path: path.to_owned(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn write_config(dir: &Path, identity: &Path, extra: &str) -> PathBuf {
        let path = dir.join("vine.toml");
        let text = format!(
            "[node]\nname = \"alpha\"\nnetwork_id = \"home-net\"\nidentity_path = \"{}\"\n\n[tun]\naddress = \"10.42.0.1\"\nprefix_len = 24\n{extra}",
            identity.display()
        );
        fs::write(&path, text).expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        path
    }

    #[test]
    fn valid_config_with_identity_passes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let id_path = dir.path().join("identity");
        identity_store::create(&id_path, false).expect("identity");
        let path = write_config(dir.path(), &id_path, "");
        let v = validate(&path).expect("readable");
        assert!(!v.parsed.has_errors(), "{:?}", v.parsed.diagnostics);
        assert!(v.identity.is_some());
    }

    #[test]
    fn missing_identity_is_an_error_at_identity_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let id_path = dir.path().join("identity");
        let path = write_config(dir.path(), &id_path, "");
        let v = validate(&path).expect("readable");
        let d = v
            .parsed
            .diagnostics
            .iter()
            .find(|d| d.code == "identity-missing")
            .expect("diag");
        assert_eq!(d.location.map(|l| l.line), Some(4));
        assert!(
            d.hint
                .as_deref()
                .unwrap_or("")
                .contains("vine identity init")
        );
    }

    #[test]
    fn writable_config_and_loose_identity_are_both_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let id_path = dir.path().join("identity");
        identity_store::create(&id_path, false).expect("identity");
        fs::set_permissions(&id_path, fs::Permissions::from_mode(0o640)).expect("chmod");
        let path = write_config(dir.path(), &id_path, "");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).expect("chmod");
        let v = validate(&path).expect("readable");
        let codes: Vec<_> = v.parsed.diagnostics.iter().map(|d| d.code).collect();
        assert!(codes.contains(&"config-writable"), "{codes:?}");
        assert!(codes.contains(&"identity-mode"), "{codes:?}");
        assert!(v.parsed.config.is_none());
    }

    #[test]
    fn self_enrollment_is_detected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let id_path = dir.path().join("identity");
        let id = identity_store::create(&id_path, false).expect("identity");
        let extra = format!(
            "\n[[allowed_peers]]\npeer_id = \"{}\"\nprefix = \"10.42.1.0/24\"\n",
            id.peer_id()
        );
        let path = write_config(dir.path(), &id_path, &extra);
        let v = validate(&path).expect("readable");
        assert!(
            v.parsed
                .diagnostics
                .iter()
                .any(|d| d.code == "self-in-allowlist")
        );
    }

    #[test]
    fn unreadable_inputs_are_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(matches!(
            validate(&dir.path().join("nope.toml")),
            Err(ConfigFileError::NotFound(_))
        ));
        assert!(matches!(
            validate(dir.path()),
            Err(ConfigFileError::NotAFile(_))
        ));
        let bin = dir.path().join("bin.toml");
        fs::write(&bin, [0xff, 0xfe, 0x00]).expect("write");
        assert!(matches!(validate(&bin), Err(ConfigFileError::NotText(_))));
    }

    #[test]
    fn write_new_refuses_to_overwrite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("etc/vine.toml");
        write_new(&path, "a", false).expect("first");
        assert!(matches!(
            write_new(&path, "b", false),
            Err(ConfigFileError::Exists(_))
        ));
        write_new(&path, "b", true).expect("force");
        assert_eq!(fs::read_to_string(&path).expect("read"), "b");
        assert_eq!(
            fs::metadata(&path).expect("meta").permissions().mode() & 0o777,
            0o644
        );
    }
}
