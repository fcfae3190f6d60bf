//! The Noise_IKpsk2 handshake as WireGuard specialises it (whitepaper
//! section 5.4.2–5.4.5): building and consuming the initiation and the
//! response, and deriving the transport keys.
//!
//! These functions are pure: the caller supplies ephemeral secrets, indices,
//! timestamps and the keys of the peer, and keeps whatever state they
//! return. A function that returns an error has changed nothing.
//!
//! Secrets are wiped where the Linux implementation (`noise.c`) wipes
//! them: every DH result, chaining key, handshake hash and message key
//! these functions compute is a [`Secret`] (zeroed when dropped), so it is
//! wiped when the function returns, on success and on error alike. The
//! states handed back ([`InitiatorState`], [`ConsumedInitiation`]) and the
//! peer keys ([`RemoteKeys`]) wipe their secrets when dropped, which the
//! caller does as soon as the session keys are derived.

use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::crypto::{
    CONSTRUCTION, IDENTIFIER, KEY_LEN, LABEL_MAC1, MAC_LEN, Secret, TIMESTAMP_LEN, Tai64n, ct_eq,
    hash, kdf1, kdf2, kdf3, mac, open, seal,
};
use super::error::WgError;
use super::messages::{
    INIT_EPHEMERAL, INIT_MAC1, INIT_SENDER, INIT_STATIC, INIT_TIMESTAMP, INITIATION_LEN,
    RESP_EMPTY, RESP_EPHEMERAL, RESP_MAC1, RESP_RECEIVER, RESP_SENDER, RESPONSE_LEN,
    TYPE_INITIATION, TYPE_RESPONSE, key_at, read_u32,
};
use super::session::SessionKeys;
use crate::peer_id::PeerId;

/// `HASH(CONSTRUCTION)`.
fn initial_chaining_key() -> [u8; KEY_LEN] {
    hash(&[CONSTRUCTION])
}

/// `HASH(HASH(CONSTRUCTION) || IDENTIFIER || responder_static_public)`: the
/// handshake hash both sides start from for messages to `responder`.
fn initial_hash(responder: &[u8; KEY_LEN]) -> [u8; KEY_LEN] {
    hash(&[&hash(&[&initial_chaining_key(), IDENTIFIER]), responder])
}

/// `DH(secret, public)`, refusing low-order points (an all-zero result),
/// as the Linux implementation does. The result is wiped when dropped (as
/// `mix_dh` wipes `dh_calculation`); so is x25519's own copy.
fn dh(secret: &StaticSecret, public: &PublicKey) -> Result<Secret, WgError> {
    let shared = secret.diffie_hellman(public);
    if shared.was_contributory() {
        let mut out = Secret::default();
        out.copy_from_slice(shared.as_bytes());
        Ok(out)
    } else {
        Err(WgError::WeakKey)
    }
}

/// Our own static keys and what we precompute from them.
pub(crate) struct LocalKeys {
    pub(crate) secret: StaticSecret,
    pub(crate) public: [u8; KEY_LEN],
    /// `HASH(LABEL_MAC1 || our public)`: checks mac1 of messages to us.
    pub(crate) mac1_key: [u8; KEY_LEN],
    /// Initial handshake hash of initiations sent to us.
    initial_hash: [u8; KEY_LEN],
}

impl LocalKeys {
    pub(crate) fn new(secret: StaticSecret) -> Self {
        let public = PublicKey::from(&secret).to_bytes();
        Self {
            mac1_key: hash(&[LABEL_MAC1, &public]),
            initial_hash: initial_hash(&public),
            public,
            secret,
        }
    }
}

/// A peer's static key and what we precompute from it.
pub(crate) struct RemoteKeys {
    pub(crate) public: PublicKey,
    /// `DH(our static, their static)`, or `None` if their key is a low-order
    /// point (handshakes with them then fail with [`WgError::WeakKey`]).
    static_shared: Option<[u8; KEY_LEN]>,
    /// `HASH(LABEL_MAC1 || their public)`: mac1 key of messages we send them.
    mac1_key: [u8; KEY_LEN],
    /// Initial handshake hash of initiations we send them.
    initial_hash: [u8; KEY_LEN],
    /// The pre-shared key (all zeros when none).
    psk: [u8; KEY_LEN],
}

impl RemoteKeys {
    pub(crate) fn new(local: &LocalKeys, public: [u8; KEY_LEN], psk: [u8; KEY_LEN]) -> Self {
        let public_key = PublicKey::from(public);
        Self {
            static_shared: dh(&local.secret, &public_key).ok().map(|ss| *ss),
            mac1_key: hash(&[LABEL_MAC1, &public]),
            initial_hash: initial_hash(&public),
            public: public_key,
            psk,
        }
    }
}

impl RemoteKeys {
    /// The secrets this holds, for tests of the wipe: the precomputed
    /// static-static DH (zeros when absent) and the pre-shared key.
    #[cfg(test)]
    pub(crate) fn secrets(&self) -> [[u8; KEY_LEN]; 2] {
        [self.static_shared.unwrap_or_default(), self.psk]
    }
}

impl Zeroize for RemoteKeys {
    /// Wipes the secrets; the public key and its mac1 key and initial hash
    /// are public.
    fn zeroize(&mut self) {
        self.static_shared.zeroize();
        self.psk.zeroize();
    }
}

impl Drop for RemoteKeys {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl ZeroizeOnDrop for RemoteKeys {}

/// What the initiator remembers between sending an initiation and
/// receiving its response.
pub(crate) struct InitiatorState {
    /// Our sender index in the initiation; the response's receiver index.
    pub(crate) local_index: u32,
    hash: [u8; KEY_LEN],
    chaining_key: [u8; KEY_LEN],
    ephemeral: StaticSecret,
}

impl InitiatorState {
    /// The secrets this holds, for tests of the wipe: the handshake hash,
    /// the chaining key and the ephemeral secret.
    #[cfg(test)]
    pub(crate) fn secrets(&self) -> [[u8; KEY_LEN]; 3] {
        [self.hash, self.chaining_key, self.ephemeral.to_bytes()]
    }
}

impl Zeroize for InitiatorState {
    /// Wipes the hash, the chaining key and the ephemeral secret (the
    /// Linux implementation's `handshake_zero`); the index is kept so the
    /// caller can still release it.
    fn zeroize(&mut self) {
        self.hash.zeroize();
        self.chaining_key.zeroize();
        self.ephemeral.zeroize();
    }
}

impl Drop for InitiatorState {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl ZeroizeOnDrop for InitiatorState {}

/// Checks mac1 (keyed with our public key) of a handshake message whose
/// mac1 starts at `mac1_at`. mac2 is the caller's (it needs the source
/// address and the load state; see the `cookie` module).
pub(crate) fn verify_mac1(local: &LocalKeys, msg: &[u8], mac1_at: usize) -> Result<(), WgError> {
    let (Some(covered), Some(mac1)) = (msg.get(..mac1_at), msg.get(mac1_at..mac1_at + MAC_LEN))
    else {
        return Err(WgError::Truncated);
    };
    if !ct_eq(&mac(&local.mac1_key, covered), mac1) {
        return Err(WgError::BadMac1);
    }
    Ok(())
}

/// Writes mac1 (keyed for the receiver) and a zero mac2 into `msg`; the
/// peer's cookie state then writes mac2 if it holds a cookie.
fn write_macs(mac1_key: &[u8; KEY_LEN], msg: &mut [u8], mac1_at: usize) {
    let mac1 = mac(mac1_key, &msg[..mac1_at]);
    msg[mac1_at..mac1_at + MAC_LEN].copy_from_slice(&mac1);
    msg[mac1_at + MAC_LEN..mac1_at + 2 * MAC_LEN].fill(0);
}

/// Builds a handshake initiation to `remote` into `msg`.
pub(crate) fn create_initiation(
    local: &LocalKeys,
    remote: &RemoteKeys,
    ephemeral: StaticSecret,
    local_index: u32,
    timestamp: &Tai64n,
    msg: &mut [u8; INITIATION_LEN],
) -> Result<InitiatorState, WgError> {
    let static_shared = remote.static_shared.as_ref().ok_or(WgError::WeakKey)?;
    let ephemeral_public = PublicKey::from(&ephemeral).to_bytes();
    let es = dh(&ephemeral, &remote.public)?;

    msg[..4].copy_from_slice(&TYPE_INITIATION.to_le_bytes());
    msg[INIT_SENDER..INIT_SENDER + 4].copy_from_slice(&local_index.to_le_bytes());
    msg[INIT_EPHEMERAL..INIT_STATIC].copy_from_slice(&ephemeral_public);

    let mut h = Secret::new(hash(&[&remote.initial_hash, &ephemeral_public]));
    let ck = kdf1(&initial_chaining_key(), &ephemeral_public);
    let (ck, key) = kdf2(&ck, &*es);
    seal(
        &key,
        &local.public,
        &*h,
        &mut msg[INIT_STATIC..INIT_TIMESTAMP],
    );
    *h = hash(&[&*h, &msg[INIT_STATIC..INIT_TIMESTAMP]]);
    let (ck, key) = kdf2(&ck, static_shared);
    seal(&key, timestamp, &*h, &mut msg[INIT_TIMESTAMP..INIT_MAC1]);
    *h = hash(&[&*h, &msg[INIT_TIMESTAMP..INIT_MAC1]]);
    write_macs(&remote.mac1_key, msg, INIT_MAC1);

    Ok(InitiatorState {
        local_index,
        hash: *h,
        chaining_key: *ck,
        ephemeral,
    })
}

/// What a responder learned from a valid initiation.
pub(crate) struct ConsumedInitiation {
    /// The initiator, as its decrypted static key names it.
    pub(crate) peer: PeerId,
    /// The initiator's sender index: the receiver index of our response.
    pub(crate) sender_index: u32,
    /// The initiator's TAI64N timestamp (replay protection).
    pub(crate) timestamp: Tai64n,
    hash: [u8; KEY_LEN],
    chaining_key: [u8; KEY_LEN],
    remote_ephemeral: PublicKey,
}

impl ConsumedInitiation {
    /// The secrets this holds, for tests of the wipe: the handshake hash
    /// and the chaining key.
    #[cfg(test)]
    pub(crate) fn secrets(&self) -> [[u8; KEY_LEN]; 2] {
        [self.hash, self.chaining_key]
    }
}

impl Zeroize for ConsumedInitiation {
    /// Wipes the hash and the chaining key; what the initiation told us in
    /// the clear or about who sent it is kept.
    fn zeroize(&mut self) {
        self.hash.zeroize();
        self.chaining_key.zeroize();
    }
}

impl Drop for ConsumedInitiation {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl ZeroizeOnDrop for ConsumedInitiation {}

/// Verifies and decrypts an initiation addressed to us. `lookup` maps the
/// decrypted initiator key to that peer's keys, or `None` when the peer was
/// not added (then [`WgError::UnknownPeer`]). The caller verified the macs.
pub(crate) fn consume_initiation<'a>(
    local: &LocalKeys,
    msg: &[u8; INITIATION_LEN],
    lookup: impl FnOnce(&PeerId) -> Option<&'a RemoteKeys>,
) -> Result<ConsumedInitiation, WgError> {
    let ephemeral_public = key_at(msg, INIT_EPHEMERAL);
    let remote_ephemeral = PublicKey::from(ephemeral_public);
    let es = dh(&local.secret, &remote_ephemeral)?;

    let mut h = Secret::new(hash(&[&local.initial_hash, &ephemeral_public]));
    let ck = kdf1(&initial_chaining_key(), &ephemeral_public);
    let (ck, key) = kdf2(&ck, &*es);
    let mut static_public = [0u8; KEY_LEN];
    open(
        &key,
        &msg[INIT_STATIC..INIT_TIMESTAMP],
        &*h,
        &mut static_public,
    )
    .map_err(|()| WgError::Decrypt)?;
    *h = hash(&[&*h, &msg[INIT_STATIC..INIT_TIMESTAMP]]);

    let peer = PeerId::from_public_key(static_public);
    let remote = lookup(&peer).ok_or(WgError::UnknownPeer)?;
    let static_shared = remote.static_shared.as_ref().ok_or(WgError::WeakKey)?;
    let (ck, key) = kdf2(&ck, static_shared);
    let mut timestamp = [0u8; TIMESTAMP_LEN];
    open(&key, &msg[INIT_TIMESTAMP..INIT_MAC1], &*h, &mut timestamp)
        .map_err(|()| WgError::Decrypt)?;
    *h = hash(&[&*h, &msg[INIT_TIMESTAMP..INIT_MAC1]]);

    Ok(ConsumedInitiation {
        peer,
        sender_index: read_u32(msg, INIT_SENDER),
        timestamp,
        hash: *h,
        chaining_key: *ck,
        remote_ephemeral,
    })
}

/// Builds the response to `consumed` into `msg` and returns the responder's
/// transport keys.
pub(crate) fn create_response(
    remote: &RemoteKeys,
    consumed: &ConsumedInitiation,
    ephemeral: StaticSecret,
    local_index: u32,
    msg: &mut [u8; RESPONSE_LEN],
) -> Result<SessionKeys, WgError> {
    let ephemeral_public = PublicKey::from(&ephemeral).to_bytes();
    let ee = dh(&ephemeral, &consumed.remote_ephemeral)?;
    let se = dh(&ephemeral, &remote.public)?;

    msg[..4].copy_from_slice(&TYPE_RESPONSE.to_le_bytes());
    msg[RESP_SENDER..RESP_SENDER + 4].copy_from_slice(&local_index.to_le_bytes());
    msg[RESP_RECEIVER..RESP_RECEIVER + 4].copy_from_slice(&consumed.sender_index.to_le_bytes());
    msg[RESP_EPHEMERAL..RESP_EMPTY].copy_from_slice(&ephemeral_public);

    let mut h = Secret::new(hash(&[&consumed.hash, &ephemeral_public]));
    let ck = kdf1(&consumed.chaining_key, &ephemeral_public);
    let ck = kdf1(&ck, &*ee);
    let ck = kdf1(&ck, &*se);
    let (ck, tau, key) = kdf3(&ck, &remote.psk);
    *h = hash(&[&*h, &*tau]);
    seal(&key, &[], &*h, &mut msg[RESP_EMPTY..RESP_MAC1]);
    write_macs(&remote.mac1_key, msg, RESP_MAC1);

    let (recv, send) = kdf2(&ck, &[]);
    Ok(SessionKeys {
        send: *send,
        recv: *recv,
    })
}

/// Verifies a response to the initiation `state` describes and returns the
/// responder's sender index with the initiator's transport keys. The caller
/// verified the macs and matched the receiver index.
pub(crate) fn consume_response(
    local: &LocalKeys,
    remote: &RemoteKeys,
    state: &InitiatorState,
    msg: &[u8; RESPONSE_LEN],
) -> Result<(u32, SessionKeys), WgError> {
    let ephemeral_public = key_at(msg, RESP_EPHEMERAL);
    let remote_ephemeral = PublicKey::from(ephemeral_public);
    let ee = dh(&state.ephemeral, &remote_ephemeral)?;
    let se = dh(&local.secret, &remote_ephemeral)?;

    let mut h = Secret::new(hash(&[&state.hash, &ephemeral_public]));
    let ck = kdf1(&state.chaining_key, &ephemeral_public);
    let ck = kdf1(&ck, &*ee);
    let ck = kdf1(&ck, &*se);
    let (ck, tau, key) = kdf3(&ck, &remote.psk);
    *h = hash(&[&*h, &*tau]);
    open(&key, &msg[RESP_EMPTY..RESP_MAC1], &*h, &mut []).map_err(|()| WgError::Decrypt)?;

    let (send, recv) = kdf2(&ck, &[]);
    let keys = SessionKeys {
        send: *send,
        recv: *recv,
    };
    Ok((read_u32(msg, RESP_SENDER), keys))
}
