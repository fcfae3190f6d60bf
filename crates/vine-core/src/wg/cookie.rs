//! WireGuard's cookie mechanism (whitepaper section 5.4.7, Linux
//! `cookie.c`, wireguard-go `device/cookie.go`), byte-compatible:
//!
//! * the **responder** side ([`CookieChecker`]): under load, a handshake
//!   message with a valid mac1 but no valid mac2 is answered with a type-3
//!   cookie reply instead of being processed. The cookie is
//!   `MAC(secret, source IP ‖ source port)` with a random secret renewed
//!   every [`COOKIE_SECRET_MAX_AGE`]; the reply carries it sealed with
//!   XChaCha20-Poly1305 under `HASH("cookie--" ‖ our static public)`, a
//!   random 24-byte nonce, and the message's mac1 as associated data.
//! * the **initiator** side ([`LatestCookie`], one per peer): a cookie reply
//!   whose associated data is the mac1 of the last handshake message we sent
//!   that peer is opened and its cookie kept for
//!   `COOKIE_SECRET_MAX_AGE - COOKIE_SECRET_LATENCY`; while it is kept every
//!   handshake message to that peer carries `mac2 = MAC(cookie, msg[..mac2])`.
//!
//! XChaCha20-Poly1305 is HChaCha20 (below) deriving a subkey from the first
//! 16 nonce bytes, then ring's ChaCha20-Poly1305 with the last 8 as its
//! nonce (draft-irtf-cfrg-xchacha section 2.3), so no AEAD crate is added
//! beside ring. The source address is hashed as Linux does: the 4 or 16 IP
//! bytes, then the port in network byte order (IPv4-mapped IPv6 addresses
//! as IPv4). Only the responder ever computes its cookies, so this choice
//! needs no agreement with peers.
//!
//! Everything here is sans-IO: time comes in as `now`, randomness from the
//! caller's CSPRNG.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use blake2::Blake2sMac;
use blake2::digest::consts::U16;
use blake2::digest::{FixedOutput, KeyInit, Update};
use rand_core::RngCore;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use zeroize::Zeroizing;

use super::crypto::{KEY_LEN, MAC_LEN, TAG_LEN, ct_eq, hash};
use super::error::WgError;
use super::messages::{COOKIE_REPLY_LEN, TYPE_COOKIE_REPLY};

/// Length of a cookie (a `MAC` output).
pub(crate) const COOKIE_LEN: usize = 16;
/// Length of the XChaCha20 nonce of a cookie reply.
pub(crate) const COOKIE_NONCE_LEN: usize = 24;
/// The responder renews its cookie secret this often (WireGuard's
/// `COOKIE_SECRET_MAX_AGE`, 2 minutes); cookies made with the old one stop
/// being accepted.
pub const COOKIE_SECRET_MAX_AGE: Duration = Duration::from_secs(120);
/// The initiator stops using a cookie this long before the responder's
/// secret could have changed (WireGuard's `COOKIE_SECRET_LATENCY`).
pub const COOKIE_SECRET_LATENCY: Duration = Duration::from_secs(5);
/// Label of the cookie-reply key derivation.
const LABEL_COOKIE: &[u8] = b"cookie--";

// Cookie reply field offsets.
pub(crate) const REPLY_RECEIVER: usize = 4;
pub(crate) const REPLY_NONCE: usize = 8;
pub(crate) const REPLY_COOKIE: usize = REPLY_NONCE + COOKIE_NONCE_LEN; // 32
const _: () = assert!(REPLY_COOKIE + COOKIE_LEN + TAG_LEN == COOKIE_REPLY_LEN);

/// `HASH("cookie--" ‖ public)`: the key cookie replies from the owner of
/// `public` are sealed with.
pub(crate) fn cookie_key(public: &[u8; KEY_LEN]) -> [u8; KEY_LEN] {
    hash(&[LABEL_COOKIE, public])
}

/// `MAC(key, data)` with a 16-byte key (a cookie): mac2.
fn mac16(key: &[u8; COOKIE_LEN], parts: &[&[u8]]) -> [u8; MAC_LEN] {
    let mut mac = <Blake2sMac<U16> as KeyInit>::new_from_slice(key)
        .expect("BLAKE2s accepts keys of up to 32 bytes and this one is 16");
    for part in parts {
        Update::update(&mut mac, part);
    }
    mac.finalize_fixed().into()
}

/// The bytes of a source address that a cookie is bound to.
fn source_bytes(src: SocketAddr, out: &mut [u8; 18]) -> &[u8] {
    let ip = match src.ip() {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    let n = match ip {
        IpAddr::V4(v4) => {
            out[..4].copy_from_slice(&v4.octets());
            4
        }
        IpAddr::V6(v6) => {
            out[..16].copy_from_slice(&v6.octets());
            16
        }
    };
    out[n..n + 2].copy_from_slice(&src.port().to_be_bytes());
    &out[..n + 2]
}

/// The responder's cookie state: the rotating secret and the key replies
/// are sealed with.
pub(crate) struct CookieChecker {
    /// Secret of the cookies we hand out; `None` until the first one.
    secret: Option<(Zeroizing<[u8; KEY_LEN]>, Instant)>,
    /// `HASH("cookie--" ‖ our static public)`.
    encryption_key: [u8; KEY_LEN],
}

impl CookieChecker {
    pub(crate) fn new(local_public: &[u8; KEY_LEN]) -> Self {
        Self {
            secret: None,
            encryption_key: cookie_key(local_public),
        }
    }

    /// The secret in force at `now`, renewed when it is older than
    /// [`COOKIE_SECRET_MAX_AGE`] (as Linux's `make_cookie` does lazily).
    fn secret(&mut self, now: Instant, rng: &mut impl RngCore) -> &[u8; KEY_LEN] {
        let fresh = self
            .secret
            .as_ref()
            .is_some_and(|(_, born)| now.saturating_duration_since(*born) < COOKIE_SECRET_MAX_AGE);
        if !fresh {
            let mut secret = Zeroizing::new([0u8; KEY_LEN]);
            rng.fill_bytes(&mut secret[..]);
            self.secret = Some((secret, now));
        }
        let (secret, _) = self.secret.as_ref().expect("set just above when absent");
        secret
    }

    /// The cookie of `src` at `now`.
    fn cookie(
        &mut self,
        now: Instant,
        rng: &mut impl RngCore,
        src: SocketAddr,
    ) -> [u8; COOKIE_LEN] {
        let secret = *self.secret(now, rng);
        let mut buf = [0u8; 18];
        let mut mac = <Blake2sMac<U16> as KeyInit>::new_from_slice(&secret)
            .expect("BLAKE2s accepts keys of up to 32 bytes and this one is 32");
        Update::update(&mut mac, source_bytes(src, &mut buf));
        mac.finalize_fixed().into()
    }

    /// Whether `msg` (a handshake message whose mac1 starts at `mac1_at`)
    /// carries the mac2 of `src`'s current cookie.
    pub(crate) fn mac2_valid(
        &mut self,
        now: Instant,
        rng: &mut impl RngCore,
        msg: &[u8],
        mac1_at: usize,
        src: SocketAddr,
    ) -> bool {
        let mac2_at = mac1_at + MAC_LEN;
        let (Some(covered), Some(mac2)) = (msg.get(..mac2_at), msg.get(mac2_at..mac2_at + MAC_LEN))
        else {
            return false;
        };
        let cookie = self.cookie(now, rng, src);
        ct_eq(&mac16(&cookie, &[covered]), mac2)
    }

    /// The cookie reply to `msg` (a handshake message with a valid mac1 at
    /// `mac1_at`, whose sender index is `sender_index`) from `src`.
    pub(crate) fn reply(
        &mut self,
        now: Instant,
        rng: &mut impl RngCore,
        msg: &[u8],
        mac1_at: usize,
        sender_index: u32,
        src: SocketAddr,
    ) -> [u8; COOKIE_REPLY_LEN] {
        let cookie = self.cookie(now, rng, src);
        let mut nonce = [0u8; COOKIE_NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let mac1 = msg.get(mac1_at..mac1_at + MAC_LEN).unwrap_or_default();
        seal_reply(&self.encryption_key, sender_index, &nonce, &cookie, mac1)
    }
}

/// Builds a cookie reply: `cookie` sealed under `key` with `nonce` and
/// `mac1` as associated data, addressed to `receiver`.
pub(crate) fn seal_reply(
    key: &[u8; KEY_LEN],
    receiver: u32,
    nonce: &[u8; COOKIE_NONCE_LEN],
    cookie: &[u8; COOKIE_LEN],
    mac1: &[u8],
) -> [u8; COOKIE_REPLY_LEN] {
    let mut reply = [0u8; COOKIE_REPLY_LEN];
    reply[..4].copy_from_slice(&TYPE_COOKIE_REPLY.to_le_bytes());
    reply[REPLY_RECEIVER..REPLY_NONCE].copy_from_slice(&receiver.to_le_bytes());
    reply[REPLY_NONCE..REPLY_COOKIE].copy_from_slice(nonce);
    let (body, tag_out) = reply[REPLY_COOKIE..].split_at_mut(COOKIE_LEN);
    body.copy_from_slice(cookie);
    let tag = xchacha_key(key, nonce)
        .seal_in_place_separate_tag(xchacha_nonce(nonce), Aad::from(mac1), body)
        .expect("ChaCha20-Poly1305 only fails for inputs over 256 GiB; a cookie is 16 bytes");
    tag_out.copy_from_slice(tag.as_ref());
    reply
}

/// Opens the cookie of a cookie reply sealed under `key` with `mac1` as
/// associated data.
pub(crate) fn open_reply(
    key: &[u8; KEY_LEN],
    reply: &[u8; COOKIE_REPLY_LEN],
    mac1: &[u8],
) -> Result<[u8; COOKIE_LEN], WgError> {
    let mut nonce = [0u8; COOKIE_NONCE_LEN];
    nonce.copy_from_slice(&reply[REPLY_NONCE..REPLY_COOKIE]);
    let mut buf = [0u8; COOKIE_LEN + TAG_LEN];
    buf.copy_from_slice(&reply[REPLY_COOKIE..]);
    let plain = xchacha_key(key, &nonce)
        .open_in_place(xchacha_nonce(&nonce), Aad::from(mac1), &mut buf)
        .map_err(|_| WgError::BadCookieReply)?;
    let mut cookie = [0u8; COOKIE_LEN];
    if plain.len() != COOKIE_LEN {
        return Err(WgError::BadCookieReply);
    }
    cookie.copy_from_slice(plain);
    Ok(cookie)
}

/// The ChaCha20-Poly1305 key of XChaCha20-Poly1305 with `key` and `nonce`:
/// `HChaCha20(key, nonce[..16])`.
fn xchacha_key(key: &[u8; KEY_LEN], nonce: &[u8; COOKIE_NONCE_LEN]) -> LessSafeKey {
    let mut head = [0u8; 16];
    head.copy_from_slice(&nonce[..16]);
    let subkey = Zeroizing::new(hchacha20(key, &head));
    LessSafeKey::new(
        UnboundKey::new(&CHACHA20_POLY1305, &subkey[..])
            .expect("ChaCha20-Poly1305 takes 32-byte keys and this one is 32"),
    )
}

/// The 96-bit ChaCha20-Poly1305 nonce of XChaCha20-Poly1305: four zero
/// bytes, then the last 8 bytes of the 24-byte nonce.
fn xchacha_nonce(nonce: &[u8; COOKIE_NONCE_LEN]) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&nonce[16..]);
    Nonce::assume_unique_for_key(n)
}

/// HChaCha20 (draft-irtf-cfrg-xchacha section 2.2): the ChaCha20 block
/// function's 20 rounds over the constants, `key` and `input`, without the
/// final addition, keeping words 0–3 and 12–15.
pub(crate) fn hchacha20(key: &[u8; KEY_LEN], input: &[u8; 16]) -> [u8; KEY_LEN] {
    let mut s = [0u32; 16];
    s[..4].copy_from_slice(&[0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574]);
    for (i, word) in key.chunks_exact(4).enumerate() {
        s[4 + i] = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
    }
    for (i, word) in input.chunks_exact(4).enumerate() {
        s[12 + i] = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
    }
    fn quarter(s: &mut [u32; 16], a: usize, b: usize, c: usize, d: usize) {
        s[a] = s[a].wrapping_add(s[b]);
        s[d] = (s[d] ^ s[a]).rotate_left(16);
        s[c] = s[c].wrapping_add(s[d]);
        s[b] = (s[b] ^ s[c]).rotate_left(12);
        s[a] = s[a].wrapping_add(s[b]);
        s[d] = (s[d] ^ s[a]).rotate_left(8);
        s[c] = s[c].wrapping_add(s[d]);
        s[b] = (s[b] ^ s[c]).rotate_left(7);
    }
    for _ in 0..10 {
        quarter(&mut s, 0, 4, 8, 12);
        quarter(&mut s, 1, 5, 9, 13);
        quarter(&mut s, 2, 6, 10, 14);
        quarter(&mut s, 3, 7, 11, 15);
        quarter(&mut s, 0, 5, 10, 15);
        quarter(&mut s, 1, 6, 11, 12);
        quarter(&mut s, 2, 7, 8, 13);
        quarter(&mut s, 3, 4, 9, 14);
    }
    let mut out = [0u8; KEY_LEN];
    for (i, word) in s[..4].iter().chain(&s[12..]).enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&word.to_le_bytes());
    }
    s.fill(0);
    out
}

/// The initiator's cookie state for one peer (Linux's `latest_cookie`).
pub(crate) struct LatestCookie {
    /// `HASH("cookie--" ‖ the peer's static public)`.
    decryption_key: [u8; KEY_LEN],
    /// mac1 of the last handshake message we sent the peer, until a cookie
    /// reply to it is accepted.
    last_mac1_sent: Option<[u8; MAC_LEN]>,
    /// The peer's last cookie for us and when we got it.
    cookie: Option<([u8; COOKIE_LEN], Instant)>,
}

impl LatestCookie {
    pub(crate) fn new(peer_public: &[u8; KEY_LEN]) -> Self {
        Self {
            decryption_key: cookie_key(peer_public),
            last_mac1_sent: None,
            cookie: None,
        }
    }

    /// A handshake message to the peer was built (mac1 at `mac1_at` written,
    /// mac2 zero): remember its mac1 and, while we hold a cookie young
    /// enough, write its mac2.
    pub(crate) fn stamp(&mut self, now: Instant, msg: &mut [u8], mac1_at: usize) {
        let mac2_at = mac1_at + MAC_LEN;
        let mut mac1 = [0u8; MAC_LEN];
        let Some(field) = msg.get(mac1_at..mac2_at) else {
            return;
        };
        mac1.copy_from_slice(field);
        self.last_mac1_sent = Some(mac1);
        let usable = self.cookie.filter(|(_, at)| {
            now.saturating_duration_since(*at) < COOKIE_SECRET_MAX_AGE - COOKIE_SECRET_LATENCY
        });
        if let Some((cookie, _)) = usable {
            let mac2 = mac16(&cookie, &[&msg[..mac2_at]]);
            if let Some(field) = msg.get_mut(mac2_at..mac2_at + MAC_LEN) {
                field.copy_from_slice(&mac2);
            }
        }
    }

    /// Opens a cookie reply addressed to one of this peer's indices; on
    /// success the cookie is kept and a second reply to the same message is
    /// refused (as Linux clears `have_sent_mac1`).
    pub(crate) fn consume(
        &mut self,
        now: Instant,
        reply: &[u8; COOKIE_REPLY_LEN],
    ) -> Result<(), WgError> {
        let mac1 = self.last_mac1_sent.ok_or(WgError::BadCookieReply)?;
        let cookie = open_reply(&self.decryption_key, reply, &mac1)?;
        self.cookie = Some((cookie, now));
        self.last_mac1_sent = None;
        Ok(())
    }

    /// Whether a cookie is held (tests).
    #[cfg(test)]
    pub(crate) fn has_cookie(&self) -> bool {
        self.cookie.is_some()
    }
}
