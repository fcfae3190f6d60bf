//! Node identity: one 32-byte secret seed from which every key is derived.
//!
//! ```text
//! seed (32 bytes, OS RNG)
//!  ├─ blake3::derive_key("vine 2026-11 identity x25519 static key v1", seed)
//!  │     → X25519 static secret (WireGuard-protocol sessions); its public key is the PeerId
//!  └─ blake3::derive_key("vine 2026-11 identity ed25519 signing key v1", seed)
//!        → Ed25519 signing key (signed records)
//! ```
//!
//! Each key has its own derivation context, so no key can stand in for another.
//! Derivation is deterministic: the same seed always yields the same node.
//!
//! # File format (`vine-identity-v1`)
//!
//! A small text file, one `key = value` per line, written in this order and
//! ending in a newline; lines starting with `#` are comments:
//!
//! ```text
//! # vine node identity …
//! format = vine-identity-v1
//! seed = <64 hex digits>                  secret
//! public_key = <base64, 44 chars>         X25519 public key
//! signing_public_key = <base64, 44 chars> Ed25519 public key
//! peer_id = vn1…                          see [`crate::peer_id`]
//! fingerprint = xxxx-xxxx-xxxx-xxxx-xxxx
//! ```
//!
//! Loading re-derives every public field from the seed and refuses a file in
//! which any of them disagrees, so corruption or hand-editing is caught
//! before the node announces itself.

use std::fmt;

use base64::Engine as _;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::peer_id::{Fingerprint, PeerId};

/// The `format` value of the current identity file version.
pub const FORMAT_V1: &str = "vine-identity-v1";

const X25519_CONTEXT: &str = "vine 2026-11 identity x25519 static key v1";
const ED25519_CONTEXT: &str = "vine 2026-11 identity ed25519 signing key v1";

/// Field names in the order they are written.
const FIELDS: [&str; 6] = [
    "format",
    "seed",
    "public_key",
    "signing_public_key",
    "peer_id",
    "fingerprint",
];

/// A node's complete identity: secret seed and everything derived from it.
pub struct Identity {
    seed: Zeroizing<[u8; 32]>,
    x25519: x25519_dalek::StaticSecret,
    signing: ed25519_dalek::SigningKey,
    peer_id: PeerId,
}

impl Identity {
    /// Derives the identity for `seed`. Deterministic; the caller draws the
    /// seed from the OS RNG when creating a new node.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let seed = Zeroizing::new(seed);
        let x_bytes = Zeroizing::new(blake3::derive_key(X25519_CONTEXT, &*seed));
        let x25519 = x25519_dalek::StaticSecret::from(*x_bytes);
        let public = x25519_dalek::PublicKey::from(&x25519);
        let e_bytes = Zeroizing::new(blake3::derive_key(ED25519_CONTEXT, &*seed));
        let signing = ed25519_dalek::SigningKey::from_bytes(&e_bytes);
        Self {
            seed,
            x25519,
            signing,
            peer_id: PeerId::from_public_key(public.to_bytes()),
        }
    }

    /// The node's PeerId (its X25519 public key).
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The node's fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        self.peer_id.fingerprint()
    }

    /// The X25519 static secret used for WireGuard-protocol handshakes.
    pub fn x25519_secret(&self) -> &x25519_dalek::StaticSecret {
        &self.x25519
    }

    /// The Ed25519 public key for verifying this node's signed records.
    pub fn signing_public_key(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// Signs `message` with the node's Ed25519 key.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        use ed25519_dalek::Signer as _;
        self.signing.sign(message).to_bytes()
    }

    /// The secret seed as hex. Only for `vine identity show --show-secret`
    /// and for writing the file.
    pub fn seed_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex(&*self.seed))
    }

    /// What another node needs to enroll this one.
    pub fn public_record(&self, name: Option<&str>) -> PublicRecord {
        PublicRecord {
            name: name.map(str::to_owned),
            peer_id: self.peer_id,
            public_key: self.peer_id.public_key_base64(),
            signing_public_key: b64(&self.signing_public_key()),
            fingerprint: self.fingerprint(),
        }
    }

    /// The identity file's text (see the module docs).
    pub fn to_file_text(&self) -> Zeroizing<String> {
        let record = self.public_record(None);
        Zeroizing::new(format!(
            "# vine node identity. This file holds the node's SECRET seed:\n\
             # keep it mode 0600 and never copy it to another machine.\n\
             # Share `vine identity export-public` with other operators instead.\n\
             format = {FORMAT_V1}\n\
             seed = {}\n\
             public_key = {}\n\
             signing_public_key = {}\n\
             peer_id = {}\n\
             fingerprint = {}\n",
            &*self.seed_hex(),
            record.public_key,
            record.signing_public_key,
            record.peer_id,
            record.fingerprint,
        ))
    }

    /// Parses and verifies an identity file's text.
    pub fn from_file_text(text: &str) -> Result<Self, IdentityFileError> {
        let mut values: [Option<&str>; FIELDS.len()] = [None; FIELDS.len()];
        let mut first_field = true;
        for (index, raw_line) in text.split_inclusive('\n').enumerate() {
            let line_no = index + 1;
            if !raw_line.ends_with('\n') {
                return Err(IdentityFileError::Truncated {
                    detail: format!(
                        "line {line_no} is cut off (the file does not end with a newline)"
                    ),
                });
            }
            let line = raw_line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(IdentityFileError::Malformed {
                    line: line_no,
                    detail: "expected `key = value`".into(),
                });
            };
            let (key, value) = (key.trim(), value.trim());
            let Some(slot) = FIELDS.iter().position(|f| *f == key) else {
                return Err(IdentityFileError::Malformed {
                    line: line_no,
                    detail: format!("unknown field `{}`", truncate(key)),
                });
            };
            if first_field && key != "format" {
                return Err(IdentityFileError::MissingHeader);
            }
            first_field = false;
            if key == "format" && value != FORMAT_V1 {
                return Err(IdentityFileError::UnknownFormat(truncate(value)));
            }
            if values[slot].replace(value).is_some() {
                return Err(IdentityFileError::Malformed {
                    line: line_no,
                    detail: format!("field `{key}` appears twice"),
                });
            }
        }
        if first_field {
            return Err(IdentityFileError::Truncated {
                detail: "it holds no fields (is it empty?)".into(),
            });
        }
        if let Some(missing) = FIELDS.iter().zip(values).find(|(_, v)| v.is_none()) {
            return Err(IdentityFileError::Truncated {
                detail: format!("field `{}` is missing", missing.0),
            });
        }
        let get = |name: &str| {
            FIELDS
                .iter()
                .position(|f| *f == name)
                .and_then(|i| values[i])
                .unwrap_or_default()
        };
        let seed = parse_seed(get("seed"))?;
        let identity = Self::from_seed(*seed);
        let record = identity.public_record(None);
        let expected = [
            ("public_key", record.public_key.clone()),
            ("signing_public_key", record.signing_public_key.clone()),
            ("peer_id", record.peer_id.to_string()),
            ("fingerprint", record.fingerprint.to_string()),
        ];
        for (field, want) in expected {
            if get(field) != want {
                return Err(IdentityFileError::Mismatch { field });
            }
        }
        Ok(identity)
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("peer_id", &self.peer_id)
            .field("seed", &"<secret>")
            .finish()
    }
}

/// The public half of an identity, as exported for enrollment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicRecord {
    /// Node name from the config, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The PeerId to put in other nodes' `[[allowed_peers]]`.
    pub peer_id: PeerId,
    /// X25519 public key, base64.
    pub public_key: String,
    /// Ed25519 public key, base64.
    pub signing_public_key: String,
    /// Human-comparable fingerprint.
    pub fingerprint: Fingerprint,
}

/// Why an identity file's text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityFileError {
    /// The first field is not `format = …`.
    #[error(
        "it does not start with a `format = {FORMAT_V1}` line, so it is not a vine identity file"
    )]
    MissingHeader,
    /// A format this version of vine does not know.
    #[error("its format `{0}` is not one this vine understands (expected `{FORMAT_V1}`)")]
    UnknownFormat(String),
    /// The file ends early.
    #[error("it is truncated: {detail}")]
    Truncated {
        /// What is missing.
        detail: String,
    },
    /// A line that is not part of the format.
    #[error("line {line}: {detail}")]
    Malformed {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        detail: String,
    },
    /// The seed is not 64 hex digits.
    #[error("its `seed` is not 64 hexadecimal digits")]
    BadSeed,
    /// A public field does not match what the seed derives.
    #[error(
        "its `{field}` does not match the key derived from its seed: the file is corrupted or was edited"
    )]
    Mismatch {
        /// The field that disagrees.
        field: &'static str,
    },
}

impl IdentityFileError {
    /// What the operator should do.
    pub fn hint(&self) -> &'static str {
        match self {
            Self::UnknownFormat(_) => {
                "it was written by a different vine version; use that version, or create a new identity with `vine identity init --force` (this changes the node's PeerId)"
            }
            _ => {
                "restore the file from a backup; if there is none, create a new identity with `vine identity init --force` (this changes the node's PeerId, so update every peer's allowlist)"
            }
        }
    }
}

fn parse_seed(text: &str) -> Result<Zeroizing<[u8; 32]>, IdentityFileError> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return Err(IdentityFileError::BadSeed);
    }
    let mut seed = Zeroizing::new([0u8; 32]);
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let hi = hex_value(pair[0]).ok_or(IdentityFileError::BadSeed)?;
        let lo = hex_value(pair[1]).ok_or(IdentityFileError::BadSeed)?;
        seed[i] = (hi << 4) | lo;
    }
    Ok(seed)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: [u8; 32] = [0x42; 32];

    #[test]
    fn derivation_is_deterministic_and_domain_separated() {
        let a = Identity::from_seed(SEED);
        let b = Identity::from_seed(SEED);
        assert_eq!(a.peer_id(), b.peer_id());
        assert_eq!(a.signing_public_key(), b.signing_public_key());
        // The two keys come from different contexts: the X25519 secret is not
        // the Ed25519 secret, and neither is the seed itself.
        assert_ne!(a.x25519_secret().to_bytes(), SEED);
        assert_ne!(a.x25519_secret().to_bytes(), a.signing.to_bytes());
        assert_ne!(Identity::from_seed([0x43; 32]).peer_id(), a.peer_id());
    }

    #[test]
    fn peer_id_is_the_x25519_public_key() {
        let id = Identity::from_seed(SEED);
        let public = x25519_dalek::PublicKey::from(id.x25519_secret());
        assert_eq!(id.peer_id().public_key(), public.as_bytes());
    }

    #[test]
    fn file_round_trips() {
        let id = Identity::from_seed(SEED);
        let text = id.to_file_text();
        let back = Identity::from_file_text(&text).expect("own output parses");
        assert_eq!(back.peer_id(), id.peer_id());
        assert_eq!(*back.seed_hex(), *id.seed_hex());
        assert!(text.starts_with("# vine node identity"));
        assert!(text.contains("\nformat = vine-identity-v1\n"));
    }

    #[test]
    fn signatures_verify() {
        use ed25519_dalek::Verifier as _;
        let id = Identity::from_seed(SEED);
        let sig = id.sign(b"hello");
        let key =
            ed25519_dalek::VerifyingKey::from_bytes(&id.signing_public_key()).expect("valid key");
        assert!(
            key.verify(b"hello", &ed25519_dalek::Signature::from_bytes(&sig))
                .is_ok()
        );
    }

    #[test]
    fn debug_never_shows_the_seed() {
        let id = Identity::from_seed(SEED);
        let shown = format!("{id:?}");
        assert!(!shown.contains(&*id.seed_hex()));
        assert!(shown.contains("<secret>"));
    }

    fn text() -> String {
        Identity::from_seed(SEED).to_file_text().to_string()
    }

    #[test]
    fn every_tampered_public_field_is_detected() {
        let original = text();
        for field in ["public_key", "signing_public_key", "peer_id", "fingerprint"] {
            let other = Identity::from_seed([1; 32]).to_file_text().to_string();
            let line_of = |t: &str| {
                t.lines()
                    .find(|l| l.starts_with(&format!("{field} =")))
                    .expect("field present")
                    .to_owned()
            };
            let tampered = original.replace(&line_of(&original), &line_of(&other));
            assert_eq!(
                Identity::from_file_text(&tampered).expect_err("tampered"),
                IdentityFileError::Mismatch { field },
                "{field}"
            );
        }
    }

    #[test]
    fn a_changed_seed_is_detected() {
        let original = text();
        let seed_line = original
            .lines()
            .find(|l| l.starts_with("seed ="))
            .expect("seed");
        let tampered = original.replace(seed_line, &format!("seed = {}", "11".repeat(32)));
        assert!(matches!(
            Identity::from_file_text(&tampered),
            Err(IdentityFileError::Mismatch { .. })
        ));
        let bad = original.replace(seed_line, "seed = xyz");
        assert_eq!(
            Identity::from_file_text(&bad).expect_err("bad"),
            IdentityFileError::BadSeed
        );
    }

    #[test]
    fn truncation_is_detected_at_every_length() {
        let original = text();
        for cut in 0..original.len() {
            let err = Identity::from_file_text(&original[..cut]).expect_err("truncated file");
            assert!(
                matches!(err, IdentityFileError::Truncated { .. }),
                "cut at {cut}: {err:?}"
            );
        }
    }

    #[test]
    fn unknown_format_and_missing_header_are_named() {
        let original = text();
        let v2 = original.replace("vine-identity-v1", "vine-identity-v2");
        assert_eq!(
            Identity::from_file_text(&v2).expect_err("v2"),
            IdentityFileError::UnknownFormat("vine-identity-v2".into())
        );
        let no_header: String = original
            .lines()
            .filter(|l| !l.starts_with("format"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(
            Identity::from_file_text(&no_header).expect_err("no header"),
            IdentityFileError::MissingHeader
        );
    }

    #[test]
    fn duplicate_and_unknown_fields_are_malformed() {
        let original = text();
        let dup = format!("{original}peer_id = x\n");
        assert!(matches!(
            Identity::from_file_text(&dup),
            Err(IdentityFileError::Malformed { line: 10, .. })
        ));
        let unknown = format!("{original}color = blue\n");
        assert!(matches!(
            Identity::from_file_text(&unknown),
            Err(IdentityFileError::Malformed { .. })
        ));
        let junk = format!("{original}just words\n");
        assert!(matches!(
            Identity::from_file_text(&junk),
            Err(IdentityFileError::Malformed { .. })
        ));
    }
}
