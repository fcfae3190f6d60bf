//! Parsers of text a person or a file hands vine: the identity file, the
//! `FromStr` impls of `PeerId`, `Fingerprint` and `Ipv4Prefix`, and the
//! session plaintext decoder.

use vine_core::frame::{self, Plaintext};
use vine_core::identity::IdentityFileError;
use vine_core::{Fingerprint, Identity, Ipv4Prefix, PeerId};

/// `identity_parse`: the identity file parser and the `FromStr` impls of
/// `PeerId`, `Fingerprint` and `Ipv4Prefix`.
///
/// Each parser gets the whole input and, so that the fuzzer can reach their
/// interesting paths from an identity-file seed, every line's value (the
/// text after the first `=`). Whatever parses must round-trip through
/// `Display`.
pub fn identity_parse(data: &[u8]) {
    let text = String::from_utf8_lossy(data);

    match Identity::from_file_text(&text) {
        Ok(identity) => {
            // A file that loads must be one this vine could have written.
            let again = identity.to_file_text();
            let back = Identity::from_file_text(&again).expect("own output parses");
            assert_eq!(back.peer_id(), identity.peer_id());
            assert_eq!(*back.seed_hex(), *identity.seed_hex());
            let _ = format!("{identity:?}");
        }
        Err(e) => {
            let _ = e.to_string();
            let _ = e.hint();
            if let IdentityFileError::Malformed { line, .. } = e {
                assert!(line >= 1);
            }
        }
    }

    scalar_parsers(&text);
    for line in text.lines() {
        let value = line.split_once('=').map_or(line, |(_, v)| v).trim();
        scalar_parsers(value);
    }
}

/// `frame_decode`: the session plaintext decoder (data / peer frames /
/// relay frames) never panics, and every decoded peer frame re-encodes to
/// bytes that decode to the same frame.
pub fn frame_decode(data: &[u8]) {
    if let Ok(Plaintext::Frame(msg)) = frame::decode(data) {
        let bytes = msg.to_bytes();
        assert_eq!(frame::decode(&bytes), Ok(Plaintext::Frame(msg)));
    }
}

fn scalar_parsers(s: &str) {
    match s.parse::<PeerId>() {
        Ok(id) => {
            let shown = id.to_string();
            assert_eq!(shown.parse::<PeerId>(), Ok(id));
            assert!(shown.eq_ignore_ascii_case(s), "{shown} vs {s:?}");
            let _ = id.short();
            let _ = id.fingerprint();
            let _ = id.public_key_base64();
        }
        Err(e) => {
            let _ = e.to_string();
            let _ = e.hint();
        }
    }
    match s.parse::<Fingerprint>() {
        Ok(fp) => {
            let shown = fp.to_string();
            assert_eq!(shown.parse::<Fingerprint>(), Ok(fp));
            assert!(shown.eq_ignore_ascii_case(s), "{shown} vs {s:?}");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    match s.parse::<Ipv4Prefix>() {
        Ok(p) => {
            assert_eq!(p.to_string().parse::<Ipv4Prefix>(), Ok(p));
            assert!(p.len() <= 32);
            assert!(p.contains(p.network()) && p.contains(p.last()));
            assert!(p.overlaps(&p));
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}
