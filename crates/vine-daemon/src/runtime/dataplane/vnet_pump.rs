//! [`VnetPump`]: reads TSO/USO super-packets from a TUN device opened with
//! vnet headers, splits them into segments, seals and sends them.

use std::io;
use std::net::SocketAddrV4;
use std::time::Instant;

use tracing::debug;
use vine_core::dataplane::Reader;
use vine_core::node::DropReason;
use vine_core::wg::{DATA_HEADER_LEN, DATA_OVERHEAD};
use vine_linux::tun::offload::{SegmentBuf, VIRTIO_NET_HDR_LEN, split};
use vine_linux::udp::SendScratch;

use super::io::{Egress, is_idle};
use super::outbound::{dispatch, seal_super_packet};
use super::slow_queues::SlowQueues;
use crate::host::PacketDevice;

/// Largest IP packet a TX slot holds.
pub(super) const MAX_PACKET: usize = 65535;

/// Reusable buffers for reading one TSO/USO super-packet from the TUN,
/// splitting it into sealed segments and sending them with GSO.
pub(super) struct VnetPump {
    raw: Vec<u8>,
    segments: SegmentBuf,
    sends: Vec<(usize, SocketAddrV4, usize)>,
    scratch: SendScratch,
}

impl VnetPump {
    pub(super) fn new() -> Self {
        Self {
            raw: vec![0u8; VIRTIO_NET_HDR_LEN + MAX_PACKET],
            segments: SegmentBuf::new(DATA_HEADER_LEN, DATA_OVERHEAD),
            sends: Vec::with_capacity(64),
            scratch: SendScratch::new(),
        }
    }

    /// Reads queued super-packets (at most `max`, never waiting) and sends
    /// them. `Ok(Some(read))` with how many it read, `Ok(None)` when the
    /// event loop is gone; `Err` when the device failed.
    pub(super) fn drain(
        &mut self,
        max: usize,
        reader: &mut Reader,
        device: &dyn PacketDevice,
        egress: &mut impl Egress,
        slow: &SlowQueues,
    ) -> io::Result<Option<usize>> {
        let mut read = 0;
        for _ in 0..max {
            let n = match device.try_read_vnet(&mut self.raw) {
                Ok(n) if n > 0 => n,
                Ok(_) => continue,
                Err(e) if is_idle(&e) => return Ok(Some(read)),
                Err(e) => return Err(e),
            };
            read += 1;
            if let Err(e) = split(&self.raw[..n], &mut self.segments) {
                debug!("unusable packet from the TUN device: {e}");
                reader.plane().add_drop(DropReason::Malformed);
                continue;
            }
            let now = Instant::now();
            reader.refresh();
            self.sends.clear();
            if !seal_super_packet(reader, now, &mut self.segments, &mut self.sends) {
                for i in 0..self.segments.len() {
                    let (slot, len) = self.segments.slot_mut(i);
                    if !dispatch(reader, slow, now, slot, len, i, &mut self.sends) {
                        return Ok(None);
                    }
                }
            }
            if self.sends.is_empty() {
                continue;
            }
            let segments = &self.segments;
            let datagrams: Vec<(SocketAddrV4, &[u8])> = self
                .sends
                .iter()
                .map(|&(i, dst, len)| (dst, &segments.slot(i)[..len]))
                .collect();
            egress.send(&datagrams, &mut self.scratch, now);
        }
        Ok(Some(read))
    }
}
