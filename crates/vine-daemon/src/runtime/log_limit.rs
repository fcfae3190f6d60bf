//! [`PeerLogLimit`]: rate limits the log lines a peer can cause, per peer
//! and reason, so a misbehaving or forged peer cannot flood the log.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use vine_core::PeerId;

/// Lines logged per (peer, reason) in one window; the rest are counted.
pub(crate) const BURST: u32 = 5;
/// The window.
pub(crate) const WINDOW: Duration = Duration::from_secs(10);
/// Most (peer, reason) keys tracked. Beyond it (many forged peer ids),
/// lines share one key per reason with no peer.
const MAX_KEYS: usize = 1024;

/// Who caused a line and why (the event's name or its reason).
pub(crate) type Key = (Option<PeerId>, String);

#[derive(Debug)]
struct Window {
    start: Instant,
    logged: u32,
    suppressed: u64,
}

/// Per (peer, reason): the first [`BURST`] lines of each [`WINDOW`] are
/// logged, the rest suppressed and counted; the count is reported
/// ("suppressed N") by the next admitted line of that key or by
/// [`PeerLogLimit::expired`] once its window is over.
#[derive(Debug, Default)]
pub(crate) struct PeerLogLimit {
    windows: BTreeMap<Key, Window>,
}

impl PeerLogLimit {
    /// Whether to log a line for `peer` and `reason` now: `Some(n)` logs
    /// it, after reporting `n` earlier lines suppressed (when `n > 0`);
    /// `None` suppresses it.
    pub(crate) fn admit(&mut self, peer: PeerId, reason: &str, now: Instant) -> Option<u64> {
        let mut key = (Some(peer), reason.to_owned());
        if !self.windows.contains_key(&key) && self.windows.len() >= MAX_KEYS {
            self.windows
                .retain(|_, w| now.duration_since(w.start) < WINDOW || w.suppressed > 0);
            if self.windows.len() >= MAX_KEYS {
                key.0 = None;
            }
        }
        let w = self.windows.entry(key).or_insert(Window {
            start: now,
            logged: 0,
            suppressed: 0,
        });
        if now.duration_since(w.start) >= WINDOW {
            let suppressed = std::mem::take(&mut w.suppressed);
            w.start = now;
            w.logged = 1;
            return Some(suppressed);
        }
        if w.logged < BURST {
            w.logged += 1;
            Some(0)
        } else {
            w.suppressed += 1;
            None
        }
    }

    /// Keys whose window is over with lines suppressed in it, and how
    /// many; their windows are forgotten.
    pub(crate) fn expired(&mut self, now: Instant) -> Vec<(Key, u64)> {
        let mut out = Vec::new();
        self.windows.retain(|key, w| {
            if now.duration_since(w.start) < WINDOW {
                return true;
            }
            if w.suppressed > 0 {
                out.push((key.clone(), w.suppressed));
            }
            false
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(n: u8) -> PeerId {
        PeerId::from_public_key([n; 32])
    }

    #[test]
    fn a_flood_logs_a_burst_per_window_and_reports_the_rest() {
        let mut l = PeerLogLimit::default();
        let t0 = Instant::now();
        let admitted = (0..1000)
            .filter(|i| {
                l.admit(peer(1), "NotAllowlisted", t0 + Duration::from_millis(*i))
                    .is_some()
            })
            .count();
        assert_eq!(admitted, BURST as usize);
        // Another peer, or another reason, has its own budget.
        assert_eq!(l.admit(peer(2), "NotAllowlisted", t0), Some(0));
        assert_eq!(l.admit(peer(1), "WrongNetwork", t0), Some(0));
        // The next window's first line reports the count.
        assert_eq!(
            l.admit(peer(1), "NotAllowlisted", t0 + WINDOW),
            Some(1000 - u64::from(BURST))
        );
        assert_eq!(l.admit(peer(1), "NotAllowlisted", t0 + WINDOW), Some(0));
    }

    #[test]
    fn a_flood_that_stops_is_reported_when_its_window_ends() {
        let mut l = PeerLogLimit::default();
        let t0 = Instant::now();
        for _ in 0..BURST + 3 {
            l.admit(peer(1), "SessionFailed", t0);
        }
        l.admit(peer(2), "SessionFailed", t0);
        assert!(l.expired(t0 + WINDOW / 2).is_empty());
        assert_eq!(
            l.expired(t0 + WINDOW),
            vec![((Some(peer(1)), "SessionFailed".to_owned()), 3)]
        );
        assert!(l.expired(t0 + WINDOW * 2).is_empty());
    }

    #[test]
    fn many_peer_ids_share_one_bounded_budget() {
        let mut l = PeerLogLimit::default();
        let t0 = Instant::now();
        let mut admitted = 0;
        for i in 0..5000u32 {
            let mut bytes = [0u8; 32];
            bytes[..4].copy_from_slice(&i.to_le_bytes());
            if l.admit(PeerId::from_public_key(bytes), "NotAllowlisted", t0)
                .is_some()
            {
                admitted += 1;
            }
        }
        assert!(l.windows.len() <= MAX_KEYS + 1);
        assert_eq!(admitted, MAX_KEYS + BURST as usize);
    }
}
