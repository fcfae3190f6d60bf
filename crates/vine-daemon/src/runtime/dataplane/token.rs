//! [`TunToken`]: who may read the TUN device and send what it read.

use std::sync::atomic::{AtomicBool, Ordering};

/// The right to read the TUN device and send what was read. Whoever reads
/// also sends before letting go, so packets leave in the order the kernel
/// queued them even when two threads take turns.
#[derive(Debug, Default)]
pub(crate) struct TunToken(AtomicBool);

impl TunToken {
    pub(super) fn try_take(&self) -> bool {
        self.0
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    pub(super) fn give_back(&self) {
        self.0.store(false, Ordering::Release);
    }
}
