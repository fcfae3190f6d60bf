//! What travels inside an encrypted session: the plaintext kinds, and the
//! peer frames (announce, withdraw, candidates and requests for them,
//! punching, probes, relay refusals) that nodes exchange with each other.
//!
//! Every datagram between two vine nodes is a WireGuard-protocol message
//! ([`crate::wg`]). The *plaintext* of a transport message is one of:
//!
//! | first byte | kind | carried |
//! |---|---|---|
//! | (empty) | keepalive | nothing |
//! | `0x40`–`0x4f` | [`Plaintext::Data`] | one IPv4 packet for the TUN device |
//! | `0xc1` | [`Plaintext::Frame`] | one peer [`Frame`] (version byte, type byte, body) |
//! | `0xc2` | [`Plaintext::Relay`] | a direction byte, a peer id and a whole WireGuard datagram of *another* session |
//!
//! IPv4 packets always start with `0x4_`, so the three kinds cannot be
//! confused. The WireGuard protocol pads plaintexts with zeros to a multiple
//! of 16 bytes, so every plaintext is self-delimiting: a data packet by the IPv4
//! total length, a peer frame by its fields, a relay frame by an
//! explicit length; up to 15 zero bytes of padding may follow. Peer frames
//! are only ever read from inside an authenticated session: the session tells who sent them.
//!
//! A relay frame sent *to* a relay ([`RelayDirection::Forward`]) names the
//! destination; the frame the relay sends on ([`RelayDirection::Deliver`])
//! names the original source. The inner datagram stays
//! end-to-end encrypted between source and destination, so a relay can
//! neither read nor forge it.
//!
//! All multi-byte integers are big-endian. Decoding checks every length and
//! never panics; unknown versions and types are errors, so peers running a
//! newer protocol are told apart from corruption.

use std::net::{Ipv4Addr, SocketAddrV4};

use crate::lease::WorkloadName;
use crate::names::{MAX_NAME_RECORDS, NAMES_VERSION, NameSet};
use crate::net::Ipv4Prefix;
use crate::peer_id::PeerId;

/// Frame protocol version this node speaks.
pub const FRAME_VERSION: u8 = 1;
/// First byte of a peer frame.
pub const TAG_FRAME: u8 = 0xc1;
/// First byte of a relay frame.
pub const TAG_RELAY: u8 = 0xc2;
/// Most endpoint candidates one message carries.
pub const MAX_CANDIDATES: usize = 16;
/// Longest network id on the wire (matches config validation).
pub const MAX_NETWORK_ID: usize = 64;
/// Most peers one [`Frame::PeerInfoRequest`] names.
pub const MAX_REQUESTED_PEERS: usize = 32;

/// A decoded session plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plaintext<'a> {
    /// Empty plaintext.
    Keepalive,
    /// An IPv4 packet.
    Data(&'a [u8]),
    /// A peer frame.
    Frame(Frame),
    /// A relayed datagram.
    Relay {
        /// Forward (to a relay) or deliver (from a relay).
        direction: RelayDirection,
        /// Destination when forwarding, original source when delivering.
        peer: PeerId,
        /// The inner WireGuard datagram.
        datagram: &'a [u8],
    },
}

/// Which way a relay frame travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayDirection {
    /// To a relay: "forward this to `peer`".
    Forward,
    /// From a relay: "`peer` sent you this".
    Deliver,
}

/// Why a relay refused to forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RelayRefusal {
    /// The relay does not relay (policy).
    NotARelay,
    /// Source or destination is not on the relay's allowlist.
    NotAllowlisted,
    /// The relay has no live session to the destination.
    DestinationUnreachable,
    /// Rate cap reached.
    RateLimited,
}

impl RelayRefusal {
    fn to_byte(self) -> u8 {
        match self {
            Self::NotARelay => 1,
            Self::NotAllowlisted => 2,
            Self::DestinationUnreachable => 3,
            Self::RateLimited => 4,
        }
    }

    fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            1 => Self::NotARelay,
            2 => Self::NotAllowlisted,
            3 => Self::DestinationUnreachable,
            4 => Self::RateLimited,
            _ => return None,
        })
    }
}

/// Where a node can be reached.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Candidates {
    /// The node's own socket addresses (reachable as they are: public hosts,
    /// or peers on the same LAN).
    pub local: Vec<SocketAddrV4>,
    /// NAT mappings of the node as other peers observed them; reaching one
    /// usually needs both sides to send at once (hole punching).
    pub reflexive: Vec<SocketAddrV4>,
}

impl Candidates {
    /// Whether there is no address at all.
    pub fn is_empty(&self) -> bool {
        self.local.is_empty() && self.reflexive.is_empty()
    }
}

/// A peer frame: a message between two nodes inside their session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// "I am a member of `network_id` and own `prefix`; reach me at these
    /// endpoints." Sent when a session comes up and periodically.
    Announce {
        /// Overlay the sender joined.
        network_id: String,
        /// Prefix the sender claims.
        prefix: Ipv4Prefix,
        /// Sender's endpoint candidates.
        candidates: Candidates,
        /// Increases with every announce, so stale ones can be ignored.
        seq: u64,
    },
    /// "I am leaving (or giving up) `prefix` in `network_id`."
    Withdraw {
        /// Overlay.
        network_id: String,
        /// Prefix given up.
        prefix: Ipv4Prefix,
    },
    /// Where a member can be reached: sent by a node when asked
    /// ([`Frame::PeerInfoRequest`]) and, to peers that asked for everything,
    /// when what it knows about a member changes. Believed only from a
    /// signaling peer (a bootstrap peer, or one the allowlist marks
    /// `relay_capable`), or when it is about the sender itself.
    PeerInfo {
        /// The member.
        peer: PeerId,
        /// Its endpoint candidates.
        candidates: Candidates,
    },
    /// "Please ask `target` to punch toward me" (to a signaling peer).
    PunchRequest {
        /// Who should punch.
        target: PeerId,
        /// Requester's candidates.
        candidates: Candidates,
    },
    /// "`from` is punching toward you; punch back" (from a signaling peer).
    PunchNotify {
        /// The requester.
        from: PeerId,
        /// Its candidates.
        candidates: Candidates,
    },
    /// Path probe.
    Probe {
        /// Echoed in the reply.
        id: u64,
    },
    /// Path probe answer, with the address the probe arrived from (the
    /// prober's reflexive address on this path; unspecified when relayed).
    ProbeReply {
        /// The probe's id.
        id: u64,
        /// Source address of the probe as the replier saw it.
        observed: SocketAddrV4,
    },
    /// A relay could not forward a frame to `peer`.
    RelayRefused {
        /// The destination named in the refused frame.
        peer: PeerId,
        /// Why.
        reason: RelayRefusal,
    },
    /// "These are my overlay address and my workloads' names" (a
    /// versioned, sequence-numbered set; see [`crate::names`]).
    Names(NameSet),
    /// "Send me [`Frame::PeerInfo`]": about `peers`, or, when `peers` is
    /// empty, about every member you know, and again whenever what you
    /// know about one changes (until the session fails). Sent to signaling
    /// peers when a session with them comes up, and for allowlisted peers
    /// still missing a session with the periodic announce.
    PeerInfoRequest {
        /// The sender holds nothing from the receiver yet (it just
        /// started): answer in full even if it asked before.
        fresh: bool,
        /// The members asked about (at most [`MAX_REQUESTED_PEERS`]); empty:
        /// all of them.
        peers: Vec<PeerId>,
    },
}

/// Why a frame could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The first byte is not a known frame tag.
    #[error("unknown frame tag {0:#04x}")]
    UnknownTag(u8),
    /// A peer frame from a different protocol version.
    #[error("peer frame protocol version {0} is not supported (this node speaks {FRAME_VERSION})")]
    Version(u8),
    /// Unknown peer frame type.
    #[error("unknown peer frame type {0}")]
    UnknownType(u8),
    /// The frame ends early.
    #[error("frame is truncated")]
    Truncated,
    /// Bytes left over after the message.
    #[error("frame has {0} trailing bytes")]
    Trailing(usize),
    /// A field holds a value that cannot be valid.
    #[error("invalid field: {0}")]
    Invalid(&'static str),
}

/// Classifies and decodes a decrypted plaintext.
pub fn decode(plaintext: &[u8]) -> Result<Plaintext<'_>, DecodeError> {
    let Some(&tag) = plaintext.first() else {
        return Ok(Plaintext::Keepalive);
    };
    match tag {
        0x40..=0x4f => {
            // The IPv4 total length delimits the packet; the rest is padding.
            let total = match plaintext.get(2..4) {
                Some(b) => usize::from(u16::from_be_bytes([b[0], b[1]])),
                None => return Err(DecodeError::Truncated),
            };
            let packet = plaintext.get(..total).ok_or(DecodeError::Truncated)?;
            check_padding(&plaintext[total..])?;
            Ok(Plaintext::Data(packet))
        }
        TAG_FRAME => decode_frame(plaintext).map(Plaintext::Frame),
        TAG_RELAY => {
            let mut r = Reader(&plaintext[1..]);
            let direction = match r.u8()? {
                0 => RelayDirection::Forward,
                1 => RelayDirection::Deliver,
                _ => return Err(DecodeError::Invalid("relay direction")),
            };
            let peer = r.peer()?;
            let len = usize::from(u16::from_be_bytes([r.u8()?, r.u8()?]));
            if len == 0 {
                return Err(DecodeError::Truncated);
            }
            let datagram = r.take(len)?;
            check_padding(r.0)?;
            Ok(Plaintext::Relay {
                direction,
                peer,
                datagram,
            })
        }
        other => Err(DecodeError::UnknownTag(other)),
    }
}

/// Length of a relay frame header.
pub const RELAY_HEADER_LEN: usize = 36;

/// Padding after a frame: at most 15 zero bytes.
fn check_padding(rest: &[u8]) -> Result<(), DecodeError> {
    if rest.len() < 16 && rest.iter().all(|&b| b == 0) {
        Ok(())
    } else {
        Err(DecodeError::Trailing(rest.len()))
    }
}

/// Appends a relay frame carrying `datagram` to `out`.
pub fn encode_relay(direction: RelayDirection, peer: &PeerId, datagram: &[u8], out: &mut Vec<u8>) {
    encode_relay_header(direction, peer, datagram.len(), out);
    out.extend_from_slice(datagram);
}

/// Appends a relay frame header for a `len`-byte datagram to `out`; the
/// caller appends the datagram. Datagrams longer than 65535 bytes cannot
/// exist (UDP), so `len` is clamped.
pub fn encode_relay_header(
    direction: RelayDirection,
    peer: &PeerId,
    len: usize,
    out: &mut Vec<u8>,
) {
    out.push(TAG_RELAY);
    out.push(match direction {
        RelayDirection::Forward => 0,
        RelayDirection::Deliver => 1,
    });
    out.extend_from_slice(peer.public_key());
    out.extend_from_slice(&(len.min(usize::from(u16::MAX)) as u16).to_be_bytes());
}

fn decode_frame(bytes: &[u8]) -> Result<Frame, DecodeError> {
    let mut r = Reader(bytes.get(1..).ok_or(DecodeError::Truncated)?);
    let version = r.u8()?;
    if version != FRAME_VERSION {
        return Err(DecodeError::Version(version));
    }
    let kind = r.u8()?;
    let msg = match kind {
        1 => Frame::Announce {
            network_id: r.network_id()?,
            prefix: r.prefix()?,
            candidates: r.candidates()?,
            seq: r.u64()?,
        },
        2 => Frame::Withdraw {
            network_id: r.network_id()?,
            prefix: r.prefix()?,
        },
        3 => Frame::PeerInfo {
            peer: r.peer()?,
            candidates: r.candidates()?,
        },
        4 => Frame::PunchRequest {
            target: r.peer()?,
            candidates: r.candidates()?,
        },
        5 => Frame::PunchNotify {
            from: r.peer()?,
            candidates: r.candidates()?,
        },
        6 => Frame::Probe { id: r.u64()? },
        7 => Frame::ProbeReply {
            id: r.u64()?,
            observed: r.addr()?,
        },
        8 => Frame::RelayRefused {
            peer: r.peer()?,
            reason: RelayRefusal::from_byte(r.u8()?)
                .ok_or(DecodeError::Invalid("refusal reason"))?,
        },
        10 => Frame::Names(r.names()?),
        9 => {
            let flags = r.u8()?;
            if flags & !1 != 0 {
                return Err(DecodeError::Invalid("peer info request flags"));
            }
            let n = usize::from(r.u8()?);
            if n > MAX_REQUESTED_PEERS {
                return Err(DecodeError::Invalid("too many requested peers"));
            }
            Frame::PeerInfoRequest {
                fresh: flags & 1 == 1,
                peers: (0..n).map(|_| r.peer()).collect::<Result<_, _>>()?,
            }
        }
        other => return Err(DecodeError::UnknownType(other)),
    };
    check_padding(r.0)?;
    Ok(msg)
}

impl Frame {
    /// Encodes as a peer frame (tag, version, type, body) appended to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(TAG_FRAME);
        out.push(FRAME_VERSION);
        match self {
            Self::Announce {
                network_id,
                prefix,
                candidates,
                seq,
            } => {
                out.push(1);
                put_network_id(out, network_id);
                put_prefix(out, prefix);
                put_candidates(out, candidates);
                out.extend_from_slice(&seq.to_be_bytes());
            }
            Self::Withdraw { network_id, prefix } => {
                out.push(2);
                put_network_id(out, network_id);
                put_prefix(out, prefix);
            }
            Self::PeerInfo { peer, candidates } => {
                out.push(3);
                out.extend_from_slice(peer.public_key());
                put_candidates(out, candidates);
            }
            Self::PunchRequest { target, candidates } => {
                out.push(4);
                out.extend_from_slice(target.public_key());
                put_candidates(out, candidates);
            }
            Self::PunchNotify { from, candidates } => {
                out.push(5);
                out.extend_from_slice(from.public_key());
                put_candidates(out, candidates);
            }
            Self::Probe { id } => {
                out.push(6);
                out.extend_from_slice(&id.to_be_bytes());
            }
            Self::ProbeReply { id, observed } => {
                out.push(7);
                out.extend_from_slice(&id.to_be_bytes());
                put_addr(out, observed);
            }
            Self::RelayRefused { peer, reason } => {
                out.push(8);
                out.extend_from_slice(peer.public_key());
                out.push(reason.to_byte());
            }
            Self::Names(set) => {
                out.push(10);
                put_names(out, set);
            }
            Self::PeerInfoRequest { fresh, peers } => {
                out.push(9);
                out.push(u8::from(*fresh));
                let peers = &peers[..peers.len().min(MAX_REQUESTED_PEERS)];
                out.push(peers.len() as u8);
                for p in peers {
                    out.extend_from_slice(p.public_key());
                }
            }
        }
    }

    /// Encodes into a new buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        self.encode(&mut out);
        out
    }

    /// Short name for logs and counters.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Announce { .. } => "announce",
            Self::Withdraw { .. } => "withdraw",
            Self::PeerInfo { .. } => "peer_info",
            Self::PunchRequest { .. } => "punch_request",
            Self::PunchNotify { .. } => "punch_notify",
            Self::Probe { .. } => "probe",
            Self::ProbeReply { .. } => "probe_reply",
            Self::RelayRefused { .. } => "relay_refused",
            Self::Names(_) => "names",
            Self::PeerInfoRequest { .. } => "peer_info_request",
        }
    }
}

fn put_network_id(out: &mut Vec<u8>, id: &str) {
    // Longer ids never pass config validation; clamp so encoding stays total.
    let bytes = &id.as_bytes()[..id.len().min(MAX_NETWORK_ID)];
    out.push(bytes.len() as u8);
    out.extend_from_slice(bytes);
}

fn put_prefix(out: &mut Vec<u8>, p: &Ipv4Prefix) {
    out.extend_from_slice(&p.network().octets());
    out.push(p.len());
}

fn put_addr(out: &mut Vec<u8>, a: &SocketAddrV4) {
    out.extend_from_slice(&a.ip().octets());
    out.extend_from_slice(&a.port().to_be_bytes());
}

fn put_candidates(out: &mut Vec<u8>, c: &Candidates) {
    put_addrs(out, &c.local);
    put_addrs(out, &c.reflexive);
}

fn put_names(out: &mut Vec<u8>, set: &NameSet) {
    out.push(NAMES_VERSION);
    out.extend_from_slice(&set.seq.to_be_bytes());
    match set.node {
        Some(a) => {
            out.push(1);
            out.extend_from_slice(&a.octets());
        }
        None => out.push(0),
    }
    let records: Vec<_> = set.workloads.iter().take(MAX_NAME_RECORDS).collect();
    out.push(records.len() as u8);
    for (name, address) in records {
        out.push(name.as_str().len() as u8);
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(&address.octets());
    }
}

fn put_addrs(out: &mut Vec<u8>, c: &[SocketAddrV4]) {
    let c = &c[..c.len().min(MAX_CANDIDATES)];
    out.push(c.len() as u8);
    for a in c {
        put_addr(out, a);
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(b))
    }

    fn peer(&mut self) -> Result<PeerId, DecodeError> {
        let mut b = [0u8; 32];
        b.copy_from_slice(self.take(32)?);
        Ok(PeerId::from_public_key(b))
    }

    fn addr(&mut self) -> Result<SocketAddrV4, DecodeError> {
        let b = self.take(6)?;
        Ok(SocketAddrV4::new(
            Ipv4Addr::new(b[0], b[1], b[2], b[3]),
            u16::from_be_bytes([b[4], b[5]]),
        ))
    }

    fn prefix(&mut self) -> Result<Ipv4Prefix, DecodeError> {
        let b = self.take(5)?;
        let addr = Ipv4Addr::new(b[0], b[1], b[2], b[3]);
        let p = Ipv4Prefix::containing(addr, b[4]).ok_or(DecodeError::Invalid("prefix length"))?;
        if p.network() != addr {
            return Err(DecodeError::Invalid("prefix has host bits set"));
        }
        Ok(p)
    }

    fn network_id(&mut self) -> Result<String, DecodeError> {
        let n = usize::from(self.u8()?);
        if n > MAX_NETWORK_ID {
            return Err(DecodeError::Invalid("network id too long"));
        }
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| DecodeError::Invalid("network id is not UTF-8"))
    }

    fn candidates(&mut self) -> Result<Candidates, DecodeError> {
        Ok(Candidates {
            local: self.addrs()?,
            reflexive: self.addrs()?,
        })
    }

    fn ipv4(&mut self) -> Result<Ipv4Addr, DecodeError> {
        let b = self.take(4)?;
        Ok(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
    }

    fn names(&mut self) -> Result<NameSet, DecodeError> {
        if self.u8()? != NAMES_VERSION {
            return Err(DecodeError::Invalid("name set version"));
        }
        let seq = self.u64()?;
        let node = match self.u8()? {
            0 => None,
            1 => Some(self.ipv4()?),
            _ => return Err(DecodeError::Invalid("name set node flag")),
        };
        let n = usize::from(self.u8()?);
        if n > MAX_NAME_RECORDS {
            return Err(DecodeError::Invalid("too many name records"));
        }
        let mut workloads = std::collections::BTreeMap::new();
        for _ in 0..n {
            let len = usize::from(self.u8()?);
            let raw = self.take(len)?;
            let name: WorkloadName = std::str::from_utf8(raw)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or(DecodeError::Invalid("workload name"))?;
            if name.as_str() != std::str::from_utf8(raw).unwrap_or_default() {
                return Err(DecodeError::Invalid("workload name not in lowercase form"));
            }
            let address = self.ipv4()?;
            if workloads.insert(name, address).is_some() {
                return Err(DecodeError::Invalid("workload name listed twice"));
            }
        }
        Ok(NameSet {
            seq,
            node,
            workloads,
        })
    }

    fn addrs(&mut self) -> Result<Vec<SocketAddrV4>, DecodeError> {
        let n = usize::from(self.u8()?);
        if n > MAX_CANDIDATES {
            return Err(DecodeError::Invalid("too many candidates"));
        }
        (0..n).map(|_| self.addr()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(n: u8) -> PeerId {
        PeerId::from_public_key([n; 32])
    }

    fn addr(s: &str) -> SocketAddrV4 {
        s.parse().expect("test address")
    }

    fn all_messages() -> Vec<Frame> {
        let prefix: Ipv4Prefix = "10.42.1.0/24".parse().expect("prefix");
        let c = Candidates {
            local: vec![addr("192.0.2.1:4100")],
            reflexive: vec![addr("198.51.100.7:40001")],
        };
        vec![
            Frame::Announce {
                network_id: "home-net".into(),
                prefix,
                candidates: c.clone(),
                seq: 7,
            },
            Frame::Withdraw {
                network_id: "home-net".into(),
                prefix,
            },
            Frame::PeerInfo {
                peer: peer(1),
                candidates: c.clone(),
            },
            Frame::PunchRequest {
                target: peer(2),
                candidates: c.clone(),
            },
            Frame::PunchNotify {
                from: peer(3),
                candidates: Candidates::default(),
            },
            Frame::Probe { id: u64::MAX },
            Frame::ProbeReply {
                id: 1,
                observed: addr("203.0.113.9:1"),
            },
            Frame::RelayRefused {
                peer: peer(4),
                reason: RelayRefusal::NotAllowlisted,
            },
            Frame::PeerInfoRequest {
                fresh: true,
                peers: Vec::new(),
            },
            Frame::PeerInfoRequest {
                fresh: false,
                peers: vec![peer(5), peer(6)],
            },
        ]
    }

    #[test]
    fn every_message_round_trips() {
        for msg in all_messages() {
            let bytes = msg.to_bytes();
            assert_eq!(
                decode(&bytes),
                Ok(Plaintext::Frame(msg.clone())),
                "{}",
                msg.name()
            );
        }
    }

    #[test]
    fn frames_are_told_apart_by_their_first_byte() {
        assert_eq!(decode(&[]), Ok(Plaintext::Keepalive));
        let mut ip = vec![0x45u8, 0, 0, 20];
        ip.resize(20, 0);
        assert_eq!(decode(&ip), Ok(Plaintext::Data(&ip[..])));
        let mut padded = ip.clone();
        padded.resize(32, 0);
        assert_eq!(decode(&padded), Ok(Plaintext::Data(&ip[..])));
        assert_eq!(decode(&ip[..10]), Err(DecodeError::Truncated));
        for direction in [RelayDirection::Forward, RelayDirection::Deliver] {
            let mut relay = Vec::new();
            encode_relay(direction, &peer(9), &[4, 0, 0, 0, 1], &mut relay);
            assert_eq!(relay.len(), RELAY_HEADER_LEN + 5);
            relay.extend_from_slice(&[0; 11]);
            assert_eq!(
                decode(&relay),
                Ok(Plaintext::Relay {
                    direction,
                    peer: peer(9),
                    datagram: &[4, 0, 0, 0, 1]
                })
            );
        }
        assert_eq!(
            decode(&[TAG_RELAY, 7]),
            Err(DecodeError::Invalid("relay direction"))
        );
        assert_eq!(decode(&[0x60, 0]), Err(DecodeError::UnknownTag(0x60)));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        for msg in all_messages() {
            let bytes = msg.to_bytes();
            for cut in 1..bytes.len() {
                assert!(
                    decode(&bytes[..cut]).is_err(),
                    "{} cut at {cut}",
                    msg.name()
                );
            }
            let mut padded = bytes.clone();
            padded.resize(bytes.len().div_ceil(16) * 16, 0);
            assert_eq!(decode(&padded), Ok(Plaintext::Frame(msg.clone())));
            let mut long = bytes.clone();
            long.push(1);
            assert_eq!(decode(&long), Err(DecodeError::Trailing(1)));
            let mut too_long = bytes.clone();
            too_long.resize(bytes.len() + 16, 0);
            assert_eq!(decode(&too_long), Err(DecodeError::Trailing(16)));
        }
        let mut relay = Vec::new();
        encode_relay_header(RelayDirection::Forward, &peer(9), 0, &mut relay);
        assert_eq!(decode(&relay), Err(DecodeError::Truncated));
        let mut short = Vec::new();
        encode_relay_header(RelayDirection::Forward, &peer(9), 10, &mut short);
        short.extend_from_slice(&[1, 2, 3]);
        assert_eq!(decode(&short), Err(DecodeError::Truncated));
    }

    #[test]
    fn bad_fields_are_rejected() {
        assert_eq!(decode(&[TAG_FRAME, 2, 6]), Err(DecodeError::Version(2)));
        assert_eq!(
            decode(&[TAG_FRAME, 1, 99]),
            Err(DecodeError::UnknownType(99))
        );
        // Prefix with host bits set.
        let mut b = vec![TAG_FRAME, 1, 2, 1, b'x', 10, 42, 1, 5, 24];
        assert_eq!(
            decode(&b),
            Err(DecodeError::Invalid("prefix has host bits set"))
        );
        b[9] = 40;
        assert_eq!(decode(&b), Err(DecodeError::Invalid("prefix length")));
        // Too many candidates.
        let mut c = vec![TAG_FRAME, 1, 6 - 3];
        c.extend_from_slice(&[0; 32]);
        c.push(200);
        assert_eq!(decode(&c), Err(DecodeError::Invalid("too many candidates")));
        // Refusal reason out of range.
        let mut r = vec![TAG_FRAME, 1, 8];
        r.extend_from_slice(&[0; 32]);
        r.push(77);
        assert_eq!(decode(&r), Err(DecodeError::Invalid("refusal reason")));
        // Peer info request: unknown flags, too many peers.
        assert_eq!(
            decode(&[TAG_FRAME, 1, 9, 2, 0]),
            Err(DecodeError::Invalid("peer info request flags"))
        );
        assert_eq!(
            decode(&[TAG_FRAME, 1, 9, 0, 33]),
            Err(DecodeError::Invalid("too many requested peers"))
        );
    }

    #[test]
    fn old_frames_keep_their_bytes() {
        // The new request type is appended; existing types are unchanged.
        let reply = Frame::ProbeReply {
            id: 1,
            observed: addr("203.0.113.9:1"),
        };
        assert_eq!(
            reply.to_bytes(),
            [
                TAG_FRAME, 1, 7, 0, 0, 0, 0, 0, 0, 0, 1, 203, 0, 113, 9, 0, 1
            ]
        );
        let req = Frame::PeerInfoRequest {
            fresh: true,
            peers: vec![peer(5)],
        };
        let bytes = req.to_bytes();
        assert_eq!(&bytes[..5], &[TAG_FRAME, 1, 9, 1, 1]);
        assert_eq!(bytes.len(), 5 + 32);
        // A type this node does not know stays a decode error (a counted drop).
        assert_eq!(
            decode(&[TAG_FRAME, 1, 11]),
            Err(DecodeError::UnknownType(11))
        );
    }

    #[test]
    fn random_input_never_panics() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..50_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 80) as usize;
            let mut buf: Vec<u8> = (0..len)
                .map(|i| (x >> (i % 8 * 8)) as u8 ^ i as u8)
                .collect();
            if let Some(first) = buf.first_mut() {
                *first = [TAG_FRAME, TAG_RELAY, 0x45, 0x00][(x % 4) as usize];
            }
            if buf.len() > 1 {
                buf[1] = FRAME_VERSION;
            }
            let _ = decode(&buf);
        }
    }
}
