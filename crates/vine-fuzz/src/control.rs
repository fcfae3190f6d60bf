//! `control_json`: the control socket's request decoder, and the answers
//! the daemon builds for what it decodes.
//!
//! The input is one request line (without its newline), as the server
//! reads it. [`decode_request`] must never panic; a request it accepts
//! must survive a round trip (encoded as a line by the client, decoded to
//! the same body), and is then answered from a node holding real sessions
//! (the [`Session`] fixture) exactly as the event loop answers it: the
//! answer must encode as one line that decodes back as a `Response`.
//! Besides, the input is decoded as a response line (the CLI's side) and a
//! response it yields must round-trip too.

use vine_daemon::api::{Decoded, Request, Response, decode_request, encode_line};
use vine_daemon::runtime::fuzzing::answer;

use crate::session::Session;

/// Runs one input (see the module docs).
pub fn control_json(data: &[u8]) {
    match decode_request(data) {
        Decoded::Reject(e) => {
            assert!(!e.message.is_empty(), "a rejection must say why");
            let line = encode_line(&Response {
                version: vine_daemon::api::PROTOCOL_VERSION,
                body: Err(e),
            });
            assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
        }
        Decoded::Request(body) => {
            let line = encode_line(&Request::new(body.clone()));
            assert_eq!(line.last(), Some(&b'\n'));
            assert_eq!(
                decode_request(&line[..line.len() - 1]),
                Decoded::Request(body.clone()),
                "a request does not survive encoding"
            );
            let s = Session::new(false);
            if let Some(response) = answer(&s.node, s.now, &body) {
                let line = encode_line(&response);
                assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1, "one line");
                let back: Response = serde_json::from_slice(&line).expect("answers decode");
                assert_eq!(back.version, response.version);
            }
        }
    }
    if let Ok(response) = serde_json::from_slice::<Response>(data) {
        let line = encode_line(&response);
        let back: Response = serde_json::from_slice(&line).expect("responses re-decode");
        assert_eq!(back.version, response.version);
    }
}
