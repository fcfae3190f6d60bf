//! A blocking client for the api socket (used by the CLI and
//! [`crate::lifecycle`]).

use std::io::{self, BufRead as _, BufReader, Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::api::{
    ErrorBody, MAX_LINE, PROTOCOL_VERSION, Request, RequestBody, Response, ResponseBody,
    encode_line,
};

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens on the socket: the daemon is not running.
    #[error("vine is not running (no control socket at {})", .0.display())]
    NotRunning(PathBuf),
    /// The socket exists but cannot be used (permissions, …).
    #[error("cannot talk to the daemon at {path}: {source}{hint}", path = path.display(), hint = if source.kind() == io::ErrorKind::PermissionDenied { " (the control socket is mode 0600: run as root)" } else { "" })]
    Io {
        /// Socket path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// No answer within the timeout.
    #[error("the daemon did not answer within {0:?}; it may be busy or hung (check its log)")]
    Timeout(Duration),
    /// The answer is not a protocol response.
    #[error("the daemon sent an answer this vine does not understand: {0}")]
    BadResponse(String),
    /// The daemon speaks another protocol version.
    #[error(
        "the daemon speaks control protocol version {0}, this vine speaks {PROTOCOL_VERSION}; use the vine binary that matches the daemon"
    )]
    VersionMismatch(u32),
    /// The daemon answered with an error.
    #[error("the daemon refused the request: {0}")]
    Remote(ErrorBody),
}

/// Sends one request and waits at most `timeout` for its answer.
pub fn request(
    socket: &Path,
    body: RequestBody,
    timeout: Duration,
) -> Result<ResponseBody, ClientError> {
    let io_err = |source: io::Error| {
        if source.kind() == io::ErrorKind::WouldBlock || source.kind() == io::ErrorKind::TimedOut {
            ClientError::Timeout(timeout)
        } else {
            ClientError::Io {
                path: socket.to_owned(),
                source,
            }
        }
    };
    let stream = match UnixStream::connect(socket) {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Err(ClientError::NotRunning(socket.to_owned()));
        }
        Err(e) => return Err(io_err(e)),
    };
    stream.set_read_timeout(Some(timeout)).map_err(io_err)?;
    stream.set_write_timeout(Some(timeout)).map_err(io_err)?;
    (&stream)
        .write_all(&encode_line(&Request::new(body)))
        .map_err(io_err)?;
    let mut line = Vec::new();
    BufReader::new(&stream)
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut line)
        .map_err(io_err)?;
    if line.is_empty() {
        return Err(ClientError::BadResponse(
            "the connection closed without an answer".to_owned(),
        ));
    }
    let response: Response =
        serde_json::from_slice(&line).map_err(|e| ClientError::BadResponse(e.to_string()))?;
    if response.version != PROTOCOL_VERSION {
        return Err(ClientError::VersionMismatch(response.version));
    }
    response.body.map_err(ClientError::Remote)
}
