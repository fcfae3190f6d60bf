//! The api: the control socket's server, one task per client, one JSON
//! line per request (see [`crate::api`]), each handed to the event
//! loop as a [`Command`].

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::command::{Command, request_via};
use crate::api::{Decoded, ErrorCode, MAX_REQUEST_LINE, Response, decode_request, encode_line};
use crate::error::DaemonError;
use crate::files;

/// A client silent for this long is disconnected.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Binds the control socket at `path` with mode 0600, never exposing a
/// wider mode and never removing a live socket:
///
/// * something at `path` that accepts a connection is a live daemon's
///   socket: [`DaemonError::ControlSocketInUse`], left alone;
/// * otherwise the socket is bound in a fresh private directory (mode
///   0700) next to `path`, set to 0600 there and renamed over `path`
///   (replacing a stale socket, or a symlink without following it).
pub(crate) fn bind(path: &Path) -> Result<UnixListener, DaemonError> {
    let err = |source| DaemonError::ControlSocket {
        path: path.to_owned(),
        source,
    };
    if fs::symlink_metadata(path).is_ok() && std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(DaemonError::ControlSocketInUse {
            path: path.to_owned(),
        });
    }
    let staging = private_dir(path).map_err(err)?;
    let tmp = staging.join("s");
    let bound = (|| {
        let listener = std::os::unix::net::UnixListener::bind(&tmp)?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600))?;
        fs::rename(&tmp, path)?;
        listener.set_nonblocking(true)?;
        Ok(listener)
    })();
    let _ = files::remove_if_present(&tmp);
    let _ = fs::remove_dir(&staging);
    UnixListener::from_std(bound.map_err(err)?).map_err(err)
}

/// Creates `.<name>.bind-<pid>-<random>` (mode 0700) beside `path`.
fn private_dir(path: &Path) -> io::Result<PathBuf> {
    let parent = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    loop {
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).map_err(|e| io::Error::other(e.to_string()))?;
        let dir = parent.join(format!(
            ".{name}.bind-{}-{:016x}",
            std::process::id(),
            u64::from_le_bytes(random)
        ));
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
}

/// Accepts clients until aborted.
pub(crate) async fn serve(listener: UnixListener, commands: mpsc::Sender<Command>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(client(stream, commands.clone()));
            }
            Err(e) => {
                warn!("control socket accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn client(stream: UnixStream, commands: mpsc::Sender<Command>) {
    if let Err(e) = serve_client(stream, commands).await {
        debug!("control client: {e}");
    }
}

async fn serve_client(stream: UnixStream, commands: mpsc::Sender<Command>) -> io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
    loop {
        line.clear();
        let limit = MAX_REQUEST_LINE as u64 + 1;
        let mut limited = (&mut reader).take(limit);
        let read = limited.read_until(b'\n', &mut line);
        let n = match tokio::time::timeout(IDLE_TIMEOUT, read).await {
            Ok(r) => r?,
            Err(_) => return Ok(()),
        };
        if n == 0 {
            return Ok(());
        }
        let complete = line.last() == Some(&b'\n');
        if !complete && line.len() > MAX_REQUEST_LINE {
            let r = Response::error(
                ErrorCode::LineTooLong,
                format!(
                    "request line is longer than {MAX_REQUEST_LINE} bytes; closing the connection"
                ),
            );
            write.write_all(&encode_line(&r)).await?;
            return Ok(());
        }
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        let response = match decode_request(&line) {
            Decoded::Reject(e) => Response {
                version: crate::api::PROTOCOL_VERSION,
                body: Err(e),
            },
            Decoded::Request(body) => request_via(&commands, body).await,
        };
        write.write_all(&encode_line(&response)).await?;
        write.flush().await?;
        if !complete {
            // EOF without a newline: that was the last request.
            return Ok(());
        }
    }
}
