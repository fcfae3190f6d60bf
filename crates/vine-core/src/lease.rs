//! Workload addresses inside this node's own prefix: who holds which
//! address ([`Leases`]), what a workload may be called ([`WorkloadName`]),
//! and the journal text that survives a crash or a reboot.
//!
//! A node owns exactly one prefix, bound to its identity by every peer's
//! allowlist, so the addresses inside it can only be handed out here. The
//! node itself keeps its `[tun] address`; workloads get the other host
//! addresses of the prefix — never the network address, never the
//! broadcast address, never the node's own.
//!
//! # Which address comes next
//!
//! Allocation is *next-fit*: the search starts just after the address handed
//! out last and wraps around. A released address is therefore the last one
//! to be handed out again, so a peer's stale DNS answer or a late packet for
//! a workload that just went away does not reach its successor while other
//! addresses are free.
//!
//! # The journal
//!
//! [`Leases::to_journal`] renders every lease (and the next-fit cursor) as a
//! small versioned TOML document; [`Leases::from_journal`] reads it back.
//! The caller writes it atomically (write to a temporary file, fsync,
//! rename) after every change, before it acts on the change, so a crash at
//! any moment leaves either the old or the new set. A journal written under
//! another prefix (the operator changed `[tun]`) is read leniently: leases
//! that no longer fit are returned as [`Stale`] so the caller can tear down
//! what they belonged to, instead of failing the start.
//!
//! # IO and time contract
//!
//! Sans-IO like the rest of vine-core: time comes in as UNIX seconds, the
//! caller decides which leases are still alive ([`Leases::retain`]) by
//! looking at the namespaces that exist.

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::net::Ipv4Prefix;

/// The journal format this code writes and reads.
pub const JOURNAL_VERSION: u32 = 1;

/// The longest netns reference a lease records (a path), in bytes.
pub const MAX_NETNS_LEN: usize = 4096;

/// A workload's name: one DNS label (`a`–`z`, `0`–`9`, `-`; 1–63
/// characters; no leading or trailing `-`), kept in lowercase, so it can be
/// the first label of `<workload>.<node>.<domain>`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WorkloadName(String);

/// Why a string is not a workload name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Empty.
    #[error("a workload name cannot be empty: use a DNS label such as `web` or `db-1`")]
    Empty,
    /// Longer than 63 bytes.
    #[error(
        "workload name `{0}` is {len} characters long; a DNS label has at most 63",
        len = .0.len()
    )]
    TooLong(String),
    /// A character outside `a-z`, `0-9`, `-`.
    #[error(
        "workload name `{name}` contains {found:?}; use only letters, digits and `-` (it becomes a DNS label)"
    )]
    BadCharacter {
        /// What was given.
        name: String,
        /// The first character that is not allowed.
        found: char,
    },
    /// Starts or ends with `-`.
    #[error("workload name `{0}` starts or ends with `-`; a DNS label cannot")]
    EdgeHyphen(String),
}

impl WorkloadName {
    /// The name, lowercase.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for WorkloadName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(NameError::Empty);
        }
        if let Some(found) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(NameError::BadCharacter {
                name: s.to_owned(),
                found,
            });
        }
        if s.len() > 63 {
            return Err(NameError::TooLong(s.to_owned()));
        }
        if s.starts_with('-') || s.ends_with('-') {
            return Err(NameError::EdgeHyphen(s.to_owned()));
        }
        Ok(Self(s.to_ascii_lowercase()))
    }
}

impl fmt::Display for WorkloadName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for WorkloadName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// One workload's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The workload.
    pub name: WorkloadName,
    /// Its address, inside the node's prefix.
    pub address: Ipv4Addr,
    /// The network namespace it was attached from, as the operator named it
    /// (a path); the caller uses it to check the workload still lives.
    pub netns: String,
    /// When it was handed out, UNIX seconds.
    pub since: u64,
}

/// Why an allocation was refused. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    /// The name holds a lease already.
    #[error(
        "workload `{name}` is already attached with {address}; detach it first (`vine detach {name}`) or pick another name"
    )]
    NameTaken {
        /// The name.
        name: WorkloadName,
        /// Its current address.
        address: Ipv4Addr,
    },
    /// Every workload address of the prefix is leased.
    #[error(
        "all {capacity} workload addresses of {prefix} are in use; detach a workload (`vine workloads` lists them) or give this node a larger prefix"
    )]
    PrefixFull {
        /// The node's prefix.
        prefix: Ipv4Prefix,
        /// How many workload addresses it has.
        capacity: u64,
    },
    /// The netns reference is empty or too long.
    #[error("the network namespace reference must be a path of 1 to {MAX_NETNS_LEN} bytes")]
    BadNetns,
}

/// Why a journal could not be read. The caller keeps the file (it is the
/// only record of which addresses are in use) and says how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JournalError {
    /// Not the TOML this module writes.
    #[error("the lease journal is not valid: {0}")]
    Syntax(String),
    /// Written by a newer vine.
    #[error(
        "the lease journal has version {0}, this vine reads version {JOURNAL_VERSION}; run the vine that wrote it, or move the file away to start with no workloads"
    )]
    Version(u32),
}

/// A lease from the journal that the current prefix cannot keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stale {
    /// The workload name as written (may not be a valid name any more).
    pub name: String,
    /// The address as written.
    pub address: String,
    /// The netns as written.
    pub netns: String,
    /// Why it was not kept.
    pub reason: StaleReason,
}

/// Why a journal entry was not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaleReason {
    /// The name is not a workload name.
    BadName,
    /// The address is not an IPv4 address.
    BadAddress,
    /// The address is not a workload address of the prefix (outside it,
    /// its network or broadcast address, or the node's own).
    OutsidePrefix,
    /// An earlier entry holds the same name or address.
    Duplicate,
    /// The netns reference is empty or too long.
    BadNetns,
}

impl fmt::Display for StaleReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BadName => "not a valid workload name",
            Self::BadAddress => "not an IPv4 address",
            Self::OutsidePrefix => "not a workload address of this node's prefix",
            Self::Duplicate => "name or address listed twice",
            Self::BadNetns => "no usable network namespace path",
        })
    }
}

/// The leases of one node's prefix.
#[derive(Debug, Clone)]
pub struct Leases {
    prefix: Ipv4Prefix,
    node: Ipv4Addr,
    by_name: BTreeMap<WorkloadName, Lease>,
    used: BTreeSet<u32>,
    /// The address handed out last (the next search starts after it).
    cursor: u32,
}

impl Leases {
    /// No leases yet. `node` is the node's own address; it is never handed
    /// out (if it is not a host address of `prefix`, nothing is excluded
    /// for it).
    pub fn new(prefix: Ipv4Prefix, node: Ipv4Addr) -> Self {
        Self {
            prefix,
            node,
            by_name: BTreeMap::new(),
            used: BTreeSet::new(),
            cursor: u32::from(node),
        }
    }

    /// The node's prefix.
    pub fn prefix(&self) -> Ipv4Prefix {
        self.prefix
    }

    /// How many workload addresses the prefix has in all.
    pub fn capacity(&self) -> u64 {
        let (first, last) = match self.hosts() {
            Some(range) => range,
            None => return 0,
        };
        let all = u64::from(last - first) + 1;
        if (first..=last).contains(&u32::from(self.node)) {
            all - 1
        } else {
            all
        }
    }

    /// How many are leased.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Whether nothing is leased.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// The lease of `name`.
    pub fn get(&self, name: &WorkloadName) -> Option<&Lease> {
        self.by_name.get(name)
    }

    /// The lease holding `address`.
    pub fn holder(&self, address: Ipv4Addr) -> Option<&Lease> {
        if !self.used.contains(&u32::from(address)) {
            return None;
        }
        self.by_name.values().find(|l| l.address == address)
    }

    /// Every lease, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Lease> {
        self.by_name.values()
    }

    /// Hands `name` the next free workload address.
    pub fn allocate(
        &mut self,
        name: WorkloadName,
        netns: &str,
        since: u64,
    ) -> Result<&Lease, LeaseError> {
        if let Some(held) = self.by_name.get(&name) {
            return Err(LeaseError::NameTaken {
                name,
                address: held.address,
            });
        }
        if netns.is_empty() || netns.len() > MAX_NETNS_LEN {
            return Err(LeaseError::BadNetns);
        }
        let address = self.next_free().ok_or(LeaseError::PrefixFull {
            prefix: self.prefix,
            capacity: self.capacity(),
        })?;
        self.cursor = address;
        self.used.insert(address);
        let lease = Lease {
            name: name.clone(),
            address: Ipv4Addr::from(address),
            netns: netns.to_owned(),
            since,
        };
        Ok(self.by_name.entry(name).or_insert(lease))
    }

    /// Gives `name`'s address back; `None` if it held none.
    pub fn release(&mut self, name: &WorkloadName) -> Option<Lease> {
        let lease = self.by_name.remove(name)?;
        self.used.remove(&u32::from(lease.address));
        Some(lease)
    }

    /// Keeps the leases `alive` says still live and releases the others,
    /// returning them (reconciliation at start: a lease whose namespace is
    /// gone is released; a workload that still lives keeps its address).
    pub fn retain(&mut self, mut alive: impl FnMut(&Lease) -> bool) -> Vec<Lease> {
        let gone: Vec<WorkloadName> = self
            .by_name
            .values()
            .filter(|l| !alive(l))
            .map(|l| l.name.clone())
            .collect();
        gone.iter().filter_map(|n| self.release(n)).collect()
    }

    /// The journal text for the current set (see the module docs).
    pub fn to_journal(&self) -> String {
        let doc = JournalDoc {
            version: JOURNAL_VERSION,
            prefix: self.prefix.to_string(),
            cursor: Ipv4Addr::from(self.cursor).to_string(),
            lease: self
                .by_name
                .values()
                .map(|l| JournalLease {
                    name: l.name.to_string(),
                    address: l.address.to_string(),
                    netns: l.netns.clone(),
                    since: l.since,
                })
                .collect(),
        };
        let body = toml::to_string(&doc).unwrap_or_default();
        format!("# vine workload leases; written by the daemon, do not edit while it runs\n{body}")
    }

    /// Reads a journal for `prefix` and `node`. Entries the prefix cannot
    /// keep come back as [`Stale`], in file order; the rest are the leases.
    pub fn from_journal(
        prefix: Ipv4Prefix,
        node: Ipv4Addr,
        text: &str,
    ) -> Result<(Self, Vec<Stale>), JournalError> {
        let doc: JournalDoc = toml::from_str(text).map_err(|e| {
            JournalError::Syntax(e.to_string().lines().next().unwrap_or("").to_owned())
        })?;
        if doc.version != JOURNAL_VERSION {
            return Err(JournalError::Version(doc.version));
        }
        let mut leases = Self::new(prefix, node);
        let mut stale = Vec::new();
        for entry in doc.lease {
            let reason = match (entry.name.parse::<WorkloadName>(), entry.address.parse()) {
                (Err(_), _) => Some(StaleReason::BadName),
                (_, Err(_)) => Some(StaleReason::BadAddress),
                (Ok(_), Ok(addr)) if !leases.is_workload_address(addr) => {
                    Some(StaleReason::OutsidePrefix)
                }
                (Ok(name), Ok(addr)) => {
                    if entry.netns.is_empty() || entry.netns.len() > MAX_NETNS_LEN {
                        Some(StaleReason::BadNetns)
                    } else if leases.by_name.contains_key(&name)
                        || leases.used.contains(&u32::from(addr))
                    {
                        Some(StaleReason::Duplicate)
                    } else {
                        leases.used.insert(u32::from(addr));
                        leases.by_name.insert(
                            name.clone(),
                            Lease {
                                name,
                                address: addr,
                                netns: entry.netns.clone(),
                                since: entry.since,
                            },
                        );
                        None
                    }
                }
            };
            if let Some(reason) = reason {
                stale.push(Stale {
                    name: entry.name,
                    address: entry.address,
                    netns: entry.netns,
                    reason,
                });
            }
        }
        if let Ok(cursor) = doc.cursor.parse::<Ipv4Addr>()
            && prefix.contains(cursor)
        {
            leases.cursor = u32::from(cursor);
        }
        Ok((leases, stale))
    }

    /// Whether `address` may be handed to a workload: a host address of the
    /// prefix other than the node's own.
    pub fn is_workload_address(&self, address: Ipv4Addr) -> bool {
        let a = u32::from(address);
        match self.hosts() {
            Some((first, last)) => (first..=last).contains(&a) && address != self.node,
            None => false,
        }
    }

    /// The first and last host address (no network, no broadcast); `None`
    /// for a /31 or /32, which have no room for workloads.
    fn hosts(&self) -> Option<(u32, u32)> {
        if self.prefix.len() > 30 {
            return None;
        }
        let first = u32::from(self.prefix.network()) + 1;
        let last = u32::from(self.prefix.last()) - 1;
        Some((first, last))
    }

    /// The first free workload address after the cursor, wrapping around.
    fn next_free(&self) -> Option<u32> {
        let (first, last) = self.hosts()?;
        let start = if (first..=last).contains(&self.cursor) && self.cursor < last {
            self.cursor + 1
        } else {
            first
        };
        self.free_in(start, last)
            .or_else(|| self.free_in(first, start.saturating_sub(1).max(first)))
    }

    /// The lowest free workload address in `from..=to`. Walks the leased
    /// addresses from `from` upward, so it costs O(leases), not O(prefix).
    fn free_in(&self, from: u32, to: u32) -> Option<u32> {
        let node = u32::from(self.node);
        let mut candidate = from;
        let mut taken = self.used.range(from..).peekable();
        while candidate <= to {
            if candidate == node {
                candidate = candidate.checked_add(1)?;
                continue;
            }
            while taken.peek().is_some_and(|&&t| t < candidate) {
                taken.next();
            }
            if taken.peek() == Some(&&candidate) {
                taken.next();
                candidate = candidate.checked_add(1)?;
                continue;
            }
            return Some(candidate);
        }
        None
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JournalDoc {
    version: u32,
    prefix: String,
    cursor: String,
    #[serde(default)]
    lease: Vec<JournalLease>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JournalLease {
    name: String,
    address: String,
    netns: String,
    since: u64,
}
