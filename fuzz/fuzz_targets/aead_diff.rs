//! Fuzzes the AVX-512 ChaCha20-Poly1305 against ring, alone and in batches. The body is
//! `vine_fuzz::aead_diff` (crates/vine-fuzz), which the workspace tests also run.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vine_fuzz::aead_diff(data));
