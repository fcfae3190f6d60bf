//! Everything we keep about one peer: its keys, the handshakes we have in
//! flight to it, its replay-protection timestamp, its keypairs and its
//! timers.
//!
//! Keypairs are kept the way WireGuard keeps *previous / current / next*,
//! generalised slightly so that no honest packet is lost to a race:
//!
//! * `current` — what we send with.
//! * `next` — keys from initiations we answered, not yet confirmed. The
//!   first transport message the initiator sends on one of them promotes it
//!   to `current` (older unconfirmed ones are dropped). Up to
//!   [`MAX_NEXT`] are kept, so a retried initiation whose first response
//!   arrives late does not strand the initiator on keys we forgot.
//! * `old` — keys we no longer send with but still accept until they
//!   expire (at most [`MAX_OLD`]), so packets in flight across a rekey
//!   still decrypt, and so simultaneous initiations by both sides converge:
//!   each side sends on the keys of the handshake it initiated and accepts
//!   the other's.

use std::sync::Arc;
use std::time::Instant;

use super::cookie::LatestCookie;
use super::crypto::Tai64n;
use super::error::WgError;
use super::index::Indices;
use super::noise::{InitiatorState, RemoteKeys};
use super::session::Keypair;
use super::timers::TimerEvent;
use super::timers::{
    MIN_INITIATION_INTERVAL, REKEY_AFTER_MESSAGES, REKEY_AFTER_TIME, REKEY_ATTEMPT_TIME,
    REKEY_ON_RECEIVE_AGE, REKEY_TIMEOUT, retry_interval,
};

/// Initiations in flight whose responses we still accept.
pub(crate) const MAX_PENDING: usize = 3;
/// Unconfirmed responder keypairs kept.
pub(crate) const MAX_NEXT: usize = 3;
/// Receive-only keypairs kept.
pub(crate) const MAX_OLD: usize = 3;

/// A handshake attempt: the initiations sent since the last completed
/// handshake, retried on a doubling schedule until one is answered.
#[derive(Debug, Clone, Copy)]
struct Attempt {
    /// First initiation of the attempt; it gives up at
    /// `started + REKEY_ATTEMPT_TIME`.
    started: Instant,
    /// Initiations after the first.
    retries: u32,
    /// When to ask for the next initiation (`None` once asked).
    retry_at: Option<Instant>,
}

/// Where a keypair was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    Current,
    Next(usize),
    Old(usize),
}

/// State of one peer.
pub(crate) struct Peer {
    pub(crate) keys: RemoteKeys,
    /// The cookie this peer gave us, and the mac1 a cookie reply must match.
    pub(crate) cookie: LatestCookie,
    /// Initiations in flight, oldest first.
    pending: Vec<InitiatorState>,
    attempt: Option<Attempt>,
    /// Greatest initiation timestamp accepted from this peer.
    last_timestamp: Option<Tai64n>,
    /// When we last accepted an initiation from this peer.
    last_initiation_at: Option<Instant>,
    current: Option<Arc<Keypair>>,
    /// Oldest first.
    next: Vec<Arc<Keypair>>,
    /// Oldest first.
    old: Vec<Arc<Keypair>>,
    /// A rekey was found necessary at this time; `handle_timeout` reports it.
    rekey_at: Option<Instant>,
    /// When a rekey was last reported (reported at most once per
    /// `REKEY_TIMEOUT` if the caller does not act on it).
    last_rekey_request: Option<Instant>,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("pending", &self.pending.len())
            .field("attempt", &self.attempt)
            .field("current", &self.current)
            .field("next", &self.next)
            .field("old", &self.old)
            .field("rekey_at", &self.rekey_at)
            .finish_non_exhaustive()
    }
}

impl Peer {
    pub(crate) fn new(keys: RemoteKeys) -> Self {
        Self {
            cookie: LatestCookie::new(keys.public.as_bytes()),
            keys,
            pending: Vec::new(),
            attempt: None,
            last_timestamp: None,
            last_initiation_at: None,
            current: None,
            next: Vec::new(),
            old: Vec::new(),
            rekey_at: None,
            last_rekey_request: None,
        }
    }

    /// Whether `current` can send at `now`.
    pub(crate) fn session_ready(&self, now: Instant) -> bool {
        self.current.as_ref().is_some_and(|k| k.can_send(now))
    }

    /// Whether initiations are in flight.
    pub(crate) fn handshake_in_progress(&self) -> bool {
        self.attempt.is_some()
    }

    /// Records an initiation we just built and schedules its retry.
    pub(crate) fn initiation_sent(
        &mut self,
        state: InitiatorState,
        now: Instant,
        indices: &mut Indices,
    ) {
        self.pending.push(state);
        if self.pending.len() > MAX_PENDING {
            let dropped = self.pending.remove(0);
            indices.release(dropped.local_index);
        }
        let attempt = match self.attempt {
            Some(a) => Attempt {
                retries: a.retries.saturating_add(1),
                ..a
            },
            None => Attempt {
                started: now,
                retries: 0,
                retry_at: None,
            },
        };
        self.attempt = Some(Attempt {
            retry_at: Some(now + retry_interval(attempt.retries)),
            ..attempt
        });
        self.rekey_at = None;
    }

    /// The in-flight initiation with this index.
    pub(crate) fn pending(&self, local_index: u32) -> Option<&InitiatorState> {
        self.pending.iter().find(|s| s.local_index == local_index)
    }

    /// A response to our initiation `local_index` authenticated: the keys
    /// become `current`, the attempt ends, other initiations are forgotten.
    pub(crate) fn initiator_complete(&mut self, keypair: Keypair, indices: &mut Indices) {
        let keypair = Arc::new(keypair);
        for state in self.pending.drain(..) {
            if state.local_index != keypair.local_index {
                indices.release(state.local_index);
            }
        }
        self.attempt = None;
        self.rekey_at = None;
        self.old.append(&mut self.next);
        if let Some(previous) = self.current.replace(keypair) {
            self.old.push(previous);
        }
        self.trim_old(indices);
    }

    /// Checks an authenticated initiation's timestamp and rate (replay and
    /// flood protection) without recording it.
    pub(crate) fn check_initiation(&self, timestamp: &Tai64n, now: Instant) -> Result<(), WgError> {
        if self.last_timestamp.is_some_and(|last| *timestamp <= last) {
            return Err(WgError::StaleTimestamp);
        }
        if self
            .last_initiation_at
            .is_some_and(|at| now < at + MIN_INITIATION_INTERVAL)
        {
            return Err(WgError::InitiationFlood);
        }
        Ok(())
    }

    /// We answered an initiation: remember its timestamp and keep its keys
    /// as unconfirmed `next`.
    pub(crate) fn responder_complete(
        &mut self,
        timestamp: Tai64n,
        now: Instant,
        keypair: Keypair,
        indices: &mut Indices,
    ) {
        self.last_timestamp = Some(timestamp);
        self.last_initiation_at = Some(now);
        self.next.push(Arc::new(keypair));
        if self.next.len() > MAX_NEXT {
            let dropped = self.next.remove(0);
            indices.release(dropped.local_index);
        }
    }

    /// The keypair we handed out `local_index` for.
    pub(crate) fn keypair(&self, local_index: u32) -> Option<(Slot, &Keypair)> {
        if let Some(k) = self
            .current
            .as_ref()
            .filter(|k| k.local_index == local_index)
        {
            return Some((Slot::Current, k));
        }
        if let Some(i) = self.next.iter().position(|k| k.local_index == local_index) {
            return Some((Slot::Next(i), &self.next[i]));
        }
        let i = self.old.iter().position(|k| k.local_index == local_index)?;
        Some((Slot::Old(i), &self.old[i]))
    }

    /// The sending keypair, when it can send at `now` (shared with the
    /// data plane).
    pub(crate) fn send_keypair(&self, now: Instant) -> Option<&Arc<Keypair>> {
        self.current.as_ref().filter(|k| k.can_send(now))
    }

    /// Keypairs whose transport messages any thread may decrypt: the
    /// current and the receive-only ones. Unconfirmed `next` keypairs are
    /// left out: their first message must pass through [`Peer::received`].
    pub(crate) fn confirmed_keypairs(&self) -> impl Iterator<Item = &Arc<Keypair>> {
        self.current.iter().chain(&self.old)
    }

    /// A transport message authenticated on the keypair in `slot`: confirm
    /// an unconfirmed keypair, and have the initiator of an ageing session
    /// rekey (WireGuard's receive-side freshness rule).
    pub(crate) fn received(&mut self, slot: Slot, now: Instant, indices: &mut Indices) {
        match slot {
            Slot::Next(i) if i < self.next.len() => {
                let confirmed = self.next.remove(i);
                for older in self.next.drain(..i) {
                    indices.release(older.local_index);
                }
                if let Some(previous) = self.current.replace(confirmed) {
                    self.old.push(previous);
                }
                self.trim_old(indices);
            }
            Slot::Current => {
                let ageing = self.current.as_ref().is_some_and(|k| {
                    k.is_initiator
                        && now.saturating_duration_since(k.created) >= REKEY_ON_RECEIVE_AGE
                });
                if ageing {
                    self.request_rekey(now);
                }
            }
            Slot::Next(_) | Slot::Old(_) => {}
        }
    }

    /// Encrypts with `current`, then applies WireGuard's send-side
    /// freshness rules (age for the initiator, message count for both).
    pub(crate) fn encrypt(
        &mut self,
        now: Instant,
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), WgError> {
        let Some(keypair) = self.current.as_ref() else {
            return Err(WgError::NoSession);
        };
        if keypair.is_expired(now) {
            return Err(WgError::NoSession);
        }
        keypair.encrypt(plaintext, out)?;
        let stale = (keypair.is_initiator
            && now.saturating_duration_since(keypair.created) >= REKEY_AFTER_TIME)
            || keypair.send_counter() >= REKEY_AFTER_MESSAGES;
        if stale {
            self.request_rekey(now);
        }
        Ok(())
    }

    /// Flags a rekey for the next `handle_timeout`, unless a handshake is
    /// already in flight or one was requested within `REKEY_TIMEOUT`.
    fn request_rekey(&mut self, now: Instant) {
        let recently = self
            .last_rekey_request
            .is_some_and(|at| now < at + REKEY_TIMEOUT);
        if self.attempt.is_none() && self.rekey_at.is_none() && !recently {
            self.rekey_at = Some(now);
        }
    }

    /// Drops the oldest receive-only keypairs beyond [`MAX_OLD`].
    fn trim_old(&mut self, indices: &mut Indices) {
        self.old.sort_by_key(|k| k.created);
        while self.old.len() > MAX_OLD {
            let dropped = self.old.remove(0);
            indices.release(dropped.local_index);
        }
    }

    /// The earliest instant at which [`Peer::handle_timeout`] has work.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let attempt = self.attempt.iter().flat_map(|a| {
            [Some(a.started + REKEY_ATTEMPT_TIME), a.retry_at]
                .into_iter()
                .flatten()
        });
        let keypairs = self
            .current
            .iter()
            .chain(&self.next)
            .chain(&self.old)
            .map(|k| k.expires_at());
        attempt.chain(keypairs).chain(self.rekey_at).min()
    }

    /// Runs the peer's timers, appending what the node should do to
    /// `events`.
    pub(crate) fn handle_timeout(
        &mut self,
        now: Instant,
        indices: &mut Indices,
        events: &mut Vec<TimerEvent>,
    ) {
        // Keys past REJECT_AFTER_TIME are useless in both directions.
        let had_current = self.current.is_some();
        if self.current.as_ref().is_some_and(|k| k.is_expired(now))
            && let Some(k) = self.current.take()
        {
            indices.release(k.local_index);
        }
        for list in [&mut self.next, &mut self.old] {
            list.retain(|k| {
                let keep = !k.is_expired(now);
                if !keep {
                    indices.release(k.local_index);
                }
                keep
            });
        }
        let lost_current = had_current && self.current.is_none();

        let mut expired = false;
        if let Some(mut attempt) = self.attempt {
            if now >= attempt.started + REKEY_ATTEMPT_TIME {
                self.attempt = None;
                for state in self.pending.drain(..) {
                    indices.release(state.local_index);
                }
                if !self.session_ready(now) {
                    events.push(TimerEvent::SessionExpired);
                    expired = true;
                }
            } else if attempt.retry_at.is_some_and(|at| now >= at) {
                attempt.retry_at = None;
                self.attempt = Some(attempt);
                events.push(TimerEvent::HandshakeRetry);
            }
        }
        if lost_current && self.attempt.is_none() && !expired {
            events.push(TimerEvent::SessionExpired);
        }

        if self.rekey_at.is_some_and(|at| now >= at) {
            self.rekey_at = None;
            if self.attempt.is_none() && self.current.is_some() {
                self.last_rekey_request = Some(now);
                events.push(TimerEvent::RekeyNeeded);
            }
        }
    }

    /// The sending keypair (tests reach into its counter).
    #[cfg(test)]
    pub(crate) fn current_mut(&mut self) -> Option<&Keypair> {
        self.current.as_deref()
    }

    /// Every local index this peer holds (released when it is removed).
    #[cfg(test)]
    pub(crate) fn index_count(&self) -> usize {
        self.pending.len() + usize::from(self.current.is_some()) + self.next.len() + self.old.len()
    }
}
