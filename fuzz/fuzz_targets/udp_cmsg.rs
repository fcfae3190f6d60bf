//! Fuzzes the UDP receive header reading (`sockaddr_in`, `UDP_GRO` control messages). The body is
//! `vine_fuzz::udp_cmsg` (crates/vine-fuzz), which the workspace tests also run.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vine_fuzz::udp_cmsg(data));
