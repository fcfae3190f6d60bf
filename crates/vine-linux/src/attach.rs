//! Attaching a workload's network namespace to this node: a veth pair whose
//! host end stays in the daemon's namespace and whose other end becomes the
//! workload's `eth0`, routed point to point.
//!
//! # The shape
//!
//! For a workload with address `W` on a node whose overlay address is `N`:
//!
//! * inside the workload: `eth0` with `W/32`, a link route to `N/32` and a
//!   default route via `N` (so the workload's resolver and gateway is the
//!   node), `lo` up;
//! * on the host: the peer end [`host_ifname`] (`vw` + 12 hex digits of the
//!   name's hash, deterministic, 14 bytes), up, holding `N/32` (so ARP for
//!   the gateway is answered on that link whatever the host's `arp_ignore`),
//!   a link route `W/32` into it, and strict reverse-path filtering on it so
//!   the workload cannot send with another workload's address.
//!
//! Routed rather than bridged: each workload gets its own link and its own
//! /32, so workloads on one node reach each other only through the host's
//! routing (no shared L2 segment to ARP-spoof on), and a detach is one link
//! deletion that takes its addresses and routes with it. Traffic to other
//! nodes' prefixes follows the routes vine already has into its TUN.
//!
//! # Undo
//!
//! The host end is recorded in the [`Journal`] before it is created;
//! deleting it deletes the pair (the workload's end too), its addresses and
//! routes. A failure half-way deletes what was made and forgets the entry.
//! Sysctls that outlive a link (`ip_forward`) are the caller's, through
//! [`crate::undo::set_sysctl`].

#[cfg(test)]
mod tests;

use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::sched::{CloneFlags, setns};
use vine_core::lease::WorkloadName;
use vine_core::net::Ipv4Prefix;

use crate::netlink::Netlink;
use crate::undo::{Change, Journal};

/// The interface name a workload gets inside its namespace.
pub const WORKLOAD_IFNAME: &str = "eth0";

/// What to attach.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The workload.
    pub name: WorkloadName,
    /// Its address (from the node's leases).
    pub address: Ipv4Addr,
    /// The node's overlay address: the workload's gateway.
    pub node_address: Ipv4Addr,
    /// The namespace file: `/run/netns/NAME`, `/proc/PID/ns/net`, or any
    /// bind mount of one.
    pub netns: PathBuf,
    /// The MTU of both ends (the overlay's TUN MTU, so nothing fragments).
    pub mtu: u32,
}

/// What an attach made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    /// The host end of the veth pair.
    pub host_ifname: String,
}

/// Why an attach failed. Whatever it had made is gone again.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// The path cannot be opened.
    #[error(
        "cannot open {path}: {source}; pass a network namespace file such as /run/netns/NAME (`ip netns add NAME`) or /proc/PID/ns/net"
    )]
    OpenNetns {
        /// The path.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// The file is not a network namespace.
    #[error(
        "{0} is not a network namespace; pass /run/netns/NAME (`ip netns add NAME`), /proc/PID/ns/net, or a bind mount of one"
    )]
    NotNetns(String),
    /// The namespace is the daemon's own.
    #[error(
        "{0} is the daemon's own network namespace; a workload needs a namespace of its own (`ip netns add NAME`)"
    )]
    OwnNetns(String),
    /// The host interface name is taken.
    #[error(
        "an interface {0} already exists on the host; it is left from an earlier attach of this name: detach it (`vine detach`) or let `vine doctor` show leftovers"
    )]
    HostNameTaken(String),
    /// The namespace has an interface of the workload's name.
    #[error(
        "{netns} already has an interface called {WORKLOAD_IFNAME}; vine gives the workload its own {WORKLOAD_IFNAME}, so attach a namespace without one"
    )]
    NetnsHasEth0 {
        /// The namespace path.
        netns: String,
    },
    /// A netlink or sysctl step failed.
    #[error("attaching {name}: {step} failed: {source}")]
    Step {
        /// The workload.
        name: String,
        /// The step.
        step: &'static str,
        /// Why.
        source: io::Error,
    },
}

/// The host-side interface name of workload `name`: `vw` and the first 12
/// hex digits of its BLAKE3 hash (14 bytes, under the kernel's 15).
pub fn host_ifname(name: &WorkloadName) -> String {
    name_with("vw", name)
}

/// The name the workload's end has for the moment between its creation and
/// its move into the namespace.
fn peer_ifname(name: &WorkloadName) -> String {
    name_with("vp", name)
}

fn name_with(prefix: &str, name: &WorkloadName) -> String {
    let hash = blake3::hash(name.as_str().as_bytes());
    let hex: String = hash.as_bytes()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{prefix}{hex}")
}

/// Whether `ifname` looks like an interface [`attach`] makes.
pub fn is_workload_ifname(ifname: &str) -> bool {
    ifname.len() == 14
        && (ifname.starts_with("vw") || ifname.starts_with("vp"))
        && ifname[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// Opens `path` and checks it is a network namespace other than the
/// calling thread's.
pub fn open_netns(path: &Path) -> Result<File, AttachError> {
    let shown = path.display().to_string();
    let file = File::open(path).map_err(|source| AttachError::OpenNetns {
        path: shown.clone(),
        source,
    })?;
    // A namespace file lives on nsfs (`/proc/PID/ns/net` and its bind
    // mounts under /run/netns alike). Opened through /proc it reads back as
    // `TYPE:[INODE]`, which also tells a net namespace from the others; a
    // bind mount of another type is caught by `setns` (see `in_netns`).
    let nsfs = nix::sys::statfs::fstatfs(&file)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::NSFS_MAGIC);
    let target = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .map(|t| t.to_string_lossy().into_owned())
        .unwrap_or_default();
    let other_kind = target.ends_with(']') && target.contains(":[") && !target.starts_with("net:[");
    if !nsfs || other_kind {
        return Err(AttachError::NotNetns(shown));
    }
    let ours = File::open("/proc/thread-self/ns/net").and_then(|f| f.metadata());
    let theirs = file.metadata();
    if let (Ok(a), Ok(b)) = (ours, theirs) {
        use std::os::unix::fs::MetadataExt;
        if a.dev() == b.dev() && a.ino() == b.ino() {
            return Err(AttachError::OwnNetns(shown));
        }
    }
    Ok(file)
}

/// Attaches `plan`'s namespace (see the module docs), recording the host
/// end in `journal` first. On failure nothing stays behind.
pub fn attach(journal: &mut Journal, plan: &Plan) -> Result<Attached, AttachError> {
    let netns = open_netns(&plan.netns)?;
    let host = host_ifname(&plan.name);
    let peer = peer_ifname(&plan.name);
    let step = |step: &'static str| {
        let name = plan.name.to_string();
        move |source: io::Error| AttachError::Step { name, step, source }
    };
    let mut nl = Netlink::new().map_err(step("opening netlink"))?;
    if nl
        .link(&host)
        .map_err(step("looking up the host interface"))?
        .is_some()
    {
        return Err(AttachError::HostNameTaken(host));
    }
    let inside = in_netns(netns.as_fd(), |nl| nl.link(WORKLOAD_IFNAME));
    if let Err(e) = &inside
        && e.raw_os_error() == Some(libc::EINVAL)
    {
        // nsfs, but not a network namespace (setns refused the type).
        return Err(AttachError::NotNetns(plan.netns.display().to_string()));
    }
    if inside
        .and_then(|found| found)
        .map_err(step("looking inside the namespace"))?
        .is_some()
    {
        return Err(AttachError::NetnsHasEth0 {
            netns: plan.netns.display().to_string(),
        });
    }
    journal
        .record(Change::Link { name: host.clone() })
        .map_err(step("recording the change"))?;
    let made = build(&mut nl, netns.as_fd(), plan, &host, &peer);
    if let Err(e) = made {
        if let Ok(Some(link)) = nl.link(&host) {
            let _ = nl.delete_link(link.index);
        }
        if let Ok(Some(link)) = nl.link(&peer) {
            let _ = nl.delete_link(link.index);
        }
        let _ = journal.forget(|c| *c == Change::Link { name: host.clone() });
        return Err(AttachError::Step {
            name: plan.name.to_string(),
            step: e.0,
            source: e.1,
        });
    }
    Ok(Attached { host_ifname: host })
}

struct Failed(&'static str, io::Error);

fn at(step: &'static str) -> impl FnOnce(io::Error) -> Failed {
    move |e| Failed(step, e)
}

fn build(
    nl: &mut Netlink,
    netns: BorrowedFd<'_>,
    plan: &Plan,
    host: &str,
    peer: &str,
) -> Result<(), Failed> {
    nl.add_veth(host, peer)
        .map_err(at("creating the veth pair"))?;
    let peer_link = nl
        .link(peer)
        .map_err(at("finding the workload end"))?
        .ok_or_else(|| Failed("finding the workload end", io::ErrorKind::NotFound.into()))?;
    nl.move_to_netns(peer_link.index, netns)
        .map_err(at("moving the workload end into the namespace"))?;
    in_netns(netns, |nl| -> Result<(), Failed> {
        let link = nl
            .link(peer)
            .map_err(at("finding the moved end"))?
            .ok_or_else(|| Failed("finding the moved end", io::ErrorKind::NotFound.into()))?;
        nl.rename_link(link.index, WORKLOAD_IFNAME)
            .map_err(at("naming it eth0"))?;
        nl.set_link(link.index, Some(plan.mtu), true)
            .map_err(at("bringing eth0 up"))?;
        if let Ok(Some(lo)) = nl.link("lo") {
            nl.set_link(lo.index, None, true)
                .map_err(at("bringing lo up"))?;
        }
        nl.add_address(link.index, plan.address, 32)
            .map_err(at("adding the workload address"))?;
        nl.change_route(host_prefix(plan.node_address), link.index, true)
            .map_err(at("adding the route to the node"))?;
        nl.add_route_via(
            Ipv4Prefix::containing_clamped(Ipv4Addr::UNSPECIFIED, 0),
            plan.node_address,
            link.index,
        )
        .map_err(at("adding the default route"))?;
        Ok(())
    })
    .map_err(at("entering the namespace"))??;
    let host_link = nl
        .link(host)
        .map_err(at("finding the host end"))?
        .ok_or_else(|| Failed("finding the host end", io::ErrorKind::NotFound.into()))?;
    let rp = format!("/proc/sys/net/ipv4/conf/{host}/rp_filter");
    std::fs::write(&rp, "1").map_err(at("setting rp_filter on the host end"))?;
    nl.set_link(host_link.index, Some(plan.mtu), true)
        .map_err(at("bringing the host end up"))?;
    nl.add_address(host_link.index, plan.node_address, 32)
        .map_err(at("adding the node address to the host end"))?;
    nl.change_route(host_prefix(plan.address), host_link.index, true)
        .map_err(at("adding the route to the workload"))?;
    Ok(())
}

/// Detaches the workload whose host end is `host_ifname`: deletes the pair
/// (the workload's `eth0` goes with it) and forgets the journal entry.
/// Returns whether there was a link to delete.
pub fn detach(journal: &mut Journal, host_ifname: &str) -> io::Result<bool> {
    let mut nl = Netlink::new()?;
    let existed = match nl.link(host_ifname)? {
        Some(link) => {
            nl.delete_link(link.index)?;
            true
        }
        None => false,
    };
    journal.forget(|c| {
        *c == Change::Link {
            name: host_ifname.to_owned(),
        }
    })?;
    Ok(existed)
}

/// Names of the interfaces in this namespace that [`attach`] makes.
pub fn workload_links() -> io::Result<Vec<String>> {
    Ok(Netlink::new()?
        .links()?
        .into_iter()
        .map(|l| l.name)
        .filter(|n| is_workload_ifname(n))
        .collect())
}

fn host_prefix(address: Ipv4Addr) -> Ipv4Prefix {
    Ipv4Prefix::containing_clamped(address, 32)
}

/// Runs `f` with a netlink socket inside `netns`, on a thread of its own
/// (`setns` changes only the calling thread, and only that thread).
fn in_netns<T: Send>(
    netns: BorrowedFd<'_>,
    f: impl FnOnce(&mut Netlink) -> T + Send,
) -> io::Result<T> {
    std::thread::scope(|scope| {
        scope
            .spawn(move || {
                setns(netns, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
                let mut nl = Netlink::new()?;
                Ok(f(&mut nl))
            })
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the namespace thread panicked")))
    })
}
