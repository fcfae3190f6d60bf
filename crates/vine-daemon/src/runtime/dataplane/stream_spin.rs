//! When the one-thread dataplane spins briefly in the middle of a stream.
//!
//! In a bulk transfer the thread's waits are short: the next datagram or
//! TUN packet comes some tens of microseconds after the last burst. Each
//! wait that blocks still costs a sleep and a wake-up, and when the CPU
//! halts meanwhile (on a VM: a vCPU exit, and an IPI to bring it back) the
//! wake-up alone is tens of microseconds, during which the packets queue
//! and the CPU does nothing. Polling without sleeping for a short while
//! ([`StreamSpin::limit`]) keeps the thread and its CPU awake through
//! those gaps. Measured with two daemons in namespaces on 2 vCPUs (iperf3,
//! 4 alternating rounds of 5 s each way): single stream +8 %, reverse
//! +5 %, four streams +9 %, for 5 % more CPU per GB (of a noisy VM: the
//! rounds themselves spread by 20 %).
//!
//! It spins only while traffic streams: when the last blocking wait was
//! shorter than [`STREAM_GAP`], or the last spin caught something. A spin
//! that catches nothing skips the next opportunities, doubling up to
//! [`super::busy_poll::MAX_SKIP`] and reset by a catch, so a trickle of packets slower than
//! the limit costs little (at most one spin in `MAX_SKIP + 1` bursts once
//! the misses have piled up). An idle thread, and a lone request (the busy poll of
//! [`super::busy_poll`] covers that case), never spins here.

use std::time::Duration;

use super::busy_poll::{Backoff, micros_from};

/// Default spin limit (`VINE_STREAM_SPIN_US`).
pub(crate) const DEFAULT_LIMIT: Duration = Duration::from_micros(100);
/// Largest limit `VINE_STREAM_SPIN_US` may set.
pub(crate) const MAX_LIMIT: Duration = Duration::from_millis(1);
/// A blocking wait shorter than this means traffic is streaming.
pub(crate) const STREAM_GAP: Duration = Duration::from_millis(1);

/// Decides whether to spin before a blocking wait (pure logic: the caller
/// reports how long waits lasted and what spins saw).
#[derive(Debug)]
pub(crate) struct StreamSpin {
    limit: Duration,
    /// The last blocking wait was shorter than [`STREAM_GAP`].
    short_wait: bool,
    /// The last spin saw something arrive.
    caught: bool,
    backoff: Backoff,
    /// Spins that saw something arrive, and spins that did not.
    pub(crate) hits: u64,
    pub(crate) misses: u64,
}

impl StreamSpin {
    /// `limit` zero turns spinning off.
    pub(crate) fn new(limit: Duration) -> Self {
        Self {
            limit: limit.min(MAX_LIMIT),
            short_wait: false,
            caught: false,
            backoff: Backoff::default(),
            hits: 0,
            misses: 0,
        }
    }

    /// The limit from `VINE_STREAM_SPIN_US` (microseconds, 0 = off), or the
    /// default; `Err` with a message for a value that is not a number.
    pub(crate) fn limit_from(value: Option<&str>) -> Result<Duration, String> {
        micros_from("VINE_STREAM_SPIN_US", value, DEFAULT_LIMIT, MAX_LIMIT)
    }

    /// The spin limit (zero: off).
    pub(crate) fn limit(&self) -> Duration {
        self.limit
    }

    /// Before a blocking wait, after a burst that did something (`active`):
    /// how long to spin, if at all.
    pub(crate) fn before_wait(&mut self, active: bool) -> Option<Duration> {
        if self.limit.is_zero() || !active || !(self.short_wait || self.caught) {
            return None;
        }
        if self.backoff.skips() {
            return None;
        }
        Some(self.limit)
    }

    /// After a spin: whether something arrived.
    pub(crate) fn after_spin(&mut self, hit: bool) {
        self.caught = hit;
        if hit {
            self.hits += 1;
        } else {
            self.misses += 1;
        }
        self.backoff.spun(hit);
    }

    /// After a blocking wait: how long it lasted.
    pub(crate) fn waited(&mut self, wait: Duration) {
        self.short_wait = wait < STREAM_GAP;
        self.caught = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::dataplane::busy_poll::MAX_SKIP;

    const US: Duration = Duration::from_micros(1);

    #[test]
    fn spins_only_while_traffic_streams() {
        let mut s = StreamSpin::new(DEFAULT_LIMIT);
        assert_eq!(s.before_wait(true), None, "no wait seen yet: not streaming");
        s.waited(20 * US);
        assert_eq!(s.before_wait(false), None, "the burst did nothing");
        assert_eq!(s.before_wait(true), Some(DEFAULT_LIMIT));
        s.after_spin(true);
        assert_eq!(
            s.before_wait(true),
            Some(DEFAULT_LIMIT),
            "the spin caught one"
        );
        s.waited(20 * US);
        assert_eq!(s.before_wait(true), Some(DEFAULT_LIMIT));
        s.waited(5 * DEFAULT_LIMIT);
        assert_eq!(s.before_wait(true), Some(DEFAULT_LIMIT), "still streaming");
        s.waited(STREAM_GAP);
        assert_eq!(
            s.before_wait(true),
            None,
            "a wait of STREAM_GAP ends the stream"
        );
        s.waited(Duration::from_millis(20));
        assert_eq!(s.before_wait(true), None, "idle");
    }

    #[test]
    fn zero_limit_is_off_and_the_limit_is_capped() {
        let mut off = StreamSpin::new(Duration::ZERO);
        off.waited(US);
        assert_eq!(off.before_wait(true), None);
        assert_eq!(StreamSpin::new(Duration::from_secs(1)).limit(), MAX_LIMIT);
    }

    #[test]
    fn a_trickle_slower_than_the_limit_backs_off() {
        // Packets every 1.5 limits: each spin misses, and the wait after
        // it is short (the packet comes half a limit later).
        let mut s = StreamSpin::new(DEFAULT_LIMIT);
        s.waited(DEFAULT_LIMIT / 2);
        let mut spins = 0u32;
        for _ in 0..1000u32 {
            match s.before_wait(true) {
                Some(_) => {
                    spins += 1;
                    s.after_spin(false);
                    s.waited(DEFAULT_LIMIT / 2);
                }
                None => s.waited(DEFAULT_LIMIT * 3 / 2),
            }
        }
        assert!(
            spins <= 1000 / (MAX_SKIP + 1) + 8,
            "{spins} spins in 1000 bursts"
        );
    }

    #[test]
    fn misses_skip_opportunities_and_a_hit_resets() {
        let mut s = StreamSpin::new(DEFAULT_LIMIT);
        let mut spins = Vec::new();
        for i in 0..200u32 {
            s.waited(US);
            if s.before_wait(true).is_some() {
                spins.push(i);
                s.after_spin(false);
            }
        }
        assert_eq!(&spins[..5], &[0, 2, 5, 10, 19]);
        let gaps: Vec<u32> = spins.windows(2).map(|w| w[1] - w[0] - 1).collect();
        assert_eq!(gaps.last(), Some(&MAX_SKIP));
        s.waited(US);
        while s.before_wait(true).is_none() {
            s.waited(US);
        }
        s.after_spin(true);
        assert!(s.before_wait(true).is_some());
    }

    #[test]
    fn the_environment_value_is_checked() {
        assert_eq!(StreamSpin::limit_from(None), Ok(DEFAULT_LIMIT));
        assert_eq!(StreamSpin::limit_from(Some("0")), Ok(Duration::ZERO));
        assert_eq!(StreamSpin::limit_from(Some(" 50 ")), Ok(50 * US));
        assert_eq!(StreamSpin::limit_from(Some("99999")), Ok(MAX_LIMIT));
        let Err(e) = StreamSpin::limit_from(Some("lots")) else {
            panic!("a word was accepted as a limit");
        };
        assert!(e.contains("VINE_STREAM_SPIN_US"), "{e}");
    }
}
