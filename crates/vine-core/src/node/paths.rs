//! A peer's candidate paths: how a path reaches the peer ([`Via`]), and
//! one path's probing state, class and health ([`Path`]).

use std::fmt;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use super::observe::{PathClass, PathView};
use crate::peer_id::PeerId;

/// Most direct candidate paths kept per peer.
pub(super) const MAX_DIRECT_PATHS: usize = 8;

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
