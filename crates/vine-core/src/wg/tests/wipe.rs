//! Secrets are wiped where the Linux implementation wipes them: the
//! handshake states, the peer keys and the derived session keys hold key
//! material until consumed and zeros after their wipe (which their `Drop`
//! runs), and the wipe changes nothing a handshake computes.

use x25519_dalek::StaticSecret;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::super::crypto::{KEY_LEN, kdf1, kdf2, kdf3};
use super::super::messages::{INITIATION_LEN, RESPONSE_LEN};
use super::super::noise::{
    ConsumedInitiation, InitiatorState, LocalKeys, RemoteKeys, consume_initiation,
    consume_response, create_initiation, create_response,
};
use super::super::session::SessionKeys;
use super::WALL;
use crate::peer_id::PeerId;

const ZERO: [u8; KEY_LEN] = [0; KEY_LEN];

/// Every type holding handshake or session secrets wipes them on drop.
#[test]
fn secret_holders_zeroize_on_drop() {
    fn zeroize_on_drop<T: ZeroizeOnDrop>() {}
    zeroize_on_drop::<RemoteKeys>();
    zeroize_on_drop::<InitiatorState>();
    zeroize_on_drop::<ConsumedInitiation>();
    zeroize_on_drop::<SessionKeys>();
}

/// One handshake through the noise functions, with a pre-shared key:
/// the states hold non-zero secrets while in use, zeros after the wipe,
/// and both sides derive the same keys.
#[test]
fn handshake_states_are_wiped_after_use() {
    let psk = [9u8; KEY_LEN];
    let alice = LocalKeys::new(StaticSecret::from([1; KEY_LEN]));
    let bob = LocalKeys::new(StaticSecret::from([2; KEY_LEN]));
    let mut alice_knows_bob = RemoteKeys::new(&alice, bob.public, psk);
    let mut bob_knows_alice = RemoteKeys::new(&bob, alice.public, psk);
    let timestamp = super::super::crypto::tai64n(WALL);

    let mut init = [0u8; INITIATION_LEN];
    let mut initiator = create_initiation(
        &alice,
        &alice_knows_bob,
        StaticSecret::from([3; KEY_LEN]),
        7,
        &timestamp,
        &mut init,
    )
    .expect("initiation");
    let mut consumed = consume_initiation(&bob, &init, |id| {
        (*id == PeerId::from_public_key(alice.public)).then_some(&bob_knows_alice)
    })
    .expect("consume initiation");
    let mut response = [0u8; RESPONSE_LEN];
    let mut bob_keys = create_response(
        &bob_knows_alice,
        &consumed,
        StaticSecret::from([4; KEY_LEN]),
        8,
        &mut response,
    )
    .expect("response");
    let (index, mut alice_keys) =
        consume_response(&alice, &alice_knows_bob, &initiator, &response).expect("consume");
    assert_eq!(index, 8);
    assert_eq!(alice_keys.send, bob_keys.recv);
    assert_eq!(alice_keys.recv, bob_keys.send);

    for secret in initiator
        .secrets()
        .iter()
        .chain(&consumed.secrets())
        .chain(&alice_knows_bob.secrets())
        .chain(&bob_knows_alice.secrets())
        .chain([&alice_keys.send, &alice_keys.recv])
    {
        assert_ne!(*secret, ZERO, "a secret is all zeros before its wipe");
    }

    // What `Drop` runs once the session is derived.
    initiator.zeroize();
    consumed.zeroize();
    alice_knows_bob.zeroize();
    bob_knows_alice.zeroize();
    alice_keys.zeroize();
    bob_keys.zeroize();
    assert_eq!(initiator.secrets(), [ZERO; 3]);
    assert_eq!(initiator.local_index, 7, "the index stays for its release");
    assert_eq!(consumed.secrets(), [ZERO; 2]);
    assert_eq!(consumed.sender_index, 7);
    assert_eq!(alice_knows_bob.secrets(), [ZERO; 2]);
    assert_eq!(bob_knows_alice.secrets(), [ZERO; 2]);
    for keys in [&alice_keys, &bob_keys] {
        assert_eq!([keys.send, keys.recv], [ZERO; 2]);
    }
}

/// The KDF outputs come in wrappers that wipe on drop, and wiping one
/// leaves the others as computed.
#[test]
fn kdf_outputs_are_wiped_independently() {
    let key = [5u8; KEY_LEN];
    let (a1, mut a2) = kdf2(&key, b"input");
    let (b1, b2, b3) = kdf3(&key, b"input");
    assert_eq!(*kdf1(&key, b"input"), *a1);
    assert_eq!((*a1, *a2), (*b1, *b2));
    assert_ne!(*b3, ZERO);
    a2.zeroize();
    assert_eq!(*a2, ZERO);
    assert_eq!(*a1, *b1);
    assert_ne!(*b2, ZERO);
}
