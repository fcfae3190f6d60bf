//! The WireGuard protocol, sans-IO: the Noise_IKpsk2 handshake and the
//! transport data messages, byte-compatible with WireGuard (the whitepaper's
//! message types 1–4), for every peer of one node.
//!
//! [`Wg`] holds our static key and, per peer added with [`Wg::add_peer`],
//! the handshakes in flight, the keypairs (WireGuard's previous / current /
//! next) and the timers. It never reads a clock, a socket or the OS RNG:
//!
//! * **time** comes in as `now: Instant` (monotonic, for every timer) and,
//!   where a handshake timestamp is written, `wall: Duration` since the
//!   UNIX epoch (turned into TAI64N; a responder rejects an initiation whose
//!   timestamp is not newer than the last one it accepted from that peer);
//! * **randomness** (ephemeral keys, session indices) comes from a
//!   ChaCha20 CSPRNG seeded by the caller, so a simulation is reproducible;
//! * **datagrams** go in through [`Wg::decrypt_from`] (with their source
//!   address, which cookies and the handshake limiter need) and out as the
//!   return values of [`Wg::initiate`], [`Wg::decrypt_from`] and
//!   [`Wg::encrypt`]; the caller chooses the path(s) they travel on.
//!
//! # Driving it
//!
//! ```
//! use std::time::{Duration, Instant};
//! use vine_core::PeerId;
//! use vine_core::wg::{Received, Wg};
//! use x25519_dalek::StaticSecret;
//!
//! let mut alice = Wg::new(StaticSecret::from([1; 32]), [11; 32]);
//! let mut bob = Wg::new(StaticSecret::from([2; 32]), [22; 32]);
//! alice.add_peer(bob.local_peer_id());
//! bob.add_peer(alice.local_peer_id());
//! let (now, wall) = (Instant::now(), Duration::from_secs(1_700_000_000));
//!
//! // Alice has a packet for Bob but no session: she starts a handshake
//! // (and keeps the packet until it completes).
//! let mut buf = Vec::new();
//! assert!(alice.encrypt(now, &bob.local_peer_id(), b"hi", &mut buf).is_err());
//! let initiation = alice.initiate(now, wall, &bob.local_peer_id())?;
//!
//! // Bob answers to wherever the initiation came from.
//! let Received::HandshakeInitiation { response, .. } = bob.decrypt(now, wall, &initiation, &mut buf)? else {
//!     unreachable!("a valid initiation from an added peer");
//! };
//! // Alice's keys are ready; her first message confirms Bob's.
//! assert!(matches!(alice.decrypt(now, wall, &response, &mut buf)?, Received::HandshakeComplete { .. }));
//! let mut datagram = Vec::new();
//! alice.encrypt(now, &bob.local_peer_id(), b"hi", &mut datagram)?;
//! let mut plaintext = Vec::new();
//! assert!(matches!(bob.decrypt(now, wall, &datagram, &mut plaintext)?, Received::Data { .. }));
//! assert_eq!(&plaintext[..2], b"hi"); // zero-padded to 16 bytes
//! assert!(bob.session_ready(&alice.local_peer_id(), now));
//!
//! // The event loop sleeps until `poll_timeout` and then asks what to do.
//! if let Some(deadline) = alice.poll_timeout() {
//!     for (_peer, _event) in alice.handle_timeout(deadline) {
//!         // RekeyNeeded / HandshakeRetry → call `initiate` and send it;
//!         // SessionExpired → the peer is unreachable until a new handshake.
//!     }
//! }
//! # Ok::<(), vine_core::wg::WgError>(())
//! ```
//!
//! # Differences from WireGuard
//!
//! * **The handshake limiter applies always.** WireGuard checks its
//!   per-source token bucket (20/s, burst 5) only under load; vine checks
//!   it for every handshake message with a valid mac1 (under load, after
//!   mac2), before any Diffie-Hellman. The node goes under load for a
//!   second at 1,024 handshake messages within a second, whenever the
//!   limiter refuses one (so a source spoofing another's address to drain
//!   its bucket turns the mac2 check on, which a spoofer cannot pass), or
//!   when the host says so ([`Wg::set_under_load`]). Cookie replies, mac2 and the cookie secret
//!   are as in WireGuard (see the `cookie` module).
//! * **Faster retries.** A handshake is retried after 250 ms, doubling up
//!   to 5 s (WireGuard: a fixed 5 s), and given up after 90 s.
//! * **More keys kept for races.** Up to three answered-but-unconfirmed and
//!   three receive-only keypairs are kept per peer (see the `peer` module),
//!   so retried and simultaneous handshakes converge without losing packets.
//! * **No MTU-capped padding.** Plaintexts are padded to a multiple of 16
//!   bytes; [`Wg::decrypt`] returns them with the padding, which
//!   [`ip_packet_len`] trims for IP packets.
//! * **No passive keepalives.** After [`Received::HandshakeComplete`] the
//!   caller sends its queued packets or an empty keepalive so the responder
//!   can confirm the session; vine's own liveness traffic replaces
//!   WireGuard's 10-second keepalive timer.

pub mod aead;
mod cookie;
mod crypto;
mod error;
mod index;
pub mod messages;
mod noise;
mod peer;
pub mod ratelimit;
mod replay;
mod session;
pub mod timers;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use x25519_dalek::StaticSecret;
use zeroize::Zeroize as _;

use crate::peer_id::PeerId;
use cookie::CookieChecker;
use crypto::{Tai64n, tai64n, tai64n_successor};
use index::Indices;
use messages::{
    COOKIE_REPLY_LEN, INIT_MAC1, INIT_SENDER, INITIATION_LEN, Message, RESP_MAC1, RESP_RECEIVER,
    RESP_SENDER, RESPONSE_LEN,
};
use noise::{LocalKeys, RemoteKeys};
use peer::Peer;
use ratelimit::{Load, RateLimiter};

pub use cookie::{COOKIE_SECRET_LATENCY, COOKIE_SECRET_MAX_AGE};
pub use error::WgError;
pub use messages::{DATA_HEADER_LEN, DATA_OVERHEAD, ip_packet_len, padded_len};
pub use replay::WINDOW as REPLAY_WINDOW;
pub use session::{Keypair, sealed_len};
pub use timers::TimerEvent;

/// What a received datagram turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// A transport message from `peer`; its plaintext (WireGuard-padded to
    /// a multiple of 16 bytes; empty for a keepalive) is in `out`.
    Data {
        /// The sender.
        peer: PeerId,
    },
    /// `peer` started a handshake and we are the responder: send
    /// `response` back to where the initiation came from. Our new keys
    /// become usable for sending once the initiator's first transport
    /// message arrives (until then any older session keeps being used).
    HandshakeInitiation {
        /// The initiator.
        peer: PeerId,
        /// The 92-byte handshake response.
        response: Vec<u8>,
    },
    /// A handshake we initiated completed: sending keys are ready. Send the
    /// queued packets now, or an empty keepalive if there are none, so the
    /// responder can confirm the session and send too.
    HandshakeComplete {
        /// The responder.
        peer: PeerId,
    },
    /// We are under load and a handshake message with a valid mac1 came
    /// without a valid mac2: it was not processed (no Diffie-Hellman).
    /// Send `reply` (a 64-byte cookie reply) back to where it came from;
    /// an honest sender retries with the cookie's mac2.
    CookieNeeded {
        /// The cookie reply.
        reply: Vec<u8>,
    },
    /// `peer` answered our last handshake message with a cookie reply: the
    /// cookie is kept and our next handshake messages to it carry mac2
    /// (the retry timer sends the next one).
    CookieReceived {
        /// The peer that sent it.
        peer: PeerId,
    },
}

/// How the handshake defences are doing: whether mac2 is required, and
/// counts since the start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HandshakeLoad {
    /// Whether the node is under load (mac2 required) at the latest time
    /// it was given.
    pub under_load: bool,
    /// Handshake messages that went on to Diffie-Hellman (each costs one to
    /// four X25519 operations).
    pub dh_computed: u64,
    /// Handshake messages dropped by the per-source limiter, before any
    /// Diffie-Hellman.
    pub rate_limited: u64,
    /// Cookie replies sent.
    pub cookie_replies_sent: u64,
    /// Cookie replies accepted (we were asked for mac2).
    pub cookie_replies_received: u64,
    /// Handshake messages that arrived under load without a valid mac2
    /// (each was answered with a cookie reply and not processed).
    pub mac2_missing: u64,
    /// Cookie replies dropped: not for our last handshake message, or
    /// forged.
    pub bad_cookie_replies: u64,
}

/// All WireGuard state of one node: its static key and every peer's
/// handshakes, keypairs and timers. See the [module docs](self) for the
/// loop that drives it.
pub struct Wg {
    local: LocalKeys,
    local_id: PeerId,
    rng: ChaCha20Rng,
    peers: BTreeMap<PeerId, Peer>,
    indices: Indices,
    /// The last timestamp we put in an initiation; the next is greater.
    last_timestamp: Option<Tai64n>,
    /// The set of usable keypairs changed since [`Wg::take_changed`].
    changed: bool,
    /// The transport AEAD of keypairs made from now on.
    aead: aead::Backend,
    /// Our cookie secret and reply key (responder side of cookies).
    cookies: CookieChecker,
    /// Per-source handshake token buckets.
    limiter: RateLimiter,
    /// Whether mac2 is required.
    load: Load,
    /// Counts for [`Wg::handshake_load`].
    counts: HandshakeLoad,
    /// mac1 of the last initiations we answered: a copy of one (the same
    /// initiation sent over several paths) is refused before any
    /// Diffie-Hellman, as its timestamp would be after it.
    answered: [[u8; messages::MAC_LEN]; ANSWERED_KEPT],
    next_answered: usize,
}

/// Initiations remembered in [`Wg::answered`].
const ANSWERED_KEPT: usize = 16;

impl std::fmt::Debug for Wg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wg")
            .field("local", &self.local_id)
            .field("peers", &self.peers)
            .finish_non_exhaustive()
    }
}

impl Wg {
    /// A node with static key `local_secret`; `rng_seed` seeds the CSPRNG
    /// for ephemeral keys and indices (draw it from the OS RNG in the
    /// daemon, from the scenario seed in a simulation).
    pub fn new(local_secret: StaticSecret, rng_seed: [u8; 32]) -> Self {
        let local = LocalKeys::new(local_secret);
        Self {
            cookies: CookieChecker::new(&local.public),
            local_id: PeerId::from_public_key(local.public),
            rng: ChaCha20Rng::from_seed(rng_seed),
            peers: BTreeMap::new(),
            indices: Indices::default(),
            last_timestamp: None,
            changed: false,
            aead: aead::Backend::detect().0,
            local,
            limiter: RateLimiter::default(),
            load: Load::default(),
            counts: HandshakeLoad::default(),
            answered: [[0; messages::MAC_LEN]; ANSWERED_KEPT],
            next_answered: 0,
        }
    }

    /// The transport AEAD implementation for sessions made from now on
    /// ([`Wg::new`] starts with [`aead::Backend::detect`]'s choice).
    pub fn set_aead_backend(&mut self, backend: aead::Backend) {
        self.aead = backend;
    }

    /// Our PeerId (our static public key).
    pub fn local_peer_id(&self) -> PeerId {
        self.local_id
    }

    /// Accepts handshakes with `peer` (its static key is
    /// `peer.public_key()`), without a pre-shared key. Adding a peer that
    /// is already there changes nothing.
    pub fn add_peer(&mut self, peer: PeerId) {
        let local = &self.local;
        self.peers
            .entry(peer)
            .or_insert_with(|| Peer::new(RemoteKeys::new(local, *peer.public_key(), [0; 32])));
    }

    /// Like [`Wg::add_peer`] with a pre-shared key mixed into every
    /// handshake (both sides must agree). For a peer already present, the
    /// key applies from its next handshake on; current sessions are kept.
    pub fn add_peer_with_psk(&mut self, peer: PeerId, mut psk: [u8; 32]) {
        let keys = RemoteKeys::new(&self.local, *peer.public_key(), psk);
        psk.zeroize();
        match self.peers.get_mut(&peer) {
            Some(existing) => existing.keys = keys,
            None => {
                self.peers.insert(peer, Peer::new(keys));
            }
        }
    }

    /// Forgets `peer`: its keys, handshakes and indices.
    pub fn remove_peer(&mut self, peer: &PeerId) {
        if self.peers.remove(peer).is_some() {
            self.changed = true;
            self.indices.release_peer(peer);
        }
    }

    /// Whether `peer` was added.
    pub fn has_peer(&self, peer: &PeerId) -> bool {
        self.peers.contains_key(peer)
    }

    /// The added peers, in PeerId order.
    pub fn peers(&self) -> impl Iterator<Item = &PeerId> {
        self.peers.keys()
    }

    /// Whether [`Wg::encrypt`] to `peer` would succeed at `now`.
    pub fn session_ready(&self, peer: &PeerId, now: Instant) -> bool {
        self.peers.get(peer).is_some_and(|p| p.session_ready(now))
    }

    /// Whether initiations to `peer` are awaiting a response.
    pub fn handshake_in_progress(&self, peer: &PeerId) -> bool {
        self.peers
            .get(peer)
            .is_some_and(Peer::handshake_in_progress)
    }

    /// Builds a handshake initiation (148 bytes) to send to `peer` over any
    /// path(s), and schedules its retry. Each call makes a fresh
    /// initiation; the responses to the last three are accepted.
    pub fn initiate(
        &mut self,
        now: Instant,
        wall: Duration,
        peer: &PeerId,
    ) -> Result<Vec<u8>, WgError> {
        let state = self.peers.get_mut(peer).ok_or(WgError::UnknownPeer)?;
        // Our timestamps strictly increase even if the wall clock stalls or
        // steps back a little, so a quick retry is never taken for a replay.
        let mut timestamp = tai64n(wall);
        if let Some(last) = self.last_timestamp.filter(|last| timestamp <= *last) {
            timestamp = tai64n_successor(&last);
        }
        let ephemeral = random_secret(&mut self.rng);
        let local_index = self.indices.allocate(&mut self.rng, *peer);
        let mut msg = [0u8; INITIATION_LEN];
        let built = noise::create_initiation(
            &self.local,
            &state.keys,
            ephemeral,
            local_index,
            &timestamp,
            &mut msg,
        );
        match built {
            Ok(initiator) => {
                state.cookie.stamp(now, &mut msg, INIT_MAC1);
                self.load.saw(now);
                self.last_timestamp = Some(timestamp);
                state.initiation_sent(initiator, now, &mut self.indices);
                Ok(msg.to_vec())
            }
            Err(e) => {
                self.indices.release(local_index);
                Err(e)
            }
        }
    }

    /// Encrypts one plaintext (an IP packet, a control frame, or nothing for
    /// a keepalive) for `peer`, appending a type-4 datagram of
    /// `DATA_OVERHEAD + padded length` bytes to `out`. Fails with
    /// [`WgError::NoSession`] when there are no usable keys; the caller then
    /// queues the plaintext and calls [`Wg::initiate`].
    pub fn encrypt(
        &mut self,
        now: Instant,
        peer: &PeerId,
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), WgError> {
        self.peers
            .get_mut(peer)
            .ok_or(WgError::UnknownPeer)?
            .encrypt(now, plaintext, out)
    }

    /// Processes a WireGuard datagram received from `from`. For transport
    /// data the plaintext is written to `out` (cleared first; left empty on
    /// error). An error leaves every session and handshake as it was.
    ///
    /// Handshake messages pass, before any Diffie-Hellman: mac1; under load
    /// ([`Wg::set_under_load`], 1,024 handshake messages within a second, or
    /// a source over its limit within the last second) a
    /// valid mac2 for `from`, else the answer is
    /// [`Received::CookieNeeded`]; and `from`'s token bucket (20/s, burst
    /// 5), else [`WgError::RateLimited`]. Not under load, mac2 is not
    /// checked (a peer may still send one). Cookie replies to our own
    /// handshake messages give [`Received::CookieReceived`].
    ///
    /// `wall` is accepted for symmetry with [`Wg::initiate`]; timestamps
    /// are only compared with each other.
    pub fn decrypt_from(
        &mut self,
        now: Instant,
        wall: Duration,
        from: SocketAddr,
        datagram: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Received, WgError> {
        let _ = wall;
        self.receive(now, Some(from), datagram, out)
    }

    /// [`Wg::decrypt_from`] for a datagram without a source address to
    /// hold to account (tests, or a host that limits handshakes itself):
    /// mac1 is checked, but neither the handshake limiter nor the load
    /// detector sees it and mac2 is never required.
    pub fn decrypt(
        &mut self,
        now: Instant,
        wall: Duration,
        datagram: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Received, WgError> {
        let _ = wall;
        self.receive(now, None, datagram, out)
    }

    /// The node is under load until `until`: handshake messages need a
    /// valid mac2 (senders without one get a cookie reply). The host calls
    /// this from its queue depth; each call replaces the last (an instant
    /// in the past ends it). The load detected from the arrival rate
    /// applies as well.
    pub fn set_under_load(&mut self, until: Instant) {
        self.load.set_until(until);
    }

    /// Whether the node is under load at `now`.
    pub fn under_load(&self, now: Instant) -> bool {
        self.load.under_load(now)
    }

    /// The handshake defences' state and counts.
    pub fn handshake_load(&self) -> HandshakeLoad {
        HandshakeLoad {
            under_load: self.load.under_load_lately(),
            ..self.counts
        }
    }

    fn receive(
        &mut self,
        now: Instant,
        from: Option<SocketAddr>,
        datagram: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Received, WgError> {
        out.clear();
        match messages::parse(datagram)? {
            Message::Initiation(msg) => {
                let mac1 = &msg[INIT_MAC1..INIT_MAC1 + messages::MAC_LEN];
                if self.answered.iter().any(|seen| seen.as_slice() == mac1) {
                    // A copy of an initiation we answered (mac1 covers the
                    // ephemeral key and the timestamp): its timestamp is
                    // not newer, and finding that out needs no DH.
                    return Err(WgError::StaleTimestamp);
                }
                if let Some(early) = self.admit(now, from, msg, INIT_MAC1, INIT_SENDER)? {
                    return Ok(early);
                }
                self.handle_initiation(now, msg)
            }
            Message::Response(msg) => {
                if let Some(early) = self.admit(now, from, msg, RESP_MAC1, RESP_SENDER)? {
                    return Ok(early);
                }
                self.handle_response(now, msg)
            }
            Message::CookieReply(reply) => {
                let result = self.handle_cookie_reply(now, reply);
                match result {
                    Ok(_) => self.counts.cookie_replies_received += 1,
                    Err(_) => self.counts.bad_cookie_replies += 1,
                }
                result
            }
            Message::Data {
                receiver,
                counter,
                payload,
            } => {
                let peer_id = self.indices.get(receiver).ok_or(WgError::UnknownIndex)?;
                let peer = self.peers.get_mut(&peer_id).ok_or(WgError::UnknownIndex)?;
                let (slot, keypair) = peer.keypair(receiver).ok_or(WgError::UnknownIndex)?;
                keypair.decrypt(now, counter, payload, out)?;
                if matches!(slot, peer::Slot::Next(_)) {
                    self.changed = true;
                }
                peer.received(slot, now, &mut self.indices);
                Ok(Received::Data { peer: peer_id })
            }
        }
    }

    /// The checks a handshake message passes before any Diffie-Hellman:
    /// mac1, then (with a source) the load detector, mac2 under load and
    /// the source's token bucket. `Ok(Some(_))` is a cookie reply to send
    /// instead of processing the message; `Ok(None)` lets it through.
    fn admit(
        &mut self,
        now: Instant,
        from: Option<SocketAddr>,
        msg: &[u8],
        mac1_at: usize,
        sender_at: usize,
    ) -> Result<Option<Received>, WgError> {
        noise::verify_mac1(&self.local, msg, mac1_at)?;
        if let Some(from) = from {
            self.load.arrived(now);
            if self.load.under_load(now)
                && !self
                    .cookies
                    .mac2_valid(now, &mut self.rng, msg, mac1_at, from)
            {
                self.counts.mac2_missing += 1;
                self.counts.cookie_replies_sent += 1;
                let sender = messages::read_u32(msg, sender_at);
                let reply = self
                    .cookies
                    .reply(now, &mut self.rng, msg, mac1_at, sender, from);
                return Ok(Some(Received::CookieNeeded {
                    reply: reply.to_vec(),
                }));
            }
            if !self.limiter.allow(from.ip(), now) {
                self.load.overflowed(now);
                self.counts.rate_limited += 1;
                return Err(WgError::RateLimited);
            }
        }
        Ok(None)
    }

    fn handle_cookie_reply(
        &mut self,
        now: Instant,
        reply: &[u8; COOKIE_REPLY_LEN],
    ) -> Result<Received, WgError> {
        let receiver = messages::read_u32(reply, cookie::REPLY_RECEIVER);
        let peer_id = self.indices.get(receiver).ok_or(WgError::BadCookieReply)?;
        let peer = self
            .peers
            .get_mut(&peer_id)
            .ok_or(WgError::BadCookieReply)?;
        peer.cookie.consume(now, reply)?;
        Ok(Received::CookieReceived { peer: peer_id })
    }

    fn handle_initiation(
        &mut self,
        now: Instant,
        msg: &[u8; INITIATION_LEN],
    ) -> Result<Received, WgError> {
        self.counts.dh_computed += 1;
        let peers = &self.peers;
        let consumed =
            noise::consume_initiation(&self.local, msg, |id| peers.get(id).map(|p| &p.keys))?;
        let peer_id = consumed.peer;
        let peer = self.peers.get_mut(&peer_id).ok_or(WgError::UnknownPeer)?;
        peer.check_initiation(&consumed.timestamp, now)?;

        let ephemeral = random_secret(&mut self.rng);
        let local_index = self.indices.allocate(&mut self.rng, peer_id);
        let mut response = [0u8; RESPONSE_LEN];
        let keys = match noise::create_response(
            &peer.keys,
            &consumed,
            ephemeral,
            local_index,
            &mut response,
        ) {
            Ok(keys) => keys,
            Err(e) => {
                self.indices.release(local_index);
                return Err(e);
            }
        };
        peer.cookie.stamp(now, &mut response, RESP_MAC1);
        let keypair = Keypair::new(
            local_index,
            consumed.sender_index,
            &keys,
            now,
            false,
            self.aead,
        );
        peer.responder_complete(consumed.timestamp, now, keypair, &mut self.indices);
        self.answered[self.next_answered]
            .copy_from_slice(&msg[INIT_MAC1..INIT_MAC1 + messages::MAC_LEN]);
        self.next_answered = (self.next_answered + 1) % ANSWERED_KEPT;
        Ok(Received::HandshakeInitiation {
            peer: peer_id,
            response: response.to_vec(),
        })
    }

    fn handle_response(
        &mut self,
        now: Instant,
        msg: &[u8; RESPONSE_LEN],
    ) -> Result<Received, WgError> {
        let receiver = messages::read_u32(msg, RESP_RECEIVER);
        let peer_id = self.indices.get(receiver).ok_or(WgError::UnknownIndex)?;
        let peer = self.peers.get_mut(&peer_id).ok_or(WgError::UnknownIndex)?;
        let initiator = peer.pending(receiver).ok_or(WgError::UnknownIndex)?;
        self.counts.dh_computed += 1;
        let (remote_index, keys) =
            noise::consume_response(&self.local, &peer.keys, initiator, msg)?;
        let keypair = Keypair::new(receiver, remote_index, &keys, now, true, self.aead);
        peer.initiator_complete(keypair, &mut self.indices);
        self.changed = true;
        Ok(Received::HandshakeComplete { peer: peer_id })
    }

    /// Whether the keypairs usable for sending or receiving changed since
    /// the last call (a handshake completed or was confirmed, keys expired,
    /// a peer was removed); clears the flag. The node republishes its
    /// data-plane tables when it is set.
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// The keypair [`Wg::encrypt`] would use for `peer` at `now`, shared so
    /// other threads can encrypt with it ([`Keypair::seal`]).
    pub fn send_keypair(&self, peer: &PeerId, now: Instant) -> Option<std::sync::Arc<Keypair>> {
        self.peers.get(peer)?.send_keypair(now).cloned()
    }

    /// The confirmed keypairs of `peer` (current and receive-only), whose
    /// transport messages another thread may decrypt ([`Keypair::open`]).
    /// Unconfirmed keypairs are not listed: their first message must go
    /// through [`Wg::decrypt`] so the session is confirmed.
    pub fn confirmed_keypairs(
        &self,
        peer: &PeerId,
    ) -> impl Iterator<Item = &std::sync::Arc<Keypair>> {
        self.peers
            .get(peer)
            .into_iter()
            .flat_map(|p| p.confirmed_keypairs())
    }

    /// The earliest instant at which [`Wg::handle_timeout`] has work, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.peers.values().filter_map(Peer::poll_timeout).min()
    }

    /// Runs every due timer: expires old keys, schedules retries and
    /// rekeys. Returns what the node should do, per peer, in PeerId order.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<(PeerId, TimerEvent)> {
        self.load.saw(now);
        let mut out = Vec::new();
        let mut events = Vec::new();
        for (id, peer) in &mut self.peers {
            if peer.poll_timeout().is_some_and(|at| at <= now) {
                self.changed = true;
                peer.handle_timeout(now, &mut self.indices, &mut events);
                out.extend(events.drain(..).map(|event| (*id, event)));
            }
        }
        out
    }
}

/// A fresh X25519 secret from the CSPRNG.
fn random_secret(rng: &mut ChaCha20Rng) -> StaticSecret {
    let mut bytes = [0u8; 32];
    rng.fill_bytes(&mut bytes);
    let secret = StaticSecret::from(bytes);
    bytes.zeroize();
    secret
}
