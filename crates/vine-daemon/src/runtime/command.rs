//! What the api server and the signal handlers send the event loop
//! ([`Command`]), and how a request waits for its answer ([`request_via`]).

use tokio::sync::{mpsc, oneshot};

use crate::api::{ErrorCode, RequestBody, Response};

/// A command for the event loop.
pub(crate) enum Command {
    /// A control request and where to send its answer.
    Request(RequestBody, oneshot::Sender<Response>),
    /// Write the snapshot file (SIGUSR1).
    DumpSnapshot,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Request(body, _) => f.debug_tuple("Request").field(body).finish(),
            Self::DumpSnapshot => f.write_str("DumpSnapshot"),
        }
    }
}

/// Sends `body` to the event loop and waits for its answer (a
/// `ShuttingDown` error once the loop is gone).
pub(crate) async fn request_via(commands: &mpsc::Sender<Command>, body: RequestBody) -> Response {
    let (tx, rx) = oneshot::channel();
    if commands.send(Command::Request(body, tx)).await.is_err() {
        return stopping();
    }
    rx.await.unwrap_or_else(|_| stopping())
}

fn stopping() -> Response {
    Response::error(
        ErrorCode::ShuttingDown,
        "the daemon is shutting down and no longer answers requests",
    )
}
