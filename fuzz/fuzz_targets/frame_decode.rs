//! Fuzzes the session plaintext decoder; decoded peer frames re-encode to themselves. The body is
//! `vine_fuzz::frame_decode` (crates/vine-fuzz), which the workspace tests also run.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vine_fuzz::frame_decode(data));
