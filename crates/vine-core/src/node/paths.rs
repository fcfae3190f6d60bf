//! A peer's candidate paths: how a path reaches the peer ([`Via`]), one
//! path's probing state, class and health ([`Path`]), and the set of them
//! with the choice of the active one, promotion and fallback ([`PathSet`]).

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
    pub via: Via,
    /// Fixed when the path first works (relay paths are always `Relay`).
    pub class: Option<PathClass>,
    pub alive: bool,
    pub srtt: Option<Duration>,
    /// Consecutive unanswered probes.
    pub misses: u32,
    /// Consecutive answered probes.
    pub streak: u32,
    /// Probes in flight: (id, sent at).
    pub outstanding: Vec<(u64, Instant)>,
    pub next_probe: Instant,
    /// The endpoint is a NAT mapping reported by a third party (not the
    /// peer's own address): working means it was punched.
    pub reflexive: bool,
    /// Probe intervals that passed without keys (handshakes stand in for
    /// probes) and without an answer on this path; reset when it works.
    pub silent_rounds: u32,
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

    pub fn iter_mut(&mut self) -> std::slice::IterMut<'_, Path> {
        self.list.iter_mut()
    }

    pub fn get_mut(&mut self, i: usize) -> Option<&mut Path> {
        self.list.get_mut(i)
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

impl<'a> IntoIterator for &'a mut PathSet {
    type Item = &'a mut Path;
    type IntoIter = std::slice::IterMut<'a, Path>;
    fn into_iter(self) -> Self::IntoIter {
        self.list.iter_mut()
    }
}
