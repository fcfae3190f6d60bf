//! `dataplane_batch`: the data plane's inbound path, batched as a GRO
//! receive hands it over, with a live session's keys.
//!
//! The [`Session`] fixture with the data plane on; the input is up to
//! [`MAX_BATCHES`] receives. A receive starts with a byte: the number of
//! datagrams (1 to 70, so batches over the 64 a GRO message holds occur)
//! and which source address they come from; then per datagram a kind byte:
//!
//! | kind | datagram |
//! |------|----------|
//! | 0 | a chunk sealed by `peer` (real keys, fresh counter) |
//! | 1 | an IPv4 packet from `peer`'s prefix to the node's (the chunk as payload) sealed by `peer` |
//! | 2 | as 0, then one byte (chosen by the input) flipped |
//! | 3 | a chunk sealed by `third` (another receiver index) |
//! | 4 | a type-4 header with the real receiver index, then the chunk (fails to open) |
//! | 5 | a copy of an earlier datagram of the receive (a replay) |
//! | 6, 7 | a raw chunk |
//!
//! The receive goes through exactly what the daemon's receive thread does
//! (`batch_index`, then `open_batch` + `inbound_opened`, else `inbound`
//! one by one), and every verdict to the node as the daemon hands it
//! over (`Plain` to `handle_decrypted`, `Slow` to `handle_datagram`).
//!
//! Checked: a `Data` verdict is an IPv4 packet inside the datagram, from
//! the sending peer's allowlisted prefix to the node's; a datagram sealed
//! by a peer and not changed or repeated opens (never `Slow`, never
//! `DecryptFailed`); the node's TUN output and routes pass the fixture's
//! checks.

use std::net::{Ipv4Addr, SocketAddrV4};

use vine_core::dataplane::{Inbound, Tables};
use vine_core::node::build_test_packet;
use vine_core::wire::DropReason;

use crate::input::Input;
use crate::session::{self, Session, Who};

/// Most receives one input runs.
pub const MAX_BATCHES: usize = 4;

/// One datagram of a receive.
struct Datagram {
    bytes: Vec<u8>,
    /// Sealed by a peer, unchanged, not a copy: it must open.
    authentic: bool,
}

/// Runs one input (see the module docs).
pub fn dataplane_batch(data: &[u8]) {
    let mut s = Session::new(true);
    let plane = s.plane.clone().expect("the fixture enabled the data plane");
    let mut reader = plane.reader();
    let mut input = Input::new(data);
    for _ in 0..MAX_BATCHES {
        let Some(head) = input.next_byte() else {
            break;
        };
        let from = match head >> 7 {
            0 => session::PEER_ADDR,
            _ => SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 7), 40_000),
        };
        let n = 1 + usize::from(head & 0x7f) % 70;
        let mut batch: Vec<Datagram> = Vec::with_capacity(n);
        for _ in 0..n {
            let d = datagram(&mut s, &batch, &mut input);
            batch.push(d);
        }
        reader.refresh();
        receive(&mut s, reader.tables(), from, &mut batch);
        s.pump();
        s.drain(false);
        s.check_routes();
    }
}

fn datagram(s: &mut Session, earlier: &[Datagram], input: &mut Input<'_>) -> Datagram {
    let kind = input.u8();
    let plain = |bytes| Datagram {
        bytes,
        authentic: false,
    };
    match kind & 7 {
        0..=2 => {
            let chunk = input.chunk();
            let packet;
            let body = if kind & 7 == 1 {
                let src = Ipv4Addr::from(u32::from(session::peer_prefix().network()) | 7);
                packet = build_test_packet(src, session::NODE_IP, chunk);
                &packet[..]
            } else {
                chunk
            };
            let Some(mut bytes) = s.seal(Who::Peer, body) else {
                return plain(Vec::new());
            };
            if kind & 7 == 2 {
                let at = usize::from(input.u16()) % bytes.len();
                bytes[at] ^= 1 << (input.u8() % 8);
                return plain(bytes);
            }
            Datagram {
                bytes,
                authentic: true,
            }
        }
        3 => {
            let chunk = input.chunk();
            match s.seal(Who::Third, chunk) {
                Some(bytes) => Datagram {
                    bytes,
                    authentic: true,
                },
                None => plain(Vec::new()),
            }
        }
        4 => {
            // The receiver index of a real datagram, a counter from the
            // input, a body that will not authenticate.
            let index = s
                .seal(Who::Peer, &[])
                .map(|d| d[4..8].to_vec())
                .unwrap_or_default();
            let mut bytes = vec![4, 0, 0, 0];
            bytes.extend_from_slice(&index);
            bytes.extend_from_slice(&input.u64().to_le_bytes());
            bytes.extend_from_slice(input.chunk());
            plain(bytes)
        }
        5 => {
            let pick = usize::from(input.u8());
            match earlier.get(pick % earlier.len().max(1)) {
                Some(d) => plain(d.bytes.clone()),
                None => plain(input.chunk().to_vec()),
            }
        }
        _ => plain(input.chunk().to_vec()),
    }
}

/// One receive, as the daemon's receive thread handles a GRO message.
fn receive(s: &mut Session, tables: &Tables, from: SocketAddrV4, batch: &mut [Datagram]) {
    let now = s.now;
    let index = tables.batch_index(batch.iter().map(|d| &d.bytes[..]));
    let opened = match index {
        Some(index) => {
            let opened = tables.open_batch(index, now, batch.iter_mut().map(|d| &mut d.bytes[..]));
            for (j, d) in batch.iter().enumerate() {
                // Bits past the 64th are never set (batches are at most 64).
                if d.authentic && j < 64 {
                    assert!(
                        opened >> j & 1 == 1,
                        "datagram {j}, sealed by a peer and unchanged, did not open in a batch"
                    );
                }
            }
            Some((index, opened))
        }
        None => None,
    };
    for (j, d) in batch.iter_mut().enumerate() {
        let original = d.bytes.clone();
        let verdict = match opened {
            Some((index, bits)) => {
                tables.inbound_opened(index, from, &mut d.bytes, j < 64 && bits >> j & 1 == 1)
            }
            None => tables.inbound(from, &mut d.bytes, now),
        };
        if d.authentic {
            assert!(
                !matches!(
                    verdict,
                    Inbound::Slow | Inbound::Drop(DropReason::DecryptFailed)
                ),
                "datagram {j}, sealed by a peer and unchanged, did not open: {verdict:?}"
            );
        }
        match verdict {
            Inbound::Data { peer, range } => {
                let packet = d
                    .bytes
                    .get(range.clone())
                    .expect("Data range inside the datagram");
                assert!(
                    packet.len() >= 20 && packet[0] >> 4 == 4,
                    "Data is not IPv4"
                );
                let src = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
                let dst = Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
                let owner = [Who::Peer, Who::Third]
                    .into_iter()
                    .find(|w| w.id() == peer.id)
                    .expect("Data from an allowlisted peer");
                assert!(
                    owner.prefix().contains(src),
                    "Data from {src} outside {owner:?}'s prefix"
                );
                assert!(session::node_prefix().contains(dst), "Data to {dst}");
                assert_eq!(
                    Some(from),
                    peer.endpoint,
                    "Data from another address than the endpoint"
                );
                peer.stats.add_received(1, range.len() as u64);
            }
            Inbound::Plain { peer, range } => {
                let plain = d
                    .bytes
                    .get(range)
                    .expect("Plain range inside the datagram")
                    .to_vec();
                s.node.handle_decrypted(now, from, peer.id, &plain);
            }
            Inbound::Slow => {
                assert_eq!(d.bytes, original, "a Slow datagram must be unchanged");
                s.node.handle_datagram(now, from, &d.bytes);
            }
            Inbound::Drop(reason) => tables_drop(s, reason),
        }
    }
}

fn tables_drop(s: &Session, reason: DropReason) {
    if let Some(plane) = &s.plane {
        plane.add_drop(reason);
    }
}
