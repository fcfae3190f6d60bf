//! WireGuard wire formats: the four message types, their exact lengths and
//! field offsets, and a parser that checks every length before any field is
//! read.
//!
//! ```text
//! type 1  initiation  148 B  type‖sender‖ephemeral(32)‖static(32+16)‖timestamp(12+16)‖mac1‖mac2
//! type 2  response     92 B  type‖sender‖receiver‖ephemeral(32)‖empty(0+16)‖mac1‖mac2
//! type 3  cookie       64 B  type‖receiver‖nonce(24)‖cookie(16+16)
//! type 4  data       ≥ 32 B  type‖receiver‖counter(8)‖ciphertext‖tag(16)
//! ```
//!
//! `type` is a little-endian u32 whose upper three bytes are the reserved
//! zeros, so a message with non-zero reserved bytes is an unknown type.
//! Indices and the counter are little-endian.

pub(crate) use super::crypto::MAC_LEN;
use super::crypto::{KEY_LEN, TAG_LEN, TIMESTAMP_LEN};
use super::error::WgError;

/// Handshake initiation.
pub const TYPE_INITIATION: u32 = 1;
/// Handshake response.
pub const TYPE_RESPONSE: u32 = 2;
/// Cookie reply (DoS mitigation under load).
pub const TYPE_COOKIE_REPLY: u32 = 3;
/// Transport data.
pub const TYPE_DATA: u32 = 4;

/// Length of a handshake initiation.
pub const INITIATION_LEN: usize = 148;
/// Length of a handshake response.
pub const RESPONSE_LEN: usize = 92;
/// Length of a cookie reply.
pub const COOKIE_REPLY_LEN: usize = 64;
/// Length of the transport data header (type, receiver index, counter).
pub const DATA_HEADER_LEN: usize = 16;
/// Bytes a transport message adds to its (padded) plaintext.
pub const DATA_OVERHEAD: usize = DATA_HEADER_LEN + TAG_LEN;
/// Plaintexts are zero-padded to a multiple of this before encryption.
pub const PADDING_MULTIPLE: usize = 16;

// Initiation field offsets.
pub(crate) const INIT_SENDER: usize = 4;
pub(crate) const INIT_EPHEMERAL: usize = 8;
pub(crate) const INIT_STATIC: usize = INIT_EPHEMERAL + KEY_LEN; // 40
pub(crate) const INIT_TIMESTAMP: usize = INIT_STATIC + KEY_LEN + TAG_LEN; // 88
pub(crate) const INIT_MAC1: usize = INIT_TIMESTAMP + TIMESTAMP_LEN + TAG_LEN; // 116
pub(crate) const INIT_MAC2: usize = INIT_MAC1 + MAC_LEN; // 132

// Response field offsets.
pub(crate) const RESP_SENDER: usize = 4;
pub(crate) const RESP_RECEIVER: usize = 8;
pub(crate) const RESP_EPHEMERAL: usize = 12;
pub(crate) const RESP_EMPTY: usize = RESP_EPHEMERAL + KEY_LEN; // 44
pub(crate) const RESP_MAC1: usize = RESP_EMPTY + TAG_LEN; // 60
pub(crate) const RESP_MAC2: usize = RESP_MAC1 + MAC_LEN; // 76

const _: () = assert!(INIT_MAC2 + MAC_LEN == INITIATION_LEN);
const _: () = assert!(RESP_MAC2 + MAC_LEN == RESPONSE_LEN);

/// A received datagram, split by type with its length checked.
#[derive(Debug)]
pub(crate) enum Message<'a> {
    /// Type 1.
    Initiation(&'a [u8; INITIATION_LEN]),
    /// Type 2.
    Response(&'a [u8; RESPONSE_LEN]),
    /// Type 3.
    CookieReply(&'a [u8; COOKIE_REPLY_LEN]),
    /// Type 4.
    Data {
        /// Our local index the sender addressed.
        receiver: u32,
        /// The sender's nonce counter.
        counter: u64,
        /// Ciphertext and tag (at least the tag).
        payload: &'a [u8],
    },
}

/// Splits a datagram into one of the four message types.
pub(crate) fn parse(datagram: &[u8]) -> Result<Message<'_>, WgError> {
    let Some(head) = datagram.first_chunk::<4>() else {
        return Err(WgError::Truncated);
    };
    match u32::from_le_bytes(*head) {
        TYPE_INITIATION => exact(datagram).map(Message::Initiation),
        TYPE_RESPONSE => exact(datagram).map(Message::Response),
        TYPE_COOKIE_REPLY => exact(datagram).map(Message::CookieReply),
        TYPE_DATA => {
            if datagram.len() < DATA_OVERHEAD {
                return Err(WgError::Truncated);
            }
            let (header, payload) = datagram.split_at(DATA_HEADER_LEN);
            Ok(Message::Data {
                receiver: read_u32(header, 4),
                counter: read_u64(header, 8),
                payload,
            })
        }
        other => Err(WgError::UnknownType(other)),
    }
}

/// The datagram as a fixed-size array when its length is exactly `N`.
fn exact<const N: usize>(datagram: &[u8]) -> Result<&[u8; N], WgError> {
    match datagram.len() {
        len if len < N => Err(WgError::Truncated),
        len if len > N => Err(WgError::WrongLength),
        _ => datagram.try_into().map_err(|_| WgError::WrongLength),
    }
}

/// Reads a little-endian u32 at `at`; callers pass offsets inside checked
/// fixed-size arrays, and a short slice reads as zero rather than panicking.
pub(crate) fn read_u32(bytes: &[u8], at: usize) -> u32 {
    bytes
        .get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}

/// Reads a little-endian u64 at `at` (see [`read_u32`]).
pub(crate) fn read_u64(bytes: &[u8], at: usize) -> u64 {
    bytes
        .get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

/// A 32-byte field of a fixed-size message.
pub(crate) fn key_at<const N: usize>(msg: &[u8; N], at: usize) -> [u8; KEY_LEN] {
    let mut out = [0u8; KEY_LEN];
    if let Some(field) = msg.get(at..at + KEY_LEN) {
        out.copy_from_slice(field);
    }
    out
}

/// Length of a padded plaintext: the next multiple of 16.
pub const fn padded_len(len: usize) -> usize {
    len.div_ceil(PADDING_MULTIPLE) * PADDING_MULTIPLE
}

/// The length an IPv4 or IPv6 packet declares in its header, if `packet`
/// starts with a plausible header and holds at least that many bytes.
///
/// [`Wg::decrypt`](super::Wg::decrypt) returns plaintexts with WireGuard's
/// zero padding still attached; use this to trim an IP packet to its real
/// length (Linux also trims trailing bytes itself on receive).
pub fn ip_packet_len(packet: &[u8]) -> Option<usize> {
    let version = packet.first()? >> 4;
    let len = match version {
        4 if packet.len() >= 20 => {
            usize::from(u16::from_be_bytes([*packet.get(2)?, *packet.get(3)?])).max(20)
        }
        6 if packet.len() >= 40 => {
            40 + usize::from(u16::from_be_bytes([*packet.get(4)?, *packet.get(5)?]))
        }
        _ => return None,
    };
    (len <= packet.len()).then_some(len)
}
