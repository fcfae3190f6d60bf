//! The dataplane: what data-plane threads need to move IP packets without
//! the [`Node`](crate::node::Node), published by the node as immutable
//! [`Tables`].
//!
//! The node stays the only writer of protocol state (handshakes, paths,
//! membership, routes). Whenever something the data plane depends on
//! changes — a session's keys, a peer's preferred endpoint, its enrolled
//! prefix, a route — the node builds a new [`Tables`] and publishes it in
//! its [`DataPlane`]. Data-plane threads hold a [`Reader`], whose
//! [`Reader::refresh`] costs one atomic load per batch while nothing
//! changed; lookups then run on the reader's own `Arc<Tables>` with no lock.
//!
//! ```text
//!  TUN ─► Reader::outbound ─► Send{keypair, endpoint} ─► Keypair::seal ─► UDP
//!                            └► Slow ─► Node::handle_tun_packet (queue, handshake, relay)
//!  UDP ─► Reader::inbound ──► Data{range}  ─► TUN
//!                            ├► Plain{peer} ─► Node::handle_decrypted (control frames)
//!                            └► Slow ─► Node::handle_datagram (handshakes, unknown index)
//! ```
//!
//! Encryption uses the same [`Keypair`] objects as the node (nonces are an
//! atomic counter; the replay window is per keypair), so packets sent by the
//! dataplane and by the node interleave correctly. Unconfirmed keypairs are
//! never published: the first message on new keys always reaches the node,
//! which confirms the session and republishes. Counters the dataplane keeps
//! are atomics the node folds into its [`Snapshot`](crate::node::Snapshot).
//!
//! Like the rest of `vine-core` this does no IO and reads no clock: `now`
//! comes from the caller (once per batch is enough).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::frame::{self, Plaintext};
use crate::net::Ipv4Prefix;
use crate::peer_id::PeerId;
use crate::wg::{DATA_HEADER_LEN, Keypair};
use crate::wire::DropReason;
use crate::wire::ipv4;

/// Traffic a data-plane thread moved for one peer (atomics, shared by every
/// published [`Tables`] and folded into the node's counters).
#[derive(Debug, Default)]
pub struct PeerStats {
    /// Data packets sent by the dataplane.
    pub packets_sent: AtomicU64,
    /// Their payload bytes.
    pub bytes_sent: AtomicU64,
    /// Data packets the dataplane delivered to the TUN device.
    pub packets_received: AtomicU64,
    /// Their payload bytes.
    pub bytes_received: AtomicU64,
    /// Drops attributed to this peer, by [`DropReason::index`].
    drops: [AtomicU64; DropReason::ALL.len()],
}

impl PeerStats {
    /// Counts `packets` sent with `bytes` of payload.
    pub fn add_sent(&self, packets: u64, bytes: u64) {
        self.packets_sent.fetch_add(packets, Ordering::Relaxed);
        self.bytes_sent.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts `packets` delivered with `bytes` of payload.
    pub fn add_received(&self, packets: u64, bytes: u64) {
        self.packets_received.fetch_add(packets, Ordering::Relaxed);
        self.bytes_received.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts a drop attributed to this peer.
    pub fn add_drop(&self, reason: DropReason) {
        self.drops[reason.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Packets moved in either direction (activity detection).
    pub fn activity(&self) -> u64 {
        self.packets_sent.load(Ordering::Relaxed) + self.packets_received.load(Ordering::Relaxed)
    }

    /// Drops by reason (non-zero ones).
    pub fn drops(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL
            .iter()
            .zip(&self.drops)
            .map(|(r, c)| (*r, c.load(Ordering::Relaxed)))
            .filter(|(_, c)| *c > 0)
    }
}

/// Everything the dataplane knows about one peer.
#[derive(Debug, Clone)]
pub struct PeerEntry {
    /// The peer.
    pub id: PeerId,
    /// Its enrolled prefix: inner source addresses must lie in it.
    pub prefix: Option<Ipv4Prefix>,
    /// Keys to send with (current, confirmed).
    pub send: Option<Arc<Keypair>>,
    /// Where its datagrams go, when the preferred path is direct. `None`
    /// (relayed or no working path) sends its packets to the slow path.
    pub endpoint: Option<SocketAddrV4>,
    /// Its counters.
    pub stats: Arc<PeerStats>,
}

impl PartialEq for PeerEntry {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.prefix == other.prefix
            && self.endpoint == other.endpoint
            && match (&self.send, &other.send) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            }
            && Arc::ptr_eq(&self.stats, &other.stats)
    }
}

/// One immutable generation of the dataplane's lookup tables.
#[derive(Debug, Clone, Default)]
pub struct Tables {
    /// Our own prefix (inbound destinations must lie in it; outbound ones
    /// must not).
    local_prefix: Option<Ipv4Prefix>,
    /// Routes, longest prefix first: (prefix, index into `peers`).
    routes: Vec<(Ipv4Prefix, usize)>,
    peers: Vec<PeerEntry>,
    /// Receiver index → (peer, keypair).
    recv: HashMap<u32, (usize, Arc<Keypair>)>,
}

impl PartialEq for Tables {
    fn eq(&self, other: &Self) -> bool {
        self.local_prefix == other.local_prefix
            && self.routes == other.routes
            && self.peers == other.peers
            && self.recv.len() == other.recv.len()
            && self.recv.iter().all(|(i, (p, k))| {
                other
                    .recv
                    .get(i)
                    .is_some_and(|(q, l)| p == q && Arc::ptr_eq(k, l))
            })
    }
}

impl Tables {
    /// Builds tables from the node's view. `routes` may come in any order.
    pub(crate) fn new(
        local_prefix: Ipv4Prefix,
        peers: Vec<PeerEntry>,
        routes: impl IntoIterator<Item = (Ipv4Prefix, PeerId)>,
        recv: impl IntoIterator<Item = (PeerId, Arc<Keypair>)>,
    ) -> Self {
        let index: HashMap<PeerId, usize> =
            peers.iter().enumerate().map(|(i, p)| (p.id, i)).collect();
        let mut routes: Vec<(Ipv4Prefix, usize)> = routes
            .into_iter()
            .filter_map(|(prefix, id)| index.get(&id).map(|i| (prefix, *i)))
            .collect();
        routes.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
        let recv = recv
            .into_iter()
            .filter_map(|(id, k)| index.get(&id).map(|i| (k.local_index(), (*i, k))))
            .collect();
        Self {
            local_prefix: Some(local_prefix),
            routes,
            peers,
            recv,
        }
    }

    /// The peer entries.
    pub fn peers(&self) -> &[PeerEntry] {
        &self.peers
    }

    /// The peer whose route covers `dst` (longest prefix).
    pub fn route(&self, dst: Ipv4Addr) -> Option<&PeerEntry> {
        self.routes
            .iter()
            .find(|(p, _)| p.contains(dst))
            .map(|(_, i)| &self.peers[*i])
    }

    /// Decides what happens to an IPv4 packet read from the TUN device.
    pub fn outbound(&self, packet: &[u8], now: Instant) -> Outbound<'_> {
        let Some(dst) = ipv4_dst(packet) else {
            return Outbound::Drop(DropReason::Malformed);
        };
        if self.local_prefix.is_some_and(|p| p.contains(dst)) {
            return Outbound::Drop(DropReason::WrongDestination);
        }
        let Some(peer) = self.route(dst) else {
            return Outbound::Drop(DropReason::UnknownRoute);
        };
        match (&peer.send, peer.endpoint) {
            (Some(keypair), Some(endpoint)) if keypair.can_send(now) => Outbound::Send {
                peer,
                keypair,
                endpoint,
            },
            _ => Outbound::Slow,
        }
    }

    /// Decides what happens to a datagram received from `from`, decrypting
    /// it in place when it is a transport message for a published keypair.
    pub fn inbound(&self, from: SocketAddrV4, datagram: &mut [u8], now: Instant) -> Inbound<'_> {
        if datagram.len() < crate::wg::DATA_OVERHEAD || datagram[..4] != [4, 0, 0, 0] {
            return Inbound::Slow;
        }
        let index = u32::from_le_bytes([datagram[4], datagram[5], datagram[6], datagram[7]]);
        let Some((i, keypair)) = self.recv.get(&index) else {
            return Inbound::Slow;
        };
        let peer = &self.peers[*i];
        let Ok(n) = keypair.open(now, datagram) else {
            return Inbound::Drop(DropReason::DecryptFailed);
        };
        self.opened(peer, from, datagram, n)
    }

    /// The receiver index shared by `datagrams` (one GRO message: 2 to 64
    /// datagrams from one sender) when every one is a transport message
    /// for a published keypair with that index; then
    /// [`Tables::open_batch`] and [`Tables::inbound_opened`] handle them as
    /// [`Tables::inbound`] would one by one, with their decryption
    /// overlapped.
    pub fn batch_index<'a>(
        &self,
        datagrams: impl ExactSizeIterator<Item = &'a [u8]>,
    ) -> Option<u32> {
        if !(2..=64).contains(&datagrams.len()) {
            return None;
        }
        let mut index = None;
        for d in datagrams {
            if d.len() < crate::wg::DATA_OVERHEAD || d[..4] != [4, 0, 0, 0] {
                return None;
            }
            let i = u32::from_le_bytes([d[4], d[5], d[6], d[7]]);
            if *index.get_or_insert(i) != i {
                return None;
            }
        }
        index.filter(|i| self.recv.contains_key(i))
    }

    /// Opens the datagrams [`Tables::batch_index`] accepted (bit `i` set:
    /// datagram `i` authentic, fresh and decrypted in place).
    pub fn open_batch<'a>(
        &self,
        index: u32,
        now: Instant,
        datagrams: impl Iterator<Item = &'a mut [u8]>,
    ) -> u64 {
        match self.recv.get(&index) {
            Some((_, keypair)) => keypair.open_all(now, datagrams),
            None => 0,
        }
    }

    /// What [`Tables::inbound`] decides for a datagram [`Tables::open_batch`]
    /// handled, given whether it opened.
    pub fn inbound_opened(
        &self,
        index: u32,
        from: SocketAddrV4,
        datagram: &mut [u8],
        opened: bool,
    ) -> Inbound<'_> {
        let Some((i, _)) = self.recv.get(&index) else {
            return Inbound::Drop(DropReason::DecryptFailed);
        };
        if !opened {
            return Inbound::Drop(DropReason::DecryptFailed);
        }
        let n = datagram.len() - crate::wg::DATA_OVERHEAD;
        self.opened(&self.peers[*i], from, datagram, n)
    }

    /// Classifies a decrypted datagram from `peer` (padded plaintext at
    /// `datagram[DATA_HEADER_LEN..][..n]`).
    fn opened<'t>(
        &'t self,
        peer: &'t PeerEntry,
        from: SocketAddrV4,
        datagram: &[u8],
        n: usize,
    ) -> Inbound<'t> {
        let start = DATA_HEADER_LEN;
        let plain = &datagram[start..start + n];
        let data = n > 0 && plain[0] >> 4 == 4 && Some(from) == peer.endpoint;
        if !data {
            return Inbound::Plain {
                peer,
                range: start..start + n,
            };
        }
        let Ok(Plaintext::Data(packet)) = frame::decode(plain) else {
            peer.stats.add_drop(DropReason::Malformed);
            return Inbound::Drop(DropReason::Malformed);
        };
        let len = packet.len();
        let verdict = match ipv4::addrs(packet) {
            None => Some(DropReason::Malformed),
            Some((src, _)) if !peer.prefix.is_some_and(|p| p.contains(src)) => {
                Some(DropReason::UnauthorizedPeer)
            }
            Some((_, dst)) if !self.local_prefix.is_some_and(|p| p.contains(dst)) => {
                Some(DropReason::WrongDestination)
            }
            Some(_) => None,
        };
        if let Some(reason) = verdict {
            peer.stats.add_drop(reason);
            return Inbound::Drop(reason);
        }
        Inbound::Data {
            peer,
            range: start..start + len,
        }
    }
}

/// The destination of a plausible IPv4 packet.
fn ipv4_dst(packet: &[u8]) -> Option<Ipv4Addr> {
    ipv4::addrs(packet).map(|(_, dst)| dst)
}

/// What to do with an outbound packet.
#[derive(Debug)]
pub enum Outbound<'a> {
    /// Encrypt with `keypair` and send to `endpoint`; count on `peer.stats`.
    Send {
        /// The route's owner.
        peer: &'a PeerEntry,
        /// Its sending keys.
        keypair: &'a Arc<Keypair>,
        /// Its preferred direct endpoint.
        endpoint: SocketAddrV4,
    },
    /// The node must handle it (no session yet, relayed path, no path).
    Slow,
    /// Drop and count it.
    Drop(DropReason),
}

/// What a received datagram turned out to be.
#[derive(Debug)]
pub enum Inbound<'a> {
    /// An authorized IPv4 packet at `datagram[range]`, ready for the TUN.
    Data {
        /// The sender.
        peer: &'a PeerEntry,
        /// Where the packet sits in the datagram.
        range: std::ops::Range<usize>,
    },
    /// Decrypted, but for the node: a control or relay frame, a keepalive,
    /// or data from an address that is not the peer's preferred endpoint
    /// (the node tracks paths and roaming). Hand `datagram[range]` to
    /// [`Node::handle_decrypted`](crate::node::Node::handle_decrypted).
    Plain {
        /// The authenticated sender.
        peer: &'a PeerEntry,
        /// Where the padded plaintext sits in the datagram.
        range: std::ops::Range<usize>,
    },
    /// Not a transport message for published keys (a handshake, unknown
    /// index): hand it unchanged to
    /// [`Node::handle_datagram`](crate::node::Node::handle_datagram).
    Slow,
    /// Drop and count it (the datagram may have been modified).
    Drop(DropReason),
}

/// The published tables and the dataplane's node-wide counters. Shared
/// (`Arc`) between the node and the data-plane threads.
#[derive(Debug, Default)]
pub struct DataPlane {
    generation: AtomicU64,
    tables: Mutex<Arc<Tables>>,
    drops: [AtomicU64; DropReason::ALL.len()],
}

impl DataPlane {
    /// A reader for one data-plane thread.
    pub fn reader(self: &Arc<Self>) -> Reader {
        let (generation, tables) = self.load();
        Reader {
            plane: Arc::clone(self),
            generation,
            tables,
        }
    }

    fn load(&self) -> (u64, Arc<Tables>) {
        let tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        (self.generation.load(Ordering::Acquire), Arc::clone(&tables))
    }

    /// Publishes a new generation (the node calls this).
    pub(crate) fn publish(&self, tables: Tables) {
        let mut current = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        *current = Arc::new(tables);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The current tables.
    pub fn tables(&self) -> Arc<Tables> {
        self.load().1
    }

    /// Counts a drop the dataplane made.
    pub fn add_drop(&self, reason: DropReason) {
        self.drops[reason.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Node-wide dataplane drops by reason (non-zero ones).
    pub fn drops(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL
            .iter()
            .zip(&self.drops)
            .map(|(r, c)| (*r, c.load(Ordering::Relaxed)))
            .filter(|(_, c)| *c > 0)
    }
}

/// What became of a packet read from the TUN once
/// [`Reader::seal_outbound`] acted on its [`Outbound`] verdict: the one
/// place that decides this, for the daemon's data-plane threads and the
/// simulator alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sealed {
    /// Sealed in place and counted on the peer: send the first `len` bytes
    /// of the buffer to `endpoint`.
    Send {
        /// The peer's preferred direct endpoint.
        endpoint: SocketAddrV4,
        /// Length of the sealed datagram.
        len: usize,
    },
    /// Hand the packet (still in place, unchanged) to
    /// [`Node::handle_tun_packet`](crate::node::Node::handle_tun_packet):
    /// the dataplane has no session or direct path for it, or sealing
    /// failed (the keys' message counter ran out), which the node resolves.
    Slow,
    /// Dropped and counted on the plane.
    Dropped,
}

/// A data-plane thread's view: a cached `Arc<Tables>`, refreshed per batch.
#[derive(Debug)]
pub struct Reader {
    plane: Arc<DataPlane>,
    generation: u64,
    tables: Arc<Tables>,
}

impl Reader {
    /// Picks up a newer generation if one was published (one atomic load
    /// when nothing changed).
    pub fn refresh(&mut self) {
        if self.plane.generation.load(Ordering::Acquire) != self.generation {
            (self.generation, self.tables) = self.plane.load();
        }
    }

    /// The tables as of the last refresh.
    pub fn tables(&self) -> &Tables {
        &self.tables
    }

    /// The shared plane (for drop counters).
    pub fn plane(&self) -> &DataPlane {
        &self.plane
    }

    /// Looks up the packet at `buf[DATA_HEADER_LEN..][..len]` and acts on
    /// the verdict: seals it in place for [`Outbound::Send`] (`buf` holds
    /// at least [`sealed_len`](crate::wg::sealed_len) of `len` bytes),
    /// counts an [`Outbound::Drop`], and sends everything else, a packet
    /// whose sealing failed included, to the slow path.
    pub fn seal_outbound(&self, buf: &mut [u8], len: usize, now: Instant) -> Sealed {
        let packet = DATA_HEADER_LEN..DATA_HEADER_LEN + len;
        match self.tables.outbound(&buf[packet], now) {
            Outbound::Send {
                peer,
                keypair,
                endpoint,
            } => match keypair.seal(buf, len) {
                Ok(sealed) => {
                    peer.stats.add_sent(1, len as u64);
                    Sealed::Send {
                        endpoint,
                        len: sealed,
                    }
                }
                Err(_) => Sealed::Slow,
            },
            Outbound::Slow => Sealed::Slow,
            Outbound::Drop(reason) => {
                self.plane.add_drop(reason);
                Sealed::Dropped
            }
        }
    }
}

#[cfg(test)]
mod tests;
