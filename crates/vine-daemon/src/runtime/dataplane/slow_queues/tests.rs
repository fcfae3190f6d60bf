use std::net::{Ipv4Addr, SocketAddrV4};

use vine_core::PeerId;
use vine_core::frame::TAG_FRAME;

use super::*;

const FROM: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 7), 4100);

fn peer() -> PeerId {
    PeerId::from_public_key([9; 32])
}

fn initiation() -> SlowPath {
    let mut m = vec![0; 148];
    m[0] = 1;
    SlowPath::Datagram(FROM, m)
}

fn control() -> SlowPath {
    SlowPath::Plain(FROM, peer(), vec![TAG_FRAME, 1, 7, 0])
}

fn relay(len: usize) -> SlowPath {
    let mut m = vec![0; len];
    m[0] = TAG_RELAY;
    SlowPath::Plain(FROM, peer(), m)
}

#[test]
fn each_kind_of_work_has_its_queue() {
    assert_eq!(Queue::of(&initiation()), Queue::Handshake);
    assert_eq!(Queue::of(&control()), Queue::Control);
    assert_eq!(
        Queue::of(&SlowPath::Plain(FROM, peer(), Vec::new())),
        Queue::Control,
        "a keepalive"
    );
    assert_eq!(Queue::of(&relay(200)), Queue::Relay);
    assert_eq!(
        Queue::of(&SlowPath::Plain(FROM, peer(), vec![0x45, 0, 0, 20])),
        Queue::SessionData
    );
    assert_eq!(Queue::of(&SlowPath::Tun(vec![0x45; 60])), Queue::Tun);
}

#[test]
fn queues_are_bounded_in_bytes_and_count_what_they_drop() {
    let q = SlowQueues::new(Instant::now());
    let cost = 148 + ITEM_OVERHEAD;
    let fits = Queue::Handshake.capacity() / cost;
    for _ in 0..fits {
        assert_eq!(q.push(initiation()), Pushed::Queued);
    }
    for _ in 0..10 {
        assert_eq!(q.push(initiation()), Pushed::Full);
    }
    assert_eq!(q.bytes(Queue::Handshake), fits * cost);
    assert!(q.bytes(Queue::Handshake) <= Queue::Handshake.capacity());
    // A full handshake queue takes nothing from the others.
    assert_eq!(q.push(control()), Pushed::Queued);
    // 64 KiB items: the relay queue holds 15 of them, not 4,096.
    let big = 65_535 + ITEM_OVERHEAD;
    let relay_fits = Queue::Relay.capacity() / big;
    assert_eq!(relay_fits, 15);
    let queued = (0..100)
        .filter(|_| q.push(relay(65_535)) == Pushed::Queued)
        .count();
    assert_eq!(queued, relay_fits);
    let drops = q.drops();
    assert_eq!(drops.get("handshake.full"), Some(&10));
    assert_eq!(drops.get("relay.full"), Some(&(100 - relay_fits as u64)));
    assert_eq!(drops.get("control.full"), None);
    assert_eq!(q.peaks().get("relay"), Some(&((relay_fits * big) as u64)));
    // Popping gives the bytes back.
    while q.pop(Queue::Handshake).is_some() {}
    assert_eq!(q.bytes(Queue::Handshake), 0);
    assert_eq!(q.push(initiation()), Pushed::Queued);
    assert_eq!(
        q.peaks().get("handshake"),
        Some(&((fits * cost) as u64)),
        "the peak stays"
    );
}

#[test]
fn under_load_from_an_eighth_of_the_handshake_queue() {
    let q = SlowQueues::new(Instant::now());
    let cost = 148 + ITEM_OVERHEAD;
    let eighth = (Queue::Handshake.capacity() / 8).div_ceil(cost);
    for _ in 0..eighth - 1 {
        q.push(initiation());
    }
    assert!(!q.under_load());
    q.push(initiation());
    assert!(q.under_load());
    q.pop(Queue::Handshake);
    assert!(!q.under_load());
}

#[test]
fn control_frames_are_served_first_and_floods_get_a_budget_per_pass() {
    let q = SlowQueues::new(Instant::now());
    while q.push(initiation()) == Pushed::Queued {}
    while q.push(relay(1400)) == Pushed::Queued {}
    q.push(control());
    let budget = |queue| {
        SERVICE
            .iter()
            .find(|(q, _)| *q == queue)
            .map(|(_, b)| *b)
            .expect("served")
    };
    for round in 0..3 {
        let mut pass = Pass::default();
        let first = pass.next(&q).expect("work");
        assert_eq!(first.0, Queue::Control, "pass {round}: control first");
        let mut served = vec![first.0];
        while let Some((queue, _)) = pass.next(&q) {
            served.push(queue);
        }
        let count = |k| served.iter().filter(|s| **s == k).count();
        assert_eq!(count(Queue::Relay), budget(Queue::Relay));
        assert_eq!(count(Queue::Handshake), budget(Queue::Handshake));
        assert_eq!(count(Queue::Control), 1);
        // A control frame that arrives while both floods continue is
        // served at the start of the next pass.
        while q.push(initiation()) == Pushed::Queued {}
        while q.push(relay(1400)) == Pushed::Queued {}
        q.push(control());
    }
}

#[test]
fn every_queue_is_served_and_a_pass_ends() {
    let q = SlowQueues::new(Instant::now());
    assert!(!q.any());
    assert!(Pass::default().next(&q).is_none());
    for work in [
        SlowPath::Tun(vec![0x45; 40]),
        SlowPath::Plain(FROM, peer(), vec![0x45; 40]),
        relay(100),
        control(),
        initiation(),
    ] {
        q.push(work);
    }
    assert!(q.any());
    let mut pass = Pass::default();
    let mut served = Vec::new();
    while let Some((queue, _)) = pass.next(&q) {
        served.push(queue);
    }
    assert_eq!(
        served,
        [
            Queue::Control,
            Queue::Tun,
            Queue::SessionData,
            Queue::Relay,
            Queue::Handshake
        ]
    );
    assert!(!q.any());
}

#[tokio::test]
async fn a_push_wakes_the_waiting_loop_and_closing_stops_pushes() {
    let q = Arc::new(SlowQueues::new(Instant::now()));
    let producer = Arc::clone(&q);
    let waiter = tokio::spawn(async move {
        q.ready().await;
        q
    });
    tokio::task::yield_now().await;
    std::thread::spawn(move || producer.push(control()))
        .join()
        .expect("producer");
    let q = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
        .await
        .expect("woken")
        .expect("task");
    assert!(q.any());
    let receiver = SlowReceiver::new(Arc::clone(&q));
    drop(receiver);
    assert_eq!(q.push(control()), Pushed::Closed);
}

#[test]
fn rejections_are_counted_by_reason() {
    let q = SlowQueues::new(Instant::now());
    assert!(q.rejected().is_empty());
    q.count_rejected(Rejected::UnknownType);
    q.count_rejected(Rejected::UnknownType);
    q.count_rejected(Rejected::UnknownIndex);
    let r = q.rejected();
    assert_eq!(r.get("unknown_type"), Some(&2));
    assert_eq!(r.get("unknown_index"), Some(&1));
    assert_eq!(r.get("bad_size"), None);
}
