//! Relaying for others: the rules, per-pair accounting and the rate caps.
//!
//! A node forwards a relay frame from `source` to `destination` only when
//! it has opted in (`[node] act_as_relay`; otherwise it relays nothing),
//! both are in its allowlist, the source is not the destination (no
//! reflection), the destination has a live *direct* session with it (no
//! chains: a relayed session never relays again), the pair is under the
//! `[policy] relay_rate_limit_kbps` cap and the source, over all its
//! destinations together, is under `relay_source_rate_limit_kbps`. Every
//! forwarded frame and byte is counted per (source, destination) pair, and
//! so is every frame a cap or a rule refused. A refusal is reported back to the source at most once per
//! [`NOTICE_INTERVAL`] per pair, so refusals cannot be used to make the
//! relay send more than it receives.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::peer_id::PeerId;

pub use crate::wire::RelayPairCounters;

/// Least time between two refusal notices for one pair.
pub const NOTICE_INTERVAL: Duration = Duration::from_secs(1);

/// The bucket holds this much of the rate (a burst allowance)…
const BURST: Duration = Duration::from_millis(500);
/// …but never less than this many bytes.
const MIN_BURST: u64 = 16 * 1024;
/// Frames up to this size (handshakes, probes, keepalives)…
const SMALL_FRAME: usize = 256;
/// …may overdraw the bucket by this many bytes, so a saturated pair keeps
/// its session and probes alive while bulk traffic is capped.
const SMALL_RESERVE: u64 = 4 * 1024;

const NANOS: u128 = 1_000_000_000;

/// A token bucket on the caller's clock: `rate` bytes per second, at most
/// `burst` bytes banked. Exact integer arithmetic (byte-nanoseconds).
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: u64,
    burst: u64,
    /// Tokens in byte-nanoseconds; negative while overdrawn.
    tokens: i128,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate_bytes_per_sec: u64, burst_bytes: u64, now: Instant) -> Self {
        Self {
            rate: rate_bytes_per_sec,
            burst: burst_bytes,
            tokens: i128::from(burst_bytes) * NANOS as i128,
            last: now,
        }
    }

    /// The bucket for a cap of `kbps` kilobits per second.
    pub fn for_kbps(kbps: u32, now: Instant) -> Self {
        let rate = u64::from(kbps) * 125;
        let burst = (u128::from(rate) * BURST.as_nanos() / NANOS) as u64;
        Self::new(rate, burst.max(MIN_BURST), now)
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_nanos();
        self.last = self.last.max(now);
        let cap = i128::from(self.burst) * NANOS as i128;
        let add = elapsed.saturating_mul(u128::from(self.rate));
        let add = i128::try_from(add).unwrap_or(i128::MAX);
        self.tokens = self.tokens.saturating_add(add).min(cap);
    }

    /// Takes `len` bytes if the bucket holds them; frames of at most
    /// `small` bytes may overdraw it down to `-reserve`. Returns whether
    /// the frame may pass.
    pub fn take(&mut self, now: Instant, len: usize, small: usize, reserve: u64) -> bool {
        let pass = self.would_take(now, len, small, reserve);
        if pass {
            self.tokens -= len as i128 * NANOS as i128;
        }
        pass
    }

    /// Whether [`take`](Self::take) would pass the frame now, taking nothing.
    pub fn would_take(&mut self, now: Instant, len: usize, small: usize, reserve: u64) -> bool {
        self.refill(now);
        let need = len as i128 * NANOS as i128;
        let floor = if len <= small {
            -(i128::from(reserve) * NANOS as i128)
        } else {
            0
        };
        self.tokens - need >= floor
    }

    /// Whole bytes available now (negative while overdrawn).
    pub fn available(&mut self, now: Instant) -> i64 {
        self.refill(now);
        (self.tokens / NANOS as i128) as i64
    }
}

#[derive(Debug)]
struct Pair {
    counters: RelayPairCounters,
    bucket: Option<TokenBucket>,
    last_notice: Option<Instant>,
}

/// Which rate cap refused a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cap {
    /// `[policy] relay_rate_limit_kbps`, of the (source, destination) pair.
    Pair,
    /// `[policy] relay_source_rate_limit_kbps`, of the source over all its
    /// destinations.
    Source,
}

/// The rate caps in kbit/s, 0 = unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Limits {
    pub(super) pair_kbps: u32,
    pub(super) source_kbps: u32,
}

/// The relay's bookkeeping.
#[derive(Debug, Default)]
pub(super) struct RelayState {
    /// Only pairs of allowlisted peers get an entry, so the map is bounded
    /// by the allowlist.
    pairs: BTreeMap<(PeerId, PeerId), Pair>,
    /// The per-source cap's bucket, for allowlisted sources only.
    sources: BTreeMap<PeerId, TokenBucket>,
    /// Last refusal notice per source for frames to peers we do not know.
    strangers: BTreeMap<PeerId, Instant>,
}

impl RelayState {
    /// Counters of every pair, ordered by (source, destination).
    pub(super) fn counters(&self) -> Vec<RelayPairCounters> {
        self.pairs.values().map(|p| p.counters.clone()).collect()
    }

    /// Takes `len` bytes from the pair's cap and from its source's, or
    /// from neither: the cap that refuses the frame, if one does. A frame
    /// one cap refuses costs nothing from the other. Callers pass only
    /// pairs of allowlisted peers.
    pub(super) fn admit(
        &mut self,
        now: Instant,
        from: PeerId,
        dest: PeerId,
        limits: Limits,
        len: usize,
    ) -> Result<(), Cap> {
        if limits.source_kbps > 0 {
            let bucket = self
                .sources
                .entry(from)
                .or_insert_with(|| TokenBucket::for_kbps(limits.source_kbps, now));
            if !bucket.would_take(now, len, SMALL_FRAME, SMALL_RESERVE) {
                return Err(Cap::Source);
            }
        }
        if limits.pair_kbps > 0 {
            let bucket = self
                .pair(from, dest)
                .bucket
                .get_or_insert_with(|| TokenBucket::for_kbps(limits.pair_kbps, now));
            if !bucket.take(now, len, SMALL_FRAME, SMALL_RESERVE) {
                return Err(Cap::Pair);
            }
        }
        if limits.source_kbps > 0
            && let Some(bucket) = self.sources.get_mut(&from)
        {
            bucket.take(now, len, SMALL_FRAME, SMALL_RESERVE);
        }
        Ok(())
    }

    /// Counts a forwarded frame of `len` bytes.
    pub(super) fn count_forwarded(&mut self, from: PeerId, dest: PeerId, len: usize) {
        let pair = self.pair(from, dest);
        pair.counters.frames += 1;
        pair.counters.bytes += len as u64;
    }

    /// Counts a refused frame (`capped`: by a rate cap) and says whether
    /// a refusal notice is due: at most one per [`NOTICE_INTERVAL`] per
    /// pair, or per source for a pair that is not allowlisted.
    pub(super) fn count_refused(
        &mut self,
        now: Instant,
        from: PeerId,
        dest: PeerId,
        capped: bool,
        both_listed: bool,
    ) -> bool {
        let due = |last: Option<Instant>| {
            last.is_none_or(|t| now.saturating_duration_since(t) >= NOTICE_INTERVAL)
        };
        if both_listed {
            let pair = self.pair(from, dest);
            if capped {
                pair.counters.rate_limited += 1;
            } else {
                pair.counters.refused += 1;
            }
            let notify = due(pair.last_notice);
            if notify {
                pair.last_notice = Some(now);
            }
            notify
        } else {
            let notify = due(self.strangers.get(&from).copied());
            if notify {
                self.strangers.insert(from, now);
            }
            notify
        }
    }

    /// The entry of the pair (`from`, `dest`), created empty if new.
    fn pair(&mut self, from: PeerId, dest: PeerId) -> &mut Pair {
        self.pairs.entry((from, dest)).or_insert_with(|| Pair {
            counters: RelayPairCounters {
                source: from,
                destination: dest,
                frames: 0,
                bytes: 0,
                rate_limited: 0,
                refused: 0,
            },
            bucket: None,
            last_notice: None,
        })
    }
}

mod forward;

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(base: Instant, n: u64) -> Instant {
        base + Duration::from_millis(n)
    }

    #[test]
    fn a_full_bucket_passes_its_burst_then_refuses() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1000, 3000, t0);
        assert!(b.take(t0, 1000, 0, 0));
        assert!(b.take(t0, 1000, 0, 0));
        assert!(b.take(t0, 1000, 0, 0));
        assert!(!b.take(t0, 1, 0, 0), "burst spent");
        assert_eq!(b.available(t0), 0);
    }

    #[test]
    fn tokens_come_back_at_the_rate_and_never_exceed_the_burst() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1000, 3000, t0);
        assert!(b.take(t0, 3000, 0, 0));
        assert!(!b.take(ms(t0, 499), 500, 0, 0), "499 ms give 499 bytes");
        assert!(b.take(ms(t0, 500), 500, 0, 0), "500 ms give 500 bytes");
        assert_eq!(b.available(ms(t0, 500)), 0);
        // An hour idle banks only the burst.
        assert_eq!(b.available(t0 + Duration::from_secs(3600)), 3000);
    }

    #[test]
    fn a_refused_frame_takes_nothing() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1000, 1000, t0);
        assert!(!b.take(t0, 1500, 0, 0), "larger than the bucket");
        assert!(b.take(t0, 1000, 0, 0), "the refusal cost nothing");
    }

    #[test]
    fn small_frames_may_overdraw_by_the_reserve_and_repay_it() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1000, 1000, t0);
        assert!(b.take(t0, 1000, 256, 512));
        assert!(!b.take(t0, 300, 256, 512), "a large frame may not overdraw");
        assert!(b.take(t0, 256, 256, 512));
        assert!(b.take(t0, 256, 256, 512));
        assert!(!b.take(t0, 1, 256, 512), "the reserve is spent");
        assert_eq!(b.available(t0), -512);
        // The debt is repaid before anything large passes again.
        assert!(!b.take(ms(t0, 1000), 600, 256, 512));
        assert!(!b.take(ms(t0, 1111), 600, 256, 512));
        assert!(b.take(ms(t0, 1112), 600, 256, 512));
    }

    #[test]
    fn the_long_run_rate_is_the_cap() {
        let t0 = Instant::now();
        // 64 kbit/s = 8000 bytes/s; burst max(4000, 16 KiB) = 16 KiB.
        let mut b = TokenBucket::for_kbps(64, t0);
        assert_eq!(b.available(t0), 16 * 1024);
        let mut passed = 0u64;
        for i in 0..10_000u64 {
            if b.take(ms(t0, i), 1000, SMALL_FRAME, SMALL_RESERVE) {
                passed += 1000;
            }
        }
        // 10 s at 8000 B/s plus the initial burst, within one frame.
        let expected = 10 * 8000 + 16 * 1024;
        assert!(
            passed <= expected && passed + 1000 > expected,
            "{passed} bytes passed, expected about {expected}"
        );
    }

    fn peer(seed: u8) -> PeerId {
        crate::identity::Identity::from_seed([seed; 32]).peer_id()
    }

    #[test]
    fn the_source_cap_sums_every_destination_of_a_source() {
        let t0 = Instant::now();
        let (a, b, c, d) = (peer(1), peer(2), peer(3), peer(4));
        // 64 kbit/s per source (burst 16 KiB), no per-pair cap.
        let limits = Limits {
            pair_kbps: 0,
            source_kbps: 64,
        };
        let mut relay = RelayState::default();
        let mut passed = [0u64; 3];
        for i in 0..10_000u64 {
            // a sprays 1000-byte frames at b and c alternately; d sends
            // to b at the same pace.
            let dest = if i % 2 == 0 { b } else { c };
            if relay.admit(ms(t0, i), a, dest, limits, 1000).is_ok() {
                passed[usize::from(dest == c)] += 1000;
            } else {
                assert_eq!(
                    relay.admit(ms(t0, i), a, dest, limits, 1000),
                    Err(Cap::Source)
                );
            }
            if relay.admit(ms(t0, i), d, b, limits, 1000).is_ok() {
                passed[2] += 1000;
            }
        }
        // 10 s at 8000 B/s plus the burst, for a's two destinations
        // together, and the same again for d on its own.
        let expected = 10 * 8000 + 16 * 1024;
        let a_total = passed[0] + passed[1];
        assert!(
            a_total <= expected && a_total + 1000 > expected,
            "a got {a_total} bytes relayed, expected about {expected}"
        );
        assert!(passed[0] > 0 && passed[1] > 0, "{passed:?}");
        assert!(
            passed[2] <= expected && passed[2] + 1000 > expected,
            "d is capped on its own, not by a: {passed:?}"
        );
    }

    #[test]
    fn a_frame_one_cap_refuses_costs_nothing_from_the_other() {
        let t0 = Instant::now();
        let (a, b, c) = (peer(1), peer(2), peer(3));
        // Pair cap 64 kbit/s (16 KiB burst), source cap 128 kbit/s
        // (16 KiB burst too: half a second of it is 8000 bytes).
        let limits = Limits {
            pair_kbps: 64,
            source_kbps: 128,
        };
        let mut relay = RelayState::default();
        // a→b spends the pair's burst, which is also the source's.
        for _ in 0..16 {
            assert_eq!(relay.admit(t0, a, b, limits, 1024), Ok(()));
        }
        // The source bucket is empty now: a→c is refused by the source
        // cap, and a→b by the source cap too (checked first).
        assert_eq!(relay.admit(t0, a, c, limits, 1024), Err(Cap::Source));
        assert_eq!(relay.admit(t0, a, b, limits, 1024), Err(Cap::Source));
        // 100 ms later the source has 1600 bytes, the pair only 800: the
        // pair cap refuses a→b and that costs the source nothing, so a→c
        // still passes.
        let t1 = ms(t0, 100);
        assert_eq!(relay.admit(t1, a, b, limits, 1024), Err(Cap::Pair));
        assert_eq!(relay.admit(t1, a, c, limits, 1024), Ok(()));
        // Unlimited caps admit everything.
        let open = Limits {
            pair_kbps: 0,
            source_kbps: 0,
        };
        for _ in 0..1000 {
            assert_eq!(relay.admit(t1, a, b, open, 1400), Ok(()));
        }
    }

    #[test]
    fn high_caps_have_a_burst_of_half_a_second() {
        let t0 = Instant::now();
        let mut b = TokenBucket::for_kbps(100_000, t0);
        assert_eq!(b.available(t0), 100_000 * 125 / 2);
    }
}
