//! Fuzzes the WireGuard-protocol receive path with valid mac1: real and mutated handshakes, transport messages, replays, timers. The body is
//! `vine_fuzz::wg_decrypt` (crates/vine-fuzz), which the workspace tests also run.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vine_fuzz::wg_decrypt(data));
