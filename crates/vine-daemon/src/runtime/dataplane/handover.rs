//! How the dataplane hands work ([`SlowPath`]) to the event loop without
//! ever blocking a dataplane thread ([`hand_over`]).

use vine_core::dataplane::DataPlane;
use vine_core::node::DropReason;

use super::slow_queues::{Pushed, SlowPath, SlowQueues};

/// Hands work to the event loop without ever blocking a dataplane thread;
/// when its queue is full, the work is dropped and counted (on the queue,
/// and node-wide as `queue_full`). False when the event loop is gone.
pub(super) fn hand_over(slow: &SlowQueues, plane: &DataPlane, work: SlowPath) -> bool {
    match slow.push(work) {
        Pushed::Queued => true,
        Pushed::Full => {
            plane.add_drop(DropReason::QueueFull);
            true
        }
        Pushed::Closed => false,
    }
}
