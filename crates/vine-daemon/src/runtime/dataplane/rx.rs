//! The RX thread ([`Rx`]): UDP → TUN, when each direction has its own
//! thread; its [`Rx::take`] also serves the one-thread loop.

use std::io;
use std::net::SocketAddrV4;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tracing::{debug, warn};
use vine_core::dataplane::{Inbound, Reader};
use vine_linux::tun::offload::{CoalesceError, Coalescer};
use vine_linux::udp::{RecvBatch, UdpBatch};

use super::handover::hand_over;
use super::inline;
use super::io::is_idle;
use super::slow_queues::{SlowPath, SlowQueues};
use super::token::TunToken;
use super::vnet_pump::VnetPump;
use crate::host::PacketDevice;

/// Messages per `recvmmsg`.
pub(crate) const RX_BATCH: usize = 32;
/// Packets the RX thread's GRO table holds before it must write.
pub(super) const COALESCE_PACKETS: usize = 128;
/// How long the RX thread's receive waits before checking for shutdown.
pub(super) const RX_POLL: Duration = Duration::from_millis(200);

pub(super) struct Rx {
    pub(super) reader: Reader,
    pub(super) device: Arc<dyn PacketDevice>,
    pub(super) udp: UdpBatch,
    pub(super) slow: Arc<SlowQueues>,
    pub(super) stop: Arc<AtomicBool>,
    pub(super) token: Arc<TunToken>,
    /// A second reader of the tables for what this thread sends.
    pub(super) tx_reader: Reader,
}

impl Rx {
    pub(super) fn run(mut self) {
        let mut gro = self
            .device
            .offloads()
            .map(|o| Coalescer::new(COALESCE_PACKETS, o.uso).trusting_checksums());
        let mut assist = gro.as_ref().map(|_| VnetPump::new());
        let mut batch = RecvBatch::new(RX_BATCH);
        let mut failures = 0u32;
        while !self.stop.load(Ordering::Relaxed) {
            let n = match self.udp.recv_batch(&mut batch) {
                Ok(n) => {
                    failures = 0;
                    n
                }
                Err(e) if is_idle(&e) => continue,
                Err(e) => {
                    failures += 1;
                    if failures == 1 {
                        warn!("UDP receive failed: {e}");
                    }
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            };
            if !self.take(&mut batch, n, gro.as_mut()) {
                return;
            }
            // What we just wrote may have made the kernel queue an answer
            // (an echo reply, a TCP ACK): send it now if the TX thread is
            // not already at it.
            if let Some(pump) = assist.as_mut()
                && self.token.try_take()
            {
                let result = pump.drain(
                    1,
                    &mut self.tx_reader,
                    &*self.device,
                    &mut &self.udp,
                    &self.slow,
                );
                self.token.give_back();
                if matches!(result, Ok(None)) {
                    return;
                }
            }
        }
        debug!("RX thread stopped");
    }

    /// Handles the `n` messages of a receive batch and writes what GRO
    /// coalesced; false when the event loop is gone.
    pub(super) fn take(
        &mut self,
        batch: &mut RecvBatch,
        n: usize,
        mut gro: Option<&mut Coalescer>,
    ) -> bool {
        // A lone datagram has nothing to merge with: written straight to
        // the device, exactly as the coalescer would write it (no offload
        // flags), without touching the coalescer's state. That is the
        // whole receive of a ping or a request after idle, whose cost is
        // mostly cache misses.
        if n == 1 && batch.is_lone() {
            gro = None;
        }
        let now = Instant::now();
        self.reader.refresh();
        for i in 0..n {
            let mut msg = batch.message(i);
            let from = msg.from;
            let tables = self.reader.tables();
            // A GRO message is one sender's datagrams, normally for one
            // keypair: open them as a batch (overlapped decryption).
            if let Some(index) = tables.batch_index(msg.datagrams().map(|d| &*d)) {
                let opened = tables.open_batch(index, now, msg.datagrams());
                for (j, datagram) in msg.datagrams().enumerate() {
                    let verdict =
                        tables.inbound_opened(index, from, datagram, opened >> j & 1 == 1);
                    if !self.handle(now, from, datagram, verdict, gro.as_deref_mut()) {
                        return false;
                    }
                }
                continue;
            }
            for datagram in msg.datagrams() {
                if !self.one(now, from, datagram, gro.as_deref_mut()) {
                    return false;
                }
            }
        }
        if let Some(gro) = gro
            && let Err(e) = gro.flush(|b| self.device.write_vnet(b))
        {
            debug!("TUN write: {e}");
        }
        true
    }

    /// Handles one datagram; false when the event loop is gone. With
    /// offloads, packets for the TUN are coalesced (GRO) and written when
    /// the receive batch is done.
    fn one(
        &self,
        now: Instant,
        from: SocketAddrV4,
        datagram: &mut [u8],
        gro: Option<&mut Coalescer>,
    ) -> bool {
        let verdict = self.reader.tables().inbound(from, datagram, now);
        self.handle(now, from, datagram, verdict, gro)
    }

    /// Acts on what the tables decided for `datagram`. What they could
    /// not open is checked inline ([`inline::check`]) before it is copied
    /// into a slow-path queue.
    fn handle(
        &self,
        now: Instant,
        from: SocketAddrV4,
        datagram: &mut [u8],
        verdict: Inbound<'_>,
        gro: Option<&mut Coalescer>,
    ) -> bool {
        let plane = self.reader.plane();
        match verdict {
            Inbound::Data { peer, range } => {
                let len = range.len();
                let packet = &datagram[range];
                let written = match gro {
                    Some(gro) => self.coalesce(gro, packet),
                    None => self.device.write(packet).map(drop),
                };
                match written {
                    Ok(()) => peer.stats.add_received(1, len as u64),
                    Err(e) => debug!("TUN write: {e}"),
                }
                true
            }
            Inbound::Plain { peer, range } => {
                let work = SlowPath::Plain(from, peer.id, datagram[range].to_vec());
                hand_over(&self.slow, plane, work)
            }
            Inbound::Slow => match inline::check(datagram, self.slow.pending(), now) {
                Ok(()) => hand_over(
                    &self.slow,
                    plane,
                    SlowPath::Datagram(from, datagram.to_vec()),
                ),
                // An index the published tables and the noted handshakes
                // do not know may still be one the node just made (the
                // tables are republished after the event loop's turn):
                // while the node is not under load it goes on to the node
                // (its queue is bounded in bytes); under load it is dropped
                // here, at the cost of a few comparisons.
                Err(inline::Rejected::UnknownIndex) if !self.slow.under_load() => hand_over(
                    &self.slow,
                    plane,
                    SlowPath::Datagram(from, datagram.to_vec()),
                ),
                Err(reason) => {
                    self.slow.count_rejected(reason);
                    true
                }
            },
            Inbound::Drop(reason) => {
                plane.add_drop(reason);
                true
            }
        }
    }

    fn coalesce(&self, gro: &mut Coalescer, packet: &[u8]) -> io::Result<()> {
        match gro.push(packet) {
            Ok(()) => Ok(()),
            Err(CoalesceError::Full { .. }) => {
                gro.flush(|b| self.device.write_vnet(b))?;
                gro.push(packet)
                    .or_else(|_| self.device.write(packet).map(drop))
            }
            Err(_) => self.device.write(packet).map(drop),
        }
    }
}
