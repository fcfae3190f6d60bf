//! Fuzzes the session plaintext decoder (data / control / relay frames):
//! never panic, and every decoded control message re-encodes to bytes that
//! decode to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vine_core::control::{self, Frame};

fuzz_target!(|data: &[u8]| {
    if let Ok(Frame::Control(msg)) = control::decode(data) {
        let bytes = msg.to_bytes();
        assert_eq!(control::decode(&bytes), Ok(Frame::Control(msg)));
    }
});
