//! Names on the overlay, bound to identity: what a node announces about
//! itself and its workloads ([`NameSet`]), and the zone a node answers DNS
//! queries from ([`Zone`]).
//!
//! A node's name is the one *this* node's allowlist gives the peer (or
//! `[node] name` for itself), never a name the peer claims: a [`NameSet`]
//! carries only the announcing node's overlay address and its workloads'
//! names and addresses. A receiver keeps a record only when its address
//! lies inside the announcer's enrolled prefix.
//!
//! Names: `<node>.<domain>` and `<workload>.<node>.<domain>` (the domain is
//! `[dns] domain`, default `vine`). Lookups are case-insensitive.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use crate::lease::WorkloadName;
use crate::net::Ipv4Prefix;

/// Version of the name-set encoding.
pub const NAMES_VERSION: u8 = 1;
/// Most workload records one name set carries (one frame; a node with more
/// workloads announces the first ones by name order).
pub const MAX_NAME_RECORDS: usize = 16;

/// What one node announces: its overlay address and its workloads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NameSet {
    /// Increases with every change; a receiver ignores an older one.
    pub seq: u64,
    /// The node's overlay address.
    pub node: Option<Ipv4Addr>,
    /// Workload names and addresses, by name.
    pub workloads: BTreeMap<WorkloadName, Ipv4Addr>,
}

impl NameSet {
    /// Keeps the records whose address lies in `prefix` and returns how
    /// many it dropped.
    pub fn retain_inside(&mut self, prefix: Ipv4Prefix) -> u64 {
        let mut dropped = 0;
        if self.node.is_some_and(|a| !prefix.contains(a)) {
            self.node = None;
            dropped += 1;
        }
        let before = self.workloads.len();
        self.workloads.retain(|_, a| prefix.contains(*a));
        dropped + (before - self.workloads.len()) as u64
    }
}

/// A DNS label: the lowercase form of a node name, if it is a valid label.
pub fn label(name: &str) -> Option<String> {
    name.parse::<WorkloadName>().ok().map(|n| n.to_string())
}

/// What a query gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The name has this IPv4 address.
    A(Ipv4Addr),
    /// The name exists in the zone, but has no address (e.g. `vine.` itself,
    /// or a node whose address is not known yet).
    NoData,
    /// Inside the zone, no such name.
    NxDomain,
    /// Outside the zone: not ours to answer.
    Refused,
}

/// The names this node answers for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Zone {
    domain: String,
    /// Node label → its address (if known) and workloads.
    nodes: BTreeMap<String, (Option<Ipv4Addr>, BTreeMap<String, Ipv4Addr>)>,
}

impl Zone {
    /// An empty zone under `domain` (e.g. `vine`).
    pub fn new(domain: &str) -> Self {
        Self {
            domain: domain.trim_end_matches('.').to_ascii_lowercase(),
            nodes: BTreeMap::new(),
        }
    }

    /// The zone's domain.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Adds node `name` (as this node's config names it) with what it
    /// announced. A name that is not a DNS label is skipped.
    pub fn add_node(&mut self, name: &str, set: &NameSet) {
        let Some(label) = label(name) else {
            return;
        };
        let workloads = set
            .workloads
            .iter()
            .map(|(n, a)| (n.to_string(), *a))
            .collect();
        self.nodes.insert(label, (set.node, workloads));
    }

    /// How many names the zone holds.
    pub fn len(&self) -> usize {
        self.nodes.values().map(|(_, w)| 1 + w.len()).sum()
    }

    /// Whether the zone holds no name.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Answers an A query for `qname` (with or without the final dot).
    pub fn lookup(&self, qname: &str) -> Answer {
        let q = qname.trim_end_matches('.').to_ascii_lowercase();
        let rest = if q == self.domain {
            return Answer::NoData;
        } else if let Some(rest) = q.strip_suffix(&format!(".{}", self.domain)) {
            rest
        } else {
            return Answer::Refused;
        };
        let labels: Vec<&str> = rest.split('.').collect();
        match labels.as_slice() {
            [node] => match self.nodes.get(*node) {
                Some((Some(a), _)) => Answer::A(*a),
                Some((None, _)) => Answer::NoData,
                None => Answer::NxDomain,
            },
            [workload, node] => match self.nodes.get(*node).and_then(|(_, w)| w.get(*workload)) {
                Some(a) => Answer::A(*a),
                None => Answer::NxDomain,
            },
            _ => Answer::NxDomain,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(node: [u8; 4], workloads: &[(&str, [u8; 4])]) -> NameSet {
        NameSet {
            seq: 1,
            node: Some(Ipv4Addr::from(node)),
            workloads: workloads
                .iter()
                .map(|(n, a)| (n.parse().expect("name"), Ipv4Addr::from(*a)))
                .collect(),
        }
    }

    #[test]
    fn names_resolve_case_insensitively_and_outside_names_are_refused() {
        let mut z = Zone::new("vine");
        z.add_node("Alpha", &set([10, 42, 0, 1], &[("web", [10, 42, 0, 2])]));
        z.add_node("beta", &NameSet::default());
        z.add_node("not a label", &set([10, 9, 9, 9], &[]));
        assert_eq!(
            z.lookup("alpha.vine."),
            Answer::A(Ipv4Addr::new(10, 42, 0, 1))
        );
        assert_eq!(
            z.lookup("WEB.alpha.VINE"),
            Answer::A(Ipv4Addr::new(10, 42, 0, 2))
        );
        assert_eq!(z.lookup("beta.vine"), Answer::NoData);
        assert_eq!(z.lookup("vine."), Answer::NoData);
        assert_eq!(z.lookup("db.alpha.vine"), Answer::NxDomain);
        assert_eq!(z.lookup("gamma.vine"), Answer::NxDomain);
        assert_eq!(z.lookup("a.web.alpha.vine"), Answer::NxDomain);
        assert_eq!(z.lookup("example.com."), Answer::Refused);
        assert_eq!(z.lookup("alphavine"), Answer::Refused);
        assert_eq!(z.len(), 3);
    }

    #[test]
    fn records_outside_the_announcers_prefix_are_dropped_and_counted() {
        let prefix = Ipv4Prefix::containing(Ipv4Addr::new(10, 42, 1, 0), 24).expect("prefix");
        let mut s = set(
            [10, 42, 1, 1],
            &[("ok", [10, 42, 1, 7]), ("evil", [10, 42, 0, 2])],
        );
        assert_eq!(s.retain_inside(prefix), 1);
        assert_eq!(s.workloads.len(), 1);
        let mut s = set([10, 42, 0, 1], &[]);
        assert_eq!(s.retain_inside(prefix), 1);
        assert_eq!(s.node, None);
    }
}
