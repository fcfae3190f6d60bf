//! The TX thread ([`Tx`]): TUN → UDP, when each direction has its own
//! thread.

use std::net::SocketAddrV4;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tracing::{debug, error};
use vine_core::dataplane::Reader;
use vine_core::wg::{DATA_HEADER_LEN, DATA_OVERHEAD};
use vine_linux::udp::{SendScratch, UdpBatch};

use super::io::{is_idle, send_datagrams};
use super::outbound::dispatch;
use super::slow_queues::SlowQueues;
use super::token::TunToken;
use super::vnet_pump::{MAX_PACKET, VnetPump};
use crate::host::PacketDevice;

/// Super-packets the TX thread reads and sends per turn with the token.
pub(super) const TX_DRAIN: usize = 8;
/// Packets read from the TUN device before they are sent as one batch.
pub(crate) const TX_BATCH: usize = 64;
/// Bytes of a TX slot: header room, the packet, padding and tag.
const TX_SLOT: usize = DATA_HEADER_LEN + MAX_PACKET + DATA_OVERHEAD;

pub(super) struct Tx {
    pub(super) reader: Reader,
    pub(super) device: Arc<dyn PacketDevice>,
    pub(super) udp: UdpBatch,
    pub(super) slow: Arc<SlowQueues>,
    pub(super) stop: Arc<AtomicBool>,
    pub(super) token: Arc<TunToken>,
}

impl Tx {
    pub(super) fn run(self) {
        if self.device.offloads().is_some() {
            self.run_vnet();
        } else {
            self.run_plain();
        }
    }

    /// With TUN offloads: one read is a TSO/USO super-packet of up to 64 KiB,
    /// split into MTU-sized segments in slots with room for the WireGuard
    /// header and tag, sealed in place, sent with GSO. The TX thread waits
    /// for the device and drains it while holding the [`TunToken`]; the RX
    /// thread takes the token when it is free to send what its own writes
    /// just provoked (a reply the kernel queued during the write) without
    /// waiting for this thread to be scheduled.
    fn run_vnet(mut self) {
        let mut pump = VnetPump::new();
        while !self.stop.load(Ordering::Relaxed) {
            match self.device.wait_readable() {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    error!(
                        "waiting for the TUN device failed: {e}; outbound overlay traffic stops"
                    );
                    return;
                }
            }
            if !self.token.try_take() {
                // The RX thread is sending; it gives the token back soon.
                std::thread::yield_now();
                continue;
            }
            let result = pump.drain(
                TX_DRAIN,
                &mut self.reader,
                &*self.device,
                &mut &self.udp,
                &self.slow,
            );
            self.token.give_back();
            match result {
                Ok(Some(_)) => {}
                Ok(None) => return,
                Err(e) => {
                    error!("reading the TUN device failed: {e}; outbound overlay traffic stops");
                    return;
                }
            }
        }
        debug!("TX thread stopped");
    }

    /// Without offloads: one packet per read, batched by draining what the
    /// kernel already queued.
    fn run_plain(mut self) {
        // One slot per packet of a batch, allocated once.
        let mut slots: Vec<Vec<u8>> = (0..TX_BATCH).map(|_| vec![0u8; TX_SLOT]).collect();
        let mut lens = [0usize; TX_BATCH];
        // (slot, destination, datagram length) of what the batch sends.
        let mut sends: Vec<(usize, SocketAddrV4, usize)> = Vec::with_capacity(TX_BATCH);
        let mut scratch = SendScratch::new();
        while !self.stop.load(Ordering::Relaxed) {
            let mut n = match self.device.read(&mut slots[0][DATA_HEADER_LEN..]) {
                Ok(len) if len > 0 => {
                    lens[0] = len;
                    1
                }
                Ok(_) => continue,
                Err(e) if is_idle(&e) => continue,
                Err(e) => {
                    error!("reading the TUN device failed: {e}; outbound overlay traffic stops");
                    return;
                }
            };
            while n < TX_BATCH {
                match self.device.try_read(&mut slots[n][DATA_HEADER_LEN..]) {
                    Ok(len) if len > 0 => {
                        lens[n] = len;
                        n += 1;
                    }
                    _ => break,
                }
            }
            let now = Instant::now();
            self.reader.refresh();
            sends.clear();
            for (i, slot) in slots.iter_mut().enumerate().take(n) {
                if !dispatch(&self.reader, &self.slow, now, slot, lens[i], i, &mut sends) {
                    return;
                }
            }
            if sends.is_empty() {
                continue;
            }
            let datagrams: Vec<(SocketAddrV4, &[u8])> = sends
                .iter()
                .map(|&(i, dst, len)| (dst, &slots[i][..len]))
                .collect();
            send_datagrams(&self.udp, &datagrams, &mut scratch);
        }
        debug!("TX thread stopped");
    }
}
