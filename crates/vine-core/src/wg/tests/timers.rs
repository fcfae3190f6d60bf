//! Timer behaviour on a virtual clock: rekey, expiry, retry schedule.

use std::time::{Duration, Instant};

use super::super::timers::{REKEY_ATTEMPT_TIME, retry_interval};
use super::super::{Received, TimerEvent, WgError};
use super::{handshake, open, padded, pair, respond, seal, wall_at};

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn rekey_after_120s_keeps_traffic_flowing_across_the_switch() {
    let (mut a, mut b) = pair();
    let (aid, bid) = (a.local_peer_id(), b.local_peer_id());
    let t0 = Instant::now();
    handshake(&mut a, &mut b, t0, t0);

    // Before REKEY_AFTER_TIME nothing asks for a rekey.
    let early = t0 + secs(119);
    let d = seal(&mut a, &b, early, b"early");
    assert!(open(&mut b, &a, early, &d).is_ok());
    assert_eq!(
        a.poll_timeout(),
        Some(t0 + secs(180)),
        "only key expiry pending"
    );
    assert!(a.handle_timeout(early).is_empty());

    // The initiator sends on a session older than 120 s: rekey.
    let t = t0 + secs(121);
    let a_old = seal(&mut a, &b, t, b"a-old");
    assert_eq!(a.poll_timeout(), Some(t));
    assert_eq!(a.handle_timeout(t), vec![(bid, TimerEvent::RekeyNeeded)]);
    // The responder does not rekey on age when sending.
    let b_old = seal(&mut b, &a, t, b"b-old");
    assert!(b.handle_timeout(t).is_empty());

    let wall = wall_at(t0, t);
    let init = a.initiate(t, wall, &bid).expect("initiate");
    let response = respond(&mut b, t, wall, &init);
    // Until a confirms, b keeps sending on the old keys.
    let b_old2 = seal(&mut b, &a, t, b"b-old2");
    assert_eq!(&b_old2[4..8], &b_old[4..8]);
    assert!(matches!(
        a.decrypt(t, wall, &response, &mut Vec::new()),
        Ok(Received::HandshakeComplete { .. })
    ));
    let a_new = seal(&mut a, &b, t, b"a-new");
    assert_ne!(&a_new[4..8], &a_old[4..8], "new session index");
    assert_eq!(open(&mut b, &a, t, &a_new), Ok(padded(b"a-new")));
    let b_new = seal(&mut b, &a, t, b"b-new");
    assert_ne!(&b_new[4..8], &b_old[4..8]);

    // Packets encrypted under the old keys, delivered after the switch.
    assert_eq!(open(&mut b, &a, t, &a_old), Ok(padded(b"a-old")));
    assert_eq!(open(&mut a, &b, t, &b_old), Ok(padded(b"b-old")));
    assert_eq!(open(&mut a, &b, t, &b_old2), Ok(padded(b"b-old2")));
    assert_eq!(open(&mut a, &b, t, &b_new), Ok(padded(b"b-new")));

    // No further rekey right after one; the old keys expire quietly.
    let d = seal(&mut a, &b, t, b"x");
    assert!(open(&mut b, &a, t, &d).is_ok());
    let later = t0 + secs(200);
    assert!(a.handle_timeout(later).is_empty());
    assert!(b.handle_timeout(later).is_empty());
    assert_eq!(open(&mut a, &b, later, &b_old), Err(WgError::UnknownIndex));
    let d = seal(&mut a, &b, later, b"on new keys");
    assert!(open(&mut b, &a, later, &d).is_ok());
    let d = seal(&mut b, &a, later, b"and back");
    assert!(open(&mut a, &b, later, &d).is_ok());
    assert!(a.session_ready(&bid, later) && b.session_ready(&aid, later));
}

#[test]
fn ignored_rekey_requests_repeat_at_most_every_five_seconds() {
    let (mut a, mut b) = pair();
    let bid = b.local_peer_id();
    let t0 = Instant::now();
    handshake(&mut a, &mut b, t0, t0);
    let t = t0 + secs(130);
    let _ = seal(&mut a, &b, t, b"");
    assert_eq!(a.handle_timeout(t), vec![(bid, TimerEvent::RekeyNeeded)]);
    let _ = seal(&mut a, &b, t + secs(1), b"");
    assert!(a.handle_timeout(t + secs(1)).is_empty());
    let _ = seal(&mut a, &b, t + secs(5), b"");
    assert_eq!(
        a.handle_timeout(t + secs(5)),
        vec![(bid, TimerEvent::RekeyNeeded)]
    );
}

#[test]
fn initiator_rekeys_when_receiving_on_ageing_keys() {
    let (mut a, mut b) = pair();
    let bid = b.local_peer_id();
    let t0 = Instant::now();
    handshake(&mut a, &mut b, t0, t0);
    let t = t0 + secs(150);
    let d = seal(&mut b, &a, t, b"");
    assert!(open(&mut a, &b, t, &d).is_ok());
    assert!(a.handle_timeout(t).is_empty());
    let t = t0 + secs(166);
    let d = seal(&mut b, &a, t, b"");
    assert!(open(&mut a, &b, t, &d).is_ok());
    assert_eq!(a.handle_timeout(t), vec![(bid, TimerEvent::RekeyNeeded)]);
}

#[test]
fn keys_are_rejected_after_180s_without_rekey() {
    let (mut a, mut b) = pair();
    let (aid, bid) = (a.local_peer_id(), b.local_peer_id());
    let t0 = Instant::now();
    handshake(&mut a, &mut b, t0, t0);
    let just_before = t0 + secs(180) - Duration::from_millis(1);
    let late = seal(&mut b, &a, just_before, b"late");
    assert!(a.session_ready(&bid, just_before));

    let t = t0 + secs(180);
    assert!(!a.session_ready(&bid, t));
    assert!(!b.session_ready(&aid, t));
    assert_eq!(
        a.encrypt(t, &bid, b"x", &mut Vec::new()),
        Err(WgError::NoSession)
    );
    assert_eq!(open(&mut a, &b, t, &late), Err(WgError::KeyExpired));

    assert_eq!(a.poll_timeout(), Some(t));
    assert_eq!(a.handle_timeout(t), vec![(bid, TimerEvent::SessionExpired)]);
    assert_eq!(b.handle_timeout(t), vec![(aid, TimerEvent::SessionExpired)]);
    assert_eq!(a.poll_timeout(), None);
    assert_eq!(a.indices.len(), 0);
    assert_eq!(open(&mut a, &b, t, &late), Err(WgError::UnknownIndex));

    // A new handshake brings the peer back.
    handshake(&mut b, &mut a, t0, t + secs(1));
    let d = seal(&mut a, &b, t + secs(1), b"again");
    assert!(open(&mut b, &a, t + secs(1), &d).is_ok());
}

#[test]
fn handshake_retry_schedule_doubles_from_250ms_and_gives_up_after_90s() {
    assert_eq!(retry_interval(0), Duration::from_millis(250));
    assert_eq!(retry_interval(1), Duration::from_millis(500));
    assert_eq!(retry_interval(2), Duration::from_millis(1000));
    assert_eq!(retry_interval(3), Duration::from_millis(2000));
    assert_eq!(retry_interval(4), Duration::from_millis(4000));
    assert_eq!(retry_interval(5), Duration::from_millis(5000));
    assert_eq!(retry_interval(u32::MAX), Duration::from_millis(5000));

    let (mut a, b) = pair();
    let bid = b.local_peer_id();
    let t0 = Instant::now();
    a.initiate(t0, wall_at(t0, t0), &bid).expect("initiate");
    let give_up = t0 + REKEY_ATTEMPT_TIME;
    let mut now = t0;
    let mut retries = 0u32;
    let mut seen = Vec::new();
    loop {
        let deadline = a.poll_timeout().expect("a retry or the give-up is pending");
        assert_eq!(deadline, (now + retry_interval(retries)).min(give_up));
        assert!(
            a.handle_timeout(deadline - Duration::from_millis(1))
                .is_empty()
        );
        let events = a.handle_timeout(deadline);
        if deadline == give_up {
            assert_eq!(events, vec![(bid, TimerEvent::SessionExpired)]);
            break;
        }
        assert_eq!(events, vec![(bid, TimerEvent::HandshakeRetry)]);
        seen.push(deadline - now);
        now = deadline;
        retries += 1;
        a.initiate(now, wall_at(t0, now), &bid).expect("initiate");
    }
    let ms: Vec<u128> = seen.iter().take(7).map(Duration::as_millis).collect();
    assert_eq!(ms, [250, 500, 1000, 2000, 4000, 5000, 5000]);
    assert!(!a.handshake_in_progress(&bid));
    assert_eq!(a.poll_timeout(), None);
    assert_eq!(
        a.indices.len(),
        0,
        "given-up initiations free their indices"
    );
}

#[test]
fn an_unanswered_retry_request_still_gives_up() {
    let (mut a, b) = pair();
    let bid = b.local_peer_id();
    let t0 = Instant::now();
    a.initiate(t0, wall_at(t0, t0), &bid).expect("initiate");
    let first = t0 + Duration::from_millis(250);
    assert_eq!(
        a.handle_timeout(first),
        vec![(bid, TimerEvent::HandshakeRetry)]
    );
    // The node does not call initiate; the next deadline is the give-up.
    assert_eq!(a.poll_timeout(), Some(t0 + REKEY_ATTEMPT_TIME));
    assert_eq!(
        a.handle_timeout(t0 + REKEY_ATTEMPT_TIME),
        vec![(bid, TimerEvent::SessionExpired)]
    );
}

#[test]
fn a_completed_handshake_stops_the_retries() {
    let (mut a, mut b) = pair();
    let t0 = Instant::now();
    handshake(&mut a, &mut b, t0, t0);
    // Only key expiry remains.
    assert_eq!(a.poll_timeout(), Some(t0 + secs(180)));
    assert_eq!(b.poll_timeout(), Some(t0 + secs(180)));
}

#[test]
fn message_count_limits_rekey_then_stop_sending() {
    use super::super::timers::{REJECT_AFTER_MESSAGES, REKEY_AFTER_MESSAGES};
    let (mut a, mut b) = pair();
    let (aid, bid) = (a.local_peer_id(), b.local_peer_id());
    let t0 = Instant::now();
    handshake(&mut a, &mut b, t0, t0);
    let d = seal(&mut b, &a, t0, b"first");
    assert!(open(&mut a, &b, t0, &d).is_ok());

    // Even the responder rekeys once the counter passes REKEY_AFTER_MESSAGES.
    let keypair = b.peers.get_mut(&aid).and_then(|p| p.current_mut());
    keypair
        .expect("confirmed")
        .set_send_counter(REKEY_AFTER_MESSAGES);
    let d = seal(&mut b, &a, t0, b"many");
    assert_eq!(open(&mut a, &b, t0, &d), Ok(padded(b"many")));
    assert_eq!(b.handle_timeout(t0), vec![(aid, TimerEvent::RekeyNeeded)]);

    // The last usable counter is REJECT_AFTER_MESSAGES - 1.
    let keypair = b.peers.get_mut(&aid).and_then(|p| p.current_mut());
    keypair
        .expect("confirmed")
        .set_send_counter(REJECT_AFTER_MESSAGES - 1);
    let d = seal(&mut b, &a, t0, b"last");
    assert_eq!(open(&mut a, &b, t0, &d), Ok(padded(b"last")));
    assert!(!b.session_ready(&aid, t0));
    assert_eq!(
        b.encrypt(t0, &aid, b"one too many", &mut Vec::new()),
        Err(WgError::CounterExhausted)
    );
    // a's side is unaffected.
    assert!(a.session_ready(&bid, t0));
}
