//! Peer identifiers and fingerprints.
//!
//! A [`PeerId`] *is* the node's X25519 static public key — the key its
//! WireGuard-protocol sessions are keyed by — written as a short text token:
//!
//! ```text
//! vn1 + base32(public_key ‖ checksum16)        e.g. vn1mz3k…q4a (58 characters)
//! ```
//!
//! Carrying the whole key (rather than a hash of it) means an allowlist entry
//! or a bootstrap entry is enough to open an authenticated session to that
//! peer: no second key has to be distributed, and the handshake itself proves
//! the peer holds the matching secret. The alphabet is lowercase RFC 4648
//! base32 (`a–z`, `2–7`), so the token needs no quoting on a command line and
//! is a plain TOML string. A 16-bit checksum catches copy/paste damage before
//! it turns into a silently unreachable peer.
//!
//! A [`Fingerprint`] is a short digest of the same key, grouped for reading
//! aloud or comparing by eye (`3f2a-9c01-77be-0d41-a5e2`).

use std::fmt;
use std::str::FromStr;

use data_encoding::BASE32_NOPAD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Text prefix of every PeerId (the `1` is the encoding version).
pub const PEER_ID_PREFIX: &str = "vn1";

const KEY_LEN: usize = 32;
const CHECKSUM_LEN: usize = 2;
/// Length in characters of a PeerId's text form.
pub const PEER_ID_TEXT_LEN: usize =
    PEER_ID_PREFIX.len() + ((KEY_LEN + CHECKSUM_LEN) * 8).div_ceil(5);

const CHECKSUM_CONTEXT: &str = "vine 2026-11 peer-id checksum v1";
const FINGERPRINT_CONTEXT: &str = "vine 2026-11 peer fingerprint v1";
const FINGERPRINT_LEN: usize = 10;

/// The stable, authenticated identifier of a vine node: its X25519 static
/// public key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerId([u8; KEY_LEN]);

/// Why a string is not a PeerId.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerIdError {
    /// The string is empty.
    #[error("the peer id is empty")]
    Empty,
    /// The string does not start with `vn1`; usually a placeholder such as `"beta"`.
    #[error(
        "`{0}` is not a vine PeerId (PeerIds start with `vn1` and are {PEER_ID_TEXT_LEN} characters long)"
    )]
    NotAPeerId(String),
    /// Right prefix, wrong length: the token was cut or extended while copying.
    #[error(
        "the PeerId is {found} characters long but must be exactly {PEER_ID_TEXT_LEN}; it was probably cut off while copying"
    )]
    WrongLength {
        /// Characters found.
        found: usize,
    },
    /// A character outside the base32 alphabet.
    #[error(
        "the PeerId contains `{ch}` at position {position}; only a–z and 2–7 can appear after `vn1`"
    )]
    BadCharacter {
        /// The offending character.
        ch: char,
        /// 1-based character position.
        position: usize,
    },
    /// The checksum does not match: a character was changed.
    #[error("the PeerId's checksum does not match; a character was changed while copying")]
    Checksum,
}

impl PeerIdError {
    /// What the user should do about it.
    pub fn hint(&self) -> &'static str {
        "paste the `peer_id` printed by `vine identity export-public` on that node"
    }
}

impl PeerId {
    /// Wraps an X25519 public key.
    pub const fn from_public_key(key: [u8; KEY_LEN]) -> Self {
        Self(key)
    }

    /// The X25519 public key this id stands for.
    pub const fn public_key(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The public key in standard base64 (as WireGuard tools print keys).
    pub fn public_key_base64(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }

    /// The human-comparable fingerprint of this peer.
    pub fn fingerprint(&self) -> Fingerprint {
        let digest = blake3::derive_key(FINGERPRINT_CONTEXT, &self.0);
        let mut out = [0u8; FINGERPRINT_LEN];
        out.copy_from_slice(&digest[..FINGERPRINT_LEN]);
        Fingerprint(out)
    }

    /// A short form for tables and logs: the first 12 characters of the text
    /// form followed by `…`. Not unique; never use it to identify a peer.
    pub fn short(&self) -> String {
        let text = self.to_string();
        format!("{}…", &text[..12])
    }

    fn checksum(key: &[u8; KEY_LEN]) -> [u8; CHECKSUM_LEN] {
        let digest = blake3::derive_key(CHECKSUM_CONTEXT, key);
        [digest[0], digest[1]]
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut raw = [0u8; KEY_LEN + CHECKSUM_LEN];
        raw[..KEY_LEN].copy_from_slice(&self.0);
        raw[KEY_LEN..].copy_from_slice(&Self::checksum(&self.0));
        let encoded = BASE32_NOPAD.encode(&raw).to_ascii_lowercase();
        write!(f, "{PEER_ID_PREFIX}{encoded}")
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({self})")
    }
}

impl FromStr for PeerId {
    type Err = PeerIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(PeerIdError::Empty);
        }
        let lower = s.to_ascii_lowercase();
        let Some(body) = lower.strip_prefix(PEER_ID_PREFIX) else {
            return Err(PeerIdError::NotAPeerId(s.chars().take(80).collect()));
        };
        let found = s.chars().count();
        if found != PEER_ID_TEXT_LEN {
            return Err(PeerIdError::WrongLength { found });
        }
        if let Some((i, ch)) = body
            .chars()
            .enumerate()
            .find(|(_, c)| !matches!(c, 'a'..='z' | '2'..='7'))
        {
            return Err(PeerIdError::BadCharacter {
                ch,
                position: i + PEER_ID_PREFIX.len() + 1,
            });
        }
        let raw = BASE32_NOPAD
            .decode(body.to_ascii_uppercase().as_bytes())
            .map_err(|_| PeerIdError::Checksum)?;
        if raw.len() != KEY_LEN + CHECKSUM_LEN {
            return Err(PeerIdError::WrongLength { found });
        }
        let mut key = [0u8; KEY_LEN];
        key.copy_from_slice(&raw[..KEY_LEN]);
        if raw[KEY_LEN..] != Self::checksum(&key) {
            return Err(PeerIdError::Checksum);
        }
        Ok(Self(key))
    }
}

impl Serialize for PeerId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PeerId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A short digest of a peer's public key for humans to compare
/// (`xxxx-xxxx-xxxx-xxxx-xxxx`, 80 bits).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fingerprint([u8; FINGERPRINT_LEN]);

/// Why a string is not a fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a vine fingerprint (expected five groups of four hex digits, like 3f2a-9c01-77be-0d41-a5e2)"
)]
pub struct FingerprintError(pub String);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, pair) in self.0.chunks(2).enumerate() {
            if i > 0 {
                f.write_str("-")?;
            }
            write!(f, "{:02x}{:02x}", pair[0], pair[1])?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl FromStr for Fingerprint {
    type Err = FingerprintError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || FingerprintError(s.chars().take(80).collect());
        let groups: Vec<&str> = s.split('-').collect();
        if groups.len() != FINGERPRINT_LEN / 2 {
            return Err(err());
        }
        let mut out = [0u8; FINGERPRINT_LEN];
        for (i, group) in groups.iter().enumerate() {
            if group.len() != 4 || !group.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(err());
            }
            let value = u16::from_str_radix(group, 16).map_err(|_| err())?;
            out[i * 2..i * 2 + 2].copy_from_slice(&value.to_be_bytes());
        }
        Ok(Self(out))
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> PeerId {
        PeerId::from_public_key([7u8; 32])
    }

    #[test]
    fn text_form_round_trips_and_has_documented_shape() {
        let id = sample();
        let text = id.to_string();
        assert!(text.starts_with("vn1"));
        assert_eq!(text.len(), PEER_ID_TEXT_LEN);
        assert_eq!(PEER_ID_TEXT_LEN, 58);
        assert!(
            text[3..]
                .chars()
                .all(|c| c.is_ascii_lowercase() || ('2'..='7').contains(&c))
        );
        assert_eq!(text.parse::<PeerId>(), Ok(id));
        assert_eq!(text.to_ascii_uppercase().parse::<PeerId>(), Ok(id));
    }

    #[test]
    fn placeholders_are_rejected_as_not_a_peer_id() {
        for bad in ["beta", "seed-a", "relay-a", "vn", "peer"] {
            assert!(matches!(
                bad.parse::<PeerId>(),
                Err(PeerIdError::NotAPeerId(_))
            ));
        }
        assert_eq!("".parse::<PeerId>(), Err(PeerIdError::Empty));
    }

    #[test]
    fn truncated_or_extended_ids_report_length() {
        let text = sample().to_string();
        assert_eq!(
            text[..40].parse::<PeerId>(),
            Err(PeerIdError::WrongLength { found: 40 })
        );
        assert_eq!(
            format!("{text}a").parse::<PeerId>(),
            Err(PeerIdError::WrongLength { found: 59 })
        );
    }

    #[test]
    fn a_changed_character_fails_the_checksum() {
        let text = sample().to_string();
        let mut chars: Vec<char> = text.chars().collect();
        chars[20] = if chars[20] == 'a' { 'b' } else { 'a' };
        let damaged: String = chars.into_iter().collect();
        assert_eq!(damaged.parse::<PeerId>(), Err(PeerIdError::Checksum));
    }

    #[test]
    fn characters_outside_base32_are_named() {
        let text = sample().to_string();
        let damaged = format!("{}1{}", &text[..10], &text[11..]);
        assert_eq!(
            damaged.parse::<PeerId>(),
            Err(PeerIdError::BadCharacter {
                ch: '1',
                position: 11
            })
        );
        // Non-ASCII input must not panic on slicing.
        let weird = format!("vn1{}", "é".repeat(55));
        assert!(weird.parse::<PeerId>().is_err());
    }

    #[test]
    fn fingerprint_is_short_stable_and_parses() {
        let fp = sample().fingerprint();
        let text = fp.to_string();
        assert_eq!(text.len(), 24);
        assert_eq!(text.matches('-').count(), 4);
        assert_eq!(text.parse::<Fingerprint>(), Ok(fp));
        assert_ne!(PeerId::from_public_key([8u8; 32]).fingerprint(), fp);
        assert!("zz".parse::<Fingerprint>().is_err());
        assert!("3f2a-9c01-77be-0d41-a5eg".parse::<Fingerprint>().is_err());
    }
}
