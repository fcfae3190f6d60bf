//! A peer's candidate paths: how a path reaches the peer ([`Via`]), one
//! path's probing state, class and health ([`Path`]), and the set of them
//! with the choice of the active one, promotion and fallback ([`PathSet`]).
//!
//! The state is private: the node's handlers report what happened (a probe
//! sent or answered, the session up or failed, a punch requested, a
//! candidate learned, a relay refusal) and read it through accessors;
//! [`PathSet::handle_timeout`] runs the probe timers and says what the
//! node must do (probes lost, paths gone silent, probes due).

use std::fmt;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use super::observe::{PathChangeReason, PathClass, PathView};
use crate::peer_id::PeerId;

/// Most direct candidate paths kept per peer.
const MAX_DIRECT_PATHS: usize = 8;

/// How a path reaches the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Via {
    /// UDP straight to this address.
    Direct(SocketAddrV4),
    /// Wrapped in a relay frame inside the session with this relay.
    Relay(PeerId),
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Direct(a) => write!(f, "udp://{a}"),
            Self::Relay(r) => write!(f, "relay:{}", r.short()),
        }
    }
}

/// One candidate path.
#[derive(Debug, Clone)]
pub(super) struct Path {
    via: Via,
    /// Fixed when the path first works (relay paths are always `Relay`).
    class: Option<PathClass>,
    alive: bool,
    srtt: Option<Duration>,
    /// Consecutive unanswered probes.
    misses: u32,
    /// Consecutive answered probes.
    streak: u32,
    /// Probes in flight: (id, sent at).
    outstanding: Vec<(u64, Instant)>,
    next_probe: Instant,
    /// The endpoint is a NAT mapping reported by a third party (not the
    /// peer's own address): working means it was punched.
    reflexive: bool,
    /// Probe intervals that passed without keys (handshakes stand in for
    /// probes) and without an answer on this path; reset when it works.
    silent_rounds: u32,
}

impl Path {
    pub fn new(via: Via, now: Instant, reflexive: bool) -> Self {
        Self {
            reflexive,
            via,
            class: matches!(via, Via::Relay(_)).then_some(PathClass::Relay),
            alive: false,
            srtt: None,
            misses: 0,
            streak: 0,
            outstanding: Vec::new(),
            next_probe: now,
            silent_rounds: 0,
        }
    }

    /// How the path reaches the peer.
    pub fn via(&self) -> Via {
        self.via
    }

    /// The class, fixed when the path first works (relay paths are always
    /// `Relay`).
    pub fn class(&self) -> Option<PathClass> {
        self.class
    }

    /// Whether the path works (answered and has not died since).
    pub fn is_alive(&self) -> bool {
        self.alive
    }

    /// Smoothed round-trip time of its probes.
    pub fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    /// Whether the endpoint is a NAT mapping reported by a third party.
    pub fn is_reflexive(&self) -> bool {
        self.reflexive
    }

    /// The class the path has, or will have once it works.
    pub fn expected_class(&self) -> PathClass {
        self.class.unwrap_or(match self.via {
            Via::Relay(_) => PathClass::Relay,
            Via::Direct(_) if self.reflexive => PathClass::SignalingThenDirect,
            Via::Direct(_) => PathClass::Direct,
        })
    }

    /// Marks the path working; a direct path's class is fixed now:
    /// `direct` to the peer's own address, `signaling_then_direct` to a NAT
    /// mapping a signaling peer reported.
    pub fn mark_alive(&mut self) {
        if self.class.is_none() {
            self.class = Some(if self.reflexive {
                PathClass::SignalingThenDirect
            } else {
                PathClass::Direct
            });
        }
        self.alive = true;
        self.misses = 0;
        self.silent_rounds = 0;
    }

    /// The path answered (a probe reply with its round-trip time, or a
    /// completed handshake without one): it works, one more answer in a
    /// row, the smoothed RTT updated. Returns whether it was not working
    /// before.
    pub fn confirm(&mut self, rtt: Option<Duration>) -> bool {
        let was_alive = self.alive;
        self.mark_alive();
        self.streak = self.streak.saturating_add(1);
        if let Some(rtt) = rtt {
            self.srtt = Some(match self.srtt {
                None => rtt,
                Some(s) => (s * 7 + rtt) / 8,
            });
        }
        !was_alive
    }

    /// The peer is known to send to our own address over this path: it is
    /// not a NAT mapping, and a punched path becomes `direct`. Returns
    /// whether its class changed.
    pub fn reaches_us_directly(&mut self) -> bool {
        self.reflexive = false;
        if self.class == Some(PathClass::SignalingThenDirect) {
            self.class = Some(PathClass::Direct);
            true
        } else {
            false
        }
    }

    /// The next probe is due now.
    pub fn probe_now(&mut self, now: Instant) {
        self.next_probe = now;
    }

    /// Its endpoint was learned (again): unless it works, probe it now.
    pub fn candidate_learned(&mut self, now: Instant) {
        if !self.alive {
            self.next_probe = now;
        }
    }

    /// Probe `probe` was sent over it at `now`.
    pub fn probe_sent(&mut self, probe: u64, now: Instant) {
        self.outstanding.push((probe, now));
    }

    /// The relay refused to carry it: dead, as if `dead_after_misses`
    /// probes in a row had been lost.
    pub fn relay_refused(&mut self, dead_after_misses: u32) {
        self.alive = false;
        self.streak = 0;
        self.misses = dead_after_misses;
    }

    pub fn rank(&self) -> (PathClass, Duration) {
        (
            self.class.unwrap_or(PathClass::Direct),
            self.srtt.unwrap_or(Duration::from_secs(1)),
        )
    }

    pub fn view(&self) -> PathView {
        PathView {
            via: self.via.to_string(),
            class: self.class.unwrap_or(match self.via {
                Via::Direct(_) => PathClass::Direct,
                Via::Relay(_) => PathClass::Relay,
            }),
            alive: self.alive,
            rtt_us: self
                .srtt
                .map(|d| d.as_micros().min(u128::from(u64::MAX)) as u64),
            misses: self.misses,
        }
    }
}

/// The probing rules a path set follows (from the node's timers).
#[derive(Debug, Clone, Copy)]
pub(super) struct ProbeRules {
    /// Probe interval on the active path while the peer is busy.
    pub active: Duration,
    /// Probe interval on other paths while the peer is busy, and between
    /// handshake rounds before the session has keys.
    pub candidate: Duration,
    /// Probe interval while the peer is idle.
    pub idle: Duration,
    /// A probe unanswered for this long is lost.
    pub timeout: Duration,
    /// A path is dead after this many lost probes in a row.
    pub dead_after_misses: u32,
}

/// What one pass of [`PathSet::handle_timeout`] found, in path order.
#[derive(Debug, Default)]
pub(super) struct ProbeRound {
    /// Probes that timed out.
    pub lost: Vec<u64>,
    /// Paths that just crossed into "no answer": (via, probes lost; 0 when
    /// only handshakes went unanswered).
    pub silent: Vec<(Via, u32)>,
    /// Paths a probe is due on now (the caller sends it and reports it
    /// with [`PathSet::probe_sent`]).
    pub due: Vec<Via>,
}

/// A peer's candidate paths and which one carries its traffic. Paths are
/// only added (or, when the direct ones are full, a dead one replaced);
/// the active one changes only through [`PathSet::select`].
#[derive(Debug, Default)]
pub(super) struct PathSet {
    list: Vec<Path>,
    active: Option<usize>,
}

impl PathSet {
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Path> {
        self.list.iter()
    }

    /// Whether any path works.
    pub fn any_alive(&self) -> bool {
        self.list.iter().any(|p| p.alive)
    }

    /// The path with `via`, if it is a candidate.
    pub fn find(&self, via: Via) -> Option<&Path> {
        self.list.iter().find(|p| p.via == via)
    }

    /// The path with `via`, for reporting what happened on it.
    pub fn find_mut(&mut self, via: Via) -> Option<&mut Path> {
        self.list.iter_mut().find(|p| p.via == via)
    }

    /// Probe timers fired: probes in flight for `rules.timeout` are lost
    /// (a path with `rules.dead_after_misses` lost in a row is dead);
    /// without keys (`ready` false) handshakes stand in for probes and a
    /// dead path silent for that many rounds and one more counts as not
    /// answering; with keys, probes are due on paths whose interval passed
    /// (`busy`: the peer's traffic makes probing fast).
    pub fn handle_timeout(
        &mut self,
        now: Instant,
        ready: bool,
        busy: bool,
        rules: &ProbeRules,
    ) -> ProbeRound {
        let mut round = ProbeRound::default();
        let active = self.active;
        let direct_works = self
            .active()
            .is_some_and(|p| p.alive && matches!(p.via, Via::Direct(_)));
        for (i, path) in self.list.iter_mut().enumerate() {
            let before = path.outstanding.len();
            path.outstanding.retain(|(probe, sent)| {
                let live = *sent + rules.timeout > now;
                if !live {
                    round.lost.push(*probe);
                }
                live
            });
            let missed = (before - path.outstanding.len()) as u32;
            if missed > 0 {
                let before = path.misses;
                path.misses = path.misses.saturating_add(missed);
                path.streak = 0;
                if path.misses >= rules.dead_after_misses {
                    path.alive = false;
                    if before < rules.dead_after_misses {
                        round.silent.push((path.via, path.misses));
                    }
                }
            }
            if !ready && path.next_probe <= now {
                // No keys yet: handshakes stand in for probes. A path
                // silent for as many rounds as make a probed path dead
                // counts as not answering.
                path.next_probe = now + rules.candidate;
                if !path.alive {
                    path.silent_rounds = path.silent_rounds.saturating_add(1);
                    if path.silent_rounds == rules.dead_after_misses.saturating_add(1) {
                        round.silent.push((path.via, 0));
                    }
                }
            } else if ready && path.next_probe <= now {
                let interval = match (busy, Some(i) == active) {
                    (true, true) => rules.active,
                    (true, false) => rules.candidate,
                    (false, _) => rules.idle,
                };
                path.next_probe = now + interval;
                // A relay path kept as a backup of a working direct one is
                // not probed while the peer is idle: probing it would make
                // the relay carry every pair's probes, O(peers²) for it
                // while nothing happens. It keeps its last state, carries
                // traffic at once if the direct path dies, and is probed
                // again as soon as the peer is busy.
                let idle_backup =
                    !busy && Some(i) != active && direct_works && matches!(path.via, Via::Relay(_));
                if !idle_backup {
                    round.due.push(path.via);
                }
            }
        }
        round
    }

    /// Probe `probe` was sent over the path with `via` at `now`.
    pub fn probe_sent(&mut self, via: Via, probe: u64, now: Instant) {
        if let Some(path) = self.find_mut(via) {
            path.probe_sent(probe, now);
        }
    }

    /// A reply to `probe` arrived over `via`: if that probe is in flight on
    /// that very path it is no longer, and the time it was sent is
    /// returned. A reply naming another path's probe, or none, matches
    /// nothing (`None`).
    pub fn probe_answered(&mut self, probe: u64, via: Via) -> Option<Instant> {
        let path = self.find_mut(via)?;
        let pos = path.outstanding.iter().position(|(pid, _)| *pid == probe)?;
        let (_, sent) = path.outstanding.swap_remove(pos);
        Some(sent)
    }

    /// The session came up: every path is probed now.
    pub fn session_up(&mut self, now: Instant) {
        for path in &mut self.list {
            path.next_probe = now;
        }
    }

    /// Hole punching was requested: direct paths that do not work are
    /// probed now.
    pub fn punch_requested(&mut self, now: Instant) {
        for path in &mut self.list {
            if matches!(path.via, Via::Direct(_)) && !path.alive {
                path.next_probe = now;
            }
        }
    }

    /// The session failed: no path works, and probes in flight are
    /// forgotten.
    pub fn session_failed(&mut self) {
        for path in &mut self.list {
            path.alive = false;
            path.outstanding.clear();
        }
    }

    /// Membership expired: no path works. Returns the paths that worked
    /// until now, with their classes.
    pub fn membership_expired(&mut self) -> Vec<(Via, PathClass)> {
        let mut expired = Vec::new();
        for path in &mut self.list {
            if path.alive {
                expired.push((path.via, path.expected_class()));
            }
            path.alive = false;
        }
        expired
    }

    /// The data plane delivered data from the active path's endpoint: a
    /// working direct active path counts as answering (its lost probes
    /// are forgiven, so random loss does not make it flap).
    pub fn data_received(&mut self) {
        if let Some(path) = self.active.and_then(|i| self.list.get_mut(i))
            && path.alive
            && matches!(path.via, Via::Direct(_))
        {
            path.misses = 0;
        }
    }

    /// When the next probe is due or the next outstanding one times out
    /// (`probe_timeout` after it was sent).
    pub fn poll_timeout(&self, probe_timeout: Duration) -> Option<Instant> {
        self.list
            .iter()
            .flat_map(|p| {
                std::iter::once(p.next_probe).chain(
                    p.outstanding
                        .iter()
                        .map(move |(_, sent)| *sent + probe_timeout),
                )
            })
            .min()
    }

    /// Index of the path that carries traffic, if any.
    pub fn active_index(&self) -> Option<usize> {
        self.active
    }

    /// The path that carries traffic, if any.
    pub fn active(&self) -> Option<&Path> {
        self.active.and_then(|i| self.list.get(i))
    }

    /// Index of the path with `via`; a new path (marked `reflexive` as
    /// given) is created if there is room. Returns the index and whether
    /// the path is new.
    pub fn index_with(&mut self, via: Via, now: Instant, reflexive: bool) -> Option<(usize, bool)> {
        if let Some(i) = self.list.iter().position(|p| p.via == via) {
            return Some((i, false));
        }
        if matches!(via, Via::Direct(_))
            && self
                .list
                .iter()
                .filter(|p| matches!(p.via, Via::Direct(_)))
                .count()
                >= MAX_DIRECT_PATHS
        {
            // Replace the oldest dead direct path that is not active.
            let victim = self.list.iter().enumerate().position(|(i, p)| {
                matches!(p.via, Via::Direct(_)) && !p.alive && Some(i) != self.active
            })?;
            self.list[victim] = Path::new(via, now, reflexive);
            return Some((victim, true));
        }
        self.list.push(Path::new(via, now, reflexive));
        Some((self.list.len() - 1, true))
    }

    /// Re-evaluates the preferred path. Returns (from, to, reason) when it
    /// changed. `promote_streak` answered probes in a row are needed before
    /// a better class replaces a working one (hysteresis).
    pub fn select(
        &mut self,
        promote_streak: u32,
    ) -> Option<(Option<PathClass>, Option<PathClass>, PathChangeReason)> {
        let best = self
            .list
            .iter()
            .enumerate()
            .filter(|(_, p)| p.alive)
            .min_by_key(|(_, p)| p.rank())
            .map(|(i, _)| i);
        let current = self
            .active
            .filter(|&i| self.list.get(i).is_some_and(|p| p.alive));
        let from = self.active().and_then(|p| p.class);
        let (next, reason) = match (self.active, current, best) {
            (None, _, Some(b)) => (Some(b), PathChangeReason::PathUp),
            (None, _, None) => return None,
            (Some(_), None, Some(b)) => (Some(b), PathChangeReason::PreferredPathDead),
            (Some(_), None, None) => (None, PathChangeReason::AllPathsDead),
            (Some(c), Some(_), Some(b)) => {
                let better = self.list[b].rank().0 < self.list[c].rank().0;
                if better && self.list[b].streak >= promote_streak {
                    (Some(b), PathChangeReason::Promoted)
                } else {
                    return None;
                }
            }
            (Some(_), Some(_), None) => return None,
        };
        if next == self.active {
            return None;
        }
        self.active = next;
        let to = self.active().and_then(|p| p.class);
        Some((from, to, reason))
    }
}

impl std::ops::Index<usize> for PathSet {
    type Output = Path;
    fn index(&self, i: usize) -> &Path {
        &self.list[i]
    }
}

impl std::ops::IndexMut<usize> for PathSet {
    fn index_mut(&mut self, i: usize) -> &mut Path {
        &mut self.list[i]
    }
}

impl<'a> IntoIterator for &'a PathSet {
    type Item = &'a Path;
    type IntoIter = std::slice::Iter<'a, Path>;
    fn into_iter(self) -> Self::IntoIter {
        self.list.iter()
    }
}
