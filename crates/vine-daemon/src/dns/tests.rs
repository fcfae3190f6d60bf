use std::net::Ipv4Addr;
use std::str::FromStr as _;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use vine_core::names::{NameSet, Zone};

use super::answer;

fn zone() -> Zone {
    let mut z = Zone::new("vine");
    let set = NameSet {
        seq: 1,
        node: Some(Ipv4Addr::new(10, 42, 0, 1)),
        workloads: [("web".parse().expect("name"), Ipv4Addr::new(10, 42, 0, 2))]
            .into_iter()
            .collect(),
    };
    z.add_node("alpha", &set);
    z
}

fn ask(name: &str, kind: RecordType) -> Message {
    let mut m = Message::new();
    m.set_id(4242)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true)
        .add_query(Query::query(Name::from_str(name).expect("name"), kind));
    let bytes = answer(&zone(), &m.to_vec().expect("encode"), 512).expect("a reply");
    Message::from_vec(&bytes).expect("a parseable reply")
}

#[test]
fn names_in_the_zone_are_answered_authoritatively() {
    let r = ask("web.alpha.vine.", RecordType::A);
    assert_eq!(r.id(), 4242);
    assert_eq!(r.response_code(), ResponseCode::NoError);
    assert!(r.authoritative());
    assert!(!r.recursion_available());
    assert_eq!(r.answers().len(), 1);
    assert_eq!(
        r.answers()[0].data(),
        &RData::A(Ipv4Addr::new(10, 42, 0, 2).into())
    );
    let r = ask("ALPHA.vine.", RecordType::A);
    assert_eq!(
        r.answers()[0].data(),
        &RData::A(Ipv4Addr::new(10, 42, 0, 1).into())
    );
    let r = ask("alpha.vine.", RecordType::AAAA);
    assert_eq!(r.response_code(), ResponseCode::NoError);
    assert!(r.answers().is_empty(), "no AAAA records: NODATA");
}

#[test]
fn other_names_get_nxdomain_or_refused() {
    assert_eq!(
        ask("db.alpha.vine.", RecordType::A).response_code(),
        ResponseCode::NXDomain
    );
    assert_eq!(
        ask("gamma.vine.", RecordType::A).response_code(),
        ResponseCode::NXDomain
    );
    let r = ask("example.com.", RecordType::A);
    assert_eq!(r.response_code(), ResponseCode::Refused);
    assert!(!r.authoritative());
}

#[test]
fn garbage_gets_formerr_or_nothing_and_never_a_panic() {
    assert_eq!(answer(&zone(), b"", 512), None);
    assert_eq!(answer(&zone(), &[0; 5], 512), None);
    let mut junk = vec![
        0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
    ];
    let r = Message::from_vec(&answer(&zone(), &junk, 512).expect("FORMERR")).expect("parse");
    assert_eq!(r.id(), 0x1234);
    assert_eq!(r.response_code(), ResponseCode::FormErr);
    // A response is never answered (no reflection loops).
    junk[2] |= 0x80;
    assert_eq!(answer(&zone(), &junk, 512), None);
    let mut x: u64 = 7;
    for len in 0..600 {
        let bytes: Vec<u8> = (0..len % 80)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        if let Some(reply) = answer(&zone(), &bytes, 512) {
            assert!(reply.len() <= 512);
        }
    }
}
