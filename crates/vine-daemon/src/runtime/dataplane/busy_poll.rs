//! When the one-thread dataplane spins instead of blocking.
//!
//! An idle thread that blocks in `poll` pays a wake-up when the next packet
//! comes: the scheduler, and on a VM the exit and IPI that bring a halted
//! vCPU back, which here costs tens of microseconds per hop. For most
//! packets nothing can be done about that, because nobody knows when they
//! come. One case is predictable: this node sent something after being
//! idle and received nothing in the same burst (a ping, a DNS query, a
//! keystroke over SSH, a request). Its answer is likely one round trip
//! away, so the thread polls without sleeping for a short while
//! ([`BusyPoll::limit`]) and handles the answer without a wake-up.
//!
//! Bulk traffic never spins: its waits are short, so the burst does not
//! follow an idle period. The cost is bounded twice over: a spin that saw
//! nothing makes the next opportunities be skipped (doubling up to
//! [`MAX_SKIP`], reset by a hit), and all spinning together may use at most
//! [`BUDGET_SHARE`] of one core (an allowance that accrues with time, up
//! to [`BUDGET_CAP`]). Peers far away (answers later than the limit) thus
//! cost next to nothing.

use std::time::{Duration, Instant};

/// How long a wait must have lasted for the thread to count as idle.
pub(crate) const IDLE_AFTER: Duration = Duration::from_millis(1);
/// Default spin limit (`VINE_BUSY_POLL_US`).
pub(crate) const DEFAULT_LIMIT: Duration = Duration::from_micros(250);
/// Largest limit `VINE_BUSY_POLL_US` may set.
pub(crate) const MAX_LIMIT: Duration = Duration::from_millis(2);
/// Spinning may use at most 1/`BUDGET_SHARE` of the time that passes.
pub(crate) const BUDGET_SHARE: u32 = 50;
/// Most allowance that can be saved up.
pub(crate) const BUDGET_CAP: Duration = Duration::from_millis(20);
/// Most opportunities skipped after a run of misses.
pub(crate) const MAX_SKIP: u32 = 64;

/// Decides whether and how long to spin before blocking (pure logic: the
/// caller passes the time and reports what the spin saw).
#[derive(Debug)]
pub(crate) struct BusyPoll {
    limit: Duration,
    /// Allowance left, and when it was last topped up.
    budget: Duration,
    accrued_at: Instant,
    backoff: Backoff,
    /// Spins that saw something arrive, and spins that did not.
    pub(crate) hits: u64,
    pub(crate) misses: u64,
}

impl BusyPoll {
    /// `limit` zero turns spinning off.
    pub(crate) fn new(limit: Duration, now: Instant) -> Self {
        Self {
            limit: limit.min(MAX_LIMIT),
            budget: BUDGET_CAP,
            accrued_at: now,
            backoff: Backoff::default(),
            hits: 0,
            misses: 0,
        }
    }

    /// The limit from `VINE_BUSY_POLL_US` (microseconds, 0 = off), or the
    /// default; `Err` with a message for a value that is not a number.
    pub(crate) fn limit_from(value: Option<&str>) -> Result<Duration, String> {
        micros_from("VINE_BUSY_POLL_US", value, DEFAULT_LIMIT, MAX_LIMIT)
    }

    /// The spin limit (zero: off).
    pub(crate) fn limit(&self) -> Duration {
        self.limit
    }

    /// Before blocking: how long to spin, if at all. `idle_before` says the
    /// wait before this burst lasted at least [`IDLE_AFTER`]; `sent` and
    /// `received` what the burst did.
    pub(crate) fn before_wait(
        &mut self,
        now: Instant,
        idle_before: bool,
        sent: bool,
        received: bool,
    ) -> Option<Duration> {
        if self.limit.is_zero() || !idle_before || !sent || received {
            return None;
        }
        let elapsed = now.saturating_duration_since(self.accrued_at);
        self.accrued_at = now;
        self.budget = (self.budget + elapsed / BUDGET_SHARE).min(BUDGET_CAP);
        if self.backoff.skips() {
            return None;
        }
        let spin = self.limit.min(self.budget);
        (!spin.is_zero()).then_some(spin)
    }

    /// After a spin: how long it ran and whether something arrived.
    pub(crate) fn after_spin(&mut self, spun: Duration, hit: bool) {
        self.budget = self.budget.saturating_sub(spun);
        if hit {
            self.hits += 1;
        } else {
            self.misses += 1;
        }
        self.backoff.spun(hit);
    }
}

/// A spin limit in microseconds from the environment variable `var`
/// (`value` its value, if set): 0 turns spinning off, values over `max`
/// are capped; `Err` with a message for a value that is not a number.
pub(crate) fn micros_from(
    var: &str,
    value: Option<&str>,
    default: Duration,
    max: Duration,
) -> Result<Duration, String> {
    match value {
        None => Ok(default),
        Some(v) => match v.trim().parse::<u64>() {
            Ok(us) => Ok(Duration::from_micros(us).min(max)),
            Err(_) => Err(format!(
                "{var}={v:?} is not a number of microseconds (0 turns spinning off, at most {}); \
                 using {} µs",
                max.as_micros(),
                default.as_micros()
            )),
        },
    }
}

/// After a spin that saw nothing, skip the next opportunities: 1, 2, 4 …
/// up to [`MAX_SKIP`] in a row; a spin that saw something resets it.
#[derive(Debug)]
pub(crate) struct Backoff {
    /// Opportunities still to skip, and how many the next miss skips.
    skip: u32,
    next_skip: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            skip: 0,
            next_skip: 1,
        }
    }
}

impl Backoff {
    /// At an opportunity: true when it is to be skipped (and counts it).
    pub(crate) fn skips(&mut self) -> bool {
        let skip = self.skip > 0;
        self.skip = self.skip.saturating_sub(1);
        skip
    }

    /// After a spin: whether it saw something.
    pub(crate) fn spun(&mut self, hit: bool) {
        if hit {
            self.next_skip = 1;
        } else {
            self.skip = self.next_skip;
            self.next_skip = (self.next_skip * 2).min(MAX_SKIP);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: Duration = Duration::from_micros(1);

    #[test]
    fn spins_only_after_an_idle_send_without_a_receive() {
        let t = Instant::now();
        let mut b = BusyPoll::new(DEFAULT_LIMIT, t);
        assert_eq!(b.before_wait(t, true, true, false), Some(DEFAULT_LIMIT));
        b.after_spin(100 * US, true);
        assert_eq!(
            b.before_wait(t, false, true, false),
            None,
            "not idle before"
        );
        assert_eq!(b.before_wait(t, true, false, false), None, "nothing sent");
        assert_eq!(
            b.before_wait(t, true, true, true),
            None,
            "an answer already came"
        );
        assert_eq!(b.before_wait(t, true, true, false), Some(DEFAULT_LIMIT));
    }

    #[test]
    fn zero_limit_is_off_and_the_limit_is_capped() {
        let t = Instant::now();
        let mut off = BusyPoll::new(Duration::ZERO, t);
        assert_eq!(off.before_wait(t, true, true, false), None);
        assert_eq!(BusyPoll::new(Duration::from_secs(1), t).limit(), MAX_LIMIT);
    }

    #[test]
    fn misses_back_off_exponentially_and_a_hit_resets() {
        let t = Instant::now();
        let mut b = BusyPoll::new(DEFAULT_LIMIT, t);
        let mut spins = Vec::new();
        // Every spin misses: spins at opportunities 0, 2, 5, 10, 19, ...
        for i in 0..200u32 {
            if let Some(s) = b.before_wait(t, true, true, false) {
                spins.push(i);
                b.after_spin(s.min(10 * US), false);
            }
        }
        assert_eq!(&spins[..5], &[0, 2, 5, 10, 19]);
        let gaps: Vec<u32> = spins.windows(2).map(|w| w[1] - w[0] - 1).collect();
        assert!(gaps.iter().all(|&g| g <= MAX_SKIP), "{gaps:?}");
        assert_eq!(gaps.last(), Some(&MAX_SKIP));
        // A hit: the next opportunity after the skips spins again, and so
        // does the one after it.
        while b.before_wait(t, true, true, false).is_none() {}
        b.after_spin(10 * US, true);
        assert!(b.before_wait(t, true, true, false).is_some());
    }

    #[test]
    fn spinning_stays_within_its_share_of_the_time() {
        // Answers always come just after the limit (a far peer) would be
        // the worst case for misses; hits that take the whole limit are
        // the worst for the budget. One opportunity every 2 ms for 10 s.
        let start = Instant::now();
        let mut b = BusyPoll::new(MAX_LIMIT, start);
        let mut spun = Duration::ZERO;
        let mut t = start;
        for _ in 0..5000 {
            t += Duration::from_millis(2);
            if let Some(s) = b.before_wait(t, true, true, false) {
                spun += s;
                b.after_spin(s, true);
            }
        }
        let allowed = (t - start) / BUDGET_SHARE + BUDGET_CAP;
        assert!(spun <= allowed, "spun {spun:?}, allowed {allowed:?}");
        assert!(spun >= allowed / 2, "the budget is usable: {spun:?}");
    }

    #[test]
    fn the_environment_value_is_checked() {
        assert_eq!(BusyPoll::limit_from(None), Ok(DEFAULT_LIMIT));
        assert_eq!(BusyPoll::limit_from(Some("0")), Ok(Duration::ZERO));
        assert_eq!(BusyPoll::limit_from(Some(" 120 ")), Ok(120 * US));
        assert_eq!(BusyPoll::limit_from(Some("99999")), Ok(MAX_LIMIT));
        let Err(e) = BusyPoll::limit_from(Some("fast")) else {
            panic!("a word was accepted as a limit");
        };
        assert!(
            e.contains("VINE_BUSY_POLL_US") && e.contains("microseconds"),
            "{e}"
        );
    }
}
