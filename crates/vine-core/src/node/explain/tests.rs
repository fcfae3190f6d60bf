//! The attempt ring: in-place updates, episodes and eviction.

use super::*;

fn at(base: Instant, s: u64) -> Instant {
    base + Duration::from_secs(s)
}

fn via(n: u8) -> Via {
    Via::Direct(std::net::SocketAddrV4::new(
        std::net::Ipv4Addr::new(192, 0, 2, n),
        4100,
    ))
}

#[test]
fn an_entry_is_updated_in_place_until_a_failed_path_works_again() {
    let t0 = Instant::now();
    let mut a = Attempts::default();
    let t = Target::Path(via(1));
    a.begin(t0, t, PathClass::Direct);
    a.begin(at(t0, 1), t, PathClass::Direct);
    assert_eq!(a.ring.len(), 1, "begin does not duplicate");
    a.record(
        at(t0, 2),
        t,
        PathClass::Direct,
        AttemptOutcome::Working,
        Reason::Answered,
    );
    assert_eq!(a.ring.len(), 1);
    a.record(
        at(t0, 3),
        t,
        PathClass::Direct,
        AttemptOutcome::NoAnswer,
        Reason::StoppedAnswering { probes: 3 },
    );
    assert_eq!(a.ring.len(), 1, "failure closes the same episode");
    a.record(
        at(t0, 4),
        t,
        PathClass::Direct,
        AttemptOutcome::Working,
        Reason::Answered,
    );
    assert_eq!(a.ring.len(), 2, "working again is a new episode");
    assert_eq!(a.outcome(t), Some(AttemptOutcome::Working));
    assert_eq!(a.ring[0].outcome, AttemptOutcome::NoAnswer);
}

#[test]
fn the_ring_is_bounded_and_drops_superseded_and_failed_entries_first() {
    let t0 = Instant::now();
    let mut a = Attempts::default();
    let working = Target::Path(via(200));
    a.record(
        t0,
        working,
        PathClass::Direct,
        AttemptOutcome::Working,
        Reason::Answered,
    );
    for n in 1..=40u8 {
        a.record(
            at(t0, u64::from(n)),
            Target::Path(via(n)),
            PathClass::Direct,
            AttemptOutcome::NoAnswer,
            Reason::NoAnswer { probes: 3 },
        );
    }
    assert_eq!(a.ring.len(), MAX_ATTEMPTS);
    assert_eq!(
        a.outcome(working),
        Some(AttemptOutcome::Working),
        "the working path outlives failed attempts"
    );
    assert_eq!(
        a.outcome(Target::Path(via(40))),
        Some(AttemptOutcome::NoAnswer)
    );
    assert_eq!(
        a.outcome(Target::Path(via(1))),
        None,
        "oldest failure evicted"
    );
}

#[test]
fn repeated_outcomes_refresh_last_seen_but_not_changed() {
    let t0 = Instant::now();
    let mut a = Attempts::default();
    let t = Target::Forward(crate::Identity::from_seed([9; 32]).peer_id());
    let cap = || Reason::ForwardRefused {
        to: crate::Identity::from_seed([9; 32]).peer_id(),
        refusal: RelayRefusal::RateLimited,
    };
    a.record(t0, t, PathClass::Relay, AttemptOutcome::Throttled, cap());
    a.record(
        at(t0, 5),
        t,
        PathClass::Relay,
        AttemptOutcome::Throttled,
        cap(),
    );
    assert_eq!(a.ring.len(), 1);
    assert_eq!(a.ring[0].changed, t0);
    assert_eq!(a.last_seen(t), Some(at(t0, 5)));
    assert_eq!(cap().code(), "relay_rate_cap");
}
