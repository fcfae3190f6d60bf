//! Handshake load control, sans-IO: the per-source token bucket checked
//! before any Diffie-Hellman ([`RateLimiter`], like Linux `ratelimiter.c`
//! and wireguard-go `ratelimiter/`), and the under-load state that makes
//! mac2 mandatory ([`Load`], like wireguard-go's `IsUnderLoad`).
//!
//! Time comes in as `now`; memory is bounded: the limiter holds at most
//! [`LIMITER_CAPACITY`] sources and evicts the oldest when full.

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Handshake messages one source may have processed per second.
pub const HANDSHAKES_PER_SECOND: u64 = 20;
/// Handshake messages one source may have processed at once.
pub const HANDSHAKE_BURST: u64 = 5;
/// Most sources the limiter remembers; the oldest is forgotten when a new
/// one arrives and the table is full.
pub const LIMITER_CAPACITY: usize = 4096;
/// A source unheard of for this long starts afresh (its bucket is full by
/// then anyway).
const LIMITER_EXPIRY: Duration = Duration::from_secs(1);
/// Nanoseconds of credit one message costs.
const PACKET_COST: u64 = 1_000_000_000 / HANDSHAKES_PER_SECOND;
/// Most credit a bucket holds.
const MAX_TOKENS: u64 = PACKET_COST * HANDSHAKE_BURST;

/// Handshake messages (with a valid mac1) within one second that put the
/// node under load. A node of a full mesh that starts at once gets two per
/// peer (an initiation and a response), so meshes of a few hundred stay
/// below it; the host's queue depth ([`Load::set_until`]) is the finer
/// signal.
/// Any message the per-source limiter refuses does too, so a source that
/// drains another's bucket (spoofing its address) turns the mac2 check
/// on, which spoofers cannot pass.
pub const UNDER_LOAD_HANDSHAKES: usize = 1024;
/// How long the node stays under load after the rate that triggered it
/// (wireguard-go's `UnderLoadAfterTime`).
pub const UNDER_LOAD_AFTER: Duration = Duration::from_secs(1);

/// One source's bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Credit in nanoseconds.
    tokens: u64,
    last: Instant,
}

/// Token buckets per source address (an IPv4 address, or the /64 of an
/// IPv6 address as Linux keys them).
#[derive(Debug, Default)]
pub(crate) struct RateLimiter {
    buckets: BTreeMap<IpAddr, Bucket>,
    /// The keys of `buckets`, oldest inserted first.
    order: VecDeque<IpAddr>,
}

impl RateLimiter {
    /// Whether a handshake message from `ip` at `now` may be processed;
    /// takes one message's credit if so.
    pub(crate) fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        let key = bucket_key(ip);
        if let Some(bucket) = self.buckets.get_mut(&key) {
            let idle = now.saturating_duration_since(bucket.last);
            if idle >= LIMITER_EXPIRY {
                bucket.tokens = MAX_TOKENS;
            } else {
                let earned = u64::try_from(idle.as_nanos()).unwrap_or(u64::MAX);
                bucket.tokens = bucket.tokens.saturating_add(earned).min(MAX_TOKENS);
            }
            bucket.last = now;
            if bucket.tokens >= PACKET_COST {
                bucket.tokens -= PACKET_COST;
                return true;
            }
            return false;
        }
        while self.order.len() >= LIMITER_CAPACITY {
            match self.order.pop_front() {
                Some(oldest) => {
                    self.buckets.remove(&oldest);
                }
                None => break,
            }
        }
        self.buckets.insert(
            key,
            Bucket {
                tokens: MAX_TOKENS - PACKET_COST,
                last: now,
            },
        );
        self.order.push_back(key);
        true
    }

    /// Sources remembered (tests check the bound).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        debug_assert_eq!(self.buckets.len(), self.order.len());
        self.buckets.len()
    }
}

/// The key of `ip`'s bucket: IPv4 as is (IPv4-mapped IPv6 too), IPv6 by
/// its /64.
fn bucket_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut octets = v6.octets();
                octets[8..].fill(0);
                IpAddr::from(octets)
            }
        },
    }
}

/// Whether the node is under handshake load: detected from the arrival
/// rate of handshake messages, or set by the host (e.g. from its queue
/// depth).
#[derive(Debug, Default)]
pub(crate) struct Load {
    /// Arrival times of the last [`UNDER_LOAD_HANDSHAKES`] handshake
    /// messages (at most that many), oldest first.
    recent: VecDeque<Instant>,
    /// Under load until then, from the arrival rate.
    detected_until: Option<Instant>,
    /// Under load until then, as the host said.
    set_until: Option<Instant>,
    /// The latest `now` seen, for [`Load::under_load_lately`].
    latest: Option<Instant>,
}

impl Load {
    /// A handshake message with a valid mac1 arrived at `now`.
    pub(crate) fn arrived(&mut self, now: Instant) {
        self.saw(now);
        if self.recent.len() >= UNDER_LOAD_HANDSHAKES {
            self.recent.pop_front();
        }
        self.recent.push_back(now);
        // The oldest of the last UNDER_LOAD_HANDSHAKES arrivals.
        let full = self.recent.len() >= UNDER_LOAD_HANDSHAKES;
        let oldest = self.recent.front().copied().filter(|_| full);
        if oldest.is_some_and(|t| now.saturating_duration_since(t) < Duration::from_secs(1)) {
            self.detected_until = Some(now + UNDER_LOAD_AFTER);
        }
    }

    /// The limiter refused a message at `now`: a source floods.
    pub(crate) fn overflowed(&mut self, now: Instant) {
        self.saw(now);
        self.detected_until = Some(now + UNDER_LOAD_AFTER);
    }

    /// The host says the node is under load until `until` (replacing what
    /// it said before; an instant in the past clears it).
    pub(crate) fn set_until(&mut self, until: Instant) {
        self.set_until = Some(until);
    }

    /// Records the latest time seen.
    pub(crate) fn saw(&mut self, now: Instant) {
        if self.latest.is_none_or(|t| now > t) {
            self.latest = Some(now);
        }
    }

    /// Whether mac2 is required at `now`.
    pub(crate) fn under_load(&self, now: Instant) -> bool {
        [self.detected_until, self.set_until]
            .into_iter()
            .flatten()
            .any(|until| now < until)
    }

    /// [`Load::under_load`] at the latest time seen.
    pub(crate) fn under_load_lately(&self) -> bool {
        self.latest.is_some_and(|now| self.under_load(now))
    }
}
