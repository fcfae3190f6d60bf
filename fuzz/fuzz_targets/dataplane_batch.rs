//! Fuzzes the data plane's inbound batch (GRO receive) with live session keys. The body is
//! `vine_fuzz::dataplane_batch` (crates/vine-fuzz), which the workspace tests also run.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vine_fuzz::dataplane_batch(data));
