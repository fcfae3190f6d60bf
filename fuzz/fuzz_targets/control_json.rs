//! Fuzzes the control socket's request decoder and the answers built from a live node. The body is
//! `vine_fuzz::control_json` (crates/vine-fuzz), which the workspace tests also run.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vine_fuzz::control_json(data));
