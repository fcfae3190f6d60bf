//! Fuzzes `vine_core::config::parse` and the `Parsed` API (raw and fields modes). The body is
//! `vine_fuzz::config_parse` (crates/vine-fuzz), which the workspace tests also run.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vine_fuzz::config_parse(data));
