//! Fuzzes the netlink client's reply parser and link/route readers. The body is
//! `vine_fuzz::netlink_reply` (crates/vine-fuzz), which the workspace tests also run.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vine_fuzz::netlink_reply(data));
