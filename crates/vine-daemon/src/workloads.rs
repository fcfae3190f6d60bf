//! Workloads attached to this node: their addresses (vine-core's
//! [`Leases`] over the node's own prefix), the host changes made for them
//! (vine-linux's [`Journal`]) and the attach and detach steps (vine-linux's
//! [`attach`](vine_linux::attach)).
//!
//! # State on disk
//!
//! Both files sit next to the node's identity (its state directory, not
//! the runtime directory: leases survive a reboot):
//!
//! * `leases.toml` — the leases, rewritten atomically (mode 0600) after
//!   every attach and detach;
//! * `host-changes.jsonl` — the undo journal: every interface and sysctl
//!   vine changes, recorded before the change.
//!
//! Neither file is created until the first attach, so a node without
//! workloads writes nothing here.
//!
//! # Start, stop, crash
//!
//! [`Workloads::start`] first reverts what the journal holds — a daemon
//! killed with workloads attached left their veth pairs and `ip_forward` —
//! then reads the leases, releases those whose namespace is gone, and
//! attaches the rest again with the same addresses. [`Workloads::stop`]
//! deletes every workload's links and reverts the journal (so the host is
//! as it was found) but keeps the leases: the next start attaches the
//! workloads that still live.
//!
//! `ip_forward` is set (journalled) when the first workload is attached and
//! put back when the last one is detached.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::net::Ipv4Addr;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use tracing::{info, warn};
use vine_core::lease::{LeaseError, Leases, WorkloadName};
use vine_core::net::Ipv4Prefix;
use vine_linux::attach::{self, AttachError, Plan};
use vine_linux::undo::{self, Change, Journal, Undone};

use crate::api::{ErrorBody, ErrorCode, WorkloadInfo};
use crate::files;

/// The sysctl that lets the host forward between a workload's link and the
/// TUN device.
pub const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

/// The lease file's name in the state directory.
pub const LEASE_FILE: &str = "leases.toml";

/// The undo journal's name in the state directory.
pub const JOURNAL_FILE: &str = "host-changes.jsonl";

/// The node's workloads.
#[derive(Debug)]
pub(crate) struct Workloads {
    dir: PathBuf,
    node_address: Ipv4Addr,
    mtu: u32,
    leases: Leases,
    journal: Option<Journal>,
    /// Host-side interface of each attached workload.
    links: BTreeMap<WorkloadName, String>,
    /// The resolver files made for each workload in a named netns
    /// (`/etc/netns/NAME/resolv.conf` and the directories it needed).
    resolvers: BTreeMap<WorkloadName, Vec<Change>>,
}

impl Workloads {
    /// Reverts what a dead daemon left, reads the leases and attaches again
    /// every workload whose namespace still exists (see the module docs).
    /// Fails only when the state files cannot be read; a workload that
    /// cannot be attached again is released with a warning.
    pub(crate) fn start(
        state_dir: &Path,
        prefix: Ipv4Prefix,
        node_address: Ipv4Addr,
        mtu: u32,
    ) -> Result<Self, String> {
        let mut this = Self {
            dir: state_dir.to_owned(),
            node_address,
            mtu,
            leases: Leases::new(prefix, node_address),
            journal: None,
            links: BTreeMap::new(),
            resolvers: BTreeMap::new(),
        };
        let journal_path = this.dir.join(JOURNAL_FILE);
        if fs::symlink_metadata(&journal_path).is_ok() {
            let mut journal = Journal::open(&journal_path).map_err(|e| {
                format!(
                    "cannot open the host-change journal {}: {e}; it lists what an earlier vine changed on this host, so fix its permissions rather than removing it",
                    journal_path.display()
                )
            })?;
            if !journal.changes().is_empty() {
                info!(
                    changes = journal.changes().len(),
                    "reverting what the previous daemon left on the host"
                );
                log_reverts(journal.revert(undo::undo));
            }
            this.journal = Some(journal);
        }
        let lease_path = this.dir.join(LEASE_FILE);
        match fs::read_to_string(&lease_path) {
            Ok(text) => {
                let (leases, stale) = Leases::from_journal(prefix, node_address, &text)
                    .map_err(|e| format!("{}: {e}", lease_path.display()))?;
                for s in stale {
                    warn!(name = %s.name, address = %s.address, reason = %s.reason, "dropped a lease from {}", lease_path.display());
                }
                this.leases = leases;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot read {}: {e}", lease_path.display())),
        }
        let gone = this
            .leases
            .retain(|l| attach::open_netns(Path::new(&l.netns)).is_ok());
        for l in &gone {
            info!(workload = %l.name, address = %l.address, netns = %l.netns, "released the lease of a workload whose namespace is gone");
        }
        let kept: Vec<_> = this.leases.iter().cloned().collect();
        for lease in kept {
            if let Err(e) = this.link(&lease.name, lease.address, &lease.netns) {
                warn!(workload = %lease.name, "cannot attach again, lease released: {e}");
                this.leases.release(&lease.name);
            } else {
                info!(workload = %lease.name, address = %lease.address, "attached again");
            }
        }
        if fs::symlink_metadata(&lease_path).is_ok() {
            // The reconciled set: released and re-attached leases.
            this.save().map_err(|e| e.message)?;
        }
        if this.links.is_empty() {
            this.release_sysctls();
        }
        Ok(this)
    }

    /// The names and addresses of the linked workloads (what the node
    /// announces).
    pub(crate) fn names(&self) -> BTreeMap<WorkloadName, Ipv4Addr> {
        self.leases
            .iter()
            .filter(|l| self.links.contains_key(&l.name))
            .map(|l| (l.name.clone(), l.address))
            .collect()
    }

    /// The attached workloads, by name.
    pub(crate) fn list(&self) -> Vec<WorkloadInfo> {
        self.leases
            .iter()
            .map(|l| WorkloadInfo {
                name: l.name.to_string(),
                address: l.address,
                netns: l.netns.clone(),
                since: l.since,
                host_ifname: self.links.get(&l.name).cloned(),
            })
            .collect()
    }

    /// Attaches the namespace at `netns` as workload `name`, with the next
    /// free address. Nothing changes when it fails.
    pub(crate) fn attach(
        &mut self,
        name: &str,
        netns: &str,
        now_unix: u64,
    ) -> Result<WorkloadInfo, ErrorBody> {
        let name: WorkloadName = name
            .parse()
            .map_err(|e| refused(format!("workload name {name:?}: {e}")))?;
        // Check the path before taking an address, for the clearer error.
        attach::open_netns(Path::new(netns)).map_err(|e| refused(e.to_string()))?;
        let address = self
            .leases
            .allocate(name.clone(), netns, now_unix)
            .map_err(|e| match e {
                LeaseError::NameTaken { .. } => ErrorBody {
                    code: ErrorCode::WorkloadExists,
                    message: e.to_string(),
                },
                _ => refused(e.to_string()),
            })?
            .address;
        if let Err(e) = self.link(&name, address, netns) {
            self.leases.release(&name);
            if self.links.is_empty() {
                self.release_sysctls();
            }
            return Err(e);
        }
        if let Err(e) = self.save() {
            self.unlink(&name);
            self.leases.release(&name);
            return Err(e);
        }
        info!(workload = %name, %address, netns, "attached");
        Ok(self.info(&name))
    }

    /// Detaches workload `name`: deletes its links and gives its address
    /// back.
    pub(crate) fn detach(&mut self, name: &str) -> Result<WorkloadInfo, ErrorBody> {
        let unknown = || ErrorBody {
            code: ErrorCode::UnknownWorkload,
            message: format!(
                "no workload is attached as {name:?}; `vine workloads` lists the attached ones"
            ),
        };
        let name: WorkloadName = name.parse().map_err(|_| unknown())?;
        if self.leases.get(&name).is_none() {
            return Err(unknown());
        }
        let info = self.info(&name);
        self.unlink(&name);
        self.leases.release(&name);
        self.save()?;
        if self.links.is_empty() {
            self.release_sysctls();
        }
        info!(workload = %name, "detached");
        Ok(info)
    }

    /// Clean stop: deletes every workload's links and reverts every host
    /// change; the leases stay for the next start.
    pub(crate) fn stop(&mut self) {
        let names: Vec<WorkloadName> = self.links.keys().cloned().collect();
        for name in names {
            self.unlink(&name);
        }
        if let Some(journal) = self.journal.as_mut()
            && !journal.changes().is_empty()
        {
            log_reverts(journal.revert(undo::undo));
        }
    }

    fn info(&self, name: &WorkloadName) -> WorkloadInfo {
        self.list()
            .into_iter()
            .find(|w| w.name == name.as_str())
            .unwrap_or_else(|| WorkloadInfo {
                name: name.to_string(),
                address: Ipv4Addr::UNSPECIFIED,
                netns: String::new(),
                since: 0,
                host_ifname: None,
            })
    }

    /// Makes the links of one workload (and turns forwarding on).
    fn link(
        &mut self,
        name: &WorkloadName,
        address: Ipv4Addr,
        netns: &str,
    ) -> Result<(), ErrorBody> {
        let plan = Plan {
            name: name.clone(),
            address,
            node_address: self.node_address,
            netns: PathBuf::from(netns),
            mtu: self.mtu,
        };
        let journal = self.journal()?;
        undo::set_sysctl(journal, IP_FORWARD, "1").map_err(|e| ErrorBody {
            code: ErrorCode::Internal,
            message: format!("cannot turn on IPv4 forwarding ({IP_FORWARD}): {e}"),
        })?;
        let attached = attach::attach(journal, &plan).map_err(|e| match e {
            AttachError::Step { .. } => ErrorBody {
                code: ErrorCode::Internal,
                message: e.to_string(),
            },
            _ => refused(e.to_string()),
        })?;
        self.links.insert(name.clone(), attached.host_ifname);
        match self.resolver(netns) {
            Ok(made) => {
                self.resolvers.insert(name.clone(), made);
            }
            Err(e) => warn!(workload = %name, "no resolver file for the workload: {e}"),
        }
        Ok(())
    }

    /// For a named netns (`/run/netns/NAME`, what `ip netns exec` uses):
    /// `/etc/netns/NAME/resolv.conf` naming this node as the resolver,
    /// journalled with the directories it needed. The host's own
    /// `/etc/resolv.conf` is never touched, and an existing file is left
    /// alone. Other netns paths get nothing (their owner sets DNS up).
    fn resolver(&mut self, netns: &str) -> io::Result<Vec<Change>> {
        let Some(name) = netns
            .strip_prefix("/run/netns/")
            .filter(|n| !n.contains('/') && !n.is_empty() && *n != "." && *n != "..")
        else {
            return Ok(Vec::new());
        };
        let base = Path::new("/etc/netns");
        let dir = base.join(name);
        let file = dir.join("resolv.conf");
        if fs::symlink_metadata(&file).is_ok() {
            return Ok(Vec::new());
        }
        let text = format!(
            "# written by vine for the workload in {netns}; removed on detach\nnameserver {}\n",
            self.node_address
        );
        let journal = self.journal().map_err(|e| io::Error::other(e.message))?;
        let mut made = Vec::new();
        for d in [base, dir.as_path()] {
            if fs::symlink_metadata(d).is_err() {
                let change = Change::Dir {
                    path: d.display().to_string(),
                };
                journal.record(change.clone())?;
                made.push(change);
                fs::DirBuilder::new().mode(0o755).create(d)?;
            }
        }
        let change = Change::File {
            path: file.display().to_string(),
        };
        journal.record(change.clone())?;
        made.push(change);
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&file)
            .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))?;
        Ok(made)
    }

    fn unlink(&mut self, name: &WorkloadName) {
        let made = self.resolvers.remove(name).unwrap_or_default();
        let Some(ifname) = self.links.remove(name) else {
            return;
        };
        let Some(journal) = self.journal.as_mut() else {
            return;
        };
        for change in made.iter().rev() {
            match undo::undo(change) {
                Ok(done) => {
                    log_undone(change, &done);
                    let _ = journal.forget(|c| c == change);
                }
                Err(e) => warn!("cannot remove {change}: {e}; the next start tries again"),
            }
        }
        if let Err(e) = attach::detach(journal, &ifname) {
            warn!(workload = %name, interface = %ifname, "cannot delete the workload's link: {e}");
        }
    }

    /// Puts back the sysctls vine set (no workload needs them now).
    fn release_sysctls(&mut self) {
        let Some(journal) = self.journal.as_mut() else {
            return;
        };
        let sysctls: Vec<Change> = journal
            .changes()
            .iter()
            .filter(|c| matches!(c, Change::Sysctl { .. }))
            .cloned()
            .collect();
        for change in sysctls.iter().rev() {
            match undo::undo(change) {
                Ok(done) => {
                    log_undone(change, &done);
                    let _ = journal.forget(|c| c == change);
                }
                Err(e) => warn!("cannot put back {change}: {e}"),
            }
        }
    }

    fn journal(&mut self) -> Result<&mut Journal, ErrorBody> {
        if self.journal.is_none() {
            let path = self.dir.join(JOURNAL_FILE);
            let journal = Journal::open(&path).map_err(|e| ErrorBody {
                code: ErrorCode::Internal,
                message: format!(
                    "cannot open the host-change journal {}: {e}; nothing was changed",
                    path.display()
                ),
            })?;
            self.journal = Some(journal);
        }
        Ok(self.journal.as_mut().expect("opened above"))
    }

    fn save(&self) -> Result<(), ErrorBody> {
        let path = self.dir.join(LEASE_FILE);
        files::write_file(&path, self.leases.to_journal().as_bytes(), 0o600).map_err(|e| {
            ErrorBody {
                code: ErrorCode::Internal,
                message: format!("cannot write the lease file {}: {e}", path.display()),
            }
        })
    }
}

fn refused(message: String) -> ErrorBody {
    ErrorBody {
        code: ErrorCode::WorkloadRefused,
        message,
    }
}

fn log_reverts(report: Vec<(Change, io::Result<Undone>)>) {
    for (change, result) in report {
        match result {
            Ok(done) => log_undone(&change, &done),
            Err(e) => warn!("cannot undo {change}: {e}; the next start tries again"),
        }
    }
}

fn log_undone(change: &Change, done: &Undone) {
    match done {
        Undone::Reverted => info!("put back: {change}"),
        Undone::Absent => {}
        Undone::Kept(why) => info!("left {change}: {why}"),
    }
}
