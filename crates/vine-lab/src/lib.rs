//! # vine-lab
//!
//! The network-namespace lab: vine's machines and networks on one real
//! Linux host. [`netns`] owns the hosts (named network namespaces joined by
//! veth pairs), the processes started inside them and the cleanup of all of
//! it (on drop, or from another thread through a [`netns::Janitor`]);
//! [`natlab`] builds on it an "internet", public hosts and NATed LANs
//! behind nftables routers, and the faults (cuts, loss) used to show and
//! test path fallback; [`flood`] is an attacker (forged handshake
//! initiations with a valid mac1, junk datagrams) for the flood test and
//! benchmark. `vine demo` builds its showcase with it, and the
//! end-to-end tests of `vine` (`crates/vine/tests/netns_*.rs`) build theirs.
//!
//! ## IO and time contract
//!
//! Everything here does real IO as root: it runs `ip` (iproute2) and `nft`
//! (nftables), enters namespaces with `setns`, spawns and kills processes
//! by PID, and waits on the wall clock ([`netns::wait_for`]). It touches
//! nothing in the host's own namespace except veth ends that it moves at
//! once, and uses only the documentation address ranges. The `try_*`
//! methods return errors for callers that must not panic (`vine demo`); the
//! plain ones panic, which is what tests want.

pub mod flood;
pub mod natlab;
pub mod netns;
