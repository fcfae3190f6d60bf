//! Fuzzes the identity file parser and the `FromStr` impls of `PeerId`, `Fingerprint` and `Ipv4Prefix`. The body is
//! `vine_fuzz::identity_parse` (crates/vine-fuzz), which the workspace tests also run.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vine_fuzz::identity_parse(data));
