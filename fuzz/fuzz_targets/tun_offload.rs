//! Fuzzes TUN offload `split` and the GRO `Coalescer`. The body is
//! `vine_fuzz::tun_offload` (crates/vine-fuzz), which the workspace tests also run.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vine_fuzz::tun_offload(data));
