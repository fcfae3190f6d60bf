//! [`PeerLogLimit`]: rate limits the log lines a peer can cause, per peer
//! and reason, so a misbehaving or forged peer cannot flood the log.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use vine_core::PeerId;

/// Lines logged per (peer, reason) in one window; the rest are counted.
pub(crate) const BURST: u32 = 5;
/// Lines logged per window for all peers together (many forged peer ids
/// must not add up to a flood either).
pub(crate) const TOTAL_BURST: u32 = 50;
/// The window.
pub(crate) const WINDOW: Duration = Duration::from_secs(10);
/// Most (peer, reason) keys tracked. Beyond it, lines share one key per
/// reason with no peer.
const MAX_KEYS: usize = 256;

/// How often [`PeerLogLimit::expired`] looks at the windows.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Who caused a line (`None`: one of many peers) and why (the event's name
/// or its reason).
pub(crate) type Key = (Option<PeerId>, String);

#[derive(Debug)]
struct Window {
    start: Instant,
    logged: u32,
    suppressed: u64,
}

impl Window {
    fn new(start: Instant) -> Self {
        Self {
            start,
            logged: 0,
            suppressed: 0,
        }
    }
}

/// Per (peer, reason): the first [`BURST`] lines of each [`WINDOW`] are
/// logged, the rest suppressed and counted, and no more than
/// [`TOTAL_BURST`] lines per window are logged for all peers together
/// (lines over that are counted under the reason with no peer). A count is
/// reported ("suppressed N") by the next admitted line of its key or by
/// [`PeerLogLimit::expired`] once its window is over.
#[derive(Debug)]
pub(crate) struct PeerLogLimit {
    windows: BTreeMap<Key, Window>,
    total: Window,
    last_sweep: Instant,
}

impl Default for PeerLogLimit {
    fn default() -> Self {
        Self {
            windows: BTreeMap::new(),
            total: Window::new(Instant::now()),
            last_sweep: Instant::now(),
        }
    }
}

impl PeerLogLimit {
    /// Whether to log a line for `peer` and `reason` now: `Some(n)` logs
    /// it, after reporting `n` earlier lines suppressed (when `n > 0`);
    /// `None` suppresses it.
    pub(crate) fn admit(&mut self, peer: PeerId, reason: &str, now: Instant) -> Option<u64> {
        if now.duration_since(self.total.start) >= WINDOW {
            self.total = Window::new(now);
        }
        let mut key = (Some(peer), reason.to_owned());
        if !self.windows.contains_key(&key) && self.windows.len() >= MAX_KEYS {
            self.windows
                .retain(|_, w| now.duration_since(w.start) < WINDOW || w.suppressed > 0);
            if self.windows.len() >= MAX_KEYS {
                key.0 = None;
            }
        }
        let w = self.windows.entry(key).or_insert_with(|| Window::new(now));
        let verdict = if now.duration_since(w.start) >= WINDOW {
            let suppressed = std::mem::take(&mut w.suppressed);
            *w = Window::new(now);
            Some(suppressed)
        } else if w.logged < BURST {
            Some(0)
        } else {
            None
        };
        match verdict {
            Some(_) if self.total.logged < TOTAL_BURST => {
                w.logged += 1;
                self.total.logged += 1;
            }
            Some(n) => {
                // Over the total: the key keeps the count it would have
                // reported; this line is counted under the shared key.
                w.suppressed += n;
                let shared = self
                    .windows
                    .entry((None, reason.to_owned()))
                    .or_insert_with(|| Window::new(now));
                shared.suppressed += 1;
                return None;
            }
            None => w.suppressed += 1,
        }
        verdict
    }
    /// Keys whose window is over with lines suppressed in it, and how
    /// many; their windows are forgotten.
    /// Looks at most once per [`SWEEP_EVERY`].
    pub(crate) fn expired(&mut self, now: Instant) -> Vec<(Key, u64)> {
        let mut out = Vec::new();
        if now.saturating_duration_since(self.last_sweep) < SWEEP_EVERY {
            return out;
        }
        self.last_sweep = now;
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
        assert_eq!(admitted, TOTAL_BURST as usize);
        // Every suppressed line is reported once its window ends.
        let reported: u64 = l.expired(t0 + WINDOW).iter().map(|(_, n)| n).sum();
        assert_eq!(reported, 5000 - u64::from(TOTAL_BURST));
    }
}
