//! Private network namespaces for tests and harnesses.
//!
//! [`in_netns`] runs a closure on a fresh thread that has unshared its
//! network namespace (`unshare(CLONE_NEWNET)` acts on the calling thread
//! only), so whatever the closure does to interfaces, addresses and routes
//! never touches the host's. Threads spawned inside the closure inherit the
//! namespace. The namespace disappears when its last thread exits and its
//! last socket or device fd is closed.
//!
//! Note: `/sys/class/net` shows the namespace that mounted sysfs, not the
//! thread's, so code that must work inside [`in_netns`] asks netlink.

use std::panic;
use std::thread;

use nix::sched::{CloneFlags, unshare};

use crate::netlink::Netlink;

/// Runs `f` in a new, private network namespace whose `lo` is up, on a
/// dedicated thread, and returns its result. A panic in `f` is resumed in
/// the caller.
///
/// # Panics
///
/// When the namespace cannot be created (the process is not root / lacks
/// `CAP_SYS_ADMIN`) or `lo` cannot be brought up: tests that need a
/// namespace must fail loudly rather than pass without running.
pub fn in_netns<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    thread::scope(|scope| {
        let handle = scope.spawn(move || {
            if let Err(e) = unshare(CloneFlags::CLONE_NEWNET) {
                panic!(
                    "in_netns: unshare(CLONE_NEWNET) failed: {e}; tests that touch kernel network state must run as root (CAP_SYS_ADMIN and CAP_NET_ADMIN)"
                );
            }
            if let Err(e) = bring_lo_up() {
                panic!("in_netns: cannot bring lo up in the new namespace: {e}");
            }
            f()
        });
        match handle.join() {
            Ok(value) => value,
            Err(payload) => panic::resume_unwind(payload),
        }
    })
}

fn bring_lo_up() -> std::io::Result<()> {
    let mut nl = Netlink::new()?;
    let lo = nl
        .link("lo")?
        .ok_or_else(|| std::io::Error::from_raw_os_error(libc::ENODEV))?;
    nl.set_link(lo.index, None, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_is_private_and_lo_is_up() {
        let host_links = Netlink::new()
            .and_then(|mut nl| nl.links())
            .expect("netlink works in the host namespace")
            .len();
        let (links, lo_up) = in_netns(|| {
            let mut nl = Netlink::new().expect("netlink socket in the namespace");
            let links = nl.links().expect("link dump");
            let lo_up = links.iter().any(|l| l.name == "lo" && l.up);
            (links.len(), lo_up)
        });
        assert_eq!(
            links, 1,
            "a new namespace has only lo (host has {host_links})"
        );
        assert!(lo_up, "lo is up");
    }

    #[test]
    #[should_panic(expected = "boom")]
    fn panics_propagate() {
        in_netns(|| panic!("boom"));
    }
}
