//! Access links, per-pair path overrides and partitions.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::ids::HostId;

/// Latency and loss of a host's access link, or of a whole path between two
/// hosts (see [`Network::set_path`](super::Network::set_path)).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkParams {
    /// One-way delay this link adds.
    pub latency: Duration,
    /// Probability in `[0, 1]` that a packet crossing this link is lost.
    pub loss: f64,
}

impl LinkParams {
    /// 5 ms, no loss: what every host starts with.
    pub const DEFAULT: LinkParams = LinkParams {
        latency: Duration::from_millis(5),
        loss: 0.0,
    };

    /// A link with `latency` and no loss.
    pub const fn lossless(latency: Duration) -> Self {
        Self { latency, loss: 0.0 }
    }

    /// Panics with a clear message unless `loss` is a probability.
    fn check(&self) {
        assert!(
            (0.0..=1.0).contains(&self.loss),
            "LinkParams.loss must be a probability in [0, 1], got {}",
            self.loss
        );
    }
}

impl Default for LinkParams {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Link parameters and cuts for every host, keyed so iteration is ordered.
pub(crate) struct Links {
    access: Vec<LinkParams>,
    paths: BTreeMap<(HostId, HostId), LinkParams>,
    blocked: BTreeSet<(HostId, HostId)>,
    isolated: BTreeSet<HostId>,
}

/// The unordered pair `{a, b}` in a canonical order.
fn pair(a: HostId, b: HostId) -> (HostId, HostId) {
    if a <= b { (a, b) } else { (b, a) }
}

impl Links {
    pub(crate) fn new() -> Self {
        Self {
            access: Vec::new(),
            paths: BTreeMap::new(),
            blocked: BTreeSet::new(),
            isolated: BTreeSet::new(),
        }
    }

    /// Gives a newly added host the default access link.
    pub(crate) fn add_host(&mut self) {
        self.access.push(LinkParams::DEFAULT);
    }

    pub(crate) fn access(&self, host: HostId) -> LinkParams {
        self.access[host.0]
    }

    pub(crate) fn set_access(&mut self, host: HostId, params: LinkParams) {
        params.check();
        self.access[host.0] = params;
    }

    pub(crate) fn set_path(&mut self, a: HostId, b: HostId, params: LinkParams) {
        params.check();
        self.paths.insert(pair(a, b), params);
    }

    pub(crate) fn clear_path(&mut self, a: HostId, b: HostId) {
        self.paths.remove(&pair(a, b));
    }

    /// End-to-end delay and loss probability from `from` to `to`: the path
    /// override if there is one, else the sum of both access latencies and
    /// the loss of crossing both access links.
    pub(crate) fn path(&self, from: HostId, to: HostId) -> LinkParams {
        if let Some(p) = self.paths.get(&pair(from, to)) {
            return *p;
        }
        let (s, r) = (self.access[from.0], self.access[to.0]);
        LinkParams {
            latency: s.latency + r.latency,
            loss: 1.0 - (1.0 - s.loss) * (1.0 - r.loss),
        }
    }

    pub(crate) fn block(&mut self, a: HostId, b: HostId) {
        self.blocked.insert(pair(a, b));
    }

    pub(crate) fn unblock(&mut self, a: HostId, b: HostId) {
        self.blocked.remove(&pair(a, b));
    }

    pub(crate) fn isolate(&mut self, host: HostId) {
        self.isolated.insert(host);
    }

    pub(crate) fn rejoin(&mut self, host: HostId) {
        self.isolated.remove(&host);
    }

    pub(crate) fn is_isolated(&self, host: HostId) -> bool {
        self.isolated.contains(&host)
    }

    /// Whether packets between `a` and `b` are currently dropped.
    pub(crate) fn is_cut(&self, a: HostId, b: HostId) -> bool {
        self.is_isolated(a) || self.is_isolated(b) || self.blocked.contains(&pair(a, b))
    }
}
