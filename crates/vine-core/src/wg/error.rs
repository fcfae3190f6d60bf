//! [`WgError`]: why a datagram was rejected or an operation could not be
//! done.

/// Why a datagram was rejected or an operation could not be done. None of
/// these is fatal: drop the datagram (log at `trace`) and carry on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WgError {
    /// The datagram is shorter than its message type requires.
    #[error("WireGuard datagram too short for its message type")]
    Truncated,
    /// A handshake or cookie message is longer than its fixed size.
    #[error("WireGuard handshake message has the wrong length")]
    WrongLength,
    /// The message type (with its reserved bytes) is not 1, 2, 3 or 4.
    #[error("unknown WireGuard message type {0:#x}")]
    UnknownType(u32),
    /// mac1 does not match: the message was not meant for our static key
    /// (wrong PeerId configured on the sender) or was damaged.
    #[error("handshake mac1 does not match our public key; the sender has a different key for us")]
    BadMac1,
    /// The source address sent more handshake messages than its token
    /// bucket allows (20 per second, burst 5); dropped before any
    /// Diffie-Hellman.
    #[error("handshake messages from this source address arrive faster than 20 per second")]
    RateLimited,
    /// A handshake came from a static key that was never added as a peer.
    #[error("handshake from a key that is not an added peer; add its PeerId to accept it")]
    UnknownPeer,
    /// Authenticated decryption failed: wrong keys, or the message was
    /// tampered with.
    #[error("WireGuard message failed authentication")]
    Decrypt,
    /// The transport counter was already received or is behind the window.
    #[error("replayed or too old WireGuard transport message")]
    Replay,
    /// The initiation's timestamp is not newer than the last one accepted
    /// from that peer (a replay, or the peer's clock went backwards).
    #[error(
        "handshake initiation timestamp is not newer than the last one accepted from this peer"
    )]
    StaleTimestamp,
    /// The peer sent initiations faster than 50 per second.
    #[error("handshake initiations from this peer arrive too fast")]
    InitiationFlood,
    /// No usable sending keys for the peer: call [`Wg::initiate`](super::Wg::initiate).
    #[error("no WireGuard session with this peer yet; a handshake is needed")]
    NoSession,
    /// The receiver index is not one we handed out (or its state is gone).
    #[error("WireGuard message for an unknown or expired session index")]
    UnknownIndex,
    /// The sending counter reached REJECT_AFTER_MESSAGES.
    #[error("WireGuard session used up its message counter; a handshake is needed")]
    CounterExhausted,
    /// The keys are older than REJECT_AFTER_TIME.
    #[error("WireGuard session keys have expired")]
    KeyExpired,
    /// A public key is a low-order point (Diffie-Hellman result all zero).
    #[error("peer public key is a weak (low-order) point")]
    WeakKey,
    /// A cookie reply that is not for the last handshake message we sent
    /// (unknown index, no message outstanding, already answered) or that
    /// fails authentication.
    #[error("WireGuard cookie reply does not answer our last handshake message or is forged")]
    BadCookieReply,
    /// The plaintext is too large to encrypt.
    #[error("plaintext too large for one WireGuard message")]
    TooLarge,
}
