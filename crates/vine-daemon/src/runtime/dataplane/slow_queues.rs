//! The slow-path queues between the dataplane threads and the event loop
//! ([`SlowQueues`]): what the dataplane hands over ([`SlowPath`]) waits in
//! one queue per kind of work ([`Queue`]), each bounded in
//! bytes, so that a flood of one kind cannot crowd out another nor grow the
//! daemon's memory: strangers' handshakes, established peers' control
//! frames, relayed frames, data from a peer's unexpected address and TUN
//! packets the node must route each wait in their own queue.
//!
//! The event loop serves them in passes ([`SERVICE`]): each pass takes at
//! most a budget of items from each queue, control frames first, so an
//! established peer's announce, probe or keepalive waits at most one pass
//! however many handshakes or relayed frames are queued behind it.
//!
//! A dataplane thread never blocks on a queue: when one is full the work
//! is dropped and counted against that queue. The handshake queue's depth
//! is also the daemon's load signal: at an eighth of its bytes (wireguard-go's
//! rule) the node is told it is under load ([`SlowQueues::under_load`]).

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use tokio::sync::Notify;
use vine_core::PeerId;
use vine_core::frame::TAG_RELAY;

use super::inline::{PendingIndices, Rejected};

/// Work the dataplane hands to the event loop.
#[derive(Debug)]
pub(crate) enum SlowPath {
    /// A packet read from the TUN that the node must route (no session
    /// yet, relayed path, queueing).
    Tun(Vec<u8>),
    /// A datagram the dataplane could not open but that passed the inline
    /// checks (a handshake message, the first transport message on new
    /// keys).
    Datagram(SocketAddrV4, Vec<u8>),
    /// A transport message the dataplane decrypted for the node (control
    /// or relay frame, keepalive, data from a new address).
    Plain(SocketAddrV4, PeerId, Vec<u8>),
}

impl SlowPath {
    /// Bytes of payload it carries.
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Tun(b) | Self::Datagram(_, b) | Self::Plain(_, _, b) => b.len(),
        }
    }
}

/// Bytes an item costs beyond its payload (the queue entry, the buffer's
/// header and allocator rounding), so that tiny items are bounded too.
pub(crate) const ITEM_OVERHEAD: usize = 64;

/// The kinds of slow-path work, each in its own queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Queue {
    /// Decrypted peer frames and keepalives from established sessions
    /// (announces, probes and their replies, punching, withdrawals).
    Control,
    /// Handshake messages (from anyone) and the first transport message
    /// on a keypair this node just handed out.
    Handshake,
    /// Relay frames from established sessions (to forward, or delivered).
    Relay,
    /// Data packets decrypted from a peer's address that is not its
    /// preferred endpoint (roaming, path changes).
    SessionData,
    /// Packets read from the TUN device that the node must route (no
    /// session yet, relayed path).
    Tun,
}

impl Queue {
    /// Every queue, in counter order.
    pub(crate) const ALL: [Queue; 5] = [
        Self::Control,
        Self::Handshake,
        Self::Relay,
        Self::SessionData,
        Self::Tun,
    ];

    const fn index(self) -> usize {
        match self {
            Self::Control => 0,
            Self::Handshake => 1,
            Self::Relay => 2,
            Self::SessionData => 3,
            Self::Tun => 4,
        }
    }

    /// The queue's name in `vine counters`.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Self::Control => "control",
            Self::Handshake => "handshake",
            Self::Relay => "relay",
            Self::SessionData => "session_data",
            Self::Tun => "tun",
        }
    }

    /// Bytes the queue holds at most. The sum (4.25 MiB) bounds what the
    /// slow path can hold whatever arrives; the handshake queue holds about
    /// 1,200 initiations, and is under load from about 150.
    pub(crate) const fn capacity(self) -> usize {
        match self {
            Self::Handshake => 256 << 10,
            Self::Control | Self::Relay | Self::SessionData | Self::Tun => 1 << 20,
        }
    }

    /// Which queue `work` waits in.
    pub(crate) fn of(work: &SlowPath) -> Self {
        match work {
            SlowPath::Tun(_) => Self::Tun,
            SlowPath::Datagram(..) => Self::Handshake,
            SlowPath::Plain(_, _, plain) => match plain.first() {
                Some(&TAG_RELAY) => Self::Relay,
                Some(b) if b >> 4 == 4 => Self::SessionData,
                _ => Self::Control,
            },
        }
    }
}

/// The order the event loop serves the queues in each pass, and how many
/// items it takes from each at most: control first; handshakes last and
/// fewest (each may cost a Diffie-Hellman).
pub(crate) const SERVICE: [(Queue, usize); 5] = [
    (Queue::Control, 64),
    (Queue::Tun, 64),
    (Queue::SessionData, 64),
    (Queue::Relay, 32),
    (Queue::Handshake, 16),
];

/// Why work was dropped at a queue (the counters' reason names).
const FULL: &str = "full";

/// One pass over the queues: [`Pass::next`] yields at most each queue's
/// [`SERVICE`] budget of items, in that order, then `None`.
#[derive(Debug, Default)]
pub(crate) struct Pass {
    at: usize,
    taken: usize,
}

impl Pass {
    /// The next item of this pass and the queue it came from.
    pub(crate) fn next(&mut self, queues: &SlowQueues) -> Option<(Queue, SlowPath)> {
        while let Some(&(queue, budget)) = SERVICE.get(self.at) {
            if self.taken < budget
                && let Some(work) = queues.pop(queue)
            {
                self.taken += 1;
                return Some((queue, work));
            }
            self.at += 1;
            self.taken = 0;
        }
        None
    }
}

#[derive(Debug, Default)]
struct Held {
    items: VecDeque<SlowPath>,
    bytes: usize,
}

#[derive(Debug, Default)]
struct Lane {
    held: Mutex<Held>,
    /// `held.bytes`, readable without the lock.
    bytes: AtomicUsize,
    peak: AtomicUsize,
    dropped_full: AtomicU64,
}

impl Lane {
    fn lock(&self) -> MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What handing work over did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Queued; the event loop will see it.
    Queued,
    /// Its queue was full: dropped and counted.
    Full,
    /// The event loop is gone: the dataplane thread should stop.
    Closed,
}

/// The slow-path queues, the inline-rejection counters and the indices
/// the inline check accepts; shared (`Arc`) by the dataplane threads
/// (producers) and the event loop (the one consumer).
#[derive(Debug)]
pub(crate) struct SlowQueues {
    lanes: [Lane; Queue::ALL.len()],
    notify: Notify,
    closed: AtomicBool,
    rejected: [AtomicU64; Rejected::ALL.len()],
    pending: PendingIndices,
}

impl SlowQueues {
    /// Empty queues; `epoch` is the pending indices' time origin.
    pub(crate) fn new(epoch: Instant) -> Self {
        Self {
            lanes: Default::default(),
            notify: Notify::new(),
            closed: AtomicBool::new(false),
            rejected: Default::default(),
            pending: PendingIndices::new(epoch),
        }
    }

    /// Queues `work` unless its queue is full or the loop is gone; never
    /// blocks for longer than the consumer's pop.
    pub(crate) fn push(&self, work: SlowPath) -> Pushed {
        if self.closed.load(Ordering::Relaxed) {
            return Pushed::Closed;
        }
        let queue = Queue::of(&work);
        let lane = &self.lanes[queue.index()];
        let cost = work.len() + ITEM_OVERHEAD;
        {
            let mut held = lane.lock();
            if held.bytes + cost > queue.capacity() {
                drop(held);
                lane.dropped_full.fetch_add(1, Ordering::Relaxed);
                return Pushed::Full;
            }
            held.bytes += cost;
            held.items.push_back(work);
            lane.bytes.store(held.bytes, Ordering::Relaxed);
            lane.peak.fetch_max(held.bytes, Ordering::Relaxed);
        }
        self.notify.notify_one();
        Pushed::Queued
    }

    /// The oldest item of `queue`.
    pub(crate) fn pop(&self, queue: Queue) -> Option<SlowPath> {
        let lane = &self.lanes[queue.index()];
        let mut held = lane.lock();
        let work = held.items.pop_front()?;
        held.bytes -= work.len() + ITEM_OVERHEAD;
        lane.bytes.store(held.bytes, Ordering::Relaxed);
        Some(work)
    }

    /// Bytes `queue` holds now.
    pub(crate) fn bytes(&self, queue: Queue) -> usize {
        self.lanes[queue.index()].bytes.load(Ordering::Relaxed)
    }

    /// Whether any queue holds work.
    pub(crate) fn any(&self) -> bool {
        self.lanes
            .iter()
            .any(|l| l.bytes.load(Ordering::Relaxed) > 0)
    }

    /// Whether the handshake queue is at least an eighth full (the node is
    /// then under load: wireguard-go's `QueueHandshakeSize / 8`).
    pub(crate) fn under_load(&self) -> bool {
        self.bytes(Queue::Handshake) >= Queue::Handshake.capacity() / 8
    }

    /// Waits until some queue holds work. When one already does, it
    /// yields to the runtime first: under a flood there is always work,
    /// and a loop that never yields would starve the tasks that share its
    /// worker thread (the control socket's server).
    pub(crate) async fn ready(&self) {
        if self.any() {
            tokio::task::yield_now().await;
            return;
        }
        // A push after the check stores a permit: no wake-up is lost.
        self.notify.notified().await;
    }

    /// The event loop is gone: pushes fail from now on.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }

    /// Counts a datagram rejected inline.
    pub(crate) fn count_rejected(&self, reason: Rejected) {
        self.rejected[reason.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// The indices of responses just sent (see [`PendingIndices`]).
    pub(crate) fn pending(&self) -> &PendingIndices {
        &self.pending
    }

    /// Inline rejections by reason (non-zero ones).
    pub(crate) fn rejected(&self) -> BTreeMap<String, u64> {
        Rejected::ALL
            .iter()
            .map(|r| {
                (
                    r.name().to_owned(),
                    self.rejected[r.index()].load(Ordering::Relaxed),
                )
            })
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// Queue drops as `queue.reason` (non-zero ones).
    pub(crate) fn drops(&self) -> BTreeMap<String, u64> {
        Queue::ALL
            .iter()
            .map(|q| {
                let n = self.lanes[q.index()].dropped_full.load(Ordering::Relaxed);
                (format!("{}.{FULL}", q.name()), n)
            })
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// The most bytes each queue has held (non-zero ones).
    pub(crate) fn peaks(&self) -> BTreeMap<String, u64> {
        Queue::ALL
            .iter()
            .map(|q| {
                let n = self.lanes[q.index()].peak.load(Ordering::Relaxed);
                (q.name().to_owned(), n as u64)
            })
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

/// The event loop's hold on the queues: dropping it (the loop ended, or
/// panicked) closes them, so the dataplane threads stop handing work over.
#[derive(Debug)]
pub(crate) struct SlowReceiver(Arc<SlowQueues>);

impl SlowReceiver {
    /// The consumer end of `queues`.
    pub(crate) fn new(queues: Arc<SlowQueues>) -> Self {
        Self(queues)
    }
}

impl std::ops::Deref for SlowReceiver {
    type Target = SlowQueues;

    fn deref(&self) -> &SlowQueues {
        &self.0
    }
}

impl Drop for SlowReceiver {
    fn drop(&mut self) {
        self.0.close();
    }
}

#[cfg(test)]
mod tests;
