//! Fuzzes a node holding real sessions: sealed frames, raw datagrams, relay frames, handshakes, TUN packets and timers. The body is
//! `vine_fuzz::node_session` (crates/vine-fuzz), which the workspace tests also run.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vine_fuzz::node_session(data));
