//! Fuzzes the session plaintext decoder (data / peer frames / relay frames):
//! never panic, and every decoded peer frame re-encodes to bytes that
//! decode to the same frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vine_core::frame::{self, Plaintext};

fuzz_target!(|data: &[u8]| {
    if let Ok(Plaintext::Frame(msg)) = frame::decode(data) {
        let bytes = msg.to_bytes();
        assert_eq!(frame::decode(&bytes), Ok(Plaintext::Frame(msg)));
    }
});
