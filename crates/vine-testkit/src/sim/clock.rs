//! Virtual time: the clock, the queue of packets in flight and the table of
//! endpoint timers.

use std::cmp::Ordering;
use std::collections::{BTreeSet, BinaryHeap};
use std::time::{Duration, Instant};

use super::ids::HostId;

/// The virtual clock: a real epoch read once, then only explicit jumps.
#[derive(Debug, Clone)]
pub(crate) struct Clock {
    epoch: Instant,
    now: Instant,
}

impl Clock {
    /// Reads the wall clock once; virtual time starts there.
    pub(crate) fn start() -> Self {
        let epoch = Instant::now();
        Self { epoch, now: epoch }
    }

    pub(crate) fn now(&self) -> Instant {
        self.now
    }

    pub(crate) fn epoch(&self) -> Instant {
        self.epoch
    }

    /// Virtual time since the epoch at `t` (zero for instants before it).
    pub(crate) fn since_epoch(&self, t: Instant) -> Duration {
        t.saturating_duration_since(self.epoch)
    }

    /// Moves time forward to `t`; never backwards.
    pub(crate) fn advance_to(&mut self, t: Instant) {
        if t > self.now {
            self.now = t;
        }
    }
}

/// An item scheduled at a time; the heap pops the earliest (time, sequence).
struct Entry<T> {
    at: Instant,
    seq: u64,
    item: T,
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at && self.seq == other.seq
    }
}

impl<T> Eq for Entry<T> {}

impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Entry<T> {
    /// Reversed, so that `BinaryHeap` (a max-heap) pops the earliest entry.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .at
            .cmp(&self.at)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

/// Events ordered by (time, insertion sequence).
pub(crate) struct EventQueue<T> {
    heap: BinaryHeap<Entry<T>>,
    next_seq: u64,
}

impl<T> EventQueue<T> {
    pub(crate) fn new() -> Self {
        Self {
            heap: BinaryHeap::new(),
            next_seq: 0,
        }
    }

    pub(crate) fn push(&mut self, at: Instant, item: T) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Entry { at, seq, item });
    }

    /// When the earliest event is due.
    pub(crate) fn peek_time(&self) -> Option<Instant> {
        self.heap.peek().map(|e| e.at)
    }

    pub(crate) fn pop(&mut self) -> Option<(Instant, T)> {
        self.heap.pop().map(|e| (e.at, e.item))
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}

/// Each host's current deadline, indexed both ways so the earliest is O(log n).
pub(crate) struct Timers {
    due: Vec<Option<Instant>>,
    order: BTreeSet<(Instant, HostId)>,
}

impl Timers {
    pub(crate) fn new() -> Self {
        Self {
            due: Vec::new(),
            order: BTreeSet::new(),
        }
    }

    /// Makes room for a newly added host (with no deadline).
    pub(crate) fn add_host(&mut self) {
        self.due.push(None);
    }

    /// Replaces `host`'s deadline.
    pub(crate) fn set(&mut self, host: HostId, deadline: Option<Instant>) {
        let slot = &mut self.due[host.0];
        if *slot == deadline {
            return;
        }
        if let Some(old) = slot.take() {
            self.order.remove(&(old, host));
        }
        if let Some(new) = deadline {
            self.order.insert((new, host));
        }
        *slot = deadline;
    }

    /// The earliest deadline and its host (lowest host id on ties).
    pub(crate) fn next(&self) -> Option<(Instant, HostId)> {
        self.order.first().copied()
    }
}
