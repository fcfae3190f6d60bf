//! The api: the control socket's server, one task per client, one JSON
//! line per request (see [`crate::api`]), each handed to the event
//! loop as a [`Command`].

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
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

/// Binds the socket at `path` (replacing a stale one) with mode 0600.
pub(crate) fn bind(path: &Path) -> Result<UnixListener, DaemonError> {
    let err = |source| DaemonError::ControlSocket {
        path: path.to_owned(),
        source,
    };
    files::remove_if_present(path).map_err(err)?;
    let listener = UnixListener::bind(path).map_err(err)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(err)?;
    Ok(listener)
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
