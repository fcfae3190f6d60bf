//! WireGuard's timing constants (whitepaper section 6.1) and vine's faster
//! handshake retry schedule.

use std::time::Duration;

/// After this many messages on one keypair, the sender starts a new
/// handshake (2^60).
pub const REKEY_AFTER_MESSAGES: u64 = 1 << 60;
/// A keypair never sends or accepts a counter at or beyond this
/// (2^64 − 2^13 − 1).
pub const REJECT_AFTER_MESSAGES: u64 = u64::MAX - (1 << 13);
/// The initiator of a session starts a new handshake when it sends on a
/// session older than this.
pub const REKEY_AFTER_TIME: Duration = Duration::from_secs(120);
/// Keys older than this are never used in either direction.
pub const REJECT_AFTER_TIME: Duration = Duration::from_secs(180);
/// How long a handshake attempt keeps retrying before it gives up.
pub const REKEY_ATTEMPT_TIME: Duration = Duration::from_secs(90);
/// WireGuard's fixed retry interval, vine's cap on its doubling schedule.
pub const REKEY_TIMEOUT: Duration = Duration::from_secs(5);
/// WireGuard's passive keepalive interval (used here only to compute the
/// receive-side rekey age).
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// vine's first handshake retry interval; doubled on each retry up to
/// [`REKEY_TIMEOUT`], so the first packet is quick on lossy paths.
pub const FIRST_RETRY: Duration = Duration::from_millis(250);
/// When the initiator of the current session *receives* on keys older than
/// this, it rekeys, so a session whose traffic only flows towards it is
/// renewed before it expires (180 s − 10 s − 5 s = 165 s).
pub const REKEY_ON_RECEIVE_AGE: Duration = Duration::from_secs(165);
/// Handshake initiations from one peer closer together than this are
/// dropped (WireGuard allows 50 per second).
pub const MIN_INITIATION_INTERVAL: Duration = Duration::from_millis(20);

const _: () = assert!(
    REKEY_ON_RECEIVE_AGE.as_secs()
        == REJECT_AFTER_TIME.as_secs() - KEEPALIVE_TIMEOUT.as_secs() - REKEY_TIMEOUT.as_secs()
);

/// How long to wait for a response after the initiation numbered
/// `retries` (0 for the first) before sending another: 250 ms doubling,
/// capped at 5 s.
pub fn retry_interval(retries: u32) -> Duration {
    let shift = retries.min(16);
    FIRST_RETRY.saturating_mul(1 << shift).min(REKEY_TIMEOUT)
}

/// What a peer's timers ask the node to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimerEvent {
    /// The session is ageing (or its counter is high): call
    /// [`Wg::initiate`](super::Wg::initiate) and send the initiation. The old keys keep working
    /// meanwhile.
    RekeyNeeded,
    /// The last initiation got no response in time: call [`Wg::initiate`](super::Wg::initiate)
    /// again and send it (250 ms, doubling up to 5 s).
    HandshakeRetry,
    /// The peer has no usable keys and no handshake in flight: either the
    /// keys expired or 90 s of handshake attempts went unanswered.
    SessionExpired,
}
