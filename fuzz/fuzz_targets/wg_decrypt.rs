//! Fuzzes the WireGuard-protocol receive path with arbitrary datagrams
//! against a node that knows one peer: never panic.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use vine_core::Identity;
use vine_core::wg::Wg;

fuzz_target!(|data: &[u8]| {
    let local = Identity::from_seed([1; 32]);
    let peer = Identity::from_seed([2; 32]);
    let mut wg = Wg::new(local.x25519_secret().clone(), [3; 32]);
    wg.add_peer(peer.peer_id());
    let now = Instant::now();
    let mut out = Vec::new();
    let _ = wg.decrypt(now, Duration::from_secs(1_800_000_000), data, &mut out);
    let _ = wg.handle_timeout(now + Duration::from_secs(1));
});
